package server

import (
	"net/http"

	"github.com/m2mauth/m2mauth/internal/admin"
)

// PathOpenAPI serves the management API's OpenAPI 3.1 document. It is
// public: it describes the endpoints, not any data.
const PathOpenAPI = "/admin/v1/openapi.json"

var (
	qLimit  = admin.QueryParam{Name: "limit", Type: "integer", Description: "items per page, 1 to 500 (default 50)"}
	qCursor = admin.QueryParam{Name: "cursor", Description: "next_cursor of the previous page"}
)

// adminOps documents each management endpoint, by "METHOD path".
var adminOps = map[string]admin.Operation{
	"POST /admin/v1/apis":        {Summary: "Register an API (resource server) and its scopes, with its sender-constraint policies (dpop, dpop_nonce, mtls_bound: optional or required) and profile (none or fapi2: PS256, ES256 or EdDSA only)", Request: admin.CreateAPIRequest{}, Status: 201, Result: admin.APIResource{}},
	"GET /admin/v1/apis":         {Summary: "List APIs, oldest first", Query: []admin.QueryParam{{Name: "identifier", Description: "only the API with this identifier (audience)"}, qLimit, qCursor}, Status: 200, Result: admin.List[admin.APIResource]{}},
	"GET /admin/v1/apis/{id}":    {Summary: "Read an API", Status: 200, Result: admin.APIResource{}},
	"PATCH /admin/v1/apis/{id}":  {Summary: "Change an API's name, scopes, token lifetime, signing algorithm, sender-constraint policies (dpop, dpop_nonce, mtls_bound) or profile (none or fapi2, which refuses RS256); removed scopes leave every grant; the management API never changes", Request: admin.UpdateAPIRequest{}, Status: 200, Result: admin.APIResource{}},
	"DELETE /admin/v1/apis/{id}": {Summary: "Delete an API and every grant for it", Status: 204},

	"POST /admin/v1/applications":                                           {Summary: "Create an application, with the credentials given; the answer holds the only copy of its client secret (none with client_secret false)", Request: admin.CreateApplicationRequest{}, Status: 201, Result: admin.CreatedApplication{}},
	"GET /admin/v1/applications":                                            {Summary: "List applications, oldest first", Query: []admin.QueryParam{{Name: "name_prefix", Description: "only names starting with this"}, {Name: "disabled", Type: "boolean", Description: "only disabled (true) or enabled (false) applications"}, qLimit, qCursor}, Status: 200, Result: admin.List[admin.ApplicationResource]{}},
	"GET /admin/v1/applications/{client_id}":                                {Summary: "Read an application with its grants", Status: 200, Result: admin.ApplicationResource{}},
	"PATCH /admin/v1/applications/{client_id}":                              {Summary: "Change an application; disabling takes effect on its next request", Request: admin.UpdateApplicationRequest{}, Status: 200, Result: admin.ApplicationResource{}},
	"DELETE /admin/v1/applications/{client_id}":                             {Summary: "Delete an application with its secrets and grants", Status: 204},
	"POST /admin/v1/applications/{client_id}/grants":                        {Summary: "Grant an application scopes of an API (omitted scopes: all the API defines)", Request: admin.GrantRequest{}, Status: 201, Result: admin.GrantResource{}},
	"GET /admin/v1/applications/{client_id}/grants":                         {Summary: "List an application's grants", Query: []admin.QueryParam{qLimit, qCursor}, Status: 200, Result: admin.List[admin.GrantResource]{}},
	"PATCH /admin/v1/applications/{client_id}/grants/{grant_id}":            {Summary: "Replace a grant's scopes", Request: admin.UpdateGrantRequest{}, Status: 200, Result: admin.GrantResource{}},
	"DELETE /admin/v1/applications/{client_id}/grants/{grant_id}":           {Summary: "Remove a grant", Status: 204},
	"POST /admin/v1/applications/{client_id}/secrets":                       {Summary: "Add a client secret, optionally expiring, optionally expiring the others (rotation with overlap); the answer holds the only copy", OptionalBody: true, Request: admin.CreateSecretRequest{}, Status: 201, Result: admin.CreatedSecret{}},
	"GET /admin/v1/applications/{client_id}/secrets":                        {Summary: "List an application's secrets (prefix, dates, last use; never the secret)", Query: []admin.QueryParam{qLimit, qCursor}, Status: 200, Result: admin.List[admin.SecretResource]{}},
	"DELETE /admin/v1/applications/{client_id}/secrets/{secret_id}":         {Summary: "Delete a client secret; it stops working at once", Status: 204},
	"POST /admin/v1/applications/{client_id}/credentials":                   {Summary: "Add a secretless credential, optionally expiring: public keys inline (jwks) or at an https URL (jwks_uri) that verify the application's private_key_jwt assertions, or a federated credential matching the JWTs of a trusted issuer (trusted_issuer, subject, audience, claims)", Request: admin.CreateCredentialRequest{}, Status: 201, Result: admin.CredentialResource{}},
	"GET /admin/v1/applications/{client_id}/credentials":                    {Summary: "List an application's secretless credentials", Query: []admin.QueryParam{qLimit, qCursor}, Status: 200, Result: admin.List[admin.CredentialResource]{}},
	"DELETE /admin/v1/applications/{client_id}/credentials/{credential_id}": {Summary: "Delete a secretless credential; it stops working at once", Status: 204},
	"GET /admin/v1/applications/{client_id}/usage":                          {Summary: "Tokens issued to an application per audience and UTC hour, and the use of its quotas", Query: []admin.QueryParam{{Name: "since", Description: "RFC 3339 time; default 24 hours ago"}}, Status: 200, Result: admin.UsageResource{}},

	"POST /admin/v1/trusted-issuers":        {Summary: "Trust an external issuer of workload identity tokens (kind oidc, kubernetes or spiffe) whose JWTs may authenticate applications through their federated credentials; at most 100", Request: admin.CreateTrustedIssuerRequest{}, Status: 201, Result: admin.TrustedIssuerResource{}},
	"GET /admin/v1/trusted-issuers":         {Summary: "List the trusted issuers, oldest first", Query: []admin.QueryParam{qLimit, qCursor}, Status: 200, Result: admin.List[admin.TrustedIssuerResource]{}},
	"GET /admin/v1/trusted-issuers/{id}":    {Summary: "Read a trusted issuer", Status: 200, Result: admin.TrustedIssuerResource{}},
	"DELETE /admin/v1/trusted-issuers/{id}": {Summary: "Delete a trusted issuer; 409 while a federated credential names it", Status: 204},

	"GET /admin/v1/audit": {Summary: "Read the audit log, newest first", Query: []admin.QueryParam{
		{Name: "since", Description: "RFC 3339 time, inclusive"}, {Name: "until", Description: "RFC 3339 time, exclusive"},
		{Name: "actor", Description: "client_id of the acting application"}, {Name: "target", Description: "id of the object acted on"},
		{Name: "action", Description: "e.g. application.update"}, qLimit, qCursor,
	}, Status: 200, Result: admin.List[admin.AuditEventResource]{}},

	"POST /admin/v1/tokens/revoke":                          {Summary: "Revoke any valid access token until it expires; 400 if the token is not valid", Request: admin.RevokeTokenRequest{}, Status: 200, Result: admin.RevokedToken{}},
	"POST /admin/v1/applications/{client_id}/revoke-tokens": {Summary: "Revoke every token issued to an application so far (answers once the whole-second cutoff has passed)", Status: 200, Result: admin.RevokedTokens{}},

	"GET /admin/v1/keys":         {Summary: "List the signing keys, oldest first: kid, algorithm, state (next, active, retired) and rotation times; never private material", Query: []admin.QueryParam{qLimit, qCursor}, Status: 200, Result: admin.List[admin.KeyResource]{}},
	"POST /admin/v1/keys/rotate": {Summary: "Rotate the signing keys of one algorithm (alg) or, with an empty body or {}, of every algorithm in use: the next key becomes active at once and a new next key is made; 409 while the next key is younger than the JWKS max-age (300 s) unless force, which also removes retired keys over the cap of 32 early", OptionalBody: true, Request: admin.RotateKeysRequest{}, Status: 200, Result: admin.List[admin.KeyResource]{}},
}

// openAPIRoutes pairs every management route with its documentation.
func (s *Server) openAPIRoutes() []admin.Route {
	var out []admin.Route
	for _, rt := range s.adminRoutes() {
		op, ok := adminOps[rt.Method+" "+rt.Path]
		if !ok {
			op = admin.Operation{Summary: rt.Method + " " + rt.Path, Status: http.StatusOK}
		}
		out = append(out, admin.Route{Method: rt.Method, Path: rt.Path, Scope: rt.Scope, Op: op})
	}
	return out
}

// handleOpenAPI serves the document built at start.
func (s *Server) handleOpenAPI(doc []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(doc)
	}
}

// adminOpenAPI builds the document for issuer from s's routes.
func adminOpenAPI(issuer string, s *Server) ([]byte, error) {
	return admin.OpenAPI(issuer, s.openAPIRoutes())
}
