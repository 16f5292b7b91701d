package config_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/bulkhead-sec/bulkhead/config"
	_ "github.com/bulkhead-sec/bulkhead/config/dockerfile"
	_ "github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/secret"
)

// checkers builds every registered kind's checker from the given flags.
func checkers(t *testing.T, args ...string) map[string]config.Checker {
	t.Helper()
	fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
	builders := map[string]func() (config.Checker, error){}
	for _, n := range config.Names() {
		k, _ := config.Lookup(n)
		b := k.Setup(fl)
		builders[n] = func() (config.Checker, error) { return b(nil) }
	}
	if err := fl.Parse(args); err != nil {
		t.Fatal(err)
	}
	out := map[string]config.Checker{}
	for n, b := range builders {
		c, err := b()
		if err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	return out
}

func TestKindsRegistered(t *testing.T) {
	if got := strings.Join(config.Names(), ","); got != "dockerfile,kubernetes" {
		t.Fatalf("kinds %s", got)
	}
	pod := []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n")
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"Dockerfile", nil, "dockerfile"},
		{"app.Containerfile", nil, "dockerfile"},
		{"Dockerfile.dockerignore", nil, ""},
		{"pod.yaml", pod, "kubernetes"},
		{"-", pod, "kubernetes"},
		{"pod.txt", pod, ""},
		{"compose.yaml", []byte("services:\n  web:\n    image: nginx\n"), ""},
	} {
		if got := config.Detect(c.name, c.data, ""); got != c.want {
			t.Errorf("Detect(%s) = %q, want %q", c.name, got, c.want)
		}
	}
	if got := config.Detect("pod.txt", nil, "dockerfile"); got != "dockerfile" {
		t.Errorf("forced kind ignored: %q", got)
	}
}

// TestScan checks a tree of every case: each kind detected and checked,
// an unrelated file skipped, a file over MaxFile and a stream over
// --max-objects reported unread while the rest is still checked.
func TestScan(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	df := write("app/Dockerfile", "FROM alpine:3.19\nENV AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nRUN apk add curl\n")
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx}]}\n"
	write("deploy/pod.yaml", pod)
	many := write("deploy/many.yaml", strings.Repeat(pod+"---\n", 5))
	write("notes/compose.yaml", "services:\n  web:\n    image: nginx\n")
	write(".git/Dockerfile", "FROM alpine\n")
	big := filepath.Join(dir, "big/Dockerfile")
	if err := os.MkdirAll(filepath.Dir(big), 0o755); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(config.MaxFile + 1); err != nil { // sparse
		t.Fatal(err)
	}
	fh.Close()

	byPath := map[string]map[string]int{}
	calls := 0
	sum, err := config.Scan(context.Background(), []string{dir}, config.Options{
		Checkers: checkers(t, "--max-objects", "3"),
		Secrets:  secret.Default(),
	}, func(fs []finding.Finding) {
		calls++
		for _, f := range fs {
			if f.Location == nil {
				continue
			}
			if byPath[f.Location.Path] == nil {
				byPath[f.Location.Path] = map[string]int{}
			}
			byPath[f.Location.Path][f.ID]++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// app/Dockerfile, big/Dockerfile (unread), many.yaml, pod.yaml
	if sum.Checked != 3 {
		t.Errorf("checked %d files, want 3; warnings %v", sum.Checked, sum.Warnings)
	}
	if len(sum.Unread) != 2 || !strings.Contains(sum.Unread[0], big) || !strings.Contains(sum.Unread[0], "over 16777216 bytes") ||
		!strings.Contains(sum.Unread[1], many+": document 4: more than 3 objects") || !strings.Contains(sum.Unread[1], "--max-objects 3") {
		t.Errorf("unread %q", sum.Unread)
	}
	if len(sum.Warnings) != 2 {
		t.Errorf("warnings %q", sum.Warnings)
	}
	if byPath[df]["BH-DF-009"] != 1 || len(byPath[df]) < 2 {
		t.Errorf("Dockerfile findings %v", byPath[df])
	}
	for id := range byPath[df] {
		if strings.HasPrefix(id, "aws") || strings.Contains(id, "secret-access") {
			t.Errorf("secret finding %s on a line BH-DF-009 reports", id)
		}
	}
	if len(byPath[filepath.Join(dir, "deploy/pod.yaml")]) == 0 || len(byPath[many]) == 0 {
		t.Errorf("manifest findings %v", byPath)
	}
	for p := range byPath {
		if strings.Contains(p, "compose") || strings.Contains(p, ".git") {
			t.Errorf("%s checked", p)
		}
	}
	if calls < 4 {
		t.Errorf("findings came in %d calls; expected them streamed per file and document", calls)
	}

	// without the misconfig checks the same line is reported as a secret
	secrets := 0
	if _, err := config.Scan(context.Background(), []string{df}, config.Options{Secrets: secret.Default()}, func(fs []finding.Finding) {
		for _, f := range fs {
			if f.ID == "aws-secret-access-key" {
				secrets++
			}
		}
	}); err != nil || secrets != 1 {
		t.Errorf("secrets only: %v, %d aws-secret-access-key findings", err, secrets)
	}

	// a file named directly is checked whatever its kind, with a warning
	notes := filepath.Join(dir, "notes/compose.yaml")
	sum, err = config.Scan(context.Background(), []string{notes}, config.Options{Checkers: checkers(t), Secrets: secret.Default()}, func([]finding.Finding) {})
	if err != nil || sum.Checked != 1 || len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], notes+": not a Dockerfile or manifest") {
		t.Errorf("direct file: %v %+v", err, sum)
	}

	// standard input of no kind, with no secret scan, is an error
	_, err = config.Scan(context.Background(), []string{"-"}, config.Options{Checkers: checkers(t), Stdin: strings.NewReader("hello\n")}, func([]finding.Finding) {})
	if err == nil || !strings.Contains(err.Error(), "give --type dockerfile|kubernetes") {
		t.Errorf("stdin of no kind: %v", err)
	}
	_, err = config.Scan(context.Background(), []string{filepath.Join(dir, "missing")}, config.Options{}, func([]finding.Finding) {})
	if err == nil {
		t.Error("missing path accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := config.Scan(ctx, []string{dir}, config.Options{}, func([]finding.Finding) {}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: %v", err)
	}
}
