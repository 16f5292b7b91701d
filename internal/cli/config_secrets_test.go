package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-sec/bulkhead/internal/regtest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Secrets planted in the image config, one per field (the value is what a
// report must never repeat).
const (
	plantGitHub    = "ghp_R8xK2mQ7vN4pL9wT3zY6bH1cJ5fD0gS8aE2u"                              // ARG / build-arg in history created_by
	plantAWS       = "AKIAQ7LMX3VZ2KRT9WNB"                                                  // RUN echo ... > /x in created_by
	plantGitLab    = "glpat-Xq3Lm9Rt7Vz2Kp5Wn8Bc"                                            // history comment
	plantSlack     = "xoxb-2048193726-Zr8Qm3Xv7Kt2Lp9Wn4Bc"                                  // label
	plantStripe    = "sk_live_4Rz8Qm3Xv7Kt2Lp9Wn4BcY6Hd"                                     // ENV
	plantNPM       = "npm_Zr8Qm3Xv7Kt2Lp9Wn4BcY6Hd1Jf5Gs0Ta3Ue"                              // manifest annotation
	plantSendGrid  = "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" // index annotation
	plantGitHubTag = "ghs_Tn5Wq8Ez2Rk7Yb4Mx1Vc6Ld9Hj3Gf0Sa2Pu7"                              // index annotation that names the tag
)

var plantedConfigSecrets = []string{plantGitHub, plantAWS, plantGitLab, plantSlack, plantStripe, plantNPM, plantSendGrid, plantGitHubTag}

// tarLayer is a layer of the given files (regtest.Layer).
func tarLayer(t testing.TB, files map[string]string) v1.Layer { return regtest.Layer(t, files) }

// plantedImage writes an OCI layout holding an image with a secret in its
// history (created_by and comment), a label, an ENV variable, a manifest
// annotation and index annotations, and one installed package in the layer
// whose history line holds a secret (so package locations carry it too).
func plantedImage(t *testing.T) string {
	t.Helper()
	base := tarLayer(t, map[string]string{"etc/os-release": "ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME=\"Alpine Linux v3.20\"\n"})
	app := tarLayer(t, map[string]string{"lib/apk/db/installed": "P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\nL:MIT\n\n", "x": "done\n"})
	img, err := mutate.AppendLayers(empty.Image, base, app)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.History = []v1.History{
		// An ordinary line with a digest: no finding, nothing redacted.
		{CreatedBy: "/bin/sh -c #(nop) ADD file:5b1e3e4d3c1f4e0a9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddcc in / "},
		{CreatedBy: "ARG GITHUB_TOKEN=" + plantGitHub, Comment: "buildkit.dockerfile.v0", EmptyLayer: true},
		{CreatedBy: "RUN |1 GITHUB_TOKEN=" + plantGitHub + " /bin/sh -c sudo sh -c 'echo " + plantAWS + " > /x' && apk add musl # buildkit",
			Comment: "pushed by ci with " + plantGitLab},
	}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "STRIPE_SECRET=" + plantStripe}
	cf.Config.Labels = map[string]string{"com.example.slack-hook": plantSlack, "org.opencontainers.image.version": "1.0"}
	cf.Config.User = "app"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.Annotations(img, map[string]string{"com.example.publish": "npm " + plantNPM}).(v1.Image)
	return writeLayout(t, img, layout.WithAnnotations(map[string]string{
		"com.example.mail":         plantSendGrid,
		"io.containerd.image.name": "example.com/app:v1-" + plantGitHubTag,
	}))
}

