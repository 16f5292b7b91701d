package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// HeaderScanID names the stored scan in an upload's response.
const HeaderScanID = "X-Bulkhead-Scan-Id"

// UploadOptions are an upload's query parameters.
type UploadOptions struct {
	// Digest is the image's manifest digest when the document carries
	// none (?digest=).
	Digest string
	// Reference is where the image came from (?reference=), for its
	// repository and the sighting; default the document's target name.
	Reference string
	// CIRun names the CI run that uploaded it (?ciRun=).
	CIRun string
}

// Ingest matches an uploaded inventory with the server's matcher, stores
// the scan (inventory, the server's vulnerability findings and the
// uploaded non-vulnerability findings) in one transaction, and returns it
// as a report and the scan's ID.
func (s *Server) Ingest(ctx context.Context, u *Upload, body []byte, o UploadOptions) (*report.Result, int64, error) {
	res, _, id, err := s.ingest(ctx, u, body, o, false)
	return res, id, err
}

// ingest is Ingest; with answer, it also returns the upload's answer (the
// compact JSON report writeReport would write), built from the same JSON
// bytes the store keeps (nil when the result has warnings or diagnostics
// of its own: then writeReport renders it).
func (s *Server) ingest(ctx context.Context, u *Upload, body []byte, o UploadOptions, answer bool) (*report.Result, []byte, int64, error) {
	res, err := pipeline.Inventory(ctx, u.Inventory, pipeline.Options{Matcher: s.Matcher()})
	if err != nil {
		return nil, nil, 0, err
	}
	out := res.Result
	out.Findings = append(out.Findings, u.Findings...)
	match.Sort(out.Findings)
	out.Scanners = []string{"vuln"}
	digest := u.Inventory.Target.Digest
	if digest == "" {
		digest = o.Digest
	}
	if digest == "" {
		sum := sha256.Sum256(body)
		digest = "sha256:" + hex.EncodeToString(sum[:])
		out.Warnings = append(out.Warnings, fmt.Sprintf("the document names no image digest and no ?digest= was given: stored under the document's own digest %s", digest))
	}
	ref, repo := reference(u.Inventory.Target, o.Reference)
	now := time.Now().UTC()
	sc := &store.Scan{Digest: digest, Repository: repo, ScannedAt: now, Source: u.Source(), DB: out.DB, Inventory: u.Inventory, Findings: out.Findings,
		Provenance: s.uploadProvenance(ctx, u, res)}
	var enc *encodedResult
	if answer && out.Store == nil && len(out.Warnings) == 0 && len(out.Diagnostics) == 0 {
		// Encode the inventory and findings once, for the store and
		// the answer.
		if enc, err = encodeResult(out); err != nil {
			return nil, nil, 0, err
		}
		sc.Inventory, sc.Encoded = enc.inv, &store.EncodedJSON{Inventory: enc.invJSON, Findings: enc.findingsJSON}
	}
	seen := &store.Sighting{Digest: digest, Reference: ref, Kind: "ci", CIRun: o.CIRun, SeenAt: now}
	id, err := s.store.PutScan(ctx, sc, seen)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("store the upload: %w", err)
	}
	s.scans.WithLabelValues(sc.Source).Inc()
	s.snap.changed()
	if enc == nil {
		return out, nil, id, nil
	}
	return out, enc.answer(out), id, nil
}

func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, s.cfg.MaxUpload)
	if !ok {
		return
	}
	u, err := DecodeUpload(r.Header.Get("Content-Type"), body)
	if err != nil {
		s.fail(w, err)
		return
	}
	if d := u.Inventory.Target.Digest; d != "" && !validDigest(d) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the document's image digest %q is not sha256:<64 hex digits>", d))
		return
	}
	q := r.URL.Query()
	o := UploadOptions{Digest: q.Get("digest"), Reference: q.Get("reference"), CIRun: q.Get("ciRun")}
	if o.Digest != "" && !validDigest(o.Digest) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("digest %q is not sha256:<64 hex digits>", o.Digest))
		return
	}
	res, answer, id, err := s.ingest(r.Context(), u, body, o, true)
	if err != nil {
		s.fail(w, err)
		return
	}
	if answer != nil {
		s.writeAnswer(w, http.StatusCreated, answer, id)
		return
	}
	s.writeReport(w, http.StatusCreated, res, id)
}

// writeReport answers with a bulkhead JSON report (rendered in full before
// the status is sent, so an error is still a 500), compact: a program reads
// it, and the indentation cost as much CPU as the encoding.
func (s *Server) writeReport(w http.ResponseWriter, status int, res *report.Result, id int64) {
	var buf bytes.Buffer
	if err := report.ResultJSONCompact(&buf, res); err != nil {
		s.fail(w, err)
		return
	}
	s.writeAnswer(w, status, buf.Bytes(), id)
}

// writeAnswer sends a rendered report of scan id.
func (s *Server) writeAnswer(w http.ResponseWriter, status int, doc []byte, id int64) {
	w.Header().Set("Content-Type", MediaBulkhead)
	w.Header().Set(HeaderScanID, strconv.FormatInt(id, 10))
	w.Header().Set("Location", "/api/v1/scans/"+strconv.FormatInt(id, 10))
	w.WriteHeader(status)
	w.Write(doc)
}

// handleScan answers a stored scan as a bulkhead JSON report.
func (s *Server) handleScan(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	sc, err := s.store.Scan(r.Context(), id)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.writeReport(w, http.StatusOK, scanReport(sc), sc.ID)
}

// scanReport is a stored scan as a report.
func scanReport(sc *store.Scan) *report.Result {
	return &report.Result{Inventory: sc.Inventory, Findings: sc.Findings, Scanners: []string{"vuln"}, DB: sc.DB}
}

func validDigest(d string) bool {
	const p = "sha256:"
	if len(d) != len(p)+64 || d[:len(p)] != p {
		return false
	}
	_, err := hex.DecodeString(d[len(p):])
	return err == nil
}

// reference is the image reference and repository of an upload: the one
// given (?reference=), else the target's name when the image came from a
// registry, else its first repository tag (an archive, a daemon). A
// target named by a file ("app.tar") has none.
func reference(t inventory.Target, given string) (ref, repo string) {
	switch {
	case given != "":
		ref = given
	case t.Source == "registry":
		ref = t.Name
	case len(t.RepoTags) > 0:
		ref = t.RepoTags[0]
	default:
		return t.Name, ""
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref, ""
	}
	return r.Name(), r.Context().Name()
}
