package pipeline

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// rchar is the bytes this process has read through read(2) and pread(2)
// (/proc/self/io), or -1 where the kernel does not say.
func rchar(t *testing.T) int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return -1
}

// A docker-archive scan reads each layer once. go-containerregistry's
// Manifest() of a docker-archive image gzips every layer to make the
// manifest the archive does not have: the pipeline asked it for the
// manifest's annotations, which doubled the reads and took three quarters
// of the CPU time of a scan (issue 18).
func TestDockerArchiveLayersReadOnce(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for i := 0; i < 64; i++ {
		b := make([]byte, 256<<10)
		rng.Read(b)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/%02d.bin", i), Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(b))})
		tw.Write(b)
	}
	tw.Close()
	sum := sha256.Sum256(layer.Bytes())
	cfg := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%x"]}}`, sum)
	csum := sha256.Sum256([]byte(cfg))
	cfgName := hex.EncodeToString(csum[:]) + ".json"
	layerName := hex.EncodeToString(sum[:]) + "/layer.tar"
	archive := filepath.Join(dir, "image.docker.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	aw := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		b    []byte
	}{{layerName, layer.Bytes()}, {cfgName, []byte(cfg)}, {"manifest.json", []byte(fmt.Sprintf(`[{"Config":%q,"RepoTags":["example.test/a:1"],"Layers":[%q]}]`, cfgName, layerName))}} {
		aw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o444, Typeflag: tar.TypeReg, Size: int64(len(e.b))})
		aw.Write(e.b)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	before := rchar(t)
	if before < 0 {
		t.Skip("no /proc/self/io: read counts unknown")
	}
	res, err := Run(t.Context(), "docker-archive:"+archive, Options{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	read := rchar(t) - before
	size := int64(layer.Len())
	if read > size*3/2 {
		t.Errorf("the scan read %d bytes for a %d-byte layer: more than once", read, size)
	}
	if read < size {
		t.Errorf("the scan read %d bytes for a %d-byte layer: it did not verify it", read, size)
	}
	if res.Annotations != nil {
		t.Errorf("annotations %v from an archive without a manifest", res.Annotations)
	}
}
