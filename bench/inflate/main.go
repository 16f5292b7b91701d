// Command inflate times the serial floor of an oci-archive scan (issue 18):
// reading its largest layer, hashing the stored (gzip) bytes against the
// layer's digest and inflating them, with nothing else. Used by
// bench/archive.sh.
//
//	inflate -lib bulkhead ARCHIVE   bulkhead's own layer stream (image.Open's
//	                                WalkLayers: its inflater, its digest check)
//	inflate -lib stdlib ARCHIVE     the same bytes through compress/gzip and
//	                                crypto/sha256
//
// It prints the layer's digest, its stored and inflated sizes and the time.
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/walk"
)

func main() {
	lib := flag.String("lib", "bulkhead", "inflater: bulkhead or stdlib")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: inflate [-lib bulkhead|stdlib] OCI-ARCHIVE")
		os.Exit(2)
	}
	if err := run(*lib, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "inflate:", err)
		os.Exit(1)
	}
}

func run(lib, archive string) error {
	img, err := image.Open(context.Background(), "oci-archive:"+archive, image.Options{})
	if err != nil {
		return err
	}
	defer img.Close()
	var big walk.Layer
	for _, l := range img.WalkLayers() {
		if l.Info.Size > big.Info.Size {
			big = l
		}
	}
	if big.Open == nil {
		return fmt.Errorf("%s has no layers", archive)
	}
	start := time.Now()
	var n int64
	switch lib {
	case "bulkhead":
		rc, err := big.Open()
		if err != nil {
			return err
		}
		if n, err = io.Copy(io.Discard, rc); err != nil {
			return err
		}
		if err := rc.Close(); err != nil {
			return err
		}
	case "stdlib":
		if n, err = stdlib(archive, big.Info.Digest); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown -lib %q", lib)
	}
	fmt.Printf("%s %s: %d stored bytes, %d inflated, %.3f s\n", lib, big.Info.Digest, big.Info.Size, n, time.Since(start).Seconds())
	return nil
}

// stdlib finds the blob in the archive and reads it through compress/gzip,
// hashing the stored bytes as it goes, and checks the digest.
func stdlib(archive, digest string) (int64, error) {
	f, err := os.Open(archive)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	want := strings.TrimPrefix(digest, "sha256:")
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			return 0, fmt.Errorf("blob %s not found: %w", digest, err)
		}
		if strings.TrimPrefix(hdr.Name, "./") != "blobs/sha256/"+want {
			continue
		}
		h := sha256.New()
		zr, err := gzip.NewReader(bufio.NewReaderSize(io.TeeReader(tr, h), 64<<10))
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, zr)
		if err != nil {
			return n, err
		}
		if _, err := io.Copy(h, tr); err != nil { // trailing bytes, if any
			return n, err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return n, fmt.Errorf("digest mismatch: %s is sha256:%s", digest, got)
		}
		return n, nil
	}
}
