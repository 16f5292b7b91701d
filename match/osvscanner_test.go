package match

import (
	"archive/zip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// osvScannerBinary finds the osv-scanner built by bench/match-osv-scanner.sh
// ($OSV_SCANNER or $(go env GOPATH)/bin/osv-scanner).
func osvScannerBinary(t *testing.T) string {
	if p := os.Getenv("OSV_SCANNER"); p != "" {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "osv-scanner")
	if _, err := os.Stat(p); err != nil {
		t.Skip("osv-scanner not installed; run bench/match-osv-scanner.sh")
	}
	return p
}

// comparePackages are lockfile entries osv-scanner reads offline, with the
// same boundary versions as TestMatchRealRecords.
var comparePackages = []inventory.Package{
	{Name: "django", Version: "1.7.5", Type: "pypi"},
	{Name: "beaker", Version: "1.6.5", Type: "pypi"},
	{Name: "avro", Version: "1.11.2", Type: "pypi"},
	{Name: "lodash", Version: "4.17.20", Type: "npm"},
	{Name: "cap-primitives", Version: "3.4.0", Type: "cargo"},
	{Name: "io.netty:netty-codec-http", Version: "4.1.85.Final", Type: "maven"},
	{Name: "org.apache.tomcat.embed:tomcat-embed-core", Version: "9.0.0.M18", Type: "maven"},
	{Name: "io.atomix:atomix", Version: "3.1.5", Type: "maven"},
	{Name: "io.netty:netty-codec-http2", Version: "4.1.59.Final", Type: "maven"},
}

// TestAgainstOSVScanner runs the real osv-scanner offline on lockfiles
// holding comparePackages, with a local database made of testdata/osv, and
// compares (package, advisory) sets with Match. Differences are listed in
// knownOSVScannerDifferences with the reason.
func TestAgainstOSVScanner(t *testing.T) {
	bin := osvScannerBinary(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	writeOSVZips(t, db, "testdata/osv")
	work := filepath.Join(dir, "src")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	writeLockfiles(t, work)

	cmd := exec.Command(bin, "scan", "source", "--offline-vulnerabilities", "--no-resolve", "--format", "json",
		"-L", filepath.Join(work, "requirements.txt"), "-L", filepath.Join(work, "package-lock.json"),
		"-L", filepath.Join(work, "Cargo.lock"), "-L", filepath.Join(work, "pom.xml"))
	cmd.Env = append(os.Environ(), "OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY="+db, "OSV_SCALIBR_LOCAL_DB_CACHE_DIRECTORY="+db)
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("osv-scanner: %v\n%s", err, stderr)
	}
	var res struct {
		Results []struct {
			Packages []struct {
				Package struct {
					Name, Version, Ecosystem string
				}
				Vulnerabilities []struct{ ID string }
			}
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("osv-scanner output: %v\n%s", err, out)
	}
	theirs := map[string]bool{}
	for _, r := range res.Results {
		for _, p := range r.Packages {
			for _, v := range p.Vulnerabilities {
				theirs[p.Package.Name+"@"+p.Package.Version+" "+v.ID] = true
			}
		}
	}
	fs, err := Match(context.Background(), &inventory.Inventory{Packages: comparePackages}, testSource(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]bool{}
	for _, f := range fs {
		// osv-scanner reports every record; bulkhead merges aliases, so
		// compare each merged id too.
		for _, id := range append([]string{f.ID}, f.Aliases...) {
			k := f.Package.Name + "@" + f.Package.Version + " " + id
			if theirs[k] || id == f.ID {
				ours[k] = true
			}
		}
	}
	var onlyOurs, onlyTheirs []string
	for k := range ours {
		if !theirs[k] {
			onlyOurs = append(onlyOurs, k)
		}
	}
	for k := range theirs {
		if !ours[k] {
			onlyTheirs = append(onlyTheirs, k)
		}
	}
	sort.Strings(onlyOurs)
	sort.Strings(onlyTheirs)
	t.Logf("osv-scanner: %d (package, advisory) pairs; bulkhead: %d", len(theirs), len(ours))
	if !reflect.DeepEqual(onlyOurs, knownOSVScannerDifferences.onlyOurs) || !reflect.DeepEqual(onlyTheirs, knownOSVScannerDifferences.onlyTheirs) {
		t.Errorf("differences from osv-scanner changed:\nonly bulkhead: %q\nonly osv-scanner: %q", onlyOurs, onlyTheirs)
	}
}

// knownOSVScannerDifferences: none on this data (each is explained here
// when one appears).
var knownOSVScannerDifferences = struct{ onlyOurs, onlyTheirs []string }{}

func writeOSVZips(t *testing.T, db, dir string) {
	t.Helper()
	recs := map[string][][2]string{} // ecosystem -> (name, json)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		v, err := ParseRecord(data, p)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, a := range v.GetAffected() {
			base, _, _ := strings.Cut(a.GetPackage().GetEcosystem(), ":")
			if base != "" && !seen[base] {
				seen[base] = true
				recs[base] = append(recs[base], [2]string{filepath.Base(p), string(data)})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for eco, files := range recs {
		d := filepath.Join(db, "osv-scalibr", eco)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(d, "all.zip"))
		if err != nil {
			t.Fatal(err)
		}
		zw := zip.NewWriter(f)
		for _, r := range files {
			w, err := zw.Create(r[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(r[1])); err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

func writeLockfiles(t *testing.T, dir string) {
	t.Helper()
	var req, cargo, deps strings.Builder
	npm := map[string]any{"name": "x", "version": "1.0.0", "lockfileVersion": 3, "requires": true}
	pkgs := map[string]any{"": map[string]any{"name": "x", "version": "1.0.0"}}
	cargo.WriteString("version = 3\n")
	for _, p := range comparePackages {
		switch p.Type {
		case "pypi":
			req.WriteString(p.Name + "==" + p.Version + "\n")
		case "npm":
			pkgs["node_modules/"+p.Name] = map[string]any{"version": p.Version}
		case "cargo":
			cargo.WriteString("\n[[package]]\nname = \"" + p.Name + "\"\nversion = \"" + p.Version + "\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n")
		case "maven":
			g, a, _ := strings.Cut(p.Name, ":")
			deps.WriteString("    <dependency><groupId>" + g + "</groupId><artifactId>" + a + "</artifactId><version>" + p.Version + "</version></dependency>\n")
		}
	}
	npm["packages"] = pkgs
	npmJSON, _ := json.MarshalIndent(npm, "", "  ")
	pom := "<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  <modelVersion>4.0.0</modelVersion>\n  <groupId>x</groupId><artifactId>x</artifactId><version>1</version>\n  <dependencies>\n" + deps.String() + "  </dependencies>\n</project>\n"
	for name, data := range map[string]string{"requirements.txt": req.String(), "package-lock.json": string(npmJSON), "Cargo.lock": cargo.String(), "pom.xml": pom} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
