// Package dashboard is the web dashboard of bulkhead server, mounted under
// /ui/: the fleet overview, images, vulnerabilities, runtime alerts,
// policy decisions, comparisons and search, rendered on the server by
// html/template from a store.Store.
//
// Every page reads a bounded page of the store (aggregates in SQL, lists
// paginated by cursor), so no page ships the whole fleet. Every view is a
// URL with its state in query parameters, and every list exports as CSV or
// JSON (?format=csv|json, the whole filtered list, bounded by
// Options.MaxExport rows).
//
// The pages work without JavaScript; the one script (assets/static/dash.js)
// draws the charts with Chart.js, which is embedded (no CDN: it works
// air-gapped). The Content-Security-Policy allows scripts, styles and
// images from the dashboard itself only.
//
// Roles: a request's role comes from Options.Auth; read-only users see
// every page but no action (no form is rendered, and the action endpoints
// answer 403). POST endpoints are also guarded against cross-site requests
// (net/http's CrossOriginProtection).
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/server/role"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// Role is what the user of a request may do: the API's roles
// (server/role), None < Read < Scan < Admin.
type Role = role.Role

// The roles.
const (
	RoleNone  = role.None
	RoleRead  = role.Read
	RoleScan  = role.Scan
	RoleAdmin = role.Admin
)

// Auth says what a request may do. The server implements it with its API
// tokens; TokenAuth reads the token from the request.
type Auth interface {
	// Role of the request's user; RoleNone when it carries no valid
	// credential. An error is a failure to check (the database).
	Role(r *http.Request) (Role, error)
}

// CookieName is the cookie the login page stores the API token in
// (HttpOnly, SameSite=Strict, Path /ui/).
const CookieName = "bulkhead_ui_token"

// TokenFromRequest is the API token of a request: an "Authorization:
// Bearer" header, else the dashboard's cookie.
func TokenFromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}

// TokenAuth is an Auth that looks the request's token (TokenFromRequest)
// up with lookup.
type TokenAuth func(ctx context.Context, token string) (Role, error)

// Role implements Auth.
func (f TokenAuth) Role(r *http.Request) (Role, error) {
	t := TokenFromRequest(r)
	if t == "" {
		return RoleNone, nil
	}
	return f(r.Context(), t)
}

// Options configure the dashboard.
type Options struct {
	// Auth gives each request's role (required).
	Auth Auth
	// Rescan, when set, queues a new scan of an image (the server's
	// queue); the image page then offers it to users of role scan and
	// above.
	Rescan func(ctx context.Context, repository, digest string) error
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// PageSize is the rows of a list page (default 50).
	PageSize int
	// MaxExport bounds the rows of one CSV or JSON export (default
	// 100,000).
	MaxExport int
	// Secure marks the login cookie Secure (it is, too, when the login
	// request came over TLS).
	Secure bool
	// Version is shown in the footer.
	Version string
}

// Prefix is the path the dashboard is mounted at.
const Prefix = "/ui/"

//go:embed assets/static
var staticFS embed.FS

//go:embed assets/templates
var templateFS embed.FS

// csp allows the dashboard's own scripts, styles and images, and nothing
// else: no inline script or style, no other origin.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'none'; " +
	"connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Dashboard is the http.Handler.
type Dashboard struct {
	st     store.Store
	opt    Options
	pages  map[string]*template.Template
	mux    *http.ServeMux
	static http.Handler
}

