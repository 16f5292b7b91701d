package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// ErrorBody is every error response: a reason a person can act on.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // the client may be gone; nothing to do about it
}

// recorder remembers a response's status for the log and the metrics.
type recorder struct {
	http.ResponseWriter
	status int
	who    string
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// httpMetrics are the request counters and latencies, by route pattern.
type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulkhead_http_requests_total", Help: "HTTP requests by route and status code."}, []string{"route", "code"}),
		latency:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bulkhead_http_request_duration_seconds", Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// observe logs and counts every request under its route pattern (never
// the Authorization header, never the query string, which may carry
// names the user considers private).
func (s *Server) observe(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
		s.metrics.latency.WithLabelValues(route).Observe(d.Seconds())
		level := slog.LevelInfo
		switch {
		case rec.status == http.StatusServiceUnavailable:
			level = slog.LevelWarn // busy: the client retries
		case rec.status >= 500:
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "request", "method", r.Method, "route", route, "path", r.URL.Path,
			"status", rec.status, "duration", d, "principal", rec.who, "remote", r.RemoteAddr)
	})
}

// fail answers an error: an *UploadError with its status, a missing row
// with 404, anything else with 500 (logged; the client gets no internals).
func (s *Server) fail(w http.ResponseWriter, err error) {
	var ue *UploadError
	switch {
	case errors.As(err, &ue):
		writeError(w, ue.Status, ue.Reason)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not found")
	case errors.Is(err, store.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, store.ErrBusy):
		// Nothing was written: the client may send it again (server/client
		// does, after Retry-After).
		s.log.Warn("request refused: database busy", "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(busyRetryAfter))
		writeError(w, http.StatusServiceUnavailable, "the database is busy (locked by another writer, or a transaction conflict); nothing was stored: retry after "+strconv.Itoa(busyRetryAfter)+" s")
	default:
		s.log.Error("request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error (see the server's log)")
	}
}

// busyRetryAfter is the Retry-After (seconds) of a 503 for a busy
// database.
const busyRetryAfter = 1

// maxJSONRequest bounds a small JSON request (a scan request, an event).
const maxJSONRequest = 1 << 20

// readBody reads a request body of at most limit bytes; an oversized one
// is answered with 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than this server's limit of %d bytes (--max-upload)", limit))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, "read the body: "+err.Error())
		return nil, false
	}
	return b, true
}

// decodeJSON reads a small JSON request body into v (400 when malformed,
// 415 when not JSON).
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != MediaJSON {
		writeError(w, http.StatusUnsupportedMediaType, "send Content-Type: application/json")
		return false
	}
	b, ok := readBody(w, r, maxJSONRequest)
	if !ok {
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
		return false
	}
	return true
}

// pathID reads a numeric path parameter (400 when it is not one).
func pathID(w http.ResponseWriter, r *http.Request, key string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(key), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s %q is not a positive number", key, r.PathValue(key)))
		return 0, false
	}
	return id, true
}
