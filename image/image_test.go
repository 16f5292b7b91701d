package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
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
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulkhead-sec/bulkhead/walk"
)

// visibleFiles walks an image and lists its final view as "path" for files
// and "path -> target" for symlinks.
func visibleFiles(t *testing.T, img *Image) ([]string, *walk.Tree) {
	t.Helper()
	tr, err := walk.Walk(context.Background(), img.WalkLayers(), nil, walk.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatalf("walk %s: %v", img.Name, err)
	}
	var out []string
	_ = tr.Walk(func(e *walk.Entry) error {
		switch e.Kind {
		case walk.KindFile:
			out = append(out, e.Path)
		case walk.KindSymlink:
			out = append(out, e.Path+" -> "+e.Linkname)
		}
		return nil
	})
	return out, tr
}

func TestScalibrDockerSaveFixtures(t *testing.T) {
	cases := []struct {
		file     string
		want     []string
		warnings []string
		resolve  map[string]string // path -> resolved ("!loop" for a cycle)
		topLayer map[string]int    // path -> layer of the visible copy
	}{
		{file: "basic.tar.gz", want: []string{"larger-sample.txt", "sample.txt"}},
		{file: "single-file.tar.gz", want: []string{"foo.txt"}},
		{file: "overwrite-file.tar.gz", want: []string{"sample.txt"}, topLayer: map[string]int{"sample.txt": 1}},
		{
			file: "symlink-attack.tar.gz",
			want: []string{"dir1/attack-symlink-absolute.txt -> /../secret.txt", "dir1/attack-symlink.txt -> ../../secret.txt"},
			warnings: []string{
				"symlink /dir1/attack-symlink.txt points outside the image (../../secret.txt)",
				"symlink /dir1/attack-symlink-absolute.txt points outside the image (/../secret.txt)",
			},
			// Clamped to the image root: never the host's /secret.txt.
			resolve: map[string]string{"dir1/attack-symlink.txt": "secret.txt", "dir1/attack-symlink-absolute.txt": "secret.txt"},
		},
		{
			file:    "symlink-cycle.tar.gz",
			want:    []string{"dir1/absolute-symlink.txt -> /dir1/sample.txt", "dir1/chain-symlink.txt -> absolute-symlink.txt", "dir1/sample.txt -> /dir1/chain-symlink.txt"},
			resolve: map[string]string{"dir1/sample.txt": "!loop", "dir1/chain-symlink.txt": "!loop"},
		},
		{
			file:    "symlink-depth-exceeded.tar.gz",
			resolve: map[string]string{"dir1/symlink7.txt": "dir1/sample.txt"},
		},
		{
			file:    "symlink-dangling.tar.gz",
			resolve: map[string]string{"dir2/dir3/absolute-chain-symlink.txt": "dir1/sample.txt"},
		},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			img, err := OpenArchive(filepath.Join("testdata", "docker-save", c.file), Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if img.Source != SourceDockerArchive {
				t.Errorf("source = %s", img.Source)
			}
			got, tr := visibleFiles(t, img)
			if c.want != nil && strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("visible files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			for _, w := range c.warnings {
				found := false
				for _, tw := range tr.Warnings() {
					found = found || strings.Contains(tw, w)
				}
				if !found {
					t.Errorf("missing warning %q in %q", w, tr.Warnings())
				}
			}
			for p, want := range c.topLayer {
				if e, ok := tr.Lookup(p); !ok || e.Layer != want {
					t.Errorf("Lookup(%s) = %+v, %v; want layer %d", p, e, ok, want)
				}
			}
			for p, want := range c.resolve {
				got, _, err := tr.Resolve(p)
				if want == "!loop" {
					if !errors.Is(err, walk.ErrSymlinkLoop) {
						t.Errorf("Resolve(%s) = %q, %v; want a loop error", p, got, err)
					}
					continue
				}
				if err != nil || got != want {
					t.Errorf("Resolve(%s) = %q, %v; want %q", p, got, err, want)
				}
			}
		})
	}
}

