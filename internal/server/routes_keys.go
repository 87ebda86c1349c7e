package server

import "github.com/m2mauth/m2mauth/internal/authz"

// keyAdminRoutes are the management API's signing-key endpoints.
func (s *Server) keyAdminRoutes() []adminRoute {
	a := s.admin
	return []adminRoute{
		{"GET", "/admin/v1/keys", authz.ScopeReadKeys, a.ListKeys},
		{"POST", "/admin/v1/keys/rotate", authz.ScopeRotateKeys, a.RotateKeys},
	}
}
