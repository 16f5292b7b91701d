package audit

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/secret"
	"github.com/bulkhead-sec/bulkhead/secret/imagescan"
)

type tarFile struct {
	name, body string
	mode       int64
	dir        bool
}

func layer(t testing.TB, files []tarFile) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: f.name, Mode: mode, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		if f.dir {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f.body)
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func writeImage(t testing.TB, img v1.Image) string {
	p := filepath.Join(t.TempDir(), "img.tar")
	ref, _ := name.NewTag("test/audit:1")
	if err := tarball.WriteToFile(p, ref, img); err != nil {
		t.Fatal(err)
	}
	return p
}

func scanImage(t testing.TB, path string, scanners ...scan.Scanner) *scan.Result {
	ctx := context.Background()
	img, err := image.Open(ctx, "docker-archive:"+path, image.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	res, err := scan.Image(ctx, img, scan.Options{TempDir: t.TempDir(), Scanners: scanners})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ids(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID+" "+f.Location.Path)
	}
	sort.Strings(out)
	return out
}

// badImage is a Debian-like image that fails every check: real Debian 12
// os-release, accounts with an empty password and a duplicate UID, setuid
// files, an sshd, apt lists; a config running as root with a secret in ENV,
// a /proc volume, and a history with ADD, sudo, a lone apt-get update and
// an upgrade.
func badImage(t testing.TB) string {
	osRelease, err := os.ReadFile("../distro/testdata/debian-12_os-release")
	if err != nil {
		t.Fatal(err)
	}
	l0 := layer(t, []tarFile{
		{name: "etc/os-release", body: string(osRelease)},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"},
		{name: "etc/shadow", body: "root:*:19000:0:99999:7:::\napp::19000:0:99999:7:::\n"},
		{name: "etc/group", body: "root:x:0:\napp:x:1000:\n"},
		{name: "usr/bin/passwd", body: "\x7fELF", mode: 0o4755},
		{name: "usr/bin/expiry", body: "\x7fELF", mode: 0o2755},
		{name: "usr/bin/ls", body: "\x7fELF", mode: 0o755},
		{name: "usr/sbin/sshd", body: "\x7fELF", mode: 0o755},
		{name: "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4", body: strings.Repeat("p", 1000)},
		{name: "var/lib/apt/lists/lock", body: ""},
	})
	// The second layer fixes nothing the audit looks at but adds a file.
	l1 := layer(t, []tarFile{{name: "opt/app/app.py", body: "print('hi')\n"}})
	img, err := mutate.AppendLayers(empty.Image, l0, l1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Env = []string{"PATH=/usr/bin", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "DB_PASSWORD=hunter2hunter2", "PASSWORD_FILE=/run/secrets/db", "GPG_KEYS=B42F6819007F00F8"}
	cf.Config.Labels = map[string]string{"org.opencontainers.image.source": "https://example.com/app", "ci.token": "ghp_0123456789abcdefghijABCDEFGHIJ012345"}
	cf.Config.Volumes = map[string]struct{}{"/proc": {}, "/data": {}}
	cf.History = []v1.History{
		{CreatedBy: "/bin/sh -c #(nop) ADD file:4b03b5f551e3fbdf47ec609712007327828f7530cc3455c43bbcdcaf449a75a9 in / "},
		{CreatedBy: "/bin/sh -c #(nop)  CMD [\"bash\"]", EmptyLayer: true},
		{CreatedBy: "ADD app.py /opt/app/ # buildkit"},
		{CreatedBy: "RUN /bin/sh -c sudo apt-get update # buildkit", EmptyLayer: true},
		{CreatedBy: "|1 X=y /bin/sh -c apt-get update && apt-get -y dist-upgrade", EmptyLayer: true},
		{CreatedBy: "/bin/sh -c apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*", EmptyLayer: true},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return writeImage(t, img)
}

func TestAuditBadImage(t *testing.T) {
	res := scanImage(t, badImage(t), New())
	got := ids(res.Findings)
	want := []string{
		"BH-IMG-001 image config",
		"BH-IMG-002 image config",
		"BH-IMG-003 /usr/bin/expiry",
		"BH-IMG-003 /usr/bin/passwd",
		"BH-IMG-004 image config", // ENV AWS key
		"BH-IMG-004 image config", // label token
		"BH-IMG-005 image config", // DB_PASSWORD
		"BH-IMG-006 image config",
		"BH-IMG-007 image config",
		"BH-IMG-008 image config",
		"BH-IMG-009 image config",
		"BH-IMG-010 /var/lib/apt/lists",
		"BH-IMG-011 /usr/sbin/sshd",
		"BH-IMG-012 /etc/shadow",
		"BH-IMG-013 /etc/passwd",
		"BH-IMG-015 image config",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("findings:\n got %v\nwant %v", got, want)
	}
	for _, f := range res.Findings {
		b := f.Description
		if strings.Contains(b, "AKIAIOSFODNN7EXAMPLE") || strings.Contains(b, "hunter2hunter2") || strings.Contains(b, "ghp_0123456789abcdefghij") {
			t.Errorf("unredacted secret in %s: %s", f.ID, b)
		}
		if f.ID == "BH-IMG-003" && (f.Location.Layer == nil || f.Location.Layer.Index != 0) {
			t.Errorf("setuid finding without its layer: %+v", f.Location)
		}
		if f.ID == "BH-IMG-013" && !strings.Contains(f.Description, "UID 0 is shared by root, toor") {
			t.Errorf("dupe: %s", f.Description)
		}
	}
}

// TestAuditGoodImage: a distroless-style image (real distroless status.d,
// no shell) running as a numeric user with a healthcheck has no findings.
func TestAuditGoodImage(t *testing.T) {
	status, err := os.ReadFile("../catalog/dpkg/testdata/syft_distroless_status.d/single")
	if err != nil {
		t.Fatal(err)
	}
	l0 := layer(t, []tarFile{
		{name: "var/lib/dpkg/status.d/base", body: string(status)},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		{name: "etc/group", body: "root:x:0:\nnonroot:x:65532:\n"},
		{name: "app", body: "\x7fELF", mode: 0o755},
	})
	img, err := mutate.AppendLayers(empty.Image, l0)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.User = "65532:65532"
	cf.Config.Healthcheck = &v1.HealthConfig{Test: []string{"CMD", "/app", "-health"}}
	cf.History = []v1.History{{CreatedBy: "COPY app / # buildkit"}}
	img, _ = mutate.ConfigFile(img, cf)
	res := scanImage(t, writeImage(t, img), New())
	if len(res.Findings) != 0 {
		t.Errorf("good image: %v", ids(res.Findings))
	}
	if res.Inventory.OS == nil || !res.Inventory.OS.Distroless {
		t.Fatalf("expected a distroless OS, got %+v", res.Inventory.OS)
	}
	// The same image with a shell and apk added is no longer minimal.
	l1 := layer(t, []tarFile{{name: "bin/busybox", body: "\x7fELF", mode: 0o755}, {name: "bin/sh", body: "\x7fELF", mode: 0o755}})
	img2, _ := mutate.AppendLayers(img, l1)
	res = scanImage(t, writeImage(t, img2), New())
	if got := fmt.Sprint(ids(res.Findings)); got != "[BH-IMG-014 /bin/busybox BH-IMG-014 /bin/sh]" {
		t.Errorf("distroless with a shell: %s", got)
	}
}

// TestAuditScratchCorpusImage runs on a real `docker save` image built FROM
// scratch (osv-scalibr's basic.tar.gz): it runs as root, has no healthcheck.
func TestAuditScratchCorpusImage(t *testing.T) {
	res := scanImage(t, "testdata/basic.tar.gz", New())
	if got := fmt.Sprint(ids(res.Findings)); got != "[BH-IMG-001 image config BH-IMG-002 image config]" {
		t.Errorf("basic: %s", got)
	}
}

// TestSecretsAcrossLayers: the secret scanner finds a key deleted by a
// later layer, with the layer that still holds it.
func TestSecretsAcrossLayers(t *testing.T) {
	l0 := layer(t, []tarFile{{name: "root/.aws/credentials", body: "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"}, {name: "bin/tool", body: "\x00\x01AKIAIOSFODNN7EXAMPLE"}})
	l1 := layer(t, []tarFile{{name: "root/.aws/.wh.credentials", body: ""}, {name: "etc/app.conf", body: "db_url = postgres://app:Zr8qT2mVx9pL@db:5432/app\n"}})
	img, _ := mutate.AppendLayers(empty.Image, l0, l1)
	sc := imagescan.New(secret.Default())
	res := scanImage(t, writeImage(t, img), sc)
	var got []string
	for _, f := range res.Findings {
		layer := -1
		if f.Location.Layer != nil {
			layer = f.Location.Layer.Index
		}
		got = append(got, fmt.Sprintf("%s %s:%d layer %d deleted=%v", f.ID, f.Location.Path, f.Location.StartLine, layer, strings.Contains(f.Description, "deleted")))
	}
	want := []string{
		"aws-access-key-id /root/.aws/credentials:2 layer 0 deleted=true",
		"aws-secret-access-key /root/.aws/credentials:3 layer 0 deleted=true",
		"url-password /etc/app.conf:1 layer 1 deleted=false",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("\n got %v\nwant %v", got, want)
	}
	if files, _, _ := sc.Stats(); files != 2 {
		t.Errorf("files scanned = %d, want 2 (the binary is skipped)", files)
	}
}

func TestHistoryScript(t *testing.T) {
	for in, want := range map[string]string{
		"/bin/sh -c apt-get update":                 "apt-get update",
		"RUN /bin/sh -c make # buildkit":            "make",
		"|2 A=1 B=2 /bin/sh -c echo $A":             "echo $A",
		"/bin/sh -c #(nop)  ENV X=1":                "",
		"COPY app / # buildkit":                     "",
		"/bin/sh -c set -eux; apk add --no-cache x": "set -eux; apk add --no-cache x",
	} {
		if got, _ := historyScript(in); got != want {
			t.Errorf("historyScript(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkAudit(b *testing.B) {
	p := badImage(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		scanImage(b, p, New())
	}
}
