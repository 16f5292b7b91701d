package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// FalcoAlert is Falco's JSON output, as falcosidekick (and bulkhead's
// sensor) posts it.
type FalcoAlert struct {
	Output       string         `json:"output"`
	Priority     string         `json:"priority"`
	Rule         string         `json:"rule"`
	Time         time.Time      `json:"time"`
	OutputFields map[string]any `json:"output_fields"`
	Source       string         `json:"source,omitempty"`
	Tags         []string       `json:"tags,omitempty"`
	Hostname     string         `json:"hostname,omitempty"`
}

// field is a string output field ("" when absent, null or not a string).
func (a *FalcoAlert) field(k string) string {
	s, _ := a.OutputFields[k].(string)
	if s == "<NA>" {
		return ""
	}
	return s
}

// digest is the image digest the alert names: container.image.digest, or
// a repository written with @sha256:.
func (a *FalcoAlert) digest() string {
	if d := a.field("container.image.digest"); validDigest(d) {
		return d
	}
	for _, k := range []string{"container.image.repository", "container.image"} {
		if _, d, ok := strings.Cut(a.field(k), "@"); ok && validDigest(d) {
			return d
		}
	}
	return ""
}

// reference is the image reference the alert names (repository:tag).
func (a *FalcoAlert) reference() string {
	repo := a.field("container.image.repository")
	if repo == "" {
		return a.field("container.image")
	}
	if tag := a.field("container.image.tag"); tag != "" && !strings.Contains(repo, "@") {
		return repo + ":" + tag
	}
	return repo
}

// handleFalco ingests a runtime alert (falcosidekick's webhook output
// posts here; so may bulkhead's sensor).
func (s *Server) handleFalco(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readJSONBody(w, r)
	if !ok {
		return
	}
	var a FalcoAlert
	if err := json.Unmarshal(body, &a); err != nil {
		writeError(w, http.StatusBadRequest, "malformed Falco alert: "+err.Error())
		return
	}
	if a.Rule == "" || a.Output == "" {
		writeError(w, http.StatusBadRequest, "a Falco alert needs rule and output")
		return
	}
	at := a.Time
	if at.IsZero() {
		at = time.Now().UTC()
	}
	e := &store.Event{Kind: "runtime", Digest: a.digest(), Priority: a.Priority, Rule: a.Rule, Output: a.Output, Body: body, At: at,
		Container: a.field("container.name"), Namespace: a.field("k8s.ns.name")}
	var seen *store.Sighting
	if e.Digest != "" && a.field("k8s.ns.name") != "" {
		seen = &store.Sighting{Digest: e.Digest, Reference: a.reference(), Kind: "cluster", Namespace: a.field("k8s.ns.name"),
			Workload: podWorkload(a.field("k8s.pod.name")), SeenAt: at}
	}
	s.putEvent(w, r, e, seen)
}

func podWorkload(pod string) string {
	if pod == "" {
		return ""
	}
	return "Pod/" + pod
}

// Decision is a gate or admission decision about an image.
type Decision struct {
	Kind    string   `json:"kind"` // "gate" or "admission"
	Image   string   `json:"image,omitempty"`
	Digest  string   `json:"digest,omitempty"`
	Allowed bool     `json:"allowed"`
	Reasons []string `json:"reasons,omitempty"`
	// Rule names the rule that denied (the first, when several did).
	Rule      string    `json:"rule,omitempty"`
	Cluster   string    `json:"cluster,omitempty"`
	Namespace string    `json:"namespace,omitempty"`
	Workload  string    `json:"workload,omitempty"` // "Deployment/web"
	Time      time.Time `json:"time,omitzero"`
	// Decision is the policy's own decision document, kept as sent.
	Decision json.RawMessage `json:"decision,omitempty"`
}

// handleDecision ingests a gate or admission decision; an admitted image
// with a workload is also a sighting (where it runs).
func (s *Server) handleDecision(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readJSONBody(w, r)
	if !ok {
		return
	}
	var d Decision
	if err := json.Unmarshal(body, &d); err != nil {
		writeError(w, http.StatusBadRequest, "malformed decision: "+err.Error())
		return
	}
	if d.Kind != "gate" && d.Kind != "admission" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("decision kind %q: give gate or admission", d.Kind))
		return
	}
	if d.Digest != "" && !validDigest(d.Digest) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("digest %q is not sha256:<64 hex digits>", d.Digest))
		return
	}
	if d.Time.IsZero() {
		d.Time = time.Now().UTC()
	}
	verdict := "denied"
	if d.Allowed {
		verdict = "allowed"
	}
	e := &store.Event{Kind: d.Kind, Digest: d.Digest, Priority: verdict, Rule: d.Rule, Output: strings.Join(d.Reasons, "; "), Body: body, At: d.Time}
	var seen *store.Sighting
	if d.Digest != "" && d.Allowed && d.Kind == "admission" && d.Namespace != "" {
		seen = &store.Sighting{Digest: d.Digest, Reference: d.Image, Kind: "cluster", Cluster: d.Cluster, Namespace: d.Namespace, Workload: d.Workload, SeenAt: d.Time}
	}
	s.putEvent(w, r, e, seen)
}

// readJSONBody reads a small JSON body, checking its media type.
func (s *Server) readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	var raw json.RawMessage
	if !s.decodeJSON(w, r, &raw) {
		return nil, false
	}
	return raw, true
}

// EventCreated answers an ingested event.
type EventCreated struct {
	ID     int64  `json:"id"`
	Digest string `json:"digest,omitempty"`
}

func (s *Server) putEvent(w http.ResponseWriter, r *http.Request, e *store.Event, seen *store.Sighting) {
	// The sighting first: it is true whatever happens next, and a retry
	// after a failed event write then stores the event once.
	if seen != nil {
		if err := s.store.AddSighting(r.Context(), seen); err != nil {
			s.fail(w, err)
			return
		}
	}
	id, err := s.store.PutEvent(r.Context(), e)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.events.WithLabelValues(e.Kind).Inc()
	writeJSON(w, http.StatusCreated, EventCreated{ID: id, Digest: e.Digest})
}

// handleEvents lists events: ?digest=, ?since=, ?limit=.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	since, ok := queryTime(w, r, "since")
	if !ok {
		return
	}
	limit, ok := queryInt(w, r, "limit", maxPage)
	if !ok {
		return
	}
	evs, err := s.store.Events(r.Context(), r.URL.Query().Get("digest"), since, int(limit))
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]EventView, 0, len(evs))
	for _, e := range evs {
		out = append(out, EventView{ID: e.ID, Kind: e.Kind, Digest: e.Digest, Priority: e.Priority, Rule: e.Rule, Output: e.Output, Body: json.RawMessage(e.Body), At: e.At})
	}
	writeJSON(w, http.StatusOK, out)
}

// EventView is a stored event with its body as JSON (the store's Event
// would write it as base64).
type EventView struct {
	ID       int64           `json:"id"`
	Kind     string          `json:"kind"`
	Digest   string          `json:"digest,omitempty"`
	Priority string          `json:"priority,omitempty"`
	Rule     string          `json:"rule,omitempty"`
	Output   string          `json:"output,omitempty"`
	Body     json.RawMessage `json:"body"`
	At       time.Time       `json:"at"`
}
