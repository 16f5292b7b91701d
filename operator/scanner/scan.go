// Package scanner scans image digests for the operator and bulkhead k8s:
// each digest once, however many workloads run it, in a bounded worker
// pool, through the one scan pipeline (pipeline.Run with a shared
// matcher). With bulkhead server configured, a digest the server already
// holds is taken from it, not pulled; a new scan is uploaded to it.
package scanner

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/client"
)

// Target is one digest to scan and where to pull it from.
type Target struct {
	Digest     string // "sha256:<hex>"
	Repository string // "registry/repo"
	Auth       authn.Authenticator
}

// Pinned is repository@digest.
func (t Target) Pinned() string { return t.Repository + "@" + t.Digest }

// Config is how digests are scanned.
type Config struct {
	// Matcher is the shared vulnerability matcher (required unless Server
	// is set).
	Matcher *pipeline.Matcher
	// Insecure allows plain HTTP and unverified TLS for registries.
	Insecure bool
	// TempDir is where each scan makes its temp directory.
	TempDir string
	// Server, when set, is bulkhead server: digests it holds are not
	// scanned again, and new scans are uploaded to it. ServerURL is its
	// address, written into the reports.
	Server    *client.Client
	ServerURL string
	// Executor, when set, runs the scans the server cannot answer
	// somewhere else (package jobs: as Kubernetes Jobs that run bulkhead
	// image --server); nil scans in this process.
	Executor Executor
}

// Executor runs one digest's scan outside the operator's own pipeline.
type Executor interface {
	Scan(ctx context.Context, t Target) (*Outcome, error)
}

// Outcome is one digest's result.
type Outcome struct {
	Result    *report.Result
	ScannedAt time.Time
	// ScanID is the server's stored scan (0 without a server).
	ScanID int64
	// FromServer is true when the server already held the digest and
	// nothing was pulled.
	FromServer bool
	// Job names the Kubernetes Job ("namespace/name") that scanned it, in
	// Job mode.
	Job string
}

// Scan scans one digest: from the server when it holds it, else with
// pipeline.Run (uploading the result when a server is configured).
func (c *Config) Scan(ctx context.Context, t Target) (*Outcome, error) {
	if c.Server != nil {
		if o, err := c.FromServer(ctx, t); err != nil || o != nil {
			return o, err
		}
	}
	if c.Executor != nil {
		return c.Executor.Scan(ctx, t)
	}
	if c.Matcher == nil && c.Server == nil {
		return nil, fmt.Errorf("scan %s: no vulnerability matcher and no server", t.Pinned())
	}
	// With a server, the image is walked here and matched there (as
	// bulkhead image --server): the server's findings are the report's.
	m := c.Matcher
	if c.Server != nil {
		m = nil
	}
	res, err := pipeline.Run(ctx, t.Pinned(), pipeline.Options{Matcher: m, Insecure: c.Insecure, TempDir: c.TempDir, Auth: t.Auth})
	if err != nil {
		return nil, err
	}
	res.Scanners = []string{"vuln"}
	out := &Outcome{Result: res.Result, ScannedAt: time.Now()}
	if c.Server != nil {
		rep, err := c.Server.UploadResult(ctx, res.Result, client.UploadOptions{Digest: t.Digest, Reference: t.Pinned()})
		if err != nil {
			return nil, fmt.Errorf("upload the scan of %s to %s: %w", t.Pinned(), c.ServerURL, err)
		}
		out.Result, out.ScanID = rep.Result, rep.ScanID
	}
	return out, nil
}

// maxServerPages bounds the listing pages read to find a digest.
const maxServerPages = 50

// serverImage is one entry of GET /api/v1/images (store.ImageSummary).
type serverImage struct {
	Digest    string    `json:"digest"`
	ScanID    int64     `json:"scanID"`
	ScannedAt time.Time `json:"scannedAt"`
}

// FromServer returns the server's latest scan of t's digest, or nil when
// it has none (or no server is configured).
func (c *Config) FromServer(ctx context.Context, t Target) (*Outcome, error) {
	if c.Server == nil {
		return nil, nil
	}
	var after int64
	for range maxServerPages {
		q := url.Values{"repository": {t.Repository}, "limit": {"1000"}}
		if after > 0 {
			q.Set("after", fmt.Sprint(after))
		}
		var page []serverImage
		if err := c.Server.Get(ctx, "/api/v1/images", q, &page); err != nil {
			return nil, fmt.Errorf("ask %s for %s: %w", c.ServerURL, t.Pinned(), err)
		}
		for _, im := range page {
			if im.Digest == t.Digest {
				rep, err := c.Server.Scan(ctx, im.ScanID)
				if err != nil {
					return nil, fmt.Errorf("read scan %d of %s from %s: %w", im.ScanID, t.Pinned(), c.ServerURL, err)
				}
				// The server re-matches what it stores when its database changes:
				// its findings are current now, whenever it was pulled.
				return &Outcome{Result: rep.Result, ScannedAt: time.Now(), ScanID: im.ScanID, FromServer: true}, nil
			}
			after = im.ScanID
		}
		if len(page) == 0 {
			return nil, nil
		}
	}
	return nil, nil
}
