package harbor

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
)

// Backend runs the scans: the server wires it to its queue and store.
type Backend interface {
	// Submit accepts a checked scan request and returns its id at once;
	// the scan runs later. A *RequestError is answered with its status,
	// any other error with 500.
	Submit(ctx context.Context, req ScanRequest) (id string, err error)
	// Result is where the scan with this id is: pending, failed or done.
	// ErrNotFound for an id it never gave (or has forgotten).
	Result(ctx context.Context, id string) (*Result, error)
}

// ErrNotFound is a scan request id the backend does not know.
var ErrNotFound = errors.New("no such scan request")

// Result is a scan's state as Backend.Result tells it.
type Result struct {
	// Pending: the scan has not finished; Harbor is told to come back.
	Pending bool
	// Err: the scan failed; Harbor is told with a 500 and this message
	// (which must hold no credential).
	Err error
	// The artifact the request named, and the scan's output.
	Artifact  Artifact
	ScannedAt time.Time
	Inventory *inventory.Inventory // sorted (inventory.Sort), as the SBOM writers want
	Findings  []finding.Finding
	DB        *report.DBInfo
}

// Scanner is the spec's Scanner.
type Scanner struct {
	Name    string `json:"name,omitempty"`
	Vendor  string `json:"vendor,omitempty"`
	Version string `json:"version,omitempty"`
}

// Options configure the handler.
type Options struct {
	// Scanner names bulkhead in metadata and reports (default name
	// "Bulkhead", vendor "bulkhead-sec", version "dev").
	Scanner Scanner
	// Properties are added to the metadata's properties, such as the
	// server's settings as "env.BULKHEAD_..." keys.
	Properties map[string]string
	// DBUpdatedAt, when set, dates the vulnerability database for the
	// metadata's harbor.scanner-adapter/vulnerability-database-updated-at.
	DBUpdatedAt func(context.Context) (time.Time, error)
	// RefreshAfter is the Refresh-After a pending report answers with,
	// in whole seconds from 1 to 127 (Harbor parses it as an 8-bit
	// integer); default 5 s.
	RefreshAfter time.Duration
	// Auth wraps every endpoint: the server's token check (BearerToken,
	// or the API's role-based tokens). Nil: no authentication.
	Auth func(http.Handler) http.Handler
	// Logger gets one line per request outcome (default slog.Default()).
	// Registry credentials never reach it.
	Logger *slog.Logger
}

