package servertest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/client"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
)

// Options configure Start.
type Options struct {
	// Matcher is the server's matcher (required). Close it in a
	// t.Cleanup registered before Start, so that it outlives the server.
	Matcher *pipeline.Matcher
	// Token is the bootstrap admin token (required).
	Token string
	// Store is the server's store; nil: a fresh SQLite database in a
	// temporary directory, closed after the server stops.
	Store *sqlstore.Store
	// Roles are the roles to mint a token of (through the API, with the
	// admin token), named "test-<role>".
	Roles []server.Role
	// Validate serves the server through Validating (every exchange
	// checked against its OpenAPI document) rather than its bare handler.
	Validate bool
	// Edit changes the configuration before the server is made.
	Edit func(*server.Config)
}

// Server is a started bulkhead server on loopback (plain HTTP).
type Server struct {
	URL    string
	Server *server.Server
	HTTP   *httptest.Server
	Store  *sqlstore.Store
	// Tokens holds the admin token and one of each of Options.Roles.
	Tokens map[server.Role]string
	// Logs is the server's log, at debug level.
	Logs *Logs
	// DBClosed: the test closed the database, so the queue cannot stop
	// cleanly and Stop's error is not a failure.
	DBClosed bool
}

// Start makes, starts and serves a bulkhead server for t; at the end of
// the test it is stopped (an error stopping it fails the test) and its
// log must hold none of its tokens.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Matcher == nil || o.Token == "" {
		t.Fatal("servertest.Start: Options.Matcher and Options.Token are required")
	}
	s := &Server{Store: o.Store, Logs: &Logs{}, Tokens: map[server.Role]string{server.RoleAdmin: o.Token}}
	if s.Store == nil {
		st, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "server.db"), sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		s.Store = st
	}
	cfg := server.Config{Store: s.Store, Queue: server.QueueOf(s.Store), Matcher: o.Matcher, BootstrapToken: o.Token,
		Logger:          slog.New(slog.NewTextHandler(s.Logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ShutdownTimeout: 5 * time.Second, TempDir: t.TempDir()}
	if o.Edit != nil {
		o.Edit(&cfg)
	}
	var err error
	s.Server, err = server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Server.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := s.Server.Handler()
	if o.Validate {
		h = Validating(t, s.Server)
	}
	s.HTTP = httptest.NewServer(h)
	s.URL = s.HTTP.URL
	t.Cleanup(func() {
		s.HTTP.Close()
		if err := s.Server.Stop(); err != nil && !s.DBClosed {
			t.Errorf("stop: %v", err)
		}
		log := s.Logs.String()
		for r, tok := range s.Tokens {
			if tok != "" && strings.Contains(log, tok) {
				t.Errorf("the %s token is in the server's log", r)
			}
		}
	})
	admin := s.Client(t, server.RoleAdmin)
	for _, r := range o.Roles {
		var tc server.TokenCreated
		if err := admin.Post(context.Background(), "/api/v1/tokens", server.TokenRequest{Name: "test-" + r.String(), Role: r.String()}, &tc); err != nil {
			t.Fatal(err)
		}
		s.Tokens[r] = tc.Token
	}
	return s
}

// Client is a client of s with its token of role r (RoleNone, or a role
// Start minted none of: no token).
func (s *Server) Client(t testing.TB, r server.Role) *client.Client {
	t.Helper()
	c, err := client.New(s.URL, client.Options{Token: s.Tokens[r]})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Logs is a log sink safe for the server's goroutines.
type Logs struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
