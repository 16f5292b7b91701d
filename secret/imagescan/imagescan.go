// Package imagescan is the "secret" scanner of an image scan: it runs the
// secret package's rules over every text file of every layer during the
// single walk, and over the image's configuration (history, labels, ENV,
// annotations) after it.
package imagescan

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/secret"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// skipExts are formats that hold no text secrets worth a read (compressed,
// media, compiled). Keys inside archives are out of scope here.
var skipExts = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".ico": true, ".bmp": true, ".webp": true, ".svgz": true,
	".gz": true, ".xz": true, ".bz2": true, ".zst": true, ".zip": true, ".jar": true, ".war": true, ".whl": true, ".7z": true, ".tgz": true,
	".so": true, ".a": true, ".o": true, ".pyc": true, ".pyo": true, ".class": true, ".mo": true, ".woff": true, ".woff2": true, ".ttf": true, ".otf": true,
	".mp3": true, ".mp4": true, ".wav": true, ".ogg": true, ".pdf": true, ".deb": true, ".rpm": true, ".apk": true,
}

// Scanner is the "secret" scanner of an image: it reads every regular
// file of every layer (a secret deleted by a later layer is still in the
// image) during the single walk, and the image's configuration strings
// (secret.ConfigStrings) after it.
type Scanner struct {
	s *secret.Scanner

	mu    sync.Mutex
	found []layerMatch

	files, bytes, skipped, busy atomic.Int64
}

type layerMatch struct {
	path  string
	layer int
	m     secret.Match
}

// New wraps a secret.Scanner for the image walk.
func New(s *secret.Scanner) *Scanner { return &Scanner{s: s} }

var _ scan.Scanner = (*Scanner)(nil)

// reset forgets what an earlier walk found (benchmarks reuse a scanner).
func (is *Scanner) reset() {
	is.mu.Lock()
	is.found = nil
	is.mu.Unlock()
	is.files.Store(0)
	is.bytes.Store(0)
	is.skipped.Store(0)
	is.busy.Store(0)
}

// Name is the --scanners value.
func (*Scanner) Name() string { return "secret" }

// Visitor joins the walk.
func (is *Scanner) Visitor() walk.Visitor { return is }

// Wants every regular, non-empty file within the size bound that is not
// allow-listed or of a binary format.
func (is *Scanner) Wants(e *walk.Entry) bool {
	if e.Kind != walk.KindFile || e.Size == 0 {
		return false
	}
	if e.Size > is.s.MaxFileSize() {
		is.skipped.Add(1)
		return false
	}
	ext := strings.ToLower(path.Ext(e.Path))
	if skipExts[ext] {
		return false
	}
	return !is.s.AllowedPath(e.Path)
}

// Visit scans one file.
func (is *Scanner) Visit(e *walk.Entry, c *walk.Content) error {
	start := time.Now()
	defer func() { is.busy.Add(int64(time.Since(start))) }()
	data, err := is.s.Read(c)
	if err != nil {
		// Binary or over-size files are skipped; a read error is the
		// walk's to report.
		if err == secret.ErrBinary || err == secret.ErrTooLarge {
			return nil
		}
		return fmt.Errorf("secret scan %s: %w", e.Path, err)
	}
	defer is.s.Release(data)
	is.files.Add(1)
	is.bytes.Add(int64(len(data)))
	ms := is.s.Matches(data)
	if len(ms) == 0 {
		return nil
	}
	is.mu.Lock()
	for _, m := range ms {
		is.found = append(is.found, layerMatch{path: e.Path, layer: e.Layer, m: m})
	}
	is.mu.Unlock()
	return nil
}

// Stats says how much text the scanner read and scanned (files, bytes) and
// the time its visits took (reading and matching, summed over layers).
func (is *Scanner) Stats() (files, bytes int64, busy time.Duration) {
	return is.files.Load(), is.bytes.Load(), time.Duration(is.busy.Load())
}

// Findings reports each secret with the layer that holds it, and whether a
// later layer deleted or replaced it (it stays in the image either way).
func (is *Scanner) Findings(_ context.Context, r *scan.Result) ([]finding.Finding, error) {
	is.mu.Lock()
	found := append([]layerMatch{}, is.found...)
	is.mu.Unlock()
	sort.Slice(found, func(i, j int) bool {
		if found[i].layer != found[j].layer {
			return found[i].layer < found[j].layer
		}
		if found[i].path != found[j].path {
			return found[i].path < found[j].path
		}
		return found[i].m.StartLine < found[j].m.StartLine
	})
	target := ""
	if r != nil && r.Inventory != nil {
		target = r.Inventory.Target.Name
	}
	var out []finding.Finding
	for _, lm := range found {
		f := secret.NewFinding("/"+lm.path, lm.m)
		if target != "" {
			f.Target = target
		}
		if r != nil && r.Inventory != nil && lm.layer >= 0 && lm.layer < len(r.Inventory.Target.Layers) {
			l := r.Inventory.Target.Layers[lm.layer]
			f.Location.Layer = &l
		}
		if r != nil && r.Tree != nil {
			switch r.Tree.State(lm.path, lm.layer) {
			case walk.Deleted:
				f.Description += " (deleted by a later layer, but still in this layer of the image)"
			case walk.Shadowed:
				f.Description += " (replaced by a later layer, but still in this layer of the image)"
			}
		}
		out = append(out, f)
	}
	return append(out, is.configFindings(r, target)...), nil
}

// configFindings scans the image config's strings, and the manifest's and
// the index's annotations where the image has them.
func (is *Scanner) configFindings(r *scan.Result, target string) []finding.Finding {
	if r == nil || r.Image == nil || r.Image.Config() == nil {
		return nil
	}
	img := r.Image
	cfg := img.Config()
	var layers []inventory.Layer
	if r.Inventory != nil {
		layers = r.Inventory.Target.Layers
	}
	// History entry -> layer: entries marked empty_layer have none, and a
	// history that does not match the layers names none.
	layerAt := make([]int, len(cfg.History))
	n := 0
	for i, e := range cfg.History {
		layerAt[i] = -1
		if !e.EmptyLayer {
			layerAt[i] = n
			n++
		}
	}
	layerOf := func(h int) *inventory.Layer {
		if n != len(layers) || h < 0 || h >= len(layerAt) || layerAt[h] < 0 {
			return nil
		}
		l := layers[layerAt[h]]
		return &l
	}
	strs := secret.ConfigStrings(cfg, img.ManifestAnnotations, img.IndexAnnotations)
	return is.s.ScanConfig(strs, target, layerOf)
}
