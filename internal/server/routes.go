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

// adminRoutes lists every management API endpoint: the one table that
// routes, the OpenAPI document and its test read. The scope here is the
// one a token must carry to reach the endpoint at all; internal/manage
// checks it again with the rest of each action's rules.
func (s *Server) adminRoutes() []adminRoute {
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

		{"POST", "/admin/v1/applications/{client_id}/secrets", authz.ScopeUpdateApplications, a.CreateSecret},
		{"GET", "/admin/v1/applications/{client_id}/secrets", authz.ScopeReadApplications, a.ListSecrets},
		{"DELETE", "/admin/v1/applications/{client_id}/secrets/{secret_id}", authz.ScopeUpdateApplications, a.DeleteSecret},
		{"POST", "/admin/v1/applications/{client_id}/credentials", authz.ScopeUpdateApplications, a.CreateCredential},
		{"GET", "/admin/v1/applications/{client_id}/credentials", authz.ScopeReadApplications, a.ListCredentials},
		{"DELETE", "/admin/v1/applications/{client_id}/credentials/{credential_id}", authz.ScopeUpdateApplications, a.DeleteCredential},
		{"GET", "/admin/v1/applications/{client_id}/usage", authz.ScopeReadApplications, a.ListUsage},

		{"POST", "/admin/v1/trusted-issuers", authz.ScopeUpdateTrustedIssuers, a.CreateTrustedIssuer},
		{"GET", "/admin/v1/trusted-issuers", authz.ScopeReadTrustedIssuers, a.ListTrustedIssuers},
		{"GET", "/admin/v1/trusted-issuers/{id}", authz.ScopeReadTrustedIssuers, a.GetTrustedIssuer},
		{"DELETE", "/admin/v1/trusted-issuers/{id}", authz.ScopeUpdateTrustedIssuers, a.DeleteTrustedIssuer},

		{"GET", "/admin/v1/audit", authz.ScopeReadAudit, a.ListAudit},

		{"POST", "/admin/v1/tokens/revoke", authz.ScopeRevokeTokens, a.RevokeToken},
		{"POST", "/admin/v1/applications/{client_id}/revoke-tokens", authz.ScopeRevokeTokens, a.RevokeApplicationTokens},

		{"GET", "/admin/v1/keys", authz.ScopeReadKeys, a.ListKeys},
		{"POST", "/admin/v1/keys/rotate", authz.ScopeRotateKeys, a.RotateKeys},
	}
}

// routes is the one place every path is mapped (Go 1.22 patterns).
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.HandleFunc("GET "+PathVersion, s.handleVersion)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})

	// Protocol endpoints (RFC 6749, RFC 7662, RFC 7009, RFC 8414, RFC
	// 7517): the POST endpoints answer other methods 405.
	for path, h := range map[string]http.HandlerFunc{
		oauth.PathToken:       s.oauth.HandleToken,
		oauth.PathTokenLegacy: s.oauth.HandleToken,
		oauth.PathIntrospect:  s.oauth.HandleIntrospect,
		oauth.PathRevoke:      s.oauth.HandleRevoke,
	} {
		mux.HandleFunc("POST "+path, h)
		mux.HandleFunc(path, oauth.HandleMethodNotAllowed)
	}
	mux.HandleFunc("GET "+oauth.PathASMetadata, s.discovery.HandleMetadata)
	mux.HandleFunc("GET "+oauth.PathOpenIDConfig, s.discovery.HandleMetadata)
	mux.HandleFunc("GET "+oauth.PathJWKS, s.discovery.HandleJWKS)

	// Management API.
	for _, rt := range s.adminRoutes() {
		mux.Handle(rt.Method+" "+rt.Path, s.admin.Protect(rt.Scope, rt.Func))
	}
	mux.HandleFunc("GET "+PathOpenAPI, s.handleOpenAPI(s.openAPI))
	return mux
}