// New returns the adapter's handler, serving /api/v1/metadata,
// /api/v1/scan and /api/v1/scan/{id}/report.
func New(b Backend, o Options) http.Handler {
	if o.Scanner.Name == "" {
		o.Scanner.Name = "Bulkhead"
	}
	if o.Scanner.Vendor == "" {
		o.Scanner.Vendor = "bulkhead-sec"
	}
	if o.Scanner.Version == "" {
		o.Scanner.Version = "dev"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &handler{b: b, o: o, refresh: refreshSeconds(o.RefreshAfter)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/metadata", h.metadata)
	mux.HandleFunc("POST /api/v1/scan", h.scan)
	mux.HandleFunc("GET /api/v1/scan/{id}/report", h.report)
	if o.Auth != nil {
		return o.Auth(mux)
	}
	return mux
}

func refreshSeconds(d time.Duration) int {
	if d <= 0 {
		return 5
	}
	s := int((d + time.Second - 1) / time.Second)
	return min(max(s, 1), 127)
}

type handler struct {
	b       Backend
	o       Options
	refresh int
}

// Metadata is the spec's ScannerAdapterMetadata.
type Metadata struct {
	Scanner      Scanner             `json:"scanner"`
	Capabilities []ScannerCapability `json:"capabilities"`
	Properties   map[string]string   `json:"properties,omitempty"`
}

// ScannerCapability is the spec's ScannerCapability.
type ScannerCapability struct {
	Type                 string         `json:"type,omitempty"`
	ConsumesMimeTypes    []string       `json:"consumes_mime_types"`
	ProducesMimeTypes    []string       `json:"produces_mime_types"`
	AdditionalAttributes map[string]any `json:"additional_attributes,omitempty"`
}

// Property keys Harbor knows.
const (
	PropScannerType = "harbor.scanner-adapter/scanner-type"
	PropDBUpdatedAt = "harbor.scanner-adapter/vulnerability-database-updated-at"
)

func (h *handler) metadata(w http.ResponseWriter, r *http.Request) {
	props := map[string]string{PropScannerType: "os-package-vulnerability"}
	for k, v := range h.o.Properties {
		props[k] = v
	}
	if h.o.DBUpdatedAt != nil {
		t, err := h.o.DBUpdatedAt(r.Context())
		if err != nil {
			h.fail(w, r, http.StatusInternalServerError, fmt.Errorf("date the vulnerability database: %w", err))
			return
		}
		if !t.IsZero() {
			props[PropDBUpdatedAt] = t.UTC().Format(time.RFC3339)
		}
	}
	md := Metadata{
		Scanner: h.o.Scanner,
		Capabilities: []ScannerCapability{
			{Type: CapabilityVulnerability, ConsumesMimeTypes: consumes, ProducesMimeTypes: vulnProduces},
			{Type: CapabilitySBOM, ConsumesMimeTypes: consumes, ProducesMimeTypes: sbomProduces,
				AdditionalAttributes: map[string]any{"sbom_media_types": sbomMediaTypes}},
		},
		Properties: props,
	}
	ct := MediaTypeMetadata11
	if acceptsVersion(r.Header.Get("Accept"), "application/vnd.scanner.adapter.metadata+json", "1.0") {
		ct = MediaTypeMetadata10 // what Harbor asks for; the same document
	}
	h.write(w, http.StatusOK, ct, md)
}

// acceptsVersion reports whether an Accept header names typ with this
// version and not another version first.
func acceptsVersion(accept, typ, version string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != typ {
			continue
		}
		return params["version"] == version
	}
	return false
}

// ScanResponse is the spec's ScanResponse.
type ScanResponse struct {
	ID string `json:"id"`
}

func (h *handler) scan(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		ok := err == nil && (mt == "application/vnd.scanner.adapter.scan.request+json" && (params["version"] == "1.0" || params["version"] == "1.1") || mt == "application/json")
		if !ok {
			h.fail(w, r, http.StatusBadRequest, fmt.Errorf("Content-Type %q is not a scan request; send %q", ct, MediaTypeScanRequest11))
			return
		}
	}
	req, err := DecodeScanRequest(r.Body)
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	id, err := h.b.Submit(r.Context(), req)
	if err != nil {
		h.fail(w, r, statusOf(err), fmt.Errorf("queue the scan of %s@%s: %w", req.Artifact.Repository, req.Artifact.Digest, err))
		return
	}
	h.o.Logger.Info("harbor scan accepted", "id", id, "registry", req.Registry,
		"repository", req.Artifact.Repository, "digest", req.Artifact.Digest, "tag", req.Artifact.Tag)
	h.write(w, http.StatusAccepted, MediaTypeScanResponse, ScanResponse{ID: id})
}

func statusOf(err error) int {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Status
	}
	return http.StatusInternalServerError
}

// negotiate picks the report media type from Accept (none or */*: the
// vulnerability report).
func negotiate(accept string) (string, error) {
	accept = strings.TrimSpace(accept)
	if accept == "" {
		return MediaTypeVulnReport, nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt == "*/*" {
			return MediaTypeVulnReport, nil
		}
		for _, have := range []string{MediaTypeVulnReport, MediaTypeVulnReportHarb, MediaTypeSBOMReport} {
			hmt, hparams, _ := mime.ParseMediaType(have)
			if mt == hmt && params["version"] == hparams["version"] {
				return have, nil
			}
		}
	}
	return "", unsupported("bulkhead cannot produce %q; ask for one of %s", accept, strings.Join([]string{MediaTypeVulnReport, MediaTypeVulnReportHarb, MediaTypeSBOMReport}, ", "))
}

