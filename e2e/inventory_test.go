package e2e

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// demoImage loads the demo image shipped in the repo into podman (loading
// is idempotent and quick) and returns the name it carries.
func demoImage(t *testing.T) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out := run(t, "podman", "load", "-i", filepath.Join(repoRoot, "testdata", "images", "alpine-demo.oci.tar"))
	for _, l := range lines(out) {
		if name, ok := strings.CutPrefix(l, "Loaded image: "); ok {
			return strings.TrimSpace(name)
		}
	}
	t.Fatalf("podman load printed no image name: %q", out)
	return ""
}

func nameVersions(inv *inventory.Inventory, typ, sep string) []string {
	var out []string
	for _, p := range inv.Packages {
		if p.Type == typ {
			out = append(out, p.Name+sep+p.Version)
		}
	}
	sort.Strings(out)
	return out
}

func compareSets(t *testing.T, what string, ours, native []string) {
	t.Helper()
	onlyOurs, onlyNative := diffSets(ours, native)
	if len(onlyOurs) > 0 || len(onlyNative) > 0 || len(ours) != len(native) {
		t.Errorf("%s: bulkhead and the native tool disagree\nonly bulkhead: %v\nonly native: %v\n(bulkhead %d, native %d)", what, onlyOurs, onlyNative, len(ours), len(native))
	}
	if len(native) == 0 {
		t.Errorf("%s: the native tool listed no package: the comparison proves nothing", what)
	}
}

// apkInfo lists "name-version" with the image's own apk.
func apkInfo(t *testing.T, ref string) []string {
	out := run(t, "podman", "run", "--rm", "--network=none", "--entrypoint", "apk", ref, "info", "-v")
	l := lines(out)
	sort.Strings(l)
	return l
}

func TestAlpineMatchesApk(t *testing.T) {
	requireEnv(t)
	ref := demoImage(t)
	t.Setenv("CONTAINER_HOST", podmanSocket(t))
	viaSocket := scanJSON(t, "image", "podman:"+ref)
	arch := scanJSON(t, "image", "--input", filepath.Join(repoRoot, "testdata", "images", "alpine-demo.oci.tar"))
	native := apkInfo(t, ref)
	compareSets(t, "demo image (archive)", nameVersions(arch, inventory.TypeAPK, "-"), native)
	compareSets(t, "demo image (podman socket)", nameVersions(viaSocket, inventory.TypeAPK, "-"), native)
	for _, p := range arch.Packages {
		if p.Name == "libc-utils" || p.Name == "scanelf" {
			t.Errorf("%s was removed in the second layer but is reported", p.Name)
		}
	}
	if arch.OS == nil || arch.OS.ID != "alpine" || arch.OS.VersionID != "3.18.9" {
		t.Errorf("OS = %+v", arch.OS)
	}
}

// TestAlpineReleases imports every Alpine minirootfs of the shared corpus,
// removes packages in a second layer, and compares with apk.
func TestAlpineReleases(t *testing.T) {
	requireEnv(t)
	corpus := sharedCorpus()
	if corpus == "" {
		t.Skip("../shared/corpus not present")
	}
	files, _ := filepath.Glob(filepath.Join(corpus, "rootfs", "alpine", "alpine-minirootfs-*.tar.gz"))
	if len(files) == 0 {
		t.Fatal("no minirootfs in the corpus")
	}
	for _, f := range files {
		ver := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "alpine-minirootfs-"), "-x86_64.tar.gz")
		t.Run(ver, func(t *testing.T) {
			base := "localhost/e2e-alpine-base:" + ver
			cf := "FROM " + base + "\nRUN apk del --no-network libc-utils || true\n"
			ref := "localhost/e2e-alpine:" + ver + "-" + recipeTag(cf)
			if !imageExists(ref) {
				run(t, "podman", "import", "-q", f, base)
				build(t, ref, cf, nil)
			}
			out := filepath.Join(t.TempDir(), "img.tar")
			run(t, "podman", "save", "-q", "--format", "docker-archive", "-o", out, ref)
			inv := scanJSON(t, "image", "docker-archive:"+out)
			compareSets(t, ver, nameVersions(inv, inventory.TypeAPK, "-"), apkInfo(t, ref))
		})
	}
}

const debianBase = "localhost/e2e-debian-base:bookworm"

// debianPurged are removed in the second layer of the Debian test image.
var debianPurged = []string{"e2fsprogs", "libss2", "logsave", "libext2fs2"}

// debianImage builds a Debian bookworm image from debootstrap (cached) and
// removes packages in a later layer.
func debianImage(t *testing.T) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	cf := fmt.Sprintf("FROM %s\nRUN dpkg --purge --force-depends --force-remove-essential %s\nRUN useradd -u 10001 app\n", debianBase, strings.Join(debianPurged, " "))
	// Images are reused across runs on one machine; the tag changes with
	// the recipe so a changed recipe is rebuilt.
	debianRef := "localhost/e2e-debian:" + recipeTag(cf)
	if imageExists(debianRef) {
		return debianRef
	}
	if !imageExists(debianBase) {
		cache := "/var/cache/bulkhead-e2e/debian-bookworm-minbase.tar"
		if _, err := os.Stat(cache); err != nil {
			dir := t.TempDir()
			root := filepath.Join(dir, "rootfs")
			t.Logf("debootstrap bookworm (a few minutes, once per machine)")
			run(t, "debootstrap", "--variant=minbase", "bookworm", root, "http://deb.debian.org/debian")
			os.MkdirAll(filepath.Dir(cache), 0o755)
			run(t, "tar", "-C", root, "-cf", cache+".tmp", ".")
			os.Rename(cache+".tmp", cache)
		}
		run(t, "podman", "import", "-q", cache, debianBase)
	}
	build(t, debianRef, cf, nil)
	return debianRef
}

