package scanner_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/servertest"
)

const token = "bkh_operator-test-admin-token-0123456789"

// With bulkhead server configured, the first scan of a digest is made
// here and uploaded; any later scan of that digest (another operator, a
// restart with no report, bulkhead k8s) takes the server's stored result
// and pulls nothing.
func TestScanTakesWhatTheServerHolds(t *testing.T) {
	ctx := context.Background()
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: filepath.Join(t.TempDir(), "osv.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	s := servertest.Start(t, servertest.Options{Matcher: m, Token: token})
	c := s.Client(t, server.RoleAdmin)

	// A registry counting manifest GETs, holding an image with lodash
	// 4.17.4.
	var mu sync.Mutex
	gets := 0
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
			mu.Lock()
			gets++
			mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	defer reg.Close()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := `{"name":"lodash","version":"4.17.4"}`
	tw.WriteHeader(&tar.Header{Name: "usr/lib/node_modules/lodash/package.json", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()
	b := buf.Bytes()
	l, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	img, _ := mutate.AppendLayers(empty.Image, l)
	host := strings.TrimPrefix(reg.URL, "http://")
	ref, _ := name.ParseReference(host+"/app:v1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	target := scanner.Target{Digest: d.String(), Repository: host + "/app"}

	cfg := &scanner.Config{Matcher: m, Insecure: true, TempDir: t.TempDir(), Server: c, ServerURL: s.URL}
	first, err := cfg.Scan(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if first.FromServer || first.ScanID == 0 || gets != 1 {
		t.Fatalf("first scan: from server %v, scan ID %d, %d manifest GETs", first.FromServer, first.ScanID, gets)
	}
	again, err := cfg.Scan(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if !again.FromServer || again.ScanID != first.ScanID || gets != 1 {
		t.Fatalf("second scan: from server %v, scan ID %d (first %d), %d manifest GETs", again.FromServer, again.ScanID, first.ScanID, gets)
	}
	vulns := func(o *scanner.Outcome) int {
		n := 0
		for _, f := range o.Result.Findings {
			if f.Kind == finding.KindVulnerability {
				n++
			}
		}
		return n
	}
	if vulns(first) == 0 || vulns(again) != vulns(first) {
		t.Errorf("vulnerabilities: %d scanned, %d from the server", vulns(first), vulns(again))
	}
}
