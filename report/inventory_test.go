package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it); got:\n%s", path, got)
	}
}

func TestTableGolden(t *testing.T) {
	for name, inv := range sbomtest.All() {
		for _, color := range []bool{false, true} {
			var b bytes.Buffer
			if err := Table(&b, inv, Options{Color: color}); err != nil {
				t.Fatal(err)
			}
			file := name + ".table.txt"
			if color {
				file = name + ".table-color.txt"
			}
			golden(t, file, b.Bytes())
			if !color && strings.Contains(b.String(), "\x1b[") {
				t.Errorf("%s: colour codes without Color", name)
			}
		}
	}
}

func TestTableContent(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, sbomtest.Debian(), Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Target:   docker.io/library/debian:12 (registry)\n",
		"Digest:   sha256:e831d9a884d63734fe3dd9c491ed9a5a3d4c6a6d32c5b14f2067357c49b0b7e1\n",
		"Platform: linux/amd64\n",
		"OS:       Debian GNU/Linux 12 (bookworm)\n",
		"Packages: 10\n",
		"NAME             VERSION            TYPE  SOURCE                 LAYER\n",
		"bash             5.2.15-2+b7        deb   bash 5.2.15-2          0\n",
		"curl             7.88.1-10+deb12u7  deb                          1\n",
		"login            1:4.13+dfsg1-1+b1  deb   shadow 1:4.13+dfsg1-1  0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Columns line up: every row is as wide up to LAYER as the header.
	lines := strings.Split(out, "\n")
	var hdr int
	for i, l := range lines {
		if strings.HasPrefix(l, "NAME") {
			hdr = i
		}
	}
	col := strings.Index(lines[hdr], "LAYER")
	for _, l := range lines[hdr+1 : hdr+11] {
		if len(l) <= col || l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("row not aligned with LAYER at %d: %q", col, l)
		}
	}
}

func TestTableEdge(t *testing.T) {
	inv := sbomtest.Edge()
	inv.Packages = append(inv.Packages, inventory.Package{Name: "evil\x1b]2;pwned\x07", Version: "1\r\n2", Type: "deb"})
	var b bytes.Buffer
	if err := Table(&b, inv, Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07\r") {
		t.Errorf("control characters from package data reached the output: %q", out)
	}
	for _, want := range []string{"OS:       unknown\n", "evil?]2;pwned?", "naïve-ünïcode-工具", "Warnings:\n  - rpm: /var/lib/rpm/Packages"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := Table(&b, &inventory.Inventory{Target: inventory.Target{Name: "scratch"}}, Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "No packages found.") {
		t.Errorf("empty inventory:\n%s", b.String())
	}
	if err := Table(&b, nil, Options{}); err == nil {
		t.Error("no error for nil inventory")
	}
}

func TestDisplayWidth(t *testing.T) {
	for s, want := range map[string]int{"bash": 4, "工具": 4, "naïve": 5, "e\u0301": 1, "": 0} {
		if got := displayWidth(s); got != want {
			t.Errorf("displayWidth(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestJSON(t *testing.T) {
	for name, inv := range sbomtest.All() {
		var b bytes.Buffer
		if err := JSON(&b, inv); err != nil {
			t.Fatal(err)
		}
		golden(t, name+".json", b.Bytes())
		var doc struct {
			SchemaVersion int `json:"schemaVersion"`
			inventory.Inventory
		}
		if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.SchemaVersion != SchemaVersion {
			t.Errorf("%s: schemaVersion %d", name, doc.SchemaVersion)
		}
		if !reflect.DeepEqual(&doc.Inventory, normalized(inv)) {
			t.Errorf("%s: JSON does not read back to the inventory", name)
		}
		if strings.Contains(b.String(), "null") {
			t.Errorf("%s: null in JSON report", name)
		}
	}
	var b bytes.Buffer
	if err := JSON(&b, &inventory.Inventory{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"packages": []`) || !strings.HasPrefix(b.String(), "{\n  \"schemaVersion\": 1,") {
		t.Errorf("empty inventory JSON:\n%s", b.String())
	}
	if err := JSON(&b, nil); err == nil {
		t.Error("no error for nil inventory")
	}
}

func TestJSONDoesNotChangeInventory(t *testing.T) {
	inv := sbomtest.Edge()
	inv.Packages[0].Locations = nil
	if err := JSON(&bytes.Buffer{}, inv); err != nil {
		t.Fatal(err)
	}
	if inv.Packages[0].Locations != nil {
		t.Error("JSON changed the caller's inventory")
	}
}

func TestColorEnabled(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if ColorEnabled(w) {
		t.Error("colour for a pipe")
	}
	t.Setenv("NO_COLOR", "")
	if ColorEnabled(os.Stdout) {
		t.Error("colour despite NO_COLOR")
	}
	if ColorEnabled(nil) {
		t.Error("colour for nil file")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestWriteErrors(t *testing.T) {
	if err := Table(failWriter{}, sbomtest.Alpine(), Options{}); err == nil || !strings.Contains(err.Error(), "write table") {
		t.Errorf("Table: %v", err)
	}
	if err := JSON(failWriter{}, sbomtest.Alpine()); err == nil || !strings.Contains(err.Error(), "write JSON report") {
		t.Errorf("JSON: %v", err)
	}
}

func BenchmarkTable10k(b *testing.B) {
	inv := sbomtest.Big(10_000)
	var out bytes.Buffer
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out.Reset()
		if err := Table(&out, inv, Options{Color: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSON10k(b *testing.B) {
	inv := sbomtest.Big(10_000)
	var out bytes.Buffer
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out.Reset()
		if err := JSON(&out, inv); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(out.Len())/1e6, "MB/doc")
}