func TestNotAnArchive(t *testing.T) {
	_, err := OpenArchive(filepath.Join("testdata", "docker-save", "empty.tar.gz"), Options{TempDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "neither a docker-archive") {
		t.Errorf("err = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(bad, []byte("this is not a tar file at all, not even close......"), 0o644)
	if _, err := OpenArchive(bad, Options{TempDir: t.TempDir()}); err == nil {
		t.Error("junk file opened as an image")
	}
}

// layerTar builds a layer tar from name->content pairs ("" content and a
// trailing slash for directories, "->target" for symlinks).
func layerTar(t *testing.T, files ...string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		n, body := files[i], files[i+1]
		hdr := &tar.Header{Name: n, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(body))}
		switch {
		case strings.HasSuffix(n, "/"):
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeDir, 0, 0o755
		case strings.HasPrefix(body, "->"):
			hdr.Typeflag, hdr.Size, hdr.Linkname = tar.TypeSymlink, 0, body[2:]
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			io.WriteString(tw, body)
		}
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testImage(t *testing.T) v1.Image {
	img, err := mutate.AppendLayers(empty.Image,
		layerTar(t, "etc/", "", "etc/os-release", "ID=test\n", "usr/bin/tool", "v1", "tmp/secret", "s"),
		layerTar(t, "usr/bin/tool", "v2", "tmp/.wh.secret", "", "etc/alias", "->os-release"),
	)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.History = []v1.History{{CreatedBy: "ADD rootfs /"}, {CreatedBy: "ENV X=1", EmptyLayer: true}, {CreatedBy: "RUN upgrade"}}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// writeForms writes one image in every archive and layout form.
func writeForms(t *testing.T, img v1.Image) map[string]string {
	dir := t.TempDir()
	ref, _ := name.NewTag("example.test/app:1")
	forms := map[string]string{}

	da := filepath.Join(dir, "docker.tar")
	if err := tarball.WriteToFile(da, ref, img); err != nil {
		t.Fatal(err)
	}
	forms["docker-archive"] = da
	forms["docker-archive.gz"] = gzipFile(t, da)

	lp := filepath.Join(dir, "layout")
	p, err := layout.Write(lp, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1"})); err != nil {
		t.Fatal(err)
	}
	forms["oci-layout"] = "oci:" + lp
	forms["oci-layout-tag"] = "oci:" + lp + ":1"
	oa := filepath.Join(dir, "oci.tar")
	tarDir(t, lp, oa)
	forms["oci-archive"] = "oci-archive:" + oa
	forms["oci-archive.gz"] = gzipFile(t, oa)
	return forms
}

func gzipFile(t *testing.T, src string) string {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	dst := src + ".gz"
	os.WriteFile(dst, buf.Bytes(), 0o644)
	return dst
}

func tarDir(t *testing.T, dir, dst string) {
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	defer tw.Close()
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		hdr, _ := tar.FileInfoHeader(info, "")
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			tw.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEveryFormSameView(t *testing.T) {
	img := testImage(t)
	wantDigest, _ := img.Digest()
	forms := writeForms(t, img)
	keys := make([]string, 0, len(forms))
	for k := range forms {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := "etc/alias -> os-release\netc/os-release\nusr/bin/tool"
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			im, err := Open(context.Background(), forms[k], Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			got, _ := visibleFiles(t, im)
			if strings.Join(got, "\n") != want {
				t.Errorf("view:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
			}
			layers := im.InventoryLayers()
			if len(layers) != 2 || layers[0].CreatedBy != "ADD rootfs /" || layers[1].CreatedBy != "RUN upgrade" {
				t.Errorf("layers = %+v", layers)
			}
			if layers[1].DiffID == "" {
				t.Error("no diffID")
			}
			if strings.HasPrefix(k, "oci") && im.Digest != wantDigest {
				t.Errorf("digest = %s, want %s", im.Digest, wantDigest)
			}
			if k == "docker-archive" && (len(im.RepoTags) != 1 || im.RepoTags[0] != "example.test/app:1") {
				t.Errorf("repo tags = %v", im.RepoTags)
			}
		})
	}
}

func TestTamperedBlobIsRejected(t *testing.T) {
	img := testImage(t)
	forms := writeForms(t, img)
	lp := strings.TrimPrefix(forms["oci-layout"], "oci:")
	layers, _ := img.Layers()
	d, _ := layers[1].Digest()
	blob := filepath.Join(lp, "blobs", "sha256", d.Hex)
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	// Recompress the same tar with different settings: a valid gzip whose
	// bytes no longer match the digest.
	zr, _ := gzip.NewReader(bytes.NewReader(b))
	plain, _ := io.ReadAll(zr)
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	zw.Write(plain)
	zw.Close()
	os.WriteFile(blob, buf.Bytes(), 0o644)

	im, err := OpenLayout(lp, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = walk.Walk(context.Background(), im.WalkLayers(), nil, walk.Options{TempDir: t.TempDir()})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}

	// Content changed too: the diffID check catches it even where the
	// stored digest is unknown (docker-archive layers).
	plain2 := bytes.Replace(plain, []byte("v2"), []byte("v3"), 1)
	if bytes.Equal(plain, plain2) {
		t.Fatal("fixture changed")
	}
	sl := im.layers[1]
	sl.digest = v1.Hash{}
	sl.open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(plain2)), nil }
	rc, err := openVerified(sl)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "diffID") {
		t.Fatalf("err = %v, want a diffID mismatch", err)
	}
}

func TestDecompressionBomb(t *testing.T) {
	// 256 MiB of zeros compress to about 250 KB: over the ratio limit once
	// past the floor (lowered here to keep the test quick).
	defer func(f int64) { ratioFloor = f }(ratioFloor)
	ratioFloor = 64 << 20
	pr, pw := io.Pipe()
	go func() {
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestCompression)
		tw := tar.NewWriter(zw)
		tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Size: 256 << 20, Mode: 0o644})
		zero := make([]byte, 1<<20)
		for i := 0; i < 256; i++ {
			if _, err := tw.Write(zero); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		tw.Close()
		zw.Close()
		pw.Close()
	}()
	var comp bytes.Buffer
	if _, err := io.Copy(&comp, pr); err != nil {
		t.Fatal(err)
	}
	sl := storedLayer{open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(comp.Bytes())), nil }}
	_, err := walk.Walk(context.Background(), []walk.Layer{{Open: func() (io.ReadCloser, error) { return openVerified(sl) }}}, nil, walk.Options{})
	if !errors.Is(err, walk.ErrLayerTooLarge) {
		t.Fatalf("err = %v, want the bomb refused", err)
	}
}

