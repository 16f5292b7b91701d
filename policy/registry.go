package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/sync/singleflight"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/secret"
	"github.com/bulkhead-sec/bulkhead/secret/imagescan"
	"github.com/bulkhead-sec/bulkhead/sign"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// Registry is the Facts that reads images from their registries: it
// resolves tags with a HEAD request, verifies with package sign and scans
// with package scan (vulnerabilities from the local database, secrets, base
// detection). Scans are cached by digest in memory and, with CacheDir, on
// disk; a digest's content never changes, so a cached scan is only as old as
// its vulnerability data.
type Registry struct {
	// Insecure allows plain HTTP and unverified TLS.
	Insecure bool
	// DBPath is the vulnerability database (vulndb.DefaultPath() when
	// empty; built from the bundled snapshot when missing).
	DBPath string
	// BaseCatalog is the base-image catalog for baseImages rules
	// (base.DefaultPath() when empty; no detection when it does not exist).
	BaseCatalog string
	// CacheDir keeps scans on disk across restarts ("" = memory only).
	CacheDir string
	// TagTTL is how long a tag's digest is reused (0: resolve every time,
	// so a re-tagged image is seen at once).
	TagTTL time.Duration
	// VerifyTTL is how long a verification verdict for a digest is reused
	// (0: verify every time).
	VerifyTTL time.Duration
	// ScanTTL is how long a cached scan is trusted before it is redone
	// against fresher vulnerability data (0: 24h).
	ScanTTL time.Duration
	// TempDir is where scans spool layers.
	TempDir string

	mu       sync.Mutex
	tags     map[string]timed[*sign.Target]
	verified map[string]timed[error]
	// manifests are the layer descriptors of digests (ManifestFacts).
	manifests map[string]timed[[]ImageManifest]
	scans     map[string]*Scan
	flight    singleflight.Group
	dbOnce    sync.Once
	db        *vulndb.DB
	dbInfo    vulndb.Status
	dbErr     error
	catalog   *base.Catalog
}

type timed[T any] struct {
	v  T
	at time.Time
}

// Bounds on the in-memory caches: a webhook runs for months and sees many
// images; the disk cache holds the scans beyond these.
const (
	maxMemoryEntries = 4096
	maxMemoryScans   = 256
)

// prune keeps a cache map under max entries: expired ones go first, then
// arbitrary ones (map order), down to three quarters of max. Callers hold
// r.mu.
func prune[K comparable, V any](m map[K]V, max int, expired func(V) bool) {
	if len(m) < max {
		return
	}
	for k, v := range m {
		if expired(v) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) <= max*3/4 {
			break
		}
		delete(m, k)
	}
}

func (r *Registry) signOptions(ctx context.Context) sign.Options {
	o := sign.Options{Remote: image.RemoteOptions(ctx, image.Options{Insecure: r.Insecure})}
	if r.Insecure {
		o.Name = append(o.Name, name.Insecure)
	}
	return o
}

func (r *Registry) target(ctx context.Context, img *Image) (*sign.Target, error) {
	// The canonical reference when the engine made one; sign.Resolve
	// canonicalises anyway, so both spellings resolve the same repository.
	key := img.Canonical
	if key == "" {
		key = img.Ref
	}
	r.mu.Lock()
	if r.tags == nil {
		r.tags = map[string]timed[*sign.Target]{}
	}
	t, ok := r.tags[key]
	r.mu.Unlock()
	pinned := strings.Contains(key, "@sha256:")
	if ok && (pinned || time.Since(t.at) < r.TagTTL) {
		return t.v, nil
	}
	v, err, _ := r.flight.Do("resolve\x00"+key, func() (any, error) {
		return sign.Resolve(ctx, key, r.signOptions(ctx))
	})
	if err != nil {
		return nil, err
	}
	tg := v.(*sign.Target)
	r.mu.Lock()
	prune(r.tags, maxMemoryEntries, func(t timed[*sign.Target]) bool { return time.Since(t.at) >= r.TagTTL })
	r.tags[key] = timed[*sign.Target]{tg, time.Now()}
	r.mu.Unlock()
	return tg, nil
}

// Resolve implements Facts.
func (r *Registry) Resolve(ctx context.Context, img *Image) (string, error) {
	t, err := r.target(ctx, img)
	if err != nil {
		return "", err
	}
	return t.Digest.DigestStr(), nil
}