func (h *handler) report(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	mt, err := negotiate(r.Header.Get("Accept"))
	if err != nil {
		h.fail(w, r, statusOf(err), err)
		return
	}
	var sbomType string
	if mt == MediaTypeSBOMReport {
		sbomType = r.URL.Query().Get("sbom_media_type")
		if !slices.Contains(sbomMediaTypes, sbomType) {
			h.fail(w, r, http.StatusBadRequest, fmt.Errorf("an SBOM report needs ?sbom_media_type= one of %s, got %q", strings.Join(sbomMediaTypes, ", "), sbomType))
			return
		}
	}
	res, err := h.b.Result(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		h.fail(w, r, http.StatusNotFound, fmt.Errorf("no scan request %q; submit one with POST /api/v1/scan", id))
		return
	case err != nil:
		h.fail(w, r, http.StatusInternalServerError, fmt.Errorf("read scan %s: %w", id, err))
		return
	case res == nil:
		h.fail(w, r, http.StatusInternalServerError, fmt.Errorf("read scan %s: the backend returned no result", id))
		return
	case res.Pending:
		w.Header().Set("Refresh-After", strconv.Itoa(h.refresh))
		w.WriteHeader(http.StatusFound)
		return
	case res.Err != nil:
		h.fail(w, r, http.StatusInternalServerError, fmt.Errorf("scan %s failed: %w", id, res.Err))
		return
	}
	// The report streams: the status and headers go out with its first
	// bytes, so a writer that fails before writing still gets a 500; one
	// that fails midway aborts the connection, so that Harbor sees an
	// error and not a truncated report.
	sw := &startWriter{w: w, ct: mt}
	if mt == MediaTypeSBOMReport {
		err = writeSBOMReport(sw, res, h.o.Scanner, sbomType)
	} else {
		err = writeVulnerabilityReport(sw, res, h.o.Scanner)
	}
	if err != nil {
		err = fmt.Errorf("write the %s report of scan %s: %w", mt, id, err)
		if !sw.started {
			h.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		h.o.Logger.Error("harbor report aborted", "id", id, "error", err.Error())
		panic(http.ErrAbortHandler)
	}
}

// startWriter writes the 200 and its Content-Type with the first bytes.
type startWriter struct {
	w       http.ResponseWriter
	ct      string
	started bool
}

func (s *startWriter) Write(b []byte) (int, error) {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", s.ct)
		s.w.WriteHeader(http.StatusOK)
	}
	return s.w.Write(b)
}

// ErrorResponse is the spec's ErrorResponse.
type ErrorResponse struct {
	Error ErrorMessage `json:"error"`
}

// ErrorMessage is the spec's Error.
type ErrorMessage struct {
	Message string `json:"message"`
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	lvl := slog.LevelWarn
	if status >= 500 {
		lvl = slog.LevelError
	}
	h.o.Logger.Log(r.Context(), lvl, "harbor request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err.Error())
	writeError(w, status, err.Error())
}

func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(ErrorResponse{Error: ErrorMessage{Message: msg}})
	w.Header().Set("Content-Type", MediaTypeError)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func (h *handler) write(w http.ResponseWriter, status int, ct string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode the response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// BearerToken is an Options.Auth that lets through requests carrying
// "Authorization: Bearer <token>" (Harbor's "Bearer" access credential of
// a scanner registration) and answers 401 otherwise. The comparison takes
// the same time whatever the token.
func BearerToken(token string) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="bulkhead"`)
				writeError(w, http.StatusUnauthorized, "a valid bearer token is required: set the scanner registration's authorization to Bearer and its access credential to the server's token")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
