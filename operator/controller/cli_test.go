package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/internal/cli"
	"github.com/bulkhead-sec/bulkhead/internal/kubetest"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
)

// kubeconfig writes a kubeconfig file for the test API server.
func kubeconfig(t *testing.T, e *kubetest.Env) string {
	t.Helper()
	c := e.Config
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	cfg.CurrentContext = "test"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkK8sCommand runs bulkhead k8s on each namespace and checks that its
// findings are those of the operator's reports: per workload, the
// configuration findings the WorkloadReport counts; per digest, the
// vulnerabilities its ImageReport counts. The table starts with the
// summary by namespace; --exit-code applies.
func checkK8sCommand(t *testing.T, e *kubetest.Env, c client.Client, nss []string) {
	t.Helper()
	ctx := context.Background()
	kc := kubeconfig(t, e)
	db := filepath.Join(t.TempDir(), "db", "osv.db")
	for _, ns := range nss {
		var stdout, stderr bytes.Buffer
		code := cli.Main([]string{"k8s", "--kubeconfig", kc, "--insecure", "--db", db, "--ignorefile", "", "--format", "json", "namespace", ns}, &stdout, &stderr)
		if code != 0 {
			t.Fatalf("bulkhead k8s namespace %s: exit %d: %s", ns, code, stderr.String())
		}
		var doc struct {
			Findings []struct {
				ID, Kind, Target string
			} `json:"findings"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
			t.Fatalf("%v: %.300s", err, stdout.String())
		}
		byTarget := map[string]int{}
		for _, f := range doc.Findings {
			byTarget[f.Target]++
		}
		var wrs v1alpha1.WorkloadReportList
		if err := c.List(ctx, &wrs, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		images := map[string]string{}
		for _, wr := range wrs.Items {
			key := ns + "/" + wr.Report.Workload.Kind + "/" + wr.Report.Workload.Name
			if got, want := byTarget[key], wr.Report.ConfigAudit.Summary.Total(); got != want {
				t.Errorf("%s: bulkhead k8s has %d configuration findings, the operator's report %d", key, got, want)
			}
			for _, ct := range wr.Report.Containers {
				repo, _, _ := strings.Cut(ct.Image, ":")
				if i := strings.LastIndex(ct.Image, ":"); i > 0 {
					repo = ct.Image[:i]
				}
				images[repo+"@"+ct.Digest] = ct.Digest
			}
		}
		for pinned, d := range images {
			var ir v1alpha1.ImageReport
			if err := c.Get(ctx, client.ObjectKey{Name: reports.ImageName(d)}, &ir); err != nil {
				t.Fatal(err)
			}
			if got, want := byTarget[pinned], ir.Report.Summary.Total(); got != want {
				t.Errorf("%s: bulkhead k8s has %d vulnerabilities, the operator's ImageReport %d", pinned, got, want)
			}
		}
		if !strings.Contains(stderr.String(), "NAMESPACE") || !strings.Contains(stderr.String(), ns) {
			t.Errorf("no summary by namespace on stderr: %s", stderr.String())
		}
	}
	// The table, and --exit-code when findings remain.
	var stdout, stderr bytes.Buffer
	code := cli.Main([]string{"k8s", "--kubeconfig", kc, "--insecure", "--db", db, "--ignorefile", "", "--exit-code", "3", "--namespaces", nss[0], "deployment/web"}, &stdout, &stderr)
	if code != 3 {
		t.Errorf("bulkhead k8s --exit-code 3 deployment/web: exit %d: %s", code, stderr.String())
	}
	if out := stdout.String(); !strings.HasPrefix(out, "NAMESPACE") || !strings.Contains(out, "1 workloads, 2 distinct images") {
		t.Errorf("table: %.600s", out)
	}
	code = cli.Main([]string{"k8s", "--kubeconfig", kc, "--insecure", "--db", db, "--namespaces", nss[0], "deployment/nope"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "Deployment/nope not found") {
		t.Errorf("a missing deployment: exit %d: %s", code, stderr.String())
	}
	_ = os.Remove
}
