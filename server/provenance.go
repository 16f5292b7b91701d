package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/sign"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// provenance is what the server finds out about a pulled image beyond its
// findings: its base (Config.BaseCatalog) with base.Recommend's ranking,
// and its signature status under Config.SignaturePolicy. nil when the
// server has neither.
func (s *Server) provenance(ctx context.Context, res *pipeline.Result, ref string, a ScanArgs) *store.Provenance {
	var p store.Provenance
	if cat := s.cfg.BaseCatalog; cat != nil {
		p.Base = baseImage(ctx, cat, res, s.Matcher())
	}
	if pol := s.cfg.SignaturePolicy; pol != nil {
		p.Signature = s.signature(ctx, pol, ref, res.Inventory.Target.Digest, a)
	}
	if p.Base == nil && p.Signature == nil {
		return nil
	}
	return &p
}

// uploadProvenance is the provenance stored with an upload: what the
// upload says, and, when it says nothing of the base and the server has a
// base catalog, the base the server detects from the uploaded inventory's
// layers (diffIDs), as for its own scans: so `bulkhead image --server`
// gets the same base and recommendation as a scan by the server. The
// signature status stays the uploader's word, or absent (the server does
// not pull an uploaded image's signatures).
func (s *Server) uploadProvenance(ctx context.Context, u *Upload, res *pipeline.Result) *store.Provenance {
	p := u.Provenance
	cat := s.cfg.BaseCatalog
	if cat == nil || (p != nil && p.Base != nil) || len(u.Inventory.Target.DiffIDs()) == 0 {
		return p
	}
	out := &store.Provenance{}
	if p != nil {
		*out = *p
	}
	out.Base = baseImage(ctx, cat, res, s.Matcher())
	return out
}

// baseImage detects the image's base in the catalog and ranks the others.
func baseImage(ctx context.Context, cat *base.Catalog, res *pipeline.Result, m *pipeline.Matcher) *store.BaseImage {
	det := base.Detect(cat, res.Inventory.Target.DiffIDs(), res.Annotations)
	b := &store.BaseImage{Detection: det}
	if det.Base == nil {
		return b
	}
	rec, err := base.Recommend(ctx, cat, det, res.Inventory, m.Active)
	if err != nil {
		b.Note = "no recommendation: " + err.Error()
		return b
	}
	b.Recommendation = rec
	return b
}

// signature verifies the digest's signatures and attestations under the
// policy. A rule that is not met is SignatureFailed; a registry that
// cannot be read is SignatureNotChecked (the scan is stored anyway).
func (s *Server) signature(ctx context.Context, pol *sign.Policy, ref, digest string, a ScanArgs) *store.SignatureStatus {
	st := &store.SignatureStatus{CheckedBy: store.CheckedByServer, CheckedAt: time.Now().UTC().Truncate(time.Second)}
	r, err := name.ParseReference(ref)
	if err != nil {
		st.Status, st.Reason = store.SignatureNotChecked, fmt.Sprintf("reference %q: %v", ref, err)
		return st
	}
	if len(pol.Match(r.Context().Name())) == 0 {
		st.Status, st.Reason = store.SignatureNoPolicy, "no rule of the signature policy covers "+r.Context().Name()
		return st
	}
	insecure := s.cfg.Insecure || a.Insecure
	o := sign.Options{Remote: image.RemoteOptions(ctx, image.Options{Insecure: insecure, Auth: a.Auth})}
	if insecure {
		o.Name = append(o.Name, name.Insecure)
	}
	t, err := sign.Resolve(ctx, r.Context().Name()+"@"+digest, o)
	if err != nil {
		st.Status, st.Reason = store.SignatureNotChecked, "read the image's signatures: "+err.Error()
		return st
	}
	var noPass key.PassFunc = func(bool) ([]byte, error) {
		return nil, errors.New("the signature policy names a private or encrypted key; give it public keys")
	}
	results, err := pol.Verify(ctx, t, sign.VerifyOptions{Options: o, TLog: s.cfg.SignatureTLog}, noPass)
	if err != nil {
		if retryable(err) {
			st.Status, st.Reason = store.SignatureNotChecked, "read the image's signatures: "+err.Error()
		} else {
			st.Status, st.Reason = store.SignatureFailed, err.Error()
		}
		return st
	}
	st.Status = store.SignatureVerified
	for _, res := range results {
		rule := store.SignatureRule{Policy: res.Rule, Key: res.Key, TransparencyLog: res.TransparencyLog}
		for _, v := range res.Signatures {
			rule.Signatures = append(rule.Signatures, store.SignatureRef{Layout: string(v.Layout), Where: v.Where})
		}
		for _, v := range res.Attestations {
			rule.Attestations = append(rule.Attestations, store.SignatureRef{Layout: string(v.Layout), Where: v.Where, PredicateType: v.PredicateType})
		}
		st.Rules = append(st.Rules, rule)
	}
	return st
}

// handleProvenance answers a scan's base image and signature status.
func (s *Server) handleProvenance(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if _, err := s.store.Scan(r.Context(), id); err != nil {
		s.fail(w, err)
		return
	}
	p, err := s.store.Provenance(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("scan %d has no provenance: the server had no base catalog or signature policy when it scanned the image (bulkhead server --base-catalog, --signature-policy), or the upload carried none", id))
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// snapshotter keeps the fleet's daily trend (store.SnapshotFleet) current:
// a stored scan or a re-evaluation schedules a snapshot, at most one per
// interval (the last change of a burst is always taken, at the end of the
// interval).
type snapshotter struct {
	st       store.Store
	log      func(msg string, args ...any)
	interval time.Duration
	mu       sync.Mutex
	last     time.Time
	timer    *time.Timer
	stopped  bool
	wg       sync.WaitGroup
}

// changed schedules a snapshot.
func (n *snapshotter) changed() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.timer != nil || n.stopped {
		return
	}
	wait := max(n.interval-time.Since(n.last), 0)
	n.wg.Add(1)
	n.timer = time.AfterFunc(wait, n.fire)
}

func (n *snapshotter) fire() {
	defer n.wg.Done()
	n.mu.Lock()
	n.timer, n.last = nil, time.Now()
	n.mu.Unlock()
	n.snapshot()
}

func (n *snapshotter) snapshot() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.st.SnapshotFleet(ctx, time.Now()); err != nil {
		n.log("fleet trend: snapshot failed; the next stored scan retries", "err", err)
	}
}

// stop takes a pending snapshot now and waits for a running one.
func (n *snapshotter) stop() {
	n.mu.Lock()
	n.stopped = true
	t := n.timer
	pending := t != nil && t.Stop()
	if pending {
		n.timer = nil
	}
	n.mu.Unlock()
	if pending {
		n.snapshot()
		n.wg.Done()
	}
	n.wg.Wait()
}

// FleetChanged tells the server that the fleet's findings changed outside
// its own scans and uploads (a re-evaluation): the daily trend is
// snapshotted soon.
func (s *Server) FleetChanged() { s.snap.changed() }
