package distro

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// The expectations were read off the fixture files, not taken from the
// parser.
func TestParseOSReleaseFixtures(t *testing.T) {
	alpine := func(v, pretty string) inventory.OS {
		return inventory.OS{ID: "alpine", VersionID: v, Name: "Alpine Linux", PrettyName: pretty}
	}
	tests := map[string]inventory.OS{
		"alpine-minirootfs-20240923_os-release": alpine("3.21.0_alpha20240923", "Alpine Linux edge"),
		"alpine-minirootfs-3.12.12_os-release":  alpine("3.12.12", "Alpine Linux v3.12"),
		"alpine-minirootfs-3.14.10_os-release":  alpine("3.14.10", "Alpine Linux v3.14"),
		"alpine-minirootfs-3.16.9_os-release":   alpine("3.16.9", "Alpine Linux v3.16"),
		"alpine-minirootfs-3.18.9_os-release":   alpine("3.18.9", "Alpine Linux v3.18"),
		"alpine-minirootfs-3.20.3_os-release":   alpine("3.20.3", "Alpine Linux v3.20"),
		"debian-12_os-release": {ID: "debian", VersionID: "12", Codename: "bookworm", Name: "Debian GNU/Linux",
			PrettyName: "Debian GNU/Linux 12 (bookworm)"},
	}
	files, _ := filepath.Glob("testdata/*_os-release")
	if len(files) != len(tests) {
		t.Errorf("%d fixtures, %d expectations", len(files), len(tests))
	}
	for file, want := range tests {
		t.Run(file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseOSRelease(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

// shellValues sources an os-release file with sh, the reader the format is
// written for, and returns the variables it set.
func shellValues(t *testing.T, path string) map[string]string {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	env := func(script string, args ...string) map[string]string {
		cmd := exec.Command(sh, append([]string{"-c", script}, args...)...)
		cmd.Env = []string{}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		m := map[string]string{}
		for _, kv := range strings.Split(string(out), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
		return m
	}
	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Skip("no env")
	}
	base := env(`set -a; exec "$0" -0`, envBin)
	all := env(`set -a; . "$1"; exec "$0" -0`, envBin, path)
	for k, v := range base {
		if all[k] == v {
			delete(all, k)
		}
	}
	return all
}

func osReleaseSamples(t *testing.T) []string {
	files, _ := filepath.Glob("testdata/*_os-release")
	// This machine's own files, when it has them.
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	if dir := testcorpus.Dir(); dir != "" {
		more, _ := filepath.Glob(filepath.Join(dir, "pkgdb", "*", "*os-release*"))
		files = append(files, more...)
	}
	// Quoting and escaping as os-release(5) allows it.
	tricky := filepath.Join(t.TempDir(), "tricky")
	err := os.WriteFile(tricky, []byte(`# comment
ID=fedora
ID_LIKE="rhel centos"
NAME='Single Quoted'
`+"PRETTY_NAME=\"A \\\"quoted\\\" \\$name with \\\\ and \\`tick\\`\"\n"+`VERSION_ID=39
VARIANT="Container Image"
CPE_NAME="cpe:/o:fedoraproject:fedora:39"
EMPTY=
  SPACED="indented"
MIXED="ab"'cd'ef
BACKSLASH=a\ b
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return append(files, tricky)
}

// TestParseKeyValuesMatchesShell compares the parser with sh itself on
// every os-release sample: the fixtures, this machine's files (Debian 12
// here), and a file of hard quoting cases.
func TestParseKeyValuesMatchesShell(t *testing.T) {
	for _, f := range osReleaseSamples(t) {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want := shellValues(t, f)
			got := ParseKeyValues(b)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parser and sh disagree:\n got %q\nwant %q", got, want)
			}
			os, err := ParseOSRelease(b)
			if err != nil {
				t.Fatal(err)
			}
			if os.ID != strings.ToLower(want["ID"]) || os.VersionID != want["VERSION_ID"] || os.PrettyName != want["PRETTY_NAME"] {
				t.Errorf("ParseOSRelease = %+v, sh read %q", os, want)
			}
		})
	}
}

// TestHostDebianVersion checks etc/debian_version against os-release on a
// Debian machine: both name the same release.
func TestHostDebianVersion(t *testing.T) {
	osr, err1 := os.ReadFile("/etc/os-release")
	dv, err2 := os.ReadFile("/etc/debian_version")
	if err1 != nil || err2 != nil {
		t.Skip("not a Debian machine")
	}
	want, err := ParseOSRelease(osr)
	if err != nil {
		t.Fatal(err)
	}
	if want.ID != "debian" {
		t.Skipf("os-release says %s", want.ID)
	}
	got, err := ParseDebianVersion(dv)
	if err != nil {
		t.Fatal(err)
	}
	if got.VersionID != want.VersionID || (got.VersionID == "" && got.Codename != want.Codename) {
		t.Errorf("debian_version gives %+v, os-release %+v", got, want)
	}
}

func TestParseOSReleaseErrors(t *testing.T) {
	for _, in := range []string{"", "NAME=Foo\n", "ID=\n", "# ID=debian\n", "ID", "\x00\xff"} {
		if os, err := ParseOSRelease([]byte(in)); !errors.Is(err, ErrNoID) || os != nil {
			t.Errorf("ParseOSRelease(%q) = %+v, %v; want ErrNoID", in, os, err)
		}
	}
	os, err := ParseOSRelease([]byte("ID=\"Ubuntu\"\r\nID_LIKE=Debian\r\nVERSION_ID=\"22.04\"\r\nUBUNTU_CODENAME=jammy\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := inventory.OS{ID: "ubuntu", VersionID: "22.04", Codename: "jammy", IDLike: []string{"debian"}}
	if !reflect.DeepEqual(*os, want) {
		t.Errorf("CRLF file: got %+v, want %+v", *os, want)
	}
}

func TestReleaseFiles(t *testing.T) {
	tests := []struct {
		name  string
		parse func([]byte) (*inventory.OS, error)
		in    string
		want  *inventory.OS
	}{
		{"alpine", ParseAlpineRelease, "3.20.3\n", &inventory.OS{ID: "alpine", VersionID: "3.20.3", Name: "Alpine Linux"}},
		{"alpine garbage", ParseAlpineRelease, "not a version\n", nil},
		{"debian stable", ParseDebianVersion, "12.11\n", &inventory.OS{ID: "debian", VersionID: "12", Name: "Debian GNU/Linux"}},
		{"debian old", ParseDebianVersion, "6.0.10\n", &inventory.OS{ID: "debian", VersionID: "6", Name: "Debian GNU/Linux"}},
		{"debian testing", ParseDebianVersion, "trixie/sid\n", &inventory.OS{ID: "debian", Codename: "trixie", Name: "Debian GNU/Linux"}},
		{"debian empty", ParseDebianVersion, "\n", nil},
		{"ubuntu lsb", ParseLSBRelease, "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=18.04\nDISTRIB_CODENAME=bionic\nDISTRIB_DESCRIPTION=\"Ubuntu 18.04.6 LTS\"\n",
			&inventory.OS{ID: "ubuntu", VersionID: "18.04", Codename: "bionic", Name: "Ubuntu", PrettyName: "Ubuntu 18.04.6 LTS"}},
		{"lsb without id", ParseLSBRelease, "LSB_VERSION=1.4\n", nil},
		{"centos 7", ParseRedHatRelease, "CentOS Linux release 7.9.2009 (Core)\n",
			&inventory.OS{ID: "centos", VersionID: "7.9.2009", Codename: "Core", Name: "CentOS Linux", PrettyName: "CentOS Linux release 7.9.2009 (Core)"}},
		{"centos 6", ParseRedHatRelease, "CentOS release 6.10 (Final)\n",
			&inventory.OS{ID: "centos", VersionID: "6.10", Codename: "Final", Name: "CentOS", PrettyName: "CentOS release 6.10 (Final)"}},
		{"rocky", ParseRedHatRelease, "Rocky Linux release 9.2 (Blue Onyx)\n",
			&inventory.OS{ID: "rocky", VersionID: "9.2", Codename: "Blue Onyx", Name: "Rocky Linux", PrettyName: "Rocky Linux release 9.2 (Blue Onyx)"}},
		{"alma", ParseRedHatRelease, "AlmaLinux release 9.4 (Seafoam Ocelot)\n",
			&inventory.OS{ID: "almalinux", VersionID: "9.4", Codename: "Seafoam Ocelot", Name: "AlmaLinux", PrettyName: "AlmaLinux release 9.4 (Seafoam Ocelot)"}},
		{"fedora", ParseRedHatRelease, "Fedora release 35 (Thirty Five)\n",
			&inventory.OS{ID: "fedora", VersionID: "35", Codename: "Thirty Five", Name: "Fedora", PrettyName: "Fedora release 35 (Thirty Five)"}},
		{"rhel", ParseRedHatRelease, "Red Hat Enterprise Linux release 8.6 (Ootpa)\n",
			&inventory.OS{ID: "rhel", VersionID: "8.6", Codename: "Ootpa", Name: "Red Hat Enterprise Linux", PrettyName: "Red Hat Enterprise Linux release 8.6 (Ootpa)"}},
		{"amazon 2", ParseRedHatRelease, "Amazon Linux release 2 (Karoo)\n",
			&inventory.OS{ID: "amzn", VersionID: "2", Codename: "Karoo", Name: "Amazon Linux", PrettyName: "Amazon Linux release 2 (Karoo)"}},
		{"amazon ami", ParseRedHatRelease, "Amazon Linux AMI release 2018.03\n",
			&inventory.OS{ID: "amzn", VersionID: "2018.03", Name: "Amazon Linux AMI", PrettyName: "Amazon Linux AMI release 2018.03"}},
		{"oracle", ParseRedHatRelease, "Oracle Linux Server release 7.9\n",
			&inventory.OS{ID: "ol", VersionID: "7.9", Name: "Oracle Linux Server", PrettyName: "Oracle Linux Server release 7.9"}},
		{"unknown red hat", ParseRedHatRelease, "Mystery OS release 1\n", nil},
		{"no release word", ParseRedHatRelease, "Fedora 35\n", nil},
		{"sles", ParseSuSERelease, "SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n",
			&inventory.OS{ID: "sles", VersionID: "11.4", Name: "SUSE Linux Enterprise Server 11", PrettyName: "SUSE Linux Enterprise Server 11 (x86_64)"}},
		{"opensuse", ParseSuSERelease, "openSUSE 13.2 (x86_64)\nVERSION = 13.2\nCODENAME = Harlequin\n",
			&inventory.OS{ID: "opensuse", VersionID: "13.2", Name: "openSUSE 13.2", PrettyName: "openSUSE 13.2 (x86_64)"}},
		{"suse unknown", ParseSuSERelease, "Something else\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse([]byte(tt.in))
			if tt.want == nil {
				if err == nil {
					t.Errorf("got %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// file is one tar entry of a test layer.
type file struct {
	name string
	body string
	link string // symlink target, or hard link target with hard set
	hard bool
}

func layer(t testing.TB, index int, files ...file) walk.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		switch {
		case f.hard:
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, f.link, 0
		case f.link != "":
			h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, f.link, 0, 0o777
		case strings.HasSuffix(f.name, "/"):
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(f.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	return walk.Layer{Info: walk.LayerInfo{Index: index}, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

func detect(t testing.TB, layers ...walk.Layer) *inventory.OS {
	t.Helper()
	return detectWith(t, walk.Options{TempDir: t.TempDir()}, layers...)
}

func detectWith(t testing.TB, opts walk.Options, layers ...walk.Layer) *inventory.OS {
	t.Helper()
	d := NewDetector()
	if _, err := walk.Walk(context.Background(), layers, []walk.Visitor{d}, opts); err != nil {
		t.Fatal(err)
	}
	return d.OS()
}

// distrolessOSRelease is the os-release Google's distroless Debian 12
// images ship (PRETTY_NAME says Distroless, ID stays debian).
const distrolessOSRelease = `PRETTY_NAME="Distroless"
NAME="Debian GNU/Linux"
ID="debian"
VERSION_ID="12"
VERSION="Debian GNU/Linux 12 (bookworm)"
HOME_URL="https://github.com/GoogleContainerTools/distroless"
SUPPORT_URL="https://github.com/GoogleContainerTools/distroless/blob/master/README.md"
BUG_REPORT_URL="https://github.com/GoogleContainerTools/distroless/issues/new"
`

func TestDetectorWalk(t *testing.T) {
	debian12, err := os.ReadFile("testdata/debian-12_os-release")
	if err != nil {
		t.Fatal(err)
	}
	alpine, err := os.ReadFile("testdata/alpine-minirootfs-3.20.3_os-release")
	if err != nil {
		t.Fatal(err)
	}
	deb := string(debian12)
	trixie := strings.NewReplacer(`VERSION_ID="12"`, `VERSION_ID="13"`, "bookworm", "trixie", "12 (", "13 (").Replace(deb)
	sqlite := "Package: libsqlite3-0\nVersion: 3.34.1-3\n"
	// Debian's own layout: etc/os-release links to usr/lib/os-release.
	base := layer(t, 0,
		file{name: "etc/"},
		file{name: "etc/os-release", link: "../usr/lib/os-release"},
		file{name: "etc/debian_version", body: "12.11\n"},
		file{name: "usr/lib/os-release", body: deb},
		file{name: "var/lib/dpkg/status", body: "Package: a\n"},
	)
	type want struct {
		id, version, codename, source string
		distroless                    bool
	}
	tests := []struct {
		name   string
		layers []walk.Layer
		want   *want
	}{
		{"symlinked os-release", []walk.Layer{base}, &want{"debian", "12", "bookworm", "/usr/lib/os-release", false}},
		{"etc/os-release deleted", []walk.Layer{base, layer(t, 1, file{name: "etc/.wh.os-release"})},
			&want{"debian", "12", "bookworm", "/usr/lib/os-release", false}},
		{"both os-release deleted", []walk.Layer{base, layer(t, 1, file{name: "usr/lib/.wh.os-release"}, file{name: "etc/.wh.os-release"})},
			&want{"debian", "12", "", "/etc/debian_version", false}},
		{"target deleted, link dangling", []walk.Layer{base, layer(t, 1, file{name: "usr/lib/.wh.os-release"})},
			&want{"debian", "12", "", "/etc/debian_version", false}},
		{"upgraded in a later layer", []walk.Layer{base, layer(t, 1, file{name: "usr/lib/os-release", body: trixie})},
			&want{"debian", "13", "trixie", "/usr/lib/os-release", false}},
		{"upgrade deleted again", []walk.Layer{base,
			layer(t, 1, file{name: "usr/lib/os-release", body: trixie}),
			layer(t, 2, file{name: "usr/lib/.wh.os-release"}, file{name: "etc/.wh.os-release"})},
			&want{"debian", "12", "", "/etc/debian_version", false}},
		{"symlink replaced by a file", []walk.Layer{base, layer(t, 1, file{name: "etc/os-release", body: string(alpine)})},
			&want{"alpine", "3.20.3", "", "/etc/os-release", false}},
		{"opaque etc", []walk.Layer{base, layer(t, 1, file{name: "etc/.wh..wh..opq"}, file{name: "etc/alpine-release", body: "3.20.3\n"})},
			&want{"debian", "12", "bookworm", "/usr/lib/os-release", false}},
		{"lib symlinked to usr/lib", []walk.Layer{layer(t, 0,
			file{name: "lib", link: "usr/lib"},
			file{name: "etc/os-release", link: "/lib/os-release"},
			file{name: "usr/lib/os-release", body: string(alpine)})},
			&want{"alpine", "3.20.3", "", "/usr/lib/os-release", false}},
		{"symlink climbing out of the root", []walk.Layer{layer(t, 0,
			file{name: "etc/os-release", link: "../../../../../usr/lib/os-release"},
			file{name: "usr/lib/os-release", body: string(alpine)})},
			&want{"alpine", "3.20.3", "", "/usr/lib/os-release", false}},
		{"symlink loop", []walk.Layer{layer(t, 0,
			file{name: "etc/os-release", link: "os-release2"},
			file{name: "etc/os-release2", link: "os-release"},
			file{name: "etc/alpine-release", body: "3.20.3\n"})},
			&want{"alpine", "3.20.3", "", "/etc/alpine-release", false}},
		{"hard link", []walk.Layer{layer(t, 0,
			file{name: "usr/lib/os-release", body: string(alpine)},
			file{name: "etc/os-release", link: "usr/lib/os-release", hard: true})},
			&want{"alpine", "3.20.3", "", "/etc/os-release", false}},
		{"over-large os-release ignored", []walk.Layer{layer(t, 0,
			file{name: "etc/os-release", body: "ID=evil\n" + strings.Repeat("#", MaxFileSize)},
			file{name: "etc/alpine-release", body: "3.20.3\n"})},
			&want{"alpine", "3.20.3", "", "/etc/alpine-release", false}},
		{"os-release without ID", []walk.Layer{layer(t, 0,
			file{name: "etc/os-release", body: "NAME=Something\n"},
			file{name: "etc/lsb-release", body: "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=18.04\nDISTRIB_CODENAME=bionic\n"},
			file{name: "etc/debian_version", body: "buster/sid\n"})},
			&want{"ubuntu", "18.04", "bionic", "/etc/lsb-release", false}},
		{"red hat family", []walk.Layer{layer(t, 0,
			file{name: "etc/redhat-release", link: "centos-release"},
			file{name: "etc/system-release", link: "centos-release"},
			file{name: "etc/centos-release", body: "CentOS release 6.10 (Final)\n"})},
			&want{"centos", "6.10", "Final", "/etc/centos-release", false}},
		{"distroless os-release", []walk.Layer{layer(t, 0,
			file{name: "etc/os-release", body: distrolessOSRelease},
			file{name: "var/lib/dpkg/status.d/libsqlite3-0", body: sqlite})},
			&want{"debian", "12", "", "/etc/os-release", true}},
		{"status.d without status", []walk.Layer{layer(t, 0,
			file{name: "usr/lib/os-release", body: deb},
			file{name: "var/lib/dpkg/status.d/libsqlite3-0", body: sqlite})},
			&want{"debian", "12", "bookworm", "/usr/lib/os-release", true}},
		{"status.d beside status", []walk.Layer{base, layer(t, 1, file{name: "var/lib/dpkg/status.d/libsqlite3-0", body: sqlite})},
			&want{"debian", "12", "bookworm", "/usr/lib/os-release", false}},
		{"status.d deleted", []walk.Layer{
			layer(t, 0, file{name: "usr/lib/os-release", body: deb}, file{name: "var/lib/dpkg/status.d/libsqlite3-0", body: sqlite}),
			layer(t, 1, file{name: "var/lib/dpkg/.wh.status.d"})},
			&want{"debian", "12", "bookworm", "/usr/lib/os-release", false}},
		{"status.d only", []walk.Layer{layer(t, 0, file{name: "var/lib/dpkg/status.d/libsqlite3-0", body: sqlite})},
			&want{"debian", "", "", "/var/lib/dpkg/status.d", true}},
		{"nothing", []walk.Layer{layer(t, 0, file{name: "bin/sh", body: "#!"})}, nil},
		{"no layers", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Layers are read concurrently and finish in any order: read
			// them one at a time, first to last and last to first, and
			// expect the same answer.
			reversed := slices.Clone(tt.layers)
			slices.Reverse(reversed)
			for _, order := range [][]walk.Layer{tt.layers, reversed} {
				got := detectWith(t, walk.Options{TempDir: t.TempDir(), Jobs: 1}, order...)
				if tt.want == nil {
					if got != nil {
						t.Fatalf("got %+v, want nil", got)
					}
					continue
				}
				if got == nil {
					t.Fatal("no OS detected")
				}
				g := want{got.ID, got.VersionID, got.Codename, got.Source, got.Distroless}
				if g != *tt.want {
					t.Errorf("got  %+v\nwant %+v", g, *tt.want)
				}
			}
		})
	}
}

// TestDetectorRootfs walks the real Alpine minirootfs tarballs of the
// corpus. The expected OS is the os-release extracted from the same tarball
// (the committed fixtures), and whether etc/os-release is a symlink is read
// from the tar header.
func TestDetectorRootfs(t *testing.T) {
	dir := testcorpus.Dir()
	if dir == "" {
		t.Skip("shared corpus not found")
	}
	tarballs, _ := filepath.Glob(filepath.Join(dir, "rootfs", "alpine", "alpine-minirootfs-*-x86_64.tar.gz"))
	if len(tarballs) == 0 {
		t.Skip("no Alpine rootfs in the corpus")
	}
	for _, tb := range tarballs {
		version := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(tb), "alpine-minirootfs-"), "-x86_64.tar.gz")
		t.Run(version, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "alpine-minirootfs-"+version+"_os-release"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := ParseOSRelease(b)
			if err != nil {
				t.Fatal(err)
			}
			want.Source = "/etc/os-release"
			if target := symlinkTarget(t, tb, "etc/os-release"); target != "" {
				want.Source = "/" + filepath.Clean(filepath.Join("etc", target))
			}
			got := detect(t, walk.Layer{Info: walk.LayerInfo{Index: 0}, Open: func() (io.ReadCloser, error) {
				f, err := os.Open(tb)
				if err != nil {
					return nil, err
				}
				zr, err := gzip.NewReader(f)
				if err != nil {
					f.Close()
					return nil, err
				}
				return struct {
					io.Reader
					io.Closer
				}{zr, f}, nil
			}})
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// symlinkTarget reads the tar header of name in a gzip tarball: its link
// target when it is a symlink, else "".
func symlinkTarget(t *testing.T, tarball, name string) string {
	t.Helper()
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in %s: %v", name, tarball, err)
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			if h.Typeflag == tar.TypeSymlink {
				return h.Linkname
			}
			return ""
		}
	}
}

func BenchmarkParseOSRelease(b *testing.B) {
	data, err := os.ReadFile("testdata/debian-12_os-release")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseOSRelease(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDetector walks a two-layer image of 2,000 files with the
// detector: the cost of detection inside the walk.
func BenchmarkDetector(b *testing.B) {
	deb, err := os.ReadFile("testdata/debian-12_os-release")
	if err != nil {
		b.Fatal(err)
	}
	var files []file
	for i := range 1000 {
		files = append(files, file{name: "usr/share/doc/p" + strings.Repeat("x", i%50) + "/f" + string(rune('a'+i%26)), body: "x"})
	}
	l0 := layer(b, 0, append(files, file{name: "usr/lib/os-release", body: string(deb)}, file{name: "etc/os-release", link: "../usr/lib/os-release"})...)
	l1 := layer(b, 1, append(files, file{name: "etc/debian_version", body: "12.11\n"})...)
	b.ReportAllocs()
	for b.Loop() {
		if os := detect(b, l0, l1); os == nil || os.ID != "debian" {
			b.Fatalf("got %+v", os)
		}
	}
}
