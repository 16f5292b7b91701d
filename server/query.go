package server

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/bulkhead-sec/bulkhead/compare"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// maxPage bounds a listing's limit.
const maxPage = 1000

// queryInt reads an optional non-negative integer query parameter.
func queryInt(w http.ResponseWriter, r *http.Request, key string, max int64) (int64, bool) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || (max > 0 && n > max) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%q: give a whole number from 0 to %d", key, v, max))
		return 0, false
	}
	return n, true
}

// queryTime reads an RFC 3339 time query parameter.
func queryTime(w http.ResponseWriter, r *http.Request, key string) (time.Time, bool) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return time.Time{}, true
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%q is not an RFC 3339 time (2026-01-02T15:04:05Z)", key, v))
		return time.Time{}, false
	}
	return t, true
}

// handleImages lists images: ?severity=HIGH (at least), ?fixed=true|false,
// ?package=NAME, ?repository=R, ?limit=N, ?after=SCANID (paging).
func (s *Server) handleImages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f store.ImageFilter
	if v := q.Get("severity"); v != "" {
		sev, err := finding.ParseSeverity(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "severity: "+err.Error())
			return
		}
		f.MinSeverity = sev
	}
	if v := q.Get("fixed"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("fixed=%q: give true or false", v))
			return
		}
		f.Fixed = &b
	}
	f.Package, f.Repository = q.Get("package"), q.Get("repository")
	limit, ok := queryInt(w, r, "limit", maxPage)
	if !ok {
		return
	}
	after, ok := queryInt(w, r, "after", 0)
	if !ok {
		return
	}
	f.Limit, f.After = int(limit), after
	imgs, err := s.store.Images(r.Context(), f)
	if err != nil {
		s.fail(w, err)
		return
	}
	if imgs == nil {
		imgs = []store.ImageSummary{}
	}
	writeJSON(w, http.StatusOK, imgs)
}

// handleAffected answers "which images and workloads have vulnerability
// {id}" (an ID or an alias).
func (s *Server) handleAffected(w http.ResponseWriter, r *http.Request) {
	aff, err := s.store.Affected(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	if aff == nil {
		aff = []store.Affected{}
	}
	writeJSON(w, http.StatusOK, aff)
}

// handleChanges lists findings that appeared or disappeared since ?since=.
func (s *Server) handleChanges(w http.ResponseWriter, r *http.Request) {
	since, ok := queryTime(w, r, "since")
	if !ok {
		return
	}
	if r.URL.Query().Get("since") == "" {
		writeError(w, http.StatusBadRequest, "give since=RFC 3339 time")
		return
	}
	limit, ok := queryInt(w, r, "limit", maxPage)
	if !ok {
		return
	}
	ch, err := s.store.Changes(r.Context(), since, int(limit))
	if err != nil {
		s.fail(w, err)
		return
	}
	if ch == nil {
		ch = []store.Change{}
	}
	writeJSON(w, http.StatusOK, ch)
}

// handleDiff diffs two scans of one repository: ?repository=R with
// ?from=ID&to=ID, or, without them, its two newest scans.
func (s *Server) handleDiff(w http.ResponseWriter, r *http.Request) {
	repo := r.URL.Query().Get("repository")
	from, ok := queryInt(w, r, "from", 0)
	if !ok {
		return
	}
	to, ok := queryInt(w, r, "to", 0)
	if !ok {
		return
	}
	if repo == "" {
		writeError(w, http.StatusBadRequest, "give repository= (the repository whose scans to compare)")
		return
	}
	ctx := r.Context()
	if from == 0 || to == 0 {
		scans, err := s.store.ScansOf(ctx, repo, 2)
		if err != nil {
			s.fail(w, err)
			return
		}
		if len(scans) < 2 {
			writeError(w, http.StatusNotFound, fmt.Sprintf("repository %s has %d scan(s); a diff needs two", repo, len(scans)))
			return
		}
		from, to = scans[1].ID, scans[0].ID
	}
	var sides [2]compare.Side
	for i, id := range []int64{from, to} {
		sc, err := s.store.Scan(ctx, id)
		if err != nil {
			s.fail(w, err)
			return
		}
		if sc.Repository != repo {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("scan %d is of repository %q, not %s", id, sc.Repository, repo))
			return
		}
		var vulns []finding.Finding
		for _, f := range match.Active(sc.Findings) {
			if f.Kind == finding.KindVulnerability {
				vulns = append(vulns, f)
			}
		}
		sides[i] = compare.Side{Inventory: sc.Inventory, Findings: vulns}
	}
	d := compare.Compare(sides[0], sides[1])
	if d.Config == nil {
		d.Config = []compare.ConfigChange{}
	}
	writeJSON(w, http.StatusOK, Diff{Repository: repo, From: from, To: to, Diff: d})
}

// Diff is the difference between two scans of one repository.
type Diff struct {
	Repository string `json:"repository"`
	From       int64  `json:"from"`
	To         int64  `json:"to"`
	*compare.Diff
}
