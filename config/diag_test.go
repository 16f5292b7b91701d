package config_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-sec/bulkhead/config"
	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/secret"
)

// Each file a config scan could not check in full, or checks for secrets
// only, is a diagnostic with its code and path.
func TestConfigDiagnosticCodes(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		make func(p string) error
		file string
		code diag.Code
	}{
		{"oversized", func(p string) error {
			fh, err := os.Create(p)
			if err != nil {
				return err
			}
			defer fh.Close()
			return fh.Truncate(config.MaxFile + 1) // sparse
		}, "big/Dockerfile", diag.ConfigUnreadable},
		{"unparseable", func(p string) error {
			return os.WriteFile(p, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: [a, b\n"), 0o600)
		}, "pod.yaml", diag.ConfigUnreadable},
		{"unknown kind", func(p string) error {
			return os.WriteFile(p, []byte("just some notes\n"), 0o600)
		}, "notes.txt", diag.ConfigUnknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.file)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := c.make(p); err != nil {
				t.Fatal(err)
			}
			sum, err := config.Scan(context.Background(), []string{p}, config.Options{Checkers: checkers(t), Secrets: secret.Default()}, func([]finding.Finding) {})
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.Diagnostics) != 1 || len(sum.Warnings) != 1 || sum.Warnings[0] != sum.Diagnostics[0].Message {
				t.Fatalf("diagnostics %+v, warnings %q", sum.Diagnostics, sum.Warnings)
			}
			d := sum.Diagnostics[0]
			if d.Code != c.code || d.Severity != diag.Warning || d.Location == nil || d.Location.Path != p {
				t.Errorf("%s %s at %+v, want %s at %s", d.Severity, d.Code, d.Location, c.code, p)
			}
		})
	}
}