func TestRootfs(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc", "os-release"), []byte("ID=x\n"), 0o644)
	os.Symlink("/etc/shadow-of-host", filepath.Join(dir, "etc", "link"))
	os.Symlink("../../../../../../etc/passwd", filepath.Join(dir, "escape"))
	img, err := Open(context.Background(), "rootfs:"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, tr := visibleFiles(t, img)
	want := "escape -> ../../../../../../etc/passwd\netc/link -> /etc/shadow-of-host\netc/os-release"
	if strings.Join(got, "\n") != want {
		t.Errorf("rootfs view:\n%s", strings.Join(got, "\n"))
	}
	// The escaping link resolves inside the scanned tree, not on the host.
	if p, ok, _ := tr.Resolve("escape"); p != "etc/passwd" || ok {
		t.Errorf("Resolve(escape) = %s, %v", p, ok)
	}
}

func TestPlatformFromIndex(t *testing.T) {
	amd := testImage(t)
	arm, err := mutate.AppendLayers(empty.Image, layerTar(t, "etc/arch", "arm64"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := arm.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "arm64", "linux"
	arm, _ = mutate.ConfigFile(arm, cfg)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "multi"})); err != nil {
		t.Fatal(err)
	}
	armDigest, _ := arm.Digest()
	amdDigest, _ := amd.Digest()
	cases := []struct {
		platform string
		want     v1.Hash
		err      string
	}{
		{platform: "linux/arm64", want: armDigest},
		{platform: "linux/arm64/v8", want: armDigest},
		{platform: "linux/amd64", want: amdDigest},
		{platform: "linux/s390x", err: "no image for platform linux/s390x"},
	}
	for _, c := range cases {
		plat, _ := v1.ParsePlatform(c.platform)
		img, err := Open(context.Background(), "oci:"+dir+":multi", Options{Platform: plat})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err = %v", c.platform, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.platform, err)
		}
		if img.Digest != c.want || img.Config().Architecture != plat.Architecture {
			t.Errorf("%s: got %s (%s)", c.platform, img.Digest, img.Config().Architecture)
		}
	}
}

// An archive of many empty entries is refused at the index limit, before it
// costs memory.
func TestArchiveEntryLimit(t *testing.T) {
	defer func(n int) { maxArchiveEntries = n }(maxArchiveEntries)
	maxArchiveEntries = 100
	p := filepath.Join(t.TempDir(), "bomb.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for i := 0; i < 102; i++ {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = OpenArchive(p, Options{TempDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "more than 100 entries") || !strings.Contains(err.Error(), "bomb.tar") {
		t.Fatalf("err = %v, want the entry limit naming the file", err)
	}
}