func dpkgInstalled(t *testing.T, ref string) []string {
	out := run(t, "podman", "run", "--rm", "--network=none", ref, "dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version}\n")
	var l []string
	for _, s := range lines(out) {
		if f := strings.Fields(s); len(f) == 3 && f[0] == "installed" {
			l = append(l, f[1]+" "+f[2])
		}
	}
	sort.Strings(l)
	return l
}

func TestDebianMatchesDpkg(t *testing.T) {
	requireEnv(t)
	ref := debianImage(t)
	out := filepath.Join(t.TempDir(), "img.tar")
	run(t, "podman", "save", "-q", "--format", "oci-archive", "-o", out, ref)
	inv := scanJSON(t, "image", "oci-archive:"+out)
	compareSets(t, "debian", nameVersions(inv, inventory.TypeDeb, " "), dpkgInstalled(t, ref))
	for _, p := range inv.Packages {
		for _, gone := range debianPurged {
			if p.Name == gone {
				t.Errorf("%s was purged in a later layer but is reported", gone)
			}
		}
		if p.Locations[0].Layer == nil || p.Locations[0].Layer.Index != 0 {
			t.Errorf("%s: attributed to %+v, want the debootstrap layer", p.Name, p.Locations[0].Layer)
		}
	}
	if inv.OS == nil || inv.OS.ID != "debian" || inv.OS.VersionID != "12" {
		t.Errorf("OS = %+v", inv.OS)
	}
}

// rpmImage builds a root filesystem holding a real rpm database (CBL-Mariner
// 2.0, SQLite) and busybox, then removes packages from the database in a
// later layer with the real rpm (--justdb).
func rpmImage(t *testing.T) (string, []string) {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	removed := []string{"bash", "zlib", "openssl-libs"}
	ref := "localhost/e2e-rpm:" + recipeTag(strings.Join(removed, " ")+"mariner-2.0")
	if imageExists(ref) {
		return ref, removed
	}
	dir := t.TempDir()
	db := gunzip(t, filepath.Join(repoRoot, "catalog", "rpm", "testdata", "go-rpmdb_cbl-mariner-2.0_rpmdb.sqlite.gz"))
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "var", "lib", "rpm"), 0o755)
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	copyFile(t, "/bin/busybox", filepath.Join(root, "bin", "busybox"), 0o755)
	os.Symlink("busybox", filepath.Join(root, "bin", "sh"))
	os.Symlink("busybox", filepath.Join(root, "bin", "true"))
	os.WriteFile(filepath.Join(root, "var", "lib", "rpm", "rpmdb.sqlite"), db, 0o644)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("NAME=\"Common Base Linux Mariner\"\nVERSION=\"2.0.20220226\"\nID=mariner\nVERSION_ID=\"2.0\"\n"), 0o644)
	tarPath := filepath.Join(dir, "root.tar")
	run(t, "tar", "-C", root, "-cf", tarPath, ".")
	base := "localhost/e2e-rpm-base:1"
	run(t, "podman", "import", "-q", tarPath, base)

	// The same database with packages erased by rpm itself.
	work := filepath.Join(dir, "work")
	os.MkdirAll(work, 0o755)
	os.WriteFile(filepath.Join(work, "rpmdb.sqlite"), db, 0o644)
	run(t, "rpm", append([]string{"--dbpath", work, "--define", "_db_backend sqlite", "-e", "--justdb", "--nodeps", "--noscripts", "--notriggers"}, removed...)...)
	after, _ := os.ReadFile(filepath.Join(work, "rpmdb.sqlite"))
	build(t, ref, "FROM "+base+"\nCOPY rpmdb.sqlite /var/lib/rpm/rpmdb.sqlite\n", map[string][]byte{"rpmdb.sqlite": after})
	return ref, removed
}

func recipeTag(recipe string) string {
	sum := sha256.Sum256([]byte(recipe))
	return hex.EncodeToString(sum[:6])
}

func gunzip(t *testing.T, p string) []byte {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

func TestRPMMatchesRpm(t *testing.T) {
	requireEnv(t)
	ref, removed := rpmImage(t)
	root := flatten(t, ref, "var/lib/rpm")
	out := run(t, "rpm", "--dbpath", filepath.Join(root, "var", "lib", "rpm"), "--define", "_db_backend sqlite", "-qa",
		"--qf", "%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n")
	var native []string
	for _, l := range lines(out) {
		if !strings.HasPrefix(l, "gpg-pubkey ") {
			native = append(native, l)
		}
	}
	sort.Strings(native)
	img := filepath.Join(t.TempDir(), "img.tar")
	run(t, "podman", "save", "-q", "--format", "docker-archive", "-o", img, ref)
	inv := scanJSON(t, "image", "--input", img)
	compareSets(t, "rpm", nameVersions(inv, inventory.TypeRPM, " "), native)
	for _, p := range inv.Packages {
		for _, gone := range removed {
			if p.Name == gone {
				t.Errorf("%s was erased in a later layer but is reported", gone)
			}
		}
	}
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Fatal(err)
	}
}
