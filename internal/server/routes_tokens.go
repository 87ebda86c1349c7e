package server

import (
	"net/http"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/oauth"
)

// tokenProtocolRoutes maps the introspection (RFC 7662) and revocation
// (RFC 7009) endpoints: POST only, like the token endpoint.
func (s *Server) tokenProtocolRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+oauth.PathIntrospect, s.oauth.HandleIntrospect)
	mux.HandleFunc(oauth.PathIntrospect, oauth.HandleMethodNotAllowed)
	mux.HandleFunc("POST "+oauth.PathRevoke, s.oauth.HandleRevoke)
	mux.HandleFunc(oauth.PathRevoke, oauth.HandleMethodNotAllowed)
}

// tokenAdminRoutes are the management API's token revocation endpoints.
func (s *Server) tokenAdminRoutes() []adminRoute {
	a := s.admin
	return []adminRoute{
		{"POST", "/admin/v1/tokens/revoke", authz.ScopeRevokeTokens, a.RevokeToken},
		{"POST", "/admin/v1/applications/{client_id}/revoke-tokens", authz.ScopeRevokeTokens, a.RevokeApplicationTokens},
	}
}
