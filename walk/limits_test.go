package walk

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// emptyFiles streams a layer of n empty files named by name(i), written as
// it is read, so that a large hostile layer costs no memory of its own.
func emptyFiles(index, n int, name func(i int) string) Layer {
	return Layer{Info: LayerInfo{Index: index, Digest: fmt.Sprintf("sha256:%064d", index)}, Open: func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			for i := 0; i < n; i++ {
				if err := tw.WriteHeader(&tar.Header{Name: name(i), Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX}); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			pw.CloseWithError(tw.Close())
		}()
		return pr, nil
	}}
}

func flatNames(prefix string) func(int) string {
	return func(i int) string { return prefix + strconv.Itoa(i) }
}

// A layer of many empty entries stops at the per-layer limit, with an error
// that names the layer and the limit and says how to raise it.
func TestEntryLimitPerLayer(t *testing.T) {
	layers := []Layer{emptyFiles(0, 100, flatNames("a")), emptyFiles(1, 1001, flatNames("b"))}
	_, err := Walk(context.Background(), layers, nil, Options{MaxEntries: 1000, MaxImageEntries: 5000})
	if !errors.Is(err, ErrLayerTooLarge) {
		t.Fatalf("err = %v, want ErrLayerTooLarge", err)
	}
	for _, want := range []string{"layer 1 (sha256:", "more than 1000 entries", "per-layer limit", "--max-entries"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// At the limit, the walk goes through.
	layers[1] = emptyFiles(1, 1000, flatNames("b"))
	tr, err := Walk(context.Background(), layers, nil, Options{MaxEntries: 1000, MaxImageEntries: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 1100 {
		t.Errorf("Len = %d, want 1100", tr.Len())
	}
}

// Several layers each under the per-layer limit stop at the per-image one:
// before, three layers of 2M entries each were read to the end.
func TestEntryLimitPerImage(t *testing.T) {
	layers := []Layer{emptyFiles(0, 900, flatNames("a")), emptyFiles(1, 900, flatNames("b")), emptyFiles(2, 900, flatNames("c"))}
	for _, jobs := range []int{1, 3} {
		_, err := Walk(context.Background(), layers, nil, Options{MaxEntries: 1000, MaxImageEntries: 2000, Jobs: jobs})
		if !errors.Is(err, ErrImageTooLarge) {
			t.Fatalf("jobs %d: err = %v, want ErrImageTooLarge", jobs, err)
		}
		for _, want := range []string{"more than 2000 entries in all", "per-image limit", "while reading layer ", "--max-entries"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	}
	if _, err := Walk(context.Background(), layers[:2], nil, Options{MaxEntries: 1000, MaxImageEntries: 2000}); err != nil {
		t.Errorf("two layers under the limit: %v", err)
	}
}

// Parent directories a layer implies without listing them count: a few
// entries with deep, distinct paths cannot make the tree grow unbounded.
func TestImpliedDirectoriesCount(t *testing.T) {
	deep := strings.Repeat("x/", 50)
	layer := emptyFiles(0, 30, func(i int) string { return fmt.Sprintf("d%d/%sf", i, deep) })
	_, err := Walk(context.Background(), []Layer{layer}, nil, Options{MaxEntries: 1000, MaxImageEntries: 1000})
	if !errors.Is(err, ErrLayerTooLarge) {
		t.Fatalf("30 entries implying 51 directories each: err = %v, want the 1000-entry limit", err)
	}
	// Whiteouts with deep, distinct paths too.
	wh := emptyFiles(0, 30, func(i int) string { return fmt.Sprintf("w%d/%s.wh.f", i, deep) })
	_, err = Walk(context.Background(), []Layer{wh}, nil, Options{MaxEntries: 1000, MaxImageEntries: 1000})
	if !errors.Is(err, ErrLayerTooLarge) {
		t.Fatalf("deep whiteouts: err = %v, want the 1000-entry limit", err)
	}
}

// Long distinct names are bounded by bytes, not only by count.
func TestNameBytesLimit(t *testing.T) {
	long := strings.Repeat("n", 4000)
	layer := emptyFiles(0, 100, func(i int) string { return fmt.Sprintf("%s%d", long, i) })
	_, err := Walk(context.Background(), []Layer{layer}, nil, Options{MaxNameBytes: 100_000})
	if !errors.Is(err, ErrImageTooLarge) || !strings.Contains(err.Error(), "more than 100000 bytes") || !strings.Contains(err.Error(), "layer 0") {
		t.Fatalf("err = %v, want the name-bytes limit naming layer 0", err)
	}
	// Shared directories are stored once: the same bytes in one directory
	// component pass.
	shared := emptyFiles(0, 100, func(i int) string { return fmt.Sprintf("%s/%d", long, i) })
	if _, err := Walk(context.Background(), []Layer{shared}, nil, Options{MaxNameBytes: 100_000}); err != nil {
		t.Errorf("one long directory: %v", err)
	}
}

// Absolute names, ".." and links are read inside the image with a warning
// naming the entry and the layer.
func TestHostileNameWarnings(t *testing.T) {
	l0 := makeTar(t, file("/etc/passwd", "root"), file("a/../../etc/shadow", "x"), file("ok", "y"))
	layers := layersOf(l0)
	layers[0].Info.Digest = "sha256:feed"
	tr, err := Walk(context.Background(), layers, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`layer 0 (sha256:feed): entry "/etc/passwd" is an absolute name; read as /etc/passwd inside the image`,
		`layer 0 (sha256:feed): entry "a/../../etc/shadow" climbs with ".."; read as /etc/shadow inside the image`,
	} {
		if !hasWarning(tr, want) {
			t.Errorf("no warning %q in %q", want, tr.Warnings())
		}
	}
	if len(tr.Warnings()) != 2 {
		t.Errorf("warnings = %q, want exactly the two", tr.Warnings())
	}
	if e, ok := tr.Lookup("etc/passwd"); !ok || e.Kind != KindFile {
		t.Errorf("/etc/passwd not in the image: %v %v", e, ok)
	}
}

// A NUL byte in a PAX path fails the layer with an error naming it (the tar
// reader refuses the header; nothing is read under a truncated name).
func TestNULInName(t *testing.T) {
	var buf bytes.Buffer
	buf.Write(paxHeader(t, "path", "etc/passwd\x00.txt"))
	buf.Write(makeTar(t, file("placeholder", "x")))
	_, err := Walk(context.Background(), layersOf(buf.Bytes()), nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "layer 0") {
		t.Fatalf("err = %v, want an error naming layer 0", err)
	}
}

// paxHeader builds a PAX extended header block with one record, which
// archive/tar will not write when the value is invalid.
func paxHeader(t *testing.T, key, value string) []byte {
	t.Helper()
	rec := " " + key + "=" + value + "\n"
	n := len(rec)
	for len(strconv.Itoa(n))+len(rec) != n {
		n = len(strconv.Itoa(n)) + len(rec)
	}
	rec = strconv.Itoa(n) + rec
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "PaxHeader", Typeflag: tar.TypeReg, Size: int64(len(rec)), Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, rec); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// A layer full of suspicious names keeps a bounded number of warnings and
// says how many it did not show.
func TestWarningsBounded(t *testing.T) {
	layer := emptyFiles(0, 5000, func(i int) string { return fmt.Sprintf("/abs%d", i) })
	tr, err := Walk(context.Background(), []Layer{layer}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tr.Warnings()); n != maxWarningsPerLayer+1 {
		t.Errorf("%d warnings, want %d", n, maxWarningsPerLayer+1)
	}
	if !hasWarning(tr, fmt.Sprintf("layer 0 (sha256:%064d): %d more warnings not shown", 0, 5000-maxWarningsPerLayer)) {
		t.Errorf("no summary warning: %q", tr.Warnings()[len(tr.Warnings())-1])
	}
	if tr.Len() != 5000 {
		t.Errorf("Len = %d: entries with warnings must still be read", tr.Len())
	}
}

// The tree keeps little per entry. Before, an entry cost about 500 bytes of
// live heap (string keys, a map of touches, an Entry, a final map) — 1 GB
// for 2M entries; now about 55 bytes plus the last path component.
func TestMemoryPerEntry(t *testing.T) {
	const n = 200_000
	layers := []Layer{
		emptyFiles(0, n/2, func(i int) string { return fmt.Sprintf("usr/share/d%04d/file%07d", i/1000, i) }),
		emptyFiles(1, n/2, flatNames("top")),
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr, err := Walk(context.Background(), layers, nil, Options{Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEntry := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	t.Logf("%.0f bytes of live heap per entry", perEntry)
	if perEntry > 100 {
		t.Errorf("%.0f bytes per entry, want at most 100", perEntry)
	}
	if tr.Len() != n {
		t.Errorf("Len = %d", tr.Len())
	}
	runtime.KeepAlive(tr)
}

// The final view computed top down in finish agrees with State, computed
// for one path by looking at its ancestors, on random overlays.
func TestFinishAgreesWithState(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	names := []string{"a", "b", "a/x", "a/y", "a/x/1", "b/z", "c", "c/d/e", "a/x/2"}
	for round := 0; round < 200; round++ {
		var tars [][]byte
		for l := 0; l < 4; l++ {
			var ents []tarEntry
			for i := 0; i < 4; i++ {
				p := names[rng.Intn(len(names))]
				switch rng.Intn(5) {
				case 0:
					ents = append(ents, dir(p+"/"))
				case 1:
					ents = append(ents, file(p, "x"))
				case 2:
					ents = append(ents, symlink(p, "a"))
				case 3:
					d, b := "", p
					if i := strings.LastIndexByte(p, '/'); i >= 0 {
						d, b = p[:i+1], p[i+1:]
					}
					ents = append(ents, file(d+".wh."+b, ""))
				case 4:
					ents = append(ents, file(p+"/.wh..wh..opq", ""))
				}
			}
			tars = append(tars, makeTar(t, ents...))
		}
		tr, err := Walk(context.Background(), layersOf(tars...), nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		_ = tr.Walk(func(e *Entry) error {
			seen++
			st := tr.State(e.Path, e.Layer)
			if st == Deleted || (st == Shadowed && e.Kind != KindDir) {
				t.Errorf("round %d: %s@%d is in the final view but State says %v", round, e.Path, e.Layer, st)
			}
			if got, ok := tr.Lookup(e.Path); !ok || got.Layer != e.Layer || got.Kind != e.Kind {
				t.Errorf("round %d: Lookup(%s) = %v, %v", round, e.Path, got, ok)
			}
			return nil
		})
		if seen != tr.Len() {
			t.Errorf("round %d: Walk saw %d entries, Len = %d", round, seen, tr.Len())
		}
	}
}

// Walk goes directory by directory, names in byte order.
func TestWalkOrder(t *testing.T) {
	l0 := makeTar(t, file("a-c", ""), file("a/b", ""), dir("a/"), file("B", ""), file("a/a", ""))
	tr, err := Walk(context.Background(), layersOf(l0), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(visible(t, tr), " "); got != "B@0 a@0 a/a@0 a/b@0 a-c@0" {
		t.Errorf("order = %q", got)
	}
}

// BenchmarkWalkManyEntries walks two layers of small, empty entries, the
// shape of a tar bomb and of the largest real images.
func BenchmarkWalkManyEntries(b *testing.B) {
	const n = 100_000
	var tars [][]byte
	for l := 0; l < 2; l++ {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("usr/lib/l%d/d%03d/f%07d", l, i/1000, i)
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
				b.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			b.Fatal(err)
		}
		tars = append(tars, buf.Bytes())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr, err := Walk(context.Background(), layersOf(tars...), nil, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := tr.Walk(func(*Entry) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(2*n), "ns/entry")
}