// writeLayout writes img to a new OCI layout and returns its directory.
func writeLayout(t *testing.T, img v1.Image, opts ...layout.Option) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, opts...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConfigSecretsNeverPrinted plants a secret in each string field of an
// image's configuration and annotations, runs `bulkhead image` for every
// --format (to stdout and to --output, with findings and inventory-only),
// with stderr a terminal so that the progress display is drawn, and checks
// that no output, warning or progress line holds any of the secrets, and
// that the secret scanner reports each field.
func TestConfigSecretsNeverPrinted(t *testing.T) {
	dir := plantedImage(t)
	ref := "oci:" + dir

	var outputs []string // every byte the command wrote, one entry per run and stream
	add := func(what string, b []byte) {
		outputs = append(outputs, what+"\n"+string(b))
	}
	var findingsJSON []byte
	for _, scanners := range []string{"secret,misconfig", "none"} {
		for _, format := range formatNames() {
			for _, toFile := range []bool{false, true} {
				what := "--scanners " + scanners + " --format " + format
				args := []string{"image", "--scanners", scanners, "--format", format, "--temp-dir", t.TempDir()}
				outFile := ""
				if toFile {
					outFile = filepath.Join(t.TempDir(), "report")
					args = append(args, "--output", outFile)
					what += " --output"
				}
				args = append(args, ref)
				var stdout bytes.Buffer
				stderr, drawn := terminalStderr(t)
				code := Main(args, &stdout, stderr.w)
				errb := drawn()
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", what, code, errb)
				}
				add(what+" (stdout)", stdout.Bytes())
				add(what+" (stderr: warnings and progress)", errb)
				if toFile {
					b, err := os.ReadFile(outFile)
					if err != nil {
						t.Fatal(err)
					}
					if len(b) == 0 {
						t.Fatalf("%s: empty report", what)
					}
					add(what+" (file)", b)
					if format == "json" && scanners != "none" {
						findingsJSON = b
					}
				} else if stdout.Len() == 0 {
					t.Fatalf("%s: empty report", what)
				}
				if stderr.tty && !bytes.Contains(errb, []byte("opening "+ref)) {
					t.Errorf("%s: the progress display was not drawn on the terminal: %q", what, errb)
				}
			}
		}
	}

	// Zero hits: neither a secret nor its tail, in any stream of any run.
	for _, out := range outputs {
		what, body, _ := strings.Cut(out, "\n")
		for _, s := range plantedConfigSecrets {
			if strings.Contains(body, s) || strings.Contains(body, s[len(s)-10:]) {
				t.Errorf("%s prints the secret %s...", what, s[:6])
			}
		}
	}

	// The secret scanner reports each field; the report keeps the config's
	// strings, redacted in the secret package's style.
	var doc struct {
		Target struct {
			Layers []struct {
				CreatedBy string `json:"createdBy"`
			} `json:"layers"`
			Labels   map[string]string `json:"labels"`
			RepoTags []string          `json:"repoTags"`
		} `json:"target"`
		Packages []struct {
			Name      string `json:"name"`
			Locations []struct {
				Layer *struct {
					CreatedBy string `json:"createdBy"`
				} `json:"layer"`
			} `json:"locations"`
		} `json:"packages"`
		Findings []struct {
			ID       string `json:"id"`
			Kind     string `json:"kind"`
			Location struct {
				Path  string `json:"path"`
				Layer *struct {
					Index     int    `json:"index"`
					CreatedBy string `json:"createdBy"`
				} `json:"layer"`
			} `json:"location"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(findingsJSON, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range doc.Findings {
		if f.Kind == "secret" {
			got[f.Location.Path+" "+f.ID] = true
			if f.Location.Path == "config:history[2].created_by" && (f.Location.Layer == nil || f.Location.Layer.Index != 1) {
				t.Errorf("history finding without its layer: %+v", f.Location)
			}
		}
	}
	for _, want := range []string{
		"config:history[1].created_by github-token",
		"config:history[2].created_by github-token",
		"config:history[2].created_by aws-access-key-id",
		"config:history[2].comment gitlab-token",
		"config:labels.com.example.slack-hook slack-token",
		"config:env.STRIPE_SECRET stripe-key",
		"manifest:annotations.com.example.publish npm-token",
		"index:annotations.com.example.mail sendgrid-api-key",
		"index:annotations.io.containerd.image.name github-token",
	} {
		if !got[want] {
			t.Errorf("no secret finding %q; got %v", want, got)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "config:history[0]") {
			t.Errorf("false positive on an ordinary history line: %s", k)
		}
	}
	if len(doc.Target.Layers) != 2 || doc.Target.Layers[0].CreatedBy == "" ||
		!strings.Contains(doc.Target.Layers[1].CreatedBy, "ghp_R8*****") || !strings.Contains(doc.Target.Layers[1].CreatedBy, "AKIAQ7*****") {
		t.Errorf("target.layers not redacted in the secret package's style: %+v", doc.Target.Layers)
	}
	if !strings.Contains(doc.Target.Layers[0].CreatedBy, "file:5b1e3e4d3c1f4e0a9d8c7b6a5f4e3d2c1b0a9988") {
		t.Errorf("an ordinary history line was altered: %q", doc.Target.Layers[0].CreatedBy)
	}
	if doc.Target.Labels["com.example.slack-hook"] != "xoxb-20*****" || doc.Target.Labels["org.opencontainers.image.version"] != "1.0" {
		t.Errorf("target.labels: %v", doc.Target.Labels)
	}
	if len(doc.Target.RepoTags) != 1 || doc.Target.RepoTags[0] != "example.com/app:v1-ghs_Tn*****" {
		t.Errorf("target.repoTags: %v", doc.Target.RepoTags)
	}
	var pkgLayer string
	for _, p := range doc.Packages {
		if p.Name == "musl" && len(p.Locations) > 0 && p.Locations[0].Layer != nil {
			pkgLayer = p.Locations[0].Layer.CreatedBy
		}
	}
	if !strings.Contains(pkgLayer, "ghp_R8*****") {
		t.Errorf("package location layer: %q", pkgLayer)
	}
}

// ttyStderr is a command's stderr: a terminal when the system has one.
type ttyStderr struct {
	w   io.Writer
	tty bool
}

// terminalStderr gives a stderr for one run, and a function that returns
// everything written to it once the run is over.
func terminalStderr(t *testing.T) (ttyStderr, func() []byte) {
	master, slave := openPTY(t)
	if master == nil {
		var buf bytes.Buffer
		return ttyStderr{w: &buf}, func() []byte { return buf.Bytes() }
	}
	var buf bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(&buf, master) // ends with EIO once the slave is closed
	}()
	return ttyStderr{w: slave, tty: true}, func() []byte {
		slave.Close()
		wg.Wait()
		master.Close()
		return buf.Bytes()
	}
}

// TestNamedSecretsNeverPrinted: a literal value given to a variable named
// for a credential is a secret whatever its entropy or pattern: a build
// argument in a history line ("|1 DB_PASSWORD=..."), an ENV instruction's
// history line, the ENV itself and a label. No format prints the value,
// and the secret scanner reports each field.
func TestNamedSecretsNeverPrinted(t *testing.T) {
	const build, env, label = "opensesame-42x", "letmein-pls-99", "hunter2-hunter2"
	img, err := mutate.AppendLayers(empty.Image, tarLayer(t, map[string]string{"etc/os-release": "ID=alpine\nVERSION_ID=3.20.3\n"}))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.History = []v1.History{
		{CreatedBy: "RUN |1 DB_PASSWORD=" + build + " /bin/sh -c ./configure --with-db # buildkit"},
		{CreatedBy: "/bin/sh -c #(nop)  ENV API_TOKEN=" + env, EmptyLayer: true},
		{CreatedBy: "/bin/sh -c #(nop)  ENV PASSWORD_FILE=/run/secrets/db NODE_AUTH_TOKEN=${NPM_TOKEN}", EmptyLayer: true},
	}
	cf.Config.Env = []string{"API_TOKEN=" + env, "PASSWORD_FILE=/run/secrets/db"}
	cf.Config.Labels = map[string]string{"db.password": label}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	dir := writeLayout(t, img)
	var findings []byte
	for _, format := range formatNames() {
		var stdout, stderr bytes.Buffer
		if code := Main([]string{"image", "--scanners", "secret,misconfig", "--format", format, "--temp-dir", t.TempDir(), "oci:" + dir}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", format, code, stderr.String())
		}
		for _, s := range []string{build, env, label} {
			if strings.Contains(stdout.String(), s[2:]) || strings.Contains(stderr.String(), s[2:]) {
				t.Errorf("--format %s prints %s...", format, s[:4])
			}
		}
		if format == "json" {
			findings = stdout.Bytes()
		}
	}
	var doc struct {
		Findings []struct {
			ID       string `json:"id"`
			Location struct {
				Path string `json:"path"`
			} `json:"location"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(findings, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range doc.Findings {
		if f.ID == "credential-assignment" {
			got[f.Location.Path] = true
		}
	}
	for _, want := range []string{"config:history[0].created_by", "config:history[1].created_by", "config:env.API_TOKEN", "config:labels.db.password"} {
		if !got[want] {
			t.Errorf("no credential-assignment finding at %s (got %v)", want, got)
		}
	}
	if len(got) != 4 {
		t.Errorf("findings at %v: the references (PASSWORD_FILE, ${NPM_TOKEN}) are not secrets", got)
	}
}
