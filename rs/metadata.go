package rs

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// MetadataWellKnown is the well-known path suffix of protected resource
// metadata (RFC 9728 §3).
const MetadataWellKnown = "/.well-known/oauth-protected-resource"

// ResourceMetadata is an OAuth 2.0 protected resource metadata document
// (RFC 9728 §2). Validator.Metadata fills in what the Validator knows; the
// API adds its scopes and whatever else it wants to publish.
type ResourceMetadata struct {
	// Resource is the resource identifier: Config.Audience. RFC 9728 §3.3
	// requires it to equal the identifier the metadata URL was built from.
	Resource string `json:"resource"`
	// AuthorizationServers are the issuer identifiers of the authorization
	// servers that issue tokens for this resource: Config.Issuer.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// ScopesSupported are the scopes used to reach this resource; the API
	// sets them.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported: ["header"], as tokens are read from the
	// Authorization header only (RFC 6750 §2.1).
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	// ResourceName is a human-readable name, optional.
	ResourceName string `json:"resource_name,omitempty"`
	// ResourceDocumentation is the URL of a page for developers, optional.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
	// DPoPSigningAlgValuesSupported: Config.DPoP.Algorithms.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
	// DPoPBoundAccessTokensRequired: the policy is SenderConstrained and
	// there is no mTLS (Config.MTLS), so every token must be DPoP-bound.
	DPoPBoundAccessTokensRequired bool `json:"dpop_bound_access_tokens_required"`
	// TLSClientCertificateBoundAccessTokens: Config.MTLS is set, so
	// certificate-bound tokens are supported (RFC 8705 §3.4).
	TLSClientCertificateBoundAccessTokens bool `json:"tls_client_certificate_bound_access_tokens"`
}

// Metadata returns this API's protected resource metadata as the
// Validator's configuration describes it, without scopes.
func (v *Validator) Metadata() ResourceMetadata {
	return ResourceMetadata{
		Resource:                              v.audience,
		AuthorizationServers:                  []string{v.issuer},
		BearerMethodsSupported:                []string{"header"},
		DPoPSigningAlgValuesSupported:         slices.Clone(v.dpop.algs),
		DPoPBoundAccessTokensRequired:         v.policy == SenderConstrained && v.mtls == nil,
		TLSClientCertificateBoundAccessTokens: v.mtls != nil,
	}
}

// MetadataURL returns the URL of the metadata of the resource identified
// by resource, an absolute https (or http) URL without fragment: the
// well-known suffix inserted between the host and the path, a path of "/"
// dropped (RFC 9728 §3.1). "https://api.example.com/" gives
// "https://api.example.com/.well-known/oauth-protected-resource", and
// "https://example.com/usage" gives
// "https://example.com/.well-known/oauth-protected-resource/usage".
func MetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return "", fmt.Errorf("rs: MetadataURL: %q is not an absolute http(s) URL", resource)
	}
	if u.Fragment != "" || strings.Contains(resource, "#") {
		return "", fmt.Errorf("rs: MetadataURL: %q has a fragment (RFC 9728 §1.2)", resource)
	}
	path := u.EscapedPath()
	if path == "/" {
		path = ""
	}
	out := u.Scheme + "://" + u.Host + MetadataWellKnown + path
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, nil
}

// MetadataPath returns the path at which to serve the metadata of resource
// on this API's own mux: MetadataURL's path, e.g.
// "/.well-known/oauth-protected-resource/usage". A query in the resource
// identifier is left out; the mux matches paths only.
func MetadataPath(resource string) (string, error) {
	raw, err := MetadataURL(resource)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("rs: MetadataPath: %w", err)
	}
	return u.Path, nil
}

// MetadataHandler serves m as JSON (RFC 9728 §3.2) to GET and HEAD
// requests, without authentication, cacheable for an hour. Other methods
// get 405.
//
//	m := v.Metadata()
//	m.ScopesSupported = []string{"read:meters"}
//	path, _ := rs.MetadataPath(audience)
//	mux.Handle("GET "+path, rs.MetadataHandler(m))
func MetadataHandler(m ResourceMetadata) http.Handler {
	body, err := json.Marshal(m)
	if err != nil {
		// A struct of strings, slices of strings and bools always marshals.
		panic("rs: MetadataHandler: " + err.Error())
	}
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}
