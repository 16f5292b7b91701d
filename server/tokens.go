package server

import (
	"net/http"
)

// TokenRequest asks for a new API token.
type TokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// TokenCreated is a new token: the only time it is shown.
type TokenCreated struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Token string `json:"token"`
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if !s.decodeJSON(w, r, &req) {
		return
	}
	role, err := ParseRole(req.Role)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Name == "" {
		writeError(w, http.StatusBadRequest, "name the token (who or what uses it)")
		return
	}
	token, err := CreateToken(r.Context(), s.store, req.Name, role)
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, TokenCreated{Name: req.Name, Role: role.String(), Token: token})
}

func (s *Server) handleDeleteToken(w http.ResponseWriter, r *http.Request) {
	if err := s.store.DeleteToken(r.Context(), r.PathValue("name")); err != nil {
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
