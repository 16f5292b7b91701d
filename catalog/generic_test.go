package catalog_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func TestReadLimited(t *testing.T) {
	for _, tt := range []struct {
		size, max int64
		tooLarge  bool
	}{{0, 4, false}, {3, 4, false}, {4, 4, false}, {5, 4, true}, {1 << 20, 4, true}} {
		in := bytes.Repeat([]byte("x"), int(tt.size))
		// OneByteReader: the limit must hold however the reads fall.
		b, err := catalog.ReadLimited(iotest.OneByteReader(bytes.NewReader(in)), tt.max)
		var tl *catalog.TooLargeError
		switch {
		case tt.tooLarge && (!errors.As(err, &tl) || tl.Limit != tt.max):
			t.Errorf("%d bytes, limit %d: error %v, want a TooLargeError", tt.size, tt.max, err)
		case !tt.tooLarge && (err != nil || !bytes.Equal(b, in)):
			t.Errorf("%d bytes, limit %d: %d bytes, error %v", tt.size, tt.max, len(b), err)
		}
	}
	if _, err := catalog.ReadLimited(iotest.ErrReader(io.ErrUnexpectedEOF), 4); !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasPrefix(err.Error(), "read: ") {
		t.Errorf("read error: %v", err)
	}
}

// lines is a parse function: one package per line, read through r.
func lines(_ context.Context, _ string, r io.Reader) ([]inventory.Package, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var pkgs []inventory.Package
	for _, l := range strings.Fields(string(b)) {
		if l == "bad" {
			return nil, errors.New("bad line")
		}
		pkgs = append(pkgs, inventory.Package{Name: l, Version: "1", Type: inventory.TypeNPM})
	}
	return pkgs, nil
}

func TestGeneric(t *testing.T) {
	other := func(context.Context, string, io.Reader) ([]inventory.Package, error) {
		return []inventory.Package{{Name: "other", Version: "1", Type: inventory.TypeNPM}}, nil
	}
	g := catalog.NewGeneric("test-lockfile", catalog.ScopeSource,
		catalog.FileParser{What: "a.lock", Match: catalog.BaseName("a.lock", "a-*.lock"), MaxSize: 16, Parse: lines},
		catalog.FileParser{What: "b.lock", Match: catalog.BaseName("*.lock"), MaxSize: 16, Parse: other},
	)
	for p, want := range map[string]bool{"a.lock": true, "x/a-dev.lock": true, "x/b.lock": true, "x/a.lock/y": false, "lock": false} {
		if g.Match(p) != want {
			t.Errorf("Match(%q) = %v", p, !want)
		}
	}
	if catalog.For([]catalog.Cataloger{g}, catalog.ScopeImage) != nil {
		t.Error("a source-scope cataloger ran for an image")
	}

	files := map[string][]byte{
		"app/a.lock":     []byte("one two"),
		"app/b.lock":     []byte("ignored"),
		"big/a.lock":     bytes.Repeat([]byte("x "), 9), // 18 bytes
		"broken/a.lock":  []byte("ok bad"),
		"app/README.txt": []byte("not read"),
	}
	col := collect(t, context.Background(), []catalog.Cataloger{g}, layerOf(t, files))
	var got []string
	for _, p := range col.Packages() {
		if p.FoundBy != "test-lockfile" {
			t.Errorf("%s FoundBy %q", p.Name, p.FoundBy)
		}
		got = append(got, p.Locations[0].Path+":"+p.Name)
	}
	if want := "/app/a.lock:one /app/a.lock:two /app/b.lock:other"; strings.Join(got, " ") != want {
		t.Errorf("packages %q, want %q", got, want)
	}
	warns := strings.Join(col.Warnings(), "\n")
	for _, want := range []string{
		"test-lockfile: /big/a.lock: a.lock /big/a.lock is over the 16-byte limit",
		"test-lockfile: /broken/a.lock: a.lock /broken/a.lock: bad line",
	} {
		if !strings.Contains(warns, want) {
			t.Errorf("warnings %q lack %q", warns, want)
		}
	}

	// The package-count limit holds for every registration.
	few := catalog.NewGeneric("few", catalog.ScopeSource, catalog.FileParser{What: "a.lock", Match: catalog.BaseName("a.lock"), MaxSize: 16, MaxPackages: 2, Parse: lines})
	if pkgs, err := few.Parse(context.Background(), catalog.Input{Path: "/a.lock", Reader: strings.NewReader("a b"), Size: 3}); err != nil || len(pkgs) != 2 {
		t.Errorf("at the package limit: %d packages, %v", len(pkgs), err)
	}
	_, err := few.Parse(context.Background(), catalog.Input{Path: "/a.lock", Reader: strings.NewReader("a b c"), Size: 5})
	var tm *catalog.TooManyPackagesError
	if !errors.As(err, &tm) || !strings.Contains(err.Error(), "a.lock /a.lock: more than 2 packages in one a.lock") {
		t.Errorf("over the package limit: %v", err)
	}

	// A Size that understates the content: the read itself stops at the
	// limit, and the error still names the file.
	_, err = g.Parse(context.Background(), catalog.Input{Path: "/lie/a.lock", Reader: strings.NewReader(strings.Repeat("y ", 100)), Size: 1})
	var tl *catalog.TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "a.lock /lie/a.lock is over the 16-byte limit") {
		t.Errorf("understated size: %v", err)
	}
}
