package oauth

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/token"
)

// Metadata is the authorization server metadata of RFC 8414 §2, also
// served as an OpenID Provider configuration (OpenID Connect Discovery 1.0
// §3) because many client libraries only look there.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint,omitempty"`
	IntrospectionAuthMethods          []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	RevocationAuthMethods             []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// TokenEndpointAuthSigningAlgs are the algorithms of private_key_jwt
	// assertions (RFC 8414 §2); absent without that method.
	TokenEndpointAuthSigningAlgs []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	// OpenID Connect Discovery requires these two even of a server that
	// issues no ID tokens; OIDC client libraries refuse documents without them.
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	// RFC 9068 access tokens are signed with these (not an RFC 8414 field;
	// resource servers may use it to build their algorithm allow-list).
	AccessTokenSigningAlgs []string `json:"access_token_signing_alg_values_supported"`
	// DPoPSigningAlgs are the algorithms of the DPoP proofs the token
	// endpoint accepts (RFC 9449 §5.1).
	DPoPSigningAlgs []string `json:"dpop_signing_alg_values_supported"`
	// MTLSBoundTokens is tls_client_certificate_bound_access_tokens (RFC
	// 8705 §3.3): true when client certificates reach the server.
	MTLSBoundTokens bool `json:"tls_client_certificate_bound_access_tokens,omitempty"`
}

// Paths of the protocol endpoints, relative to the issuer.
const (
	PathToken           = "/oauth/token"
	PathTokenLegacy     = "/authentication/v1/oauth/token"
	PathIntrospect      = "/oauth/introspect"
	PathRevoke          = "/oauth/revoke"
	PathJWKS            = "/.well-known/jwks.json"
	PathASMetadata      = "/.well-known/oauth-authorization-server"
	PathOpenIDConfig    = "/.well-known/openid-configuration"
	maxScopesAdvertised = 1000
)

// ScopeLister lists APIs so that discovery can advertise their scopes.
type ScopeLister interface {
	ListAPIs(ctx context.Context, f authz.APIFilter, p authz.Page) ([]authz.API, string, error)
}

// Discovery serves the metadata documents and the JWKS.
type Discovery struct {
	Issuer string
	Keys   *token.Keys
	APIs   ScopeLister
	// Introspection and Revocation advertise those endpoints when true.
	Introspection, Revocation bool
	// AuthMethods are the client authentication methods the token,
	// introspection and revocation endpoints accept (Server.AuthMethods);
	// nil: the client secret methods.
	AuthMethods []string
	// AuthSigningAlgs are the algorithms private_key_jwt assertions may
	// use (Server.AuthSigningAlgs); nil: AssertionSigningAlgs.
	AuthSigningAlgs []string
	// MTLS advertises certificate-bound access tokens (RFC 8705 §3.3):
	// true when client certificates can reach the token endpoint.
	MTLS bool
	// DPoPAlgs are the algorithms DPoP proofs may use
	// (Server.DPoPSigningAlgs); nil: dpop.DefaultAlgs.
	DPoPAlgs []string
	// Now is the clock of the metadata cache; nil is time.Now.
	Now func() time.Time

	mu       sync.Mutex
	cached   *Metadata
	cachedAt time.Time
}

// metadataCacheTTL is how long the metadata document, which lists every
// API's scopes, is reused: 5 s. The endpoint is public; without the cache
// every request would read every API from the database.
const metadataCacheTTL = 5 * time.Second

// cachedMetadata returns the metadata, rebuilt at most every
// metadataCacheTTL; a failed rebuild keeps serving the last document.
func (d *Discovery) cachedMetadata(ctx context.Context) (*Metadata, error) {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cached != nil && now().Sub(d.cachedAt) < metadataCacheTTL {
		return d.cached, nil
	}
	m, err := d.metadata(ctx)
	if err != nil {
		if d.cached != nil {
			return d.cached, nil
		}
		return nil, err
	}
	d.cached, d.cachedAt = m, now()
	return m, nil
}

func (d *Discovery) metadata(ctx context.Context) (*Metadata, error) {
	authMethods := d.AuthMethods
	if authMethods == nil {
		authMethods = []string{MethodSecretBasic, MethodSecretPost}
	}
	m := &Metadata{
		Issuer:                            d.Issuer,
		TokenEndpoint:                     d.Issuer + PathToken,
		JWKSURI:                           d.Issuer + PathJWKS,
		ResponseTypesSupported:            []string{}, // no authorization endpoint
		GrantTypesSupported:               []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported: authMethods,
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  authz.SigningAlgs,
		AccessTokenSigningAlgs:            authz.SigningAlgs,
		ScopesSupported:                   []string{},
		DPoPSigningAlgs:                   d.DPoPAlgs,
		MTLSBoundTokens:                   d.MTLS,
	}
	if m.DPoPSigningAlgs == nil {
		m.DPoPSigningAlgs = dpop.DefaultAlgs
	}
	if slices.Contains(authMethods, MethodPrivateKeyJWT) || slices.Contains(authMethods, MethodFederatedJWT) || slices.Contains(authMethods, MethodSPIFFEJWT) {
		// RFC 7523 §2.1: the assertion methods' JWTs are also grants.
		m.GrantTypesSupported = append(m.GrantTypesSupported, GrantTypeJWTBearer)
	}
	if slices.Contains(authMethods, MethodPrivateKeyJWT) {
		m.TokenEndpointAuthSigningAlgs = d.AuthSigningAlgs
		if m.TokenEndpointAuthSigningAlgs == nil {
			m.TokenEndpointAuthSigningAlgs = AssertionSigningAlgs
		}
	}
	if d.Introspection {
		m.IntrospectionEndpoint = d.Issuer + PathIntrospect
		m.IntrospectionAuthMethods = authMethods
	}
	if d.Revocation {
		m.RevocationEndpoint = d.Issuer + PathRevoke
		m.RevocationAuthMethods = authMethods
	}
	// RFC 8414 §2: scopes_supported is RECOMMENDED and need not be complete.
	seen := map[string]bool{}
	page := authz.Page{Limit: authz.MaxPageLimit}
	for len(m.ScopesSupported) < maxScopesAdvertised {
		apis, next, err := d.APIs.ListAPIs(ctx, authz.APIFilter{}, page)
		if err != nil {
			return nil, err
		}
		for _, a := range apis {
			for _, sc := range a.Scopes {
				if !seen[sc.Value] {
					seen[sc.Value] = true
					m.ScopesSupported = append(m.ScopesSupported, sc.Value)
				}
			}
		}
		if next == "" {
			break
		}
		page.Cursor = next
	}
	return m, nil
}

// HandleMetadata serves GET /.well-known/oauth-authorization-server and
// /.well-known/openid-configuration.
func (d *Discovery) HandleMetadata(w http.ResponseWriter, r *http.Request) {
	m, err := d.cachedMetadata(r.Context())
	if err != nil {
		writeError(w, &Error{Code: ErrServerError, Description: "metadata unavailable; try again", Status: http.StatusServiceUnavailable}, false)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeBody(w, m)
}

// HandleJWKS serves GET /.well-known/jwks.json: every published signing key
// (RFC 7517 §5), cacheable for token.JWKSMaxAge seconds.
func (d *Discovery) HandleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(token.JWKSMaxAge))
	_, _ = w.Write(d.Keys.JWKS())
}
