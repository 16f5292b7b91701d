// Package pipeline is the application layer between the front ends (the
// commands in internal/cli, the admission policy's registry facts, and the
// server and operator to come) and the domain packages. It holds the one
// scan pipeline:
//
//	open the source -> walk it once with the catalogers and the finding
//	scanners -> match the inventory against the vulnerability database ->
//	suppress (ignore file, VEX) -> a result with its warnings.
//
// Front ends turn their flags or requests into Options, call Run (a
// reference), Scan (an image already open) or Inventory (an inventory read
// elsewhere, such as an SBOM), and render the Result.
package pipeline

import (
	"context"
	"fmt"
	"os"
	"runtime/trace"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// Options configure one run of the pipeline.
type Options struct {
	// TempDir is where Run makes the scan's own temp directory (default
	// os.TempDir()); Scan uses it as is. Nothing is written anywhere else.
	TempDir string

	// Opening (Run only).

	// Platform picks one image from a multi-platform index (nil: the host's).
	Platform *v1.Platform
	// Insecure allows plain HTTP and unverified TLS for registries.
	Insecure bool
	// OpenProgress is told the bytes read while the image is opened.
	OpenProgress func(n int64)
	// Auth, when set, is the registry credential for this run instead of
	// the keychain's (image.Options.Auth).
	Auth authn.Authenticator
	// Decrypter decrypts encrypted layers as they are walked (each once);
	// without it an image with encrypted layers is an
	// *image.EncryptedLayersError and nothing is scanned.
	Decrypter image.LayerDecrypter

	// Walking.

	// WalkProgress, when set, is given the number of layers to walk and
	// returns the walk's progress callback.
	WalkProgress func(layers int) func(walk.Progress)
	// Scope selects catalogers (zero: installed packages, as in an image).
	Scope catalog.Scope
	// MaxEntries sets the walk's entry limits (zero: the walk's defaults).
	MaxEntries int
	// Scanners ride the walk (secrets, the image audit, policy checks).
	Scanners []scan.Scanner

	// Matching and suppression; with neither, no vulnerability matching.

	// Matcher is a vulnerability matcher shared by several scans (one
	// database, one ignore file, so results compare like with like). Its
	// database-level warnings and staleness are the caller's (Matcher.Info).
	Matcher *Matcher
	// Vulns opens a matcher for this run only, after the walk, and closes
	// it; its warnings (database built, stale data) go into the result.
	Vulns *MatchOptions
}

// Result is what one run produced.
type Result struct {
	// Result is the report: inventory, findings (sorted; suppressed ones
	// marked, not dropped), the database the match used, warnings beyond
	// the inventory's. Its Scanners field is the caller's to fill.
	*report.Result
	// Tree is the final filesystem view.
	Tree *walk.Tree
	// Image is the scanned image; after Run it is closed, but its name,
	// digest, source and configuration remain.
	Image *image.Image
	// Annotations are the manifest's annotations (registry and archive
	// images).
	Annotations map[string]string
	// Used are the ecosystems the match looked up (none: no match, or no
	// package has an OSV ecosystem).
	Used []string
}

// Run opens ref (any reference image.Open reads) in its own temp
// directory under o.TempDir, scans it, and removes the directory.
func Run(ctx context.Context, ref string, o Options) (*Result, error) {
	tmp, err := os.MkdirTemp(o.TempDir, "bulkhead-")
	if err != nil {
		return nil, fmt.Errorf("make a temp directory: %w (set --temp-dir or TMPDIR)", err)
	}
	defer os.RemoveAll(tmp)
	var img *image.Image
	trace.WithRegion(ctx, "open", func() {
		img, err = image.Open(ctx, ref, image.Options{Insecure: o.Insecure, TempDir: tmp, Platform: o.Platform, Progress: o.OpenProgress, Auth: o.Auth, Decrypter: o.Decrypter})
	})
	if err != nil {
		return nil, err
	}
	defer img.Close()
	o.TempDir = tmp
	return Scan(ctx, img, o)
}

// Scan runs the pipeline on an image already open: the walk with o's
// scanners, then matching and suppression.
func Scan(ctx context.Context, img *image.Image, o Options) (*Result, error) {
	var progress func(walk.Progress)
	if o.WalkProgress != nil {
		progress = o.WalkProgress(len(img.WalkLayers()))
	}
	var walked *scan.Result
	var err error
	trace.WithRegion(ctx, "walk", func() {
		walked, err = scan.Image(ctx, img, scan.Options{TempDir: o.TempDir, Scope: o.Scope, Scanners: o.Scanners, Progress: progress, MaxEntries: o.MaxEntries})
	})
	if err != nil {
		return nil, err
	}
	res := &Result{Tree: walked.Tree, Image: img}
	// The annotations of the manifest as stored (registry and OCI images).
	// Not img.Manifest(): a docker-archive has no manifest, and go-
	// containerregistry makes one by gzipping every layer again.
	res.Annotations = img.ManifestAnnotations
	if err := assess(ctx, res, walked.Inventory, walked.Findings, o); err != nil {
		return nil, err
	}
	return res, nil
}

// Inventory runs the stages after the walk (matching, suppression) on an
// inventory read elsewhere, such as an SBOM.
func Inventory(ctx context.Context, inv *inventory.Inventory, o Options) (*Result, error) {
	res := &Result{}
	if err := assess(ctx, res, inv, nil, o); err != nil {
		return nil, err
	}
	return res, nil
}

// assess matches inv and adds the findings to those the walk made.
func assess(ctx context.Context, res *Result, inv *inventory.Inventory, walked []finding.Finding, o Options) error {
	res.Result = &report.Result{Inventory: inv, Findings: walked}
	warn := func(d diag.Diagnostic) { res.Diagnose(d) }
	m := o.Matcher
	var maxAge = noAgeCheck
	if m == nil && o.Vulns != nil {
		var err error
		trace.WithRegion(ctx, "open matcher", func() { m, err = OpenMatcher(*o.Vulns) })
		if err != nil {
			return err
		}
		defer m.Close()
		res.Diagnose(m.Diagnostics()...)
		maxAge = o.Vulns.MaxAge
	}
	if m != nil {
		var fs []finding.Finding
		var used []string
		var err error
		trace.WithRegion(ctx, "match", func() { fs, used, err = m.Match(ctx, inv, warn) })
		if err != nil {
			return err
		}
		res.Findings = append(res.Findings, fs...)
		res.Used = used
		// The age of the data this scan used, not the database's newest.
		if res.DB, err = m.info(used, maxAge, warn); err != nil {
			return err
		}
	}
	match.Sort(res.Findings)
	return nil
}
