package server

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// OpenAPI is the OpenAPI 3 document of the server's own routes. The
// document a server serves at /openapi.json (Server.OpenAPI) is this one
// with the paths and components its extensions contribute
// (Registrar.Document).
//
//go:embed openapi.json
var OpenAPI []byte

// Route is a route a server serves.
type Route struct {
	// Method and Path are the route's pattern ("GET", "/api/v1/jobs/{id}").
	Method, Path string
	// Role is the least role of a token it takes.
	Role Role
	// Foreign names the document of another protocol that describes the
	// route (Harbor's); "" when /openapi.json does.
	Foreign string
}

// Foreign is a protocol of its own served by an extension: its routes are
// described by the protocol's own document, not by /openapi.json, and a
// refused token is answered in its error format.
type Foreign struct {
	// Spec names the protocol's document ("Harbor Pluggable Scanner API
	// v1.2"); /openapi.json's description lists the routes under it.
	Spec string
	// Refuse answers a refused token (401, 403, or 503 when the database
	// does not answer) with the status and the reason.
	Refuse func(w http.ResponseWriter, status int, reason string)
}

// FragmentError is a document fragment that cannot be merged, a route
// that the merged document does not describe, or a merged document that
// does not validate: server.New fails with it.
type FragmentError struct {
	Reason string
}

func (e *FragmentError) Error() string { return "openapi.json: " + e.Reason }

// document is the OpenAPI document being merged: the top-level members,
// the path items by path and operation (or path-level member), and the
// components by kind and name, each as its JSON.
type document struct {
	top        map[string]json.RawMessage
	paths      map[string]map[string]json.RawMessage
	components map[string]map[string]json.RawMessage
}

// fragment is what an extension contributes: paths and components, nothing
// else (no info, servers or security of its own).
type fragment struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components map[string]map[string]json.RawMessage `json:"components"`
}

func newDocument(base []byte) (*document, error) {
	d := &document{}
	if err := json.Unmarshal(base, &d.top); err != nil {
		return nil, &FragmentError{Reason: "the base document: " + err.Error()}
	}
	if err := json.Unmarshal(d.top["paths"], &d.paths); err != nil {
		return nil, &FragmentError{Reason: "the base document's paths: " + err.Error()}
	}
	if err := json.Unmarshal(d.top["components"], &d.components); err != nil {
		return nil, &FragmentError{Reason: "the base document's components: " + err.Error()}
	}
	return d, nil
}

// merge adds a fragment's paths and components. An operation that is
// already documented is an error; so is a component of the same name with
// other content (the same content twice is fine: two extensions may share
// a schema).
func (d *document) merge(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f fragment
	if err := dec.Decode(&f); err != nil {
		return &FragmentError{Reason: "a fragment is not {\"paths\":{...},\"components\":{...}}: " + err.Error()}
	}
	if len(f.Paths) == 0 {
		return &FragmentError{Reason: "a fragment documents no path"}
	}
	for p, item := range f.Paths {
		if d.paths[p] == nil {
			d.paths[p] = map[string]json.RawMessage{}
		}
		for k, v := range item {
			if _, dup := d.paths[p][k]; dup {
				return &FragmentError{Reason: fmt.Sprintf("%s %s is documented twice", strings.ToUpper(k), p)}
			}
			d.paths[p][k] = v
		}
	}
	for kind, named := range f.Components {
		if d.components[kind] == nil {
			d.components[kind] = map[string]json.RawMessage{}
		}
		for name, v := range named {
			if old, dup := d.components[kind][name]; dup && !sameJSON(old, v) {
				return &FragmentError{Reason: fmt.Sprintf("components/%s/%s is defined twice, differently", kind, name)}
			}
			d.components[kind][name] = v
		}
	}
	return nil
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y bytes.Buffer
	return json.Compact(&x, a) == nil && json.Compact(&y, b) == nil && bytes.Equal(x.Bytes(), y.Bytes())
}

// build makes the merged document, says in its description which routes
// other documents describe, validates it with kin-openapi, and checks it
// against the routes: each route not Foreign is documented, with the same
// method and path, and each documented operation has a route.
func (d *document) build(routes []Route) ([]byte, error) {
	var info map[string]any
	if err := json.Unmarshal(d.top["info"], &info); err != nil {
		return nil, &FragmentError{Reason: "the base document's info: " + err.Error()}
	}
	foreign := map[string][]string{}
	var specs []string
	for _, r := range routes {
		if r.Foreign != "" {
			if foreign[r.Foreign] == nil {
				specs = append(specs, r.Foreign)
			}
			foreign[r.Foreign] = append(foreign[r.Foreign], r.Method+" "+r.Path)
		}
	}
	desc, _ := info["description"].(string)
	for _, s := range specs {
		desc += fmt.Sprintf(" Also served, described by %s and not by this document: %s.", s, strings.Join(foreign[s], ", "))
	}
	info["description"] = desc
	top := map[string]any{}
	for k, v := range d.top {
		top[k] = v
	}
	top["info"], top["paths"], top["components"] = info, d.paths, d.components
	b, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		return nil, &FragmentError{Reason: err.Error()}
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, &FragmentError{Reason: "load: " + err.Error()}
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, &FragmentError{Reason: "does not validate: " + err.Error()}
	}
	served := map[string]bool{}
	for _, r := range routes {
		if r.Foreign != "" {
			continue
		}
		served[r.Method+" "+r.Path] = true
		if item := doc.Paths.Value(r.Path); item == nil || item.GetOperation(r.Method) == nil {
			return nil, &FragmentError{Reason: fmt.Sprintf("%s %s is served but not documented: its extension must describe it with Registrar.Document", r.Method, r.Path)}
		}
	}
	var stale []string
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			if !served[m+" "+p] {
				stale = append(stale, m+" "+p)
			}
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		return nil, &FragmentError{Reason: "documented but not served: " + strings.Join(stale, ", ")}
	}
	return b, nil
}

// parsePattern splits a documented route's pattern, "METHOD /path".
func parsePattern(pattern string) (method, path string, err error) {
	method, path, ok := strings.Cut(pattern, " ")
	path = strings.TrimSpace(path)
	if !ok || method == "" || method != strings.ToUpper(method) || !strings.HasPrefix(path, "/") || strings.Contains(path, "...}") {
		return "", "", &FragmentError{Reason: fmt.Sprintf("route %q: give it as \"METHOD /path\" (an OpenAPI path template, no host, no wildcard)", pattern)}
	}
	return method, path, nil
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.openapi)
}

// OpenAPI is the document the server serves at /openapi.json: its own
// routes' and its extensions'.
func (s *Server) OpenAPI() []byte { return bytes.Clone(s.openapi) }

// Routes are the routes the server serves, its own and its extensions'.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routeList...) }
