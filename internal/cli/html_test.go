package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestHTMLFormat: image, compare and gate write the HTML report through
// --format html / --output, from images and manifests built here.
func TestHTMLFormat(t *testing.T) {
	dir := t.TempDir()
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("<!DOCTYPE html>")) {
			t.Fatalf("%s is not an HTML document: %.80q", p, b)
		}
		return string(b)
	}
	want := func(what, doc string, parts ...string) {
		t.Helper()
		for _, p := range parts {
			if !strings.Contains(doc, p) {
				t.Errorf("%s lacks %q", what, p)
			}
		}
	}

	// image
	layoutA := plantedImage(t)
	out := filepath.Join(dir, "image.html")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"image", "--scanners", "secret,misconfig", "--format", "html", "--output", out, "--temp-dir", t.TempDir(), "oci:" + layoutA}, &stdout, &stderr); code != 0 {
		t.Fatalf("image --format html: exit %d: %s", code, stderr.String())
	}
	want("image report", read(out), "Alpine Linux v3.20", "<td>musl</td><td>1.2.5-r0</td><td>apk</td>", `id="layers"`, `id="misconfigurations"`, "Content-Security-Policy")

	// compare: B adds a package and upgrades musl.
	base := tarLayer(t, map[string]string{"etc/os-release": "ID=alpine\nVERSION_ID=3.20.3\n"})
	app := tarLayer(t, map[string]string{"lib/apk/db/installed": "P:musl\nV:1.2.5-r1\nA:x86_64\no:musl\nL:MIT\n\nP:zlib\nV:1.3.1-r0\nA:x86_64\no:zlib\nL:Zlib\n\n"})
	imgB, err := mutate.AppendLayers(empty.Image, base, app)
	if err != nil {
		t.Fatal(err)
	}
	layoutB := writeLayout(t, imgB)
	db := filepath.Join(dir, "osv.db")
	if _, _, err := runDB(t, "import", "--db", db, filepath.Join("..", "..", "vulndb", "testdata", "osv")); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(dir, "compare.html")
	stdout.Reset()
	stderr.Reset()
	if code := Main([]string{"compare", "--db", db, "--db-max-age", "0", "-q", "--format", "html", "--output", out, "oci:" + layoutA, "oci:" + layoutB}, &stdout, &stderr); code != 0 {
		t.Fatalf("compare --format html: exit %d: %s", code, stderr.String())
	}
	want("compare report", read(out), `<td><span class="tag">changed</span></td><td>musl</td><td>apk</td><td>1.2.5-r0</td><td>1.2.5-r1</td>`,
		`<td><span class="tag">added</span></td><td>zlib</td>`, `<dd id="n-packages">1 added, 0 removed, 1 changed</dd>`)

	// gate: a privileged pod is denied; the report is written, exit 1.
	pol, man := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "pod.yaml")
	os.WriteFile(pol, []byte(gatePolicy), 0o644)
	os.WriteFile(man, []byte(gateManifest), 0o644)
	out = filepath.Join(dir, "gate.html")
	if _, errOut, code := runGateArgs(t, "--policy", pol, "--db", db, "--format", "html", "--output", out, man); code != 1 {
		t.Fatalf("gate --format html: exit %d: %s", code, errOut)
	}
	want("gate report", read(out), `<span class="sev deny">DENIED</span></td><td>Pod/bad</td>`, "<td>pss</td>", `<dd id="n-targets">1 (1 denied)</dd>`)
}
