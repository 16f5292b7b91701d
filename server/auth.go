package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bulkhead-sec/bulkhead/server/role"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// Role is what a token may do (read < scan < admin); see server/role,
// which the dashboard shares.
type Role = role.Role

// The roles.
const (
	RoleNone  = role.None
	RoleRead  = role.Read
	RoleScan  = role.Scan
	RoleAdmin = role.Admin
)

// ParseRole reads "read", "scan" or "admin".
func ParseRole(s string) (Role, error) { return role.Parse(s) }

// tokenPrefix marks bulkhead tokens, so secret scanners can find leaked ones.
const tokenPrefix = "bkh_"

// NewToken makes a random token (256 bits) and its hash; only the hash is
// stored, the token is shown once.
func NewToken() (token string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("make a token: %w", err)
	}
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken is the stored form of a token: its SHA-256. The token has 256
// bits of entropy, so a fast hash is enough (no password stretching).
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateToken makes a token with role, stores its hash under name and
// returns the token (to be shown once).
func CreateToken(ctx context.Context, st store.Store, name string, role Role) (string, error) {
	if name == "" {
		return "", errors.New("name the token (who or what uses it)")
	}
	if role == RoleNone {
		return "", errors.New("give the token a role: read, scan or admin")
	}
	token, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	if _, err := st.PutToken(ctx, &store.Token{Name: name, Role: role.String(), Hash: hash}); err != nil {
		return "", fmt.Errorf("store token %s: %w", name, err)
	}
	return token, nil
}

// principal is who made a request.
type principal struct {
	name string
	role Role
}

type principalKey struct{}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

// authenticate finds the principal of a token: the bootstrap admin token
// (compared in constant time) or a stored token (looked up by hash, the
// hash compared in constant time).
func (s *Server) authenticate(ctx context.Context, token string) (*principal, error) {
	hash := HashToken(token)
	if s.bootstrap != nil && subtle.ConstantTimeCompare(hash, s.bootstrap) == 1 {
		return &principal{name: "bootstrap", role: RoleAdmin}, nil
	}
	t, err := s.store.TokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(hash, t.Hash) != 1 {
		return nil, nil
	}
	role, err := ParseRole(t.Role)
	if err != nil {
		return nil, fmt.Errorf("token %s: %w", t.Name, err)
	}
	return &principal{name: t.Name, role: role}, nil
}

// require wraps h so that it runs only for a token of at least role need:
// 401 without a valid token, 403 with a token of a lower role.
func (s *Server) require(need Role, h http.Handler) http.Handler {
	return s.requireWith(need, h, writeError)
}

// requireWith is require answering refusals with fail (an extension's
// error format).
func (s *Server) requireWith(need Role, h http.Handler, writeError func(http.ResponseWriter, int, string)) http.Handler {
	if need == RoleNone {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bulkhead"`)
			writeError(w, http.StatusUnauthorized, "this endpoint needs an API token: send Authorization: Bearer TOKEN (bulkhead server token create)")
			return
		}
		p, err := s.authenticate(r.Context(), token)
		if err != nil {
			s.log.Error("authenticate", "err", err)
			writeError(w, http.StatusServiceUnavailable, "cannot check the token now: the database does not answer; retry later")
			return
		}
		if p == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bulkhead", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unknown or revoked API token")
			return
		}
		if p.role < need {
			writeError(w, http.StatusForbidden, fmt.Sprintf("token %s has role %s; this endpoint needs %s", p.name, p.role, need))
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.who = p.name
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}
