package server

import (
	"net/http"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/oauth"
)

// adminRoute is one management API endpoint and the scope it needs.
type adminRoute struct {
	Method, Path, Scope string
	Func                admin.Func
}

// adminRoutes lists every management API endpoint, feature by feature.
func (s *Server) adminRoutes() []adminRoute {
	var rs []adminRoute
	rs = append(rs, s.coreAdminRoutes()...)
	rs = append(rs, s.secretAdminRoutes()...)
	rs = append(rs, s.auditAdminRoutes()...)
	rs = append(rs, s.tokenAdminRoutes()...)
	rs = append(rs, s.keyAdminRoutes()...)
	return rs
}

// coreAdminRoutes are the APIs, applications and grants endpoints.
func (s *Server) coreAdminRoutes() []adminRoute {
	a := s.admin
	return []adminRoute{
		{"POST", "/admin/v1/apis", authz.ScopeCreateAPIs, a.CreateAPI},
		{"GET", "/admin/v1/apis", authz.ScopeReadAPIs, a.ListAPIs},
		{"GET", "/admin/v1/apis/{id}", authz.ScopeReadAPIs, a.GetAPI},
		{"PATCH", "/admin/v1/apis/{id}", authz.ScopeUpdateAPIs, a.UpdateAPI},
		{"DELETE", "/admin/v1/apis/{id}", authz.ScopeDeleteAPIs, a.DeleteAPI},
		{"POST", "/admin/v1/applications", authz.ScopeCreateApplications, a.CreateApplication},
		{"GET", "/admin/v1/applications", authz.ScopeReadApplications, a.ListApplications},
		{"GET", "/admin/v1/applications/{client_id}", authz.ScopeReadApplications, a.GetApplication},
		{"PATCH", "/admin/v1/applications/{client_id}", authz.ScopeUpdateApplications, a.UpdateApplication},
		{"DELETE", "/admin/v1/applications/{client_id}", authz.ScopeDeleteApplications, a.DeleteApplication},
		{"POST", "/admin/v1/applications/{client_id}/grants", authz.ScopeUpdateApplications, a.CreateGrant},
		{"GET", "/admin/v1/applications/{client_id}/grants", authz.ScopeReadApplications, a.ListGrants},
		{"PATCH", "/admin/v1/applications/{client_id}/grants/{grant_id}", authz.ScopeUpdateApplications, a.UpdateGrant},
		{"DELETE", "/admin/v1/applications/{client_id}/grants/{grant_id}", authz.ScopeUpdateApplications, a.DeleteGrant},
	}
}

// routes is the one place every path is mapped (Go 1.22 patterns).
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})

	// Protocol endpoints (RFC 6749, RFC 8414, RFC 7517).
	for _, p := range []string{oauth.PathToken, oauth.PathTokenLegacy} {
		mux.HandleFunc("POST "+p, s.oauth.HandleToken)
		mux.HandleFunc(p, oauth.HandleMethodNotAllowed)
	}
	mux.HandleFunc("GET "+oauth.PathASMetadata, s.discovery.HandleMetadata)
	mux.HandleFunc("GET "+oauth.PathOpenIDConfig, s.discovery.HandleMetadata)
	mux.HandleFunc("GET "+oauth.PathJWKS, s.discovery.HandleJWKS)
	s.tokenProtocolRoutes(mux)

	// Management API.
	for _, rt := range s.adminRoutes() {
		mux.Handle(rt.Method+" "+rt.Path, s.admin.Protect(rt.Scope, rt.Func))
	}
	mux.HandleFunc("GET "+PathOpenAPI, s.handleOpenAPI(s.openAPI))
	return mux
}
