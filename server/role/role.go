// Package role holds the roles of bulkhead server's API tokens, shared by
// the API (package server) and the dashboard (server/dashboard).
package role

import (
	"fmt"
	"strings"
)

// Role is what a token may do. Each role may do what the ones below it may:
// read < scan < admin.
type Role int

// The roles.
const (
	// None is no token: only /healthz and /readyz.
	None Role = iota
	// Read reads images, findings, events, the OpenAPI document and the
	// metrics.
	Read
	// Scan also submits scans, uploads inventories and posts events.
	Scan
	// Admin also manages tokens.
	Admin
)

var names = [...]string{None: "none", Read: "read", Scan: "scan", Admin: "admin"}

func (r Role) String() string {
	if r < None || r > Admin {
		return fmt.Sprintf("role(%d)", int(r))
	}
	return names[r]
}

// Parse reads "read", "scan" or "admin".
func Parse(s string) (Role, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for r := Read; r <= Admin; r++ {
		if names[r] == s {
			return r, nil
		}
	}
	return None, fmt.Errorf("unknown role %q: use read, scan or admin", s)
}
