package scan

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

type tarFile struct {
	name, body, link string
}

func layer(t testing.TB, files []tarFile) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		if f.link != "" {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, f.link, 0
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

// dropPackage removes one stanza from a dpkg status file.
func dropPackage(status, pkg string) string {
	var out []string
	for _, stanza := range strings.Split(status, "\n\n") {
		if strings.HasPrefix(stanza, "Package: "+pkg+"\n") {
			continue
		}
		out = append(out, stanza)
	}
	return strings.Join(out, "\n\n")
}

// debianLike builds a three-layer image from real files: a real dpkg status
// (357 packages, Ubuntu texlive image), Debian 12's os-release behind the
// usual symlink, many other files; a second layer rewriting the status
// without one package and upgrading another; a third layer of more files.
func debianLike(t testing.TB, extraFiles int) string {
	status, err := os.ReadFile("../catalog/dpkg/testdata/claircore_texlive.status")
	if err != nil {
		t.Fatal(err)
	}
	osRelease, err := os.ReadFile("../distro/testdata/debian-12_os-release")
	if err != nil {
		t.Fatal(err)
	}
	var l0 []tarFile
	l0 = append(l0, tarFile{name: "usr/lib/os-release", body: string(osRelease)}, tarFile{name: "etc/os-release", link: "../usr/lib/os-release"},
		tarFile{name: "var/lib/dpkg/status", body: string(status)})
	for i := 0; i < extraFiles; i++ {
		l0 = append(l0, tarFile{name: fmt.Sprintf("usr/share/doc/pkg%d/file%d.txt", i%300, i), body: strings.Repeat("x", i%2000)})
	}
	st2 := dropPackage(string(status), "zlib1g")
	st2 = strings.Replace(st2, "Version: 1.29b-2ubuntu0.1\n", "Version: 1.29b-2ubuntu0.2\n", 1)
	l1 := []tarFile{{name: "var/lib/dpkg/status", body: st2}, {name: "usr/share/doc/pkg1/.wh.file1.txt"}}
	var l2 []tarFile
	for i := 0; i < extraFiles/4; i++ {
		l2 = append(l2, tarFile{name: fmt.Sprintf("opt/app/lib%d.py", i), body: "print(1)\n"})
	}
	img, err := mutate.AppendLayers(empty.Image, layer(t, l0), layer(t, l1), layer(t, l2))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "img.tar")
	ref, _ := name.NewTag("test/debian-like:1")
	if err := tarball.WriteToFile(p, ref, img); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScanAttributesLayers(t *testing.T) {
	p := debianLike(t, 2000)
	img, err := image.Open(context.Background(), p, image.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	res, err := Image(context.Background(), img, Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	inv := res.Inventory
	if inv.OS == nil || inv.OS.ID != "debian" || inv.OS.VersionID != "12" {
		t.Errorf("OS = %+v", inv.OS)
	}
	byName := map[string]inventory.Package{}
	for _, p := range inv.Packages {
		byName[p.Name] = p
	}
	if len(inv.Packages) != 356 {
		t.Errorf("%d packages, want 357 - 1 removed", len(inv.Packages))
	}
	if _, ok := byName["zlib1g"]; ok {
		t.Error("zlib1g was removed in layer 1 but is reported")
	}
	tar := byName["tar"]
	if tar.Version != "1.29b-2ubuntu0.2" || tar.Locations[0].Layer.Index != 1 {
		t.Errorf("tar = %s from layer %+v; want the upgrade in layer 1", tar.Version, tar.Locations[0].Layer)
	}
	bash := byName["bash"]
	if bash.Locations[0].Layer == nil || bash.Locations[0].Layer.Index != 0 || bash.Locations[0].Path != "/var/lib/dpkg/status" {
		t.Errorf("bash location = %+v; want layer 0", bash.Locations[0])
	}
	if !strings.HasPrefix(bash.PURL, "pkg:deb/debian/bash@") || !strings.Contains(bash.PURL, "distro=debian-12") {
		t.Errorf("bash purl = %s", bash.PURL)
	}
	if _, ok := res.Tree.Lookup("usr/share/doc/pkg1/file1.txt"); ok {
		t.Error("whited-out file visible")
	}
	// The scan's temp space is removed afterwards.
}

// BenchmarkScan measures a whole scan of a three-layer image with 357
// packages and ~12,500 files, read from a docker-archive.
func BenchmarkScan(b *testing.B) {
	p := debianLike(b, 10000)
	st, _ := os.Stat(p)
	b.SetBytes(st.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		img, err := image.Open(context.Background(), p, image.Options{})
		if err != nil {
			b.Fatal(err)
		}
		res, err := Image(context.Background(), img, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Inventory.Packages) != 356 {
			b.Fatalf("%d packages", len(res.Inventory.Packages))
		}
		img.Close()
	}
}
