package server

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/bulkhead-sec/bulkhead/runtime/drift"
	"github.com/bulkhead-sec/bulkhead/runtime/profile"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// Media types of the runtime routes.
const (
	MediaYAML = "application/yaml"
	MediaGzip = "application/gzip"
)

// DefaultMaxFileList bounds an image file list's JSON once decompressed
// (Config.MaxFileList).
const DefaultMaxFileList = drift.MaxIndexBytes

//go:embed openapi_runtime.json
var openapiRuntime []byte

// runtimeRoutes registers the learned profiles' and image file lists'
// routes when the store keeps them (the SQL store does).
func (s *Server) runtimeRoutes(x *Registrar) {
	rs, ok := s.store.(store.RuntimeStore)
	if !ok {
		return
	}
	if err := x.Document(openapiRuntime); err != nil {
		x.fail(err)
		return
	}
	h := &runtimeHandlers{s: s, rs: rs}
	x.Handle("GET /api/v1/runtime/profiles", RoleRead, http.HandlerFunc(h.list))
	x.Handle("GET /api/v1/runtime/profiles/{imageID}", RoleRead, http.HandlerFunc(h.getProfile))
	x.Handle("PUT /api/v1/runtime/profiles/{imageID}", RoleScan, http.HandlerFunc(h.putProfile))
	x.Handle("GET /api/v1/runtime/filelists/{imageID}", RoleRead, http.HandlerFunc(h.getFileList))
	x.Handle("PUT /api/v1/runtime/filelists/{imageID}", RoleScan, http.HandlerFunc(h.putFileList))
}

type runtimeHandlers struct {
	s  *Server
	rs store.RuntimeStore
}

// imageID reads the {imageID} path parameter ("sha256:<hex>" or
// "sha256-<hex>", the profile file's name).
func imageID(w http.ResponseWriter, r *http.Request) (string, bool) {
	v := r.PathValue("imageID")
	if strings.HasPrefix(v, "sha256-") {
		v = "sha256:" + v[len("sha256-"):]
	}
	id, err := drift.NormalizeID(v)
	if err != nil || !strings.HasPrefix(r.PathValue("imageID"), "sha256") {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("image id %q is not sha256:<64 lower-case hex digits>", r.PathValue("imageID")))
		return "", false
	}
	return id, true
}

func mediaType(r *http.Request) string {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt
}

// wantsJSON reports whether the client asked for JSON rather than YAML.
func wantsJSON(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		switch mt {
		case MediaJSON:
			return true
		case MediaYAML, "application/x-yaml", "*/*":
			return false
		}
	}
	return false
}

func entries(p *profile.Profile) int {
	return len(p.Executables) + len(p.Outbound) + len(p.DNS) + len(p.Listening) + len(p.Writes)
}

func (h *runtimeHandlers) putProfile(w http.ResponseWriter, r *http.Request) {
	id, ok := imageID(w, r)
	if !ok {
		return
	}
	switch mediaType(r) {
	case MediaYAML, "application/x-yaml", MediaJSON:
	default:
		writeError(w, http.StatusUnsupportedMediaType, "send the profile as Content-Type: application/yaml or application/json")
		return
	}
	body, ok := readBody(w, r, profile.MaxFileBytes)
	if !ok {
		return
	}
	// JSON is YAML: one strict decoder (unknown fields, every entry
	// checked) for both.
	p, err := profile.Decode(bytes.NewReader(body), "in the request")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if p.Image != id {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the profile is for image %s, not %s (the path's)", p.Image, id))
		return
	}
	var doc bytes.Buffer
	if err := p.Encode(&doc); err != nil {
		h.s.fail(w, err)
		return
	}
	rp := &store.RuntimeProfile{Image: id, State: p.State, Names: p.Names, Entries: entries(p), Document: doc.Bytes()}
	if err := h.rs.PutProfile(r.Context(), rp); err != nil {
		h.s.fail(w, err)
		return
	}
	stored, err := h.rs.Profile(r.Context(), id)
	if err != nil {
		h.s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, stored)
}

func (h *runtimeHandlers) getProfile(w http.ResponseWriter, r *http.Request) {
	id, ok := imageID(w, r)
	if !ok {
		return
	}
	rp, err := h.rs.Profile(r.Context(), id)
	if err != nil {
		h.s.fail(w, err)
		return
	}
	w.Header().Set("Last-Modified", rp.UpdatedAt.Format(http.TimeFormat))
	if !wantsJSON(r) {
		w.Header().Set("Content-Type", MediaYAML)
		w.Write(rp.Document)
		return
	}
	p, err := profile.Decode(bytes.NewReader(rp.Document), "stored "+id)
	if err != nil {
		h.s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// ProfileList is a page of profiles.
type ProfileList struct {
	Profiles []store.RuntimeProfile `json:"profiles"`
	// Next is the ?after= of the next page ("" on the last).
	Next string `json:"next,omitempty"`
}

func (h *runtimeHandlers) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q is not a positive number", v))
			return
		}
		limit = n
	}
	list, err := h.rs.Profiles(r.Context(), q.Get("after"), limit)
	if err != nil {
		h.s.fail(w, err)
		return
	}
	out := ProfileList{Profiles: list}
	if limit > 0 && len(list) == limit {
		out.Next = list[len(list)-1].Image
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *runtimeHandlers) putFileList(w http.ResponseWriter, r *http.Request) {
	id, ok := imageID(w, r)
	if !ok {
		return
	}
	if mediaType(r) != MediaGzip {
		writeError(w, http.StatusUnsupportedMediaType, "send the file list as Content-Type: application/gzip (gzip-compressed JSON, as `bulkhead runtime index` writes it)")
		return
	}
	body, ok := readBody(w, r, h.s.cfg.MaxUpload)
	if !ok {
		return
	}
	max := h.s.cfg.MaxFileList
	ix, err := drift.DecodeIndex(bytes.NewReader(body), max)
	switch {
	case errors.Is(err, drift.ErrIndexTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the file list decompresses to more than this server's limit of %d bytes of JSON", max))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "file list: "+err.Error())
		return
	case ix.Image != id:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the file list is for image %s, not %s (the path's)", ix.Image, id))
		return
	}
	fl := &store.FileList{Image: id, Files: len(ix.Files), Gzip: body}
	if err := h.rs.PutFileList(r.Context(), fl); err != nil {
		h.s.fail(w, err)
		return
	}
	stored, err := h.rs.FileList(r.Context(), id)
	if err != nil {
		h.s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, stored)
}

func (h *runtimeHandlers) getFileList(w http.ResponseWriter, r *http.Request) {
	id, ok := imageID(w, r)
	if !ok {
		return
	}
	fl, err := h.rs.FileList(r.Context(), id)
	if err != nil {
		h.s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", MediaGzip)
	w.Header().Set("Last-Modified", fl.UpdatedAt.Format(http.TimeFormat))
	w.Write(fl.Gzip)
}
