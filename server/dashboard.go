package server

import (
	"context"
	"net/http"

	"github.com/bulkhead-sec/bulkhead/server/dashboard"
)

// mountDashboard serves the web dashboard under /ui/ (and redirects / to
// it). The dashboard takes the API token from the Authorization header or
// from its login cookie, and checks it as the API does: read tokens see,
// scan tokens may also queue a re-scan of an image.
func (s *Server) mountDashboard(mux *http.ServeMux) error {
	auth := dashboard.TokenAuth(func(ctx context.Context, token string) (dashboard.Role, error) {
		p, err := s.authenticate(ctx, token)
		if err != nil || p == nil {
			return RoleNone, err
		}
		return p.role, nil
	})
	d, err := dashboard.New(s.store, dashboard.Options{Auth: auth, Logger: s.log,
		Rescan: func(ctx context.Context, repository, digest string) error {
			_, err := s.Submit(ctx, ScanRequest{Reference: repository + "@" + digest})
			return err
		}})
	if err != nil {
		return err
	}
	mux.Handle(dashboard.Prefix, s.observe(dashboard.Prefix, d))
	mux.Handle("GET /{$}", s.observe("/", http.RedirectHandler(dashboard.Prefix, http.StatusSeeOther)))
	return nil
}