// Verify implements Facts: one of the rule's keys must have signed the
// digest (in the rule's layouts, with its annotations), and each required
// attestation must verify with one of the keys.
func (r *Registry) Verify(ctx context.Context, img *Image, sr *SignatureRule) error {
	cacheKey := fmt.Sprintf("%s\x00%p", img.Repo+"@"+img.Digest, sr)
	r.mu.Lock()
	if r.verified == nil {
		r.verified = map[string]timed[error]{}
	}
	c, ok := r.verified[cacheKey]
	r.mu.Unlock()
	if ok && time.Since(c.at) < r.VerifyTTL {
		return c.v
	}
	t, err := r.target(ctx, img)
	if err != nil {
		return err
	}
	if t.Digest.DigestStr() != img.Digest {
		t = &sign.Target{Ref: t.Ref, Digest: t.Digest.Context().Digest(img.Digest), Descriptor: t.Descriptor}
	}
	err = r.verify(ctx, t, sr)
	var v *Violation
	if err == nil || errors.As(err, &v) {
		r.mu.Lock()
		prune(r.verified, maxMemoryEntries, func(t timed[error]) bool { return time.Since(t.at) >= r.VerifyTTL })
		r.verified[cacheKey] = timed[error]{err, time.Now()}
		r.mu.Unlock()
	}
	return err
}

func (r *Registry) verify(ctx context.Context, t *sign.Target, sr *SignatureRule) error {
	o := sign.VerifyOptions{Options: r.signOptions(ctx), Layouts: sr.layouts, Annotations: sr.Annotations, TLog: sr.tlog}
	var rejected []string
	signed := false
	for i, v := range sr.verifiers {
		_, err := sign.VerifySignatures(ctx, t, v, o)
		if err == nil {
			signed = true
			break
		}
		var ve *sign.VerifyError
		if !errors.As(err, &ve) {
			return err
		}
		rejected = append(rejected, fmt.Sprintf("%s: %v", sr.Keys[i], err))
	}
	if !signed {
		return &Violation{fmt.Sprintf("no valid signature by a trusted key (%s)", strings.Join(rejected, "; "))}
	}
	for i, pt := range sr.predicates {
		found := false
		for _, v := range sr.verifiers {
			ao := o
			ao.PredicateType = pt
			ao.Annotations = nil
			got, err := sign.VerifyAttestations(ctx, t, v, ao)
			if err == nil && len(got) > 0 {
				found = true
				break
			}
			var ve *sign.VerifyError
			if err != nil && !errors.As(err, &ve) {
				return err
			}
		}
		if !found {
			return &Violation{fmt.Sprintf("no %s attestation (%s) by a trusted key", sr.Attestations[i], pt)}
		}
	}
	return nil
}

// Cached returns the scan of a digest if one is cached (memory, then disk).
func (r *Registry) Cached(digest string) *Scan {
	r.mu.Lock()
	sc := r.scans[digest]
	r.mu.Unlock()
	if sc != nil && r.fresh(sc) {
		return sc
	}
	if r.CacheDir == "" {
		return nil
	}
	b, err := os.ReadFile(r.cachePath(digest))
	if err != nil {
		return nil
	}
	sc = &Scan{}
	if json.Unmarshal(b, sc) != nil || sc.Digest != digest || !r.fresh(sc) {
		return nil
	}
	r.store(sc, false)
	return sc
}

func (r *Registry) fresh(sc *Scan) bool {
	ttl := r.ScanTTL
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	return time.Since(sc.ScannedAt) < ttl
}

func (r *Registry) cachePath(digest string) string {
	sum := sha256.Sum256([]byte(digest))
	return filepath.Join(r.CacheDir, "scans", hex.EncodeToString(sum[:])+".json")
}

func (r *Registry) store(sc *Scan, disk bool) {
	r.mu.Lock()
	if r.scans == nil {
		r.scans = map[string]*Scan{}
	}
	prune(r.scans, maxMemoryScans, func(s *Scan) bool { return !r.fresh(s) })
	r.scans[sc.Digest] = sc
	r.mu.Unlock()
	if !disk || r.CacheDir == "" {
		return
	}
	b, err := json.Marshal(sc)
	if err != nil {
		return
	}
	p := r.cachePath(sc.Digest)
	if os.MkdirAll(filepath.Dir(p), 0o700) != nil {
		return
	}
	// Write then rename: a reader never sees half a scan.
	tmp := p + ".tmp" + fmt.Sprint(time.Now().UnixNano())
	if os.WriteFile(tmp, b, 0o600) == nil {
		os.Rename(tmp, p)
	} else {
		os.Remove(tmp)
	}
}