// New makes the dashboard over st.
func New(st store.Store, opt Options) (*Dashboard, error) {
	if st == nil || opt.Auth == nil {
		return nil, errors.New("dashboard: a store and an Auth are required")
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.PageSize <= 0 {
		opt.PageSize = 50
	}
	if opt.MaxExport <= 0 {
		opt.MaxExport = 100000
	}
	d := &Dashboard{st: st, opt: opt, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	if err := d.parse(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "assets/static")
	if err != nil {
		return nil, err
	}
	d.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	d.routes()
	return d, nil
}

func (d *Dashboard) parse() error {
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "assets/templates/base.tmpl")
	if err != nil {
		return fmt.Errorf("dashboard templates: %w", err)
	}
	files, err := fs.Glob(templateFS, "assets/templates/*.tmpl")
	if err != nil {
		return err
	}
	for _, f := range files {
		name := strings.TrimSuffix(f[strings.LastIndexByte(f, '/')+1:], ".tmpl")
		if name == "base" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return fmt.Errorf("dashboard template %s: %w", name, err)
		}
		d.pages[name] = t
	}
	return nil
}

func (d *Dashboard) routes() {
	read := func(h func(*request) error) http.Handler { return d.page(RoleRead, h) }
	d.mux.Handle("GET "+Prefix+"{$}", read(d.overview))
	d.mux.Handle("GET "+Prefix+"images", read(d.images))
	d.mux.Handle("GET "+Prefix+"images/{digest}", read(d.image))
	d.mux.Handle("GET "+Prefix+"vulnerabilities", read(d.vulns))
	d.mux.Handle("GET "+Prefix+"vulnerabilities/{id}", read(d.vuln))
	d.mux.Handle("GET "+Prefix+"alerts", read(d.alerts))
	d.mux.Handle("GET "+Prefix+"decisions", read(d.decisions))
	d.mux.Handle("GET "+Prefix+"changes", read(d.changes))
	d.mux.Handle("GET "+Prefix+"compare", read(d.compare))
	d.mux.Handle("GET "+Prefix+"search", read(d.search))
	cop := http.NewCrossOriginProtection()
	d.mux.Handle("POST "+Prefix+"images/{digest}/rescan", cop.Handler(d.page(RoleScan, d.rescan)))
	d.mux.Handle("GET "+Prefix+"login", http.HandlerFunc(d.loginPage))
	d.mux.Handle("POST "+Prefix+"login", cop.Handler(http.HandlerFunc(d.login)))
	d.mux.Handle("POST "+Prefix+"logout", cop.Handler(http.HandlerFunc(d.logout)))
	d.mux.Handle("GET "+Prefix+"static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		d.static.ServeHTTP(w, r)
	}))
}

// ServeHTTP serves the dashboard's paths (Prefix and below).
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	d.mux.ServeHTTP(w, r)
}

// request is one page being served.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context
	role  Role
	start time.Time
}

// httpError is an error with a status for the user.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

// page wraps a page handler: authentication (to the login page when the
// request has no credential), the role check, errors as pages.
func (d *Dashboard) page(need Role, h func(*request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := &request{w: w, r: r, ctx: r.Context(), start: time.Now()}
		role, err := d.opt.Auth.Role(r)
		if err != nil {
			d.opt.Logger.Error("dashboard: check the token", "err", err)
			d.fail(q, &httpError{http.StatusServiceUnavailable, "cannot check your token now (the database does not answer); retry later"})
			return
		}
		q.role = role
		if role == RoleNone {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			d.fail(q, &httpError{http.StatusUnauthorized, "sign in with an API token first"})
			return
		}
		if role < need {
			d.fail(q, &httpError{http.StatusForbidden, fmt.Sprintf("your token has role %s; this needs %s", role, need)})
			return
		}
		if err := h(q); err != nil {
			d.fail(q, err)
		}
	})
}

func (d *Dashboard) fail(q *request, err error) {
	status := http.StatusInternalServerError
	msg := "the dashboard failed to read the database; see the server log"
	var he *httpError
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.Is(err, store.ErrNotFound):
		status, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, store.ErrInvalid):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, store.ErrTooLarge):
		status, msg = http.StatusRequestEntityTooLarge, err.Error()
	case errors.Is(err, context.Canceled):
		return
	default:
		d.opt.Logger.Error("dashboard", "path", q.r.URL.Path, "err", err)
	}
	q.w.Header().Del("Content-Disposition")
	d.render(q, status, "error", "Error", struct{ Status, Message string }{http.StatusText(status), msg})
}

