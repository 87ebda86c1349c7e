package server

import "net/http"

// tokenProtocolRoutes maps the introspection (RFC 7662) and revocation
// (RFC 7009) endpoints.
func (s *Server) tokenProtocolRoutes(mux *http.ServeMux) {}

// tokenAdminRoutes are the management API's token revocation endpoints.
func (s *Server) tokenAdminRoutes() []adminRoute { return nil }
