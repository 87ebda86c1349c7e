package server

import "github.com/m2mauth/m2mauth/internal/authz"

// secretAdminRoutes are the management API's client secret and usage
// endpoints.
func (s *Server) secretAdminRoutes() []adminRoute {
	a := s.admin
	return []adminRoute{
		{"POST", "/admin/v1/applications/{client_id}/secrets", authz.ScopeUpdateApplications, a.CreateSecret},
		{"GET", "/admin/v1/applications/{client_id}/secrets", authz.ScopeReadApplications, a.ListSecrets},
		{"DELETE", "/admin/v1/applications/{client_id}/secrets/{secret_id}", authz.ScopeUpdateApplications, a.DeleteSecret},
		{"GET", "/admin/v1/applications/{client_id}/usage", authz.ScopeReadApplications, a.ListUsage},
	}
}

// auditAdminRoutes are the management API's audit log endpoints.
func (s *Server) auditAdminRoutes() []adminRoute {
	return []adminRoute{
		{"GET", "/admin/v1/audit", authz.ScopeReadAudit, s.admin.ListAudit},
	}
}