// view is what the base template gets.
type view struct {
	Title   string
	Nav     string
	Role    string
	CanAct  bool
	Query   string
	Version string
	Data    any
}

// render writes a page. The page is rendered into a buffer first, so a
// template error is a clean 500 and the server time is known.
func (d *Dashboard) render(q *request, status int, name, title string, data any) {
	t := d.pages[name]
	var buf bytes.Buffer
	v := view{Title: title, Nav: name, Role: q.role.String(), CanAct: q.role >= RoleScan, Query: q.r.URL.Query().Get("q"),
		Version: d.opt.Version, Data: data}
	if err := t.ExecuteTemplate(&buf, "base", v); err != nil {
		d.opt.Logger.Error("dashboard: render", "page", name, "err", err)
		http.Error(q.w, "the dashboard failed to render this page; see the server log", http.StatusInternalServerError)
		return
	}
	h := q.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	serverTiming(q)
	q.w.WriteHeader(status)
	q.w.Write(buf.Bytes())
}

// serverTiming reports the time spent on the request so far (bench/).
func serverTiming(q *request) {
	q.w.Header().Set("Server-Timing", fmt.Sprintf("app;dur=%.2f", float64(time.Since(q.start).Microseconds())/1000))
}

// Query parameters.

func (q *request) param(name string) string { return strings.TrimSpace(q.r.URL.Query().Get(name)) }

func (q *request) intParam(name string) (int64, error) {
	v := q.param(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("%s=%q: want a whole number", name, v)
	}
	return n, nil
}

// severityParam reads a severity name, or "none" (store.NoFindings).
func (q *request) severityParam(name string) (*finding.Severity, error) {
	v := q.param(name)
	if v == "" {
		return nil, nil
	}
	if strings.EqualFold(v, "none") {
		s := store.NoFindings
		return &s, nil
	}
	s, err := finding.ParseSeverity(v)
	if err != nil {
		return nil, badRequest("%s: %v", name, err)
	}
	return &s, nil
}

// with is the current URL with some parameters replaced ("" deletes).
func (q *request) with(kv ...string) string {
	u := *q.r.URL
	v := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	u.RawQuery = v.Encode()
	return u.RequestURI()
}

// exports are the export links of the current view.
type exports struct{ CSV, JSON string }

func (q *request) exports() exports {
	return exports{CSV: q.with("format", "csv", "after", "", "before", "", "page", ""), JSON: q.with("format", "json", "after", "", "before", "", "page", "")}
}

// Login.

type loginData struct {
	Next, Message string
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	q := &request{w: w, r: r, ctx: r.Context(), start: time.Now()}
	d.render(q, http.StatusOK, "login", "Sign in", loginData{Next: safeNext(r.URL.Query().Get("next"))})
}

// safeNext keeps a redirect target inside the dashboard.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	q := &request{w: w, r: r, ctx: r.Context(), start: time.Now()}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	check := r.Clone(r.Context())
	check.Header = http.Header{"Authorization": {"Bearer " + token}}
	role := RoleNone
	var err error
	if token != "" {
		role, err = d.opt.Auth.Role(check)
	}
	if err != nil {
		d.opt.Logger.Error("dashboard: check the token", "err", err)
		d.render(q, http.StatusServiceUnavailable, "login", "Sign in", loginData{Next: next, Message: "cannot check the token now (the database does not answer); retry later"})
		return
	}
	if role == RoleNone {
		d.render(q, http.StatusUnauthorized, "login", "Sign in", loginData{Next: next, Message: "unknown or revoked token: paste an API token (bulkhead server token create)"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: Prefix, HttpOnly: true, Secure: d.opt.Secure || r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, HttpOnly: true, Secure: d.opt.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
