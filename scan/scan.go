// Package scan runs the single streaming walk over an image with every
// visitor that a scan needs (OS detection, package catalogers, and whatever
// later scanners register) and assembles the inventory.
package scan

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/catalog/all"
	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/distro"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// Options configure a scan.
type Options struct {
	// TempDir is where the scan makes its own temp directory (default
	// os.TempDir()); nothing is written anywhere else.
	TempDir string
	// Catalogers to run; default all.Catalogers().
	Catalogers []catalog.Cataloger
	// Scope selects catalogers: installed packages (images, root
	// filesystems; the default) and/or declared dependencies (source trees).
	Scope catalog.Scope
	// Visitors are extra walk visitors offered the same single walk.
	Visitors []walk.Visitor
	// Scanners produce findings from the same walk (secrets, the image
	// audit, ...): their visitors join the walk, their Findings run after.
	Scanners []Scanner
	// Jobs is how many layers are read at once.
	Jobs int
	// Progress is told as layers start and finish.
	Progress func(walk.Progress)
	// Limits for hostile input (zero: the walk's defaults).
	MaxFileSize, MaxLayerBytes int64
	// MaxEntries sets the walk's entry limits, per image and per layer
	// (zero: walk.DefaultMaxImageEntries and walk.DefaultMaxEntries).
	MaxEntries int
}

// Result is what one walk produced.
type Result struct {
	Inventory *inventory.Inventory
	// Tree is the final filesystem view, for scanners that look at it after
	// the walk.
	Tree *walk.Tree
	// Image is the scanned image (its config: user, env, history, labels).
	Image *image.Image
	// Findings of the Scanners.
	Findings []finding.Finding
}

// Scanner is a finding scanner that rides the single walk over an image:
// secrets in files, the image-configuration audit, and the like.
type Scanner interface {
	// Name is the --scanners value ("secret", "misconfig").
	Name() string
	// Visitor joins the walk; nil when the scanner needs no file content.
	Visitor() walk.Visitor
	// Findings runs after the walk, with the inventory and the final view.
	Findings(ctx context.Context, r *Result) ([]finding.Finding, error)
}

// Image scans an opened image.
func Image(ctx context.Context, img *image.Image, opts Options) (*Result, error) {
	base := opts.TempDir
	if base == "" {
		base = os.TempDir()
	}
	tmp, err := os.MkdirTemp(base, "bulkhead-scan-")
	if err != nil {
		return nil, fmt.Errorf("make the scan's temp directory: %w (set TMPDIR)", err)
	}
	defer os.RemoveAll(tmp)

	cats := opts.Catalogers
	if cats == nil {
		cats = all.Catalogers()
	}
	scope := opts.Scope
	if scope == 0 {
		scope = catalog.ScopeImage
	}
	cats = catalog.For(cats, scope)
	layers := img.InventoryLayers()
	detector := distro.NewDetector()
	collector := catalog.NewCollector(ctx, cats, layers, tmp)
	visitors := append([]walk.Visitor{detector, collector}, opts.Visitors...)
	for _, sc := range opts.Scanners {
		if v := sc.Visitor(); v != nil {
			visitors = append(visitors, v)
		}
	}

	tree, err := walk.Walk(ctx, img.WalkLayers(), visitors, walk.Options{
		TempDir:       tmp,
		Jobs:          opts.Jobs,
		Progress:      opts.Progress,
		MaxFileSize:   opts.MaxFileSize,
		MaxLayerBytes: opts.MaxLayerBytes,

		MaxEntries:      opts.MaxEntries,
		MaxImageEntries: opts.MaxEntries,
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", img.Name, err)
	}
	inv := &inventory.Inventory{Target: img.Target(), OS: detector.OS(), Packages: collector.Packages()}
	if img.Source == image.SourceRootfs || img.Source == image.SourceDir {
		// A directory has no layers: locations are paths only.
		inv.Target.Layers = nil
		for i := range inv.Packages {
			for j := range inv.Packages[i].Locations {
				inv.Packages[i].Locations[j].Layer = nil
			}
		}
	}
	setPURLs(inv, cats)
	ds := append(append([]diag.Diagnostic{}, tree.Diagnostics()...), collector.Diagnostics()...)
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Message < ds[j].Message })
	inv.Diagnose(ds...)
	inv.Incomplete = collector.Incomplete()
	inv.Sort()
	res := &Result{Inventory: inv, Tree: tree, Image: img}
	for _, sc := range opts.Scanners {
		fs, err := sc.Findings(ctx, res)
		if err != nil {
			return nil, fmt.Errorf("%s scanner: %w", sc.Name(), err)
		}
		res.Findings = append(res.Findings, fs...)
	}
	return res, nil
}

func setPURLs(inv *inventory.Inventory, cats []catalog.Cataloger) {
	byName := map[string]catalog.PURLer{}
	for _, c := range cats {
		if p, ok := c.(catalog.PURLer); ok {
			byName[c.Name()] = p
		}
	}
	for i := range inv.Packages {
		p := &inv.Packages[i]
		if p.PURL != "" {
			continue
		}
		if pu, ok := byName[p.FoundBy]; ok {
			p.PURL = pu.PURL(p, inv.OS)
		}
	}
}