// Scan implements Facts. Concurrent requests for one digest share one
// scan; the scan itself runs to completion even when ctx ends first (the
// admission budget ran out), so that it fills the cache for the retry.
func (r *Registry) Scan(ctx context.Context, img *Image) (*Scan, error) {
	if sc := r.Cached(img.Digest); sc != nil {
		return sc, nil
	}
	ch := r.flight.DoChan("scan\x00"+img.Digest, func() (any, error) {
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		defer cancel()
		sc, err := r.scan(bg, img)
		if err == nil {
			r.store(sc, true)
		}
		return sc, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Scan), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("no cached scan and the scan did not finish in time (%w); it goes on in the background", ctx.Err())
	}
}

func (r *Registry) openDB() (*vulndb.DB, vulndb.Status, error) {
	r.dbOnce.Do(func() {
		r.db, _, r.dbErr = vulndb.OpenForScan(r.DBPath)
		if r.dbErr == nil {
			r.dbInfo, r.dbErr = r.db.Status()
		}
		cat := r.BaseCatalog
		if cat == "" {
			cat = base.DefaultPath()
		}
		if _, err := os.Stat(cat); err == nil {
			r.catalog, _ = base.Load(cat)
		}
	})
	return r.db, r.dbInfo, r.dbErr
}

// Close releases the vulnerability database.
func (r *Registry) Close() error {
	if r.db != nil {
		return r.db.Close()
	}
	return nil
}

func (r *Registry) scan(ctx context.Context, img *Image) (*Scan, error) {
	db, _, err := r.openDB()
	if err != nil {
		return nil, err
	}
	o, err := scanOptions(db)
	if err != nil {
		return nil, err
	}
	o.TempDir, o.Insecure = r.TempDir, r.Insecure
	res, err := pipeline.Run(ctx, img.Repo+"@"+img.Digest, o)
	if err != nil {
		return nil, err
	}
	return facts(res, r.catalog)
}

// scanOptions are what policies need of a scan: vulnerabilities (all of
// them, unsuppressed) and secrets.
func scanOptions(db *vulndb.DB) (pipeline.Options, error) {
	m, err := pipeline.NewMatcher(db, pipeline.MatchOptions{})
	if err != nil {
		return pipeline.Options{}, err
	}
	return pipeline.Options{Scanners: []scan.Scanner{imagescan.New(secret.Default())}, Matcher: m}, nil
}

// ScanImage scans an opened image for what policies need: vulnerabilities
// (all of them, unsuppressed), secrets and, with a catalog, its base. The
// scan is dated by the oldest data of the ecosystems its packages were
// looked up in, not by the database's last write.
func ScanImage(ctx context.Context, opened *image.Image, db *vulndb.DB, catalog *base.Catalog, tmp string) (*Scan, error) {
	o, err := scanOptions(db)
	if err != nil {
		return nil, err
	}
	o.TempDir = tmp
	res, err := pipeline.Scan(ctx, opened, o)
	if err != nil {
		return nil, err
	}
	return facts(res, catalog)
}

// facts are the policy's view of a scan.
func facts(res *pipeline.Result, catalog *base.Catalog) (*Scan, error) {
	img := res.Image
	sc := &Scan{
		Digest:      img.Digest.String(),
		Findings:    res.Findings,
		Target:      res.Inventory.Target,
		DBUpdated:   res.DB.UpdatedAt,
		DBEcosystem: res.DB.OldestEcosystem,
		DBSource:    res.DB.Source,
		Config:      img.Config(),
		ScannedAt:   time.Now(),
		Incomplete:  res.Inventory.Incomplete,
	}
	if catalog != nil {
		det := base.Detect(catalog, res.Inventory.Target.DiffIDs(), res.Annotations)
		sc.Base, sc.BaseReason = det.BaseRef, det.Reason
	} else {
		sc.BaseReason = "no base-image catalog: index bases with bulkhead base index"
	}
	return sc, nil
}
