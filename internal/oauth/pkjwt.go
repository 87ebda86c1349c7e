package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/jwks"
)

// MethodPrivateKeyJWT is client authentication with a JWT signed by the
// client's private key (RFC 7523 §2.2, OpenID Connect Core §9).
const MethodPrivateKeyJWT = "private_key_jwt"

// AssertionTypeJWTBearer is the client_assertion_type of a JWT client
// assertion (RFC 7523 §2.2).
const AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionJWTType is the typ header RFC 7523bis gives client assertions.
const AssertionJWTType = "client-authentication+jwt"

// AssertionSigningAlgs are the algorithms a client assertion may be
// signed with, as discovery's token_endpoint_auth_signing_alg_values_supported
// lists them. No none, no HMAC: the allow-list is applied at parse time.
var AssertionSigningAlgs = []string{"PS256", "ES256", "EdDSA"}

// Limits on client assertions (RFC 7523bis, FAPI 2.0).
const (
	MaxAssertionLifetime = 5 * time.Minute  // exp − now at most
	AssertionClockSkew   = 10 * time.Second // iat and nbf at most this far ahead
)

// Client assertion audience modes (Server's ClientAssertionAudience).
const (
	AudienceStrict  = "strict"  // aud is the issuer identifier, alone
	AudienceLenient = "lenient" // also the token endpoint URL, or an array containing the issuer
)

// CredentialSource lists an application's secretless credentials.
type CredentialSource interface {
	// ListCredentials returns the credentials of application clientID; an
	// empty list if it has none or does not exist.
	ListCredentials(ctx context.Context, clientID string) ([]authz.Credential, error)
}

// JWKSFetcher returns the keys with kid (all if "") of the JWKS at a URL
// (jwks.Fetcher).
type JWKSFetcher interface {
	Lookup(ctx context.Context, rawURL, kid string) ([]jose.JSONWebKey, error)
}

// ReplayStore records used assertion IDs (authz.Replay).
type ReplayStore interface {
	UseJTI(ctx context.Context, key string, exp time.Time) (fresh bool, err error)
}

// PrivateKeyJWT is the private_key_jwt method: the client_assertion is
// verified with the keys of the application's unexpired jwks and jwks_uri
// credentials, then its claims are checked (iss = sub = client_id, aud,
// exp, iat, nbf) and its jti recorded, so it is accepted once.
type PrivateKeyJWT struct {
	S           *Server
	Credentials CredentialSource
	Fetcher     JWKSFetcher // nil: jwks_uri credentials are not usable
	Replay      ReplayStore
	// Audience is AudienceStrict ("" too) or AudienceLenient.
	Audience string
	// Algs are the JWS algorithms an assertion may be signed with, from
	// PS256, ES256, EdDSA and RS256 (others are ignored; surrounding
	// spaces are trimmed); nil or empty: AssertionSigningAlgs. They are
	// go-jose's allow-list at parse time, and what discovery lists as
	// token_endpoint_auth_signing_alg_values_supported (RFC 8414 §2).
	Algs []string
	// RequireTyp refuses an assertion without the typ header
	// client-authentication+jwt (RFC 7523bis). Without it an untyped
	// assertion is accepted; a typed one must carry that type either way.
	RequireTyp bool

	algsOnce sync.Once
	algs     []string // Algs, cleaned
	allow    []jose.SignatureAlgorithm
}

// Method returns MethodPrivateKeyJWT.
func (a *PrivateKeyJWT) Method() string { return MethodPrivateKeyJWT }

// SigningAlgs returns the algorithms assertions may be signed with: Algs
// as used (see there), in their order.
func (a *PrivateKeyJWT) SigningAlgs() []string {
	a.algsOnce.Do(a.initAlgs)
	return slices.Clone(a.algs)
}

func (a *PrivateKeyJWT) initAlgs() {
	for _, alg := range a.Algs {
		alg = strings.TrimSpace(alg)
		if slices.Contains(supportedAssertionAlgs, alg) && !slices.Contains(a.algs, alg) {
			a.algs = append(a.algs, alg)
		}
	}
	if len(a.algs) == 0 {
		a.algs = slices.Clone(AssertionSigningAlgs)
	}
	a.allow = signatureAlgs(a.algs)
}

// AuthSigningAlgs returns the algorithms of s's private_key_jwt method
// (PrivateKeyJWT.SigningAlgs), nil if it has none registered: what
// discovery lists as token_endpoint_auth_signing_alg_values_supported.
func (s *Server) AuthSigningAlgs() []string {
	if a, ok := s.authenticator(MethodPrivateKeyJWT).(*PrivateKeyJWT); ok {
		return a.SigningAlgs()
	}
	return nil
}

func (a *PrivateKeyJWT) authenticate(ctx context.Context, c credentials) (authenticated, error) {
	s := a.S
	if c.assertion == "" {
		return authenticated{}, authFailure("no client assertion")
	}
	a.algsOnce.Do(a.initAlgs)
	tok, err := jwt.ParseSigned(c.assertion, a.allow)
	if err != nil || len(tok.Headers) != 1 {
		return authenticated{}, authFailure("assertion malformed or its alg not allowed")
	}
	h := tok.Headers[0]
	typ, typed := h.ExtraHeaders[jose.HeaderType]
	switch {
	case typed && !isAssertionType(typ):
		return authenticated{}, authFailure("assertion type")
	case !typed && a.RequireTyp:
		return authenticated{}, authFailure("assertion without typ " + AssertionJWTType)
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return authenticated{}, authFailure("assertion malformed")
	}
	// The sub only finds the keys; it is checked again once verified.
	if unverified.Subject != c.clientID {
		return authenticated{}, authFailure("assertion subject")
	}
	client, err := s.Clients.Client(ctx, c.clientID)
	if errors.Is(err, authz.ErrNotFound) {
		return authenticated{}, authFailure("unknown client_id")
	}
	if err != nil {
		return authenticated{}, fmt.Errorf("looking up client: %w", err)
	}
	keys, err := a.keys(ctx, c.clientID, h.KeyID, h.Algorithm)
	if err != nil {
		return authenticated{}, err
	}
	var claims jwt.Claims
	credentialID := ""
	for _, k := range keys {
		if tok.Claims(k.key.Key, &claims) == nil {
			credentialID = k.credentialID
			break
		}
	}
	if credentialID == "" {
		return authenticated{}, authFailure("assertion signature")
	}
	if reason := a.checkClaims(claims, c.clientID); reason != "" {
		return authenticated{}, authFailure(reason)
	}
	fresh, err := a.Replay.UseJTI(ctx, c.clientID+":"+claims.ID, claims.Expiry.Time())
	if err != nil {
		return authenticated{}, fmt.Errorf("recording the assertion's jti: %w", err)
	}
	if !fresh {
		return authenticated{}, authFailure("assertion replayed")
	}
	return authenticated{client: client, credentialID: credentialID, alg: h.Algorithm}, nil
}

// credentialKey is a public key of a credential.
type credentialKey struct {
	key          jose.JSONWebKey
	credentialID string
}

// keys returns the public keys of clientID's unexpired credentials that
// may verify a JWS with kid (any if "") and alg, each with the credential
// it belongs to. A jwks_uri that cannot be fetched is skipped (logged):
// another credential may still verify.
func (a *PrivateKeyJWT) keys(ctx context.Context, clientID, kid, alg string) ([]credentialKey, error) {
	creds, err := a.Credentials.ListCredentials(ctx, clientID)
	if err != nil {
		return nil, fmt.Errorf("listing credentials: %w", err)
	}
	now := a.S.Now()
	var out []credentialKey
	for _, cr := range creds {
		if cr.Expired(now) {
			continue
		}
		var cfg authz.KeyCredentialConfig
		if json.Unmarshal(cr.Config, &cfg) != nil {
			continue
		}
		var found []jose.JSONWebKey
		switch cr.Type {
		case authz.CredentialJWKS:
			set, err := jwks.Parse(cfg.JWKS)
			if err != nil {
				a.S.Log.Warn("stored jwks credential does not parse", "client_id", clientID, "error", err)
				continue
			}
			found = set.Lookup(kid)
		case authz.CredentialJWKSURI:
			if a.Fetcher == nil {
				continue
			}
			found, err = a.Fetcher.Lookup(ctx, cfg.JWKSURI, kid)
			if err != nil {
				if !errors.Is(err, jwks.ErrUnknownKey) {
					// Debug: the fetcher warned once per (rate-limited)
					// fetch attempt; this runs per request.
					a.S.Log.Debug("cannot fetch jwks_uri", "client_id", clientID, "error", err)
				}
				continue
			}
		}
		for _, k := range found {
			if jwks.CheckKey(k) == nil && jwks.Fits(k, alg) {
				out = append(out, credentialKey{key: k, credentialID: cr.ID})
			}
		}
	}
	if len(out) == 0 {
		return nil, authFailure("assertion key unknown")
	}
	return out, nil
}

// checkClaims returns the reason to refuse verified claims, "" if none.
func (a *PrivateKeyJWT) checkClaims(cl jwt.Claims, clientID string) string {
	issuer := a.S.Issuer.URL()
	switch {
	case cl.Issuer != clientID || cl.Subject != clientID:
		return "assertion issuer"
	case !assertionAudienceOK(cl.Audience, issuer, issuer, a.Audience):
		return "assertion audience"
	}
	if reason := checkAssertionTimes(cl, a.S.Now(), 0, MaxAssertionLifetime); reason != "" {
		return reason
	}
	if cl.ID == "" {
		return "assertion without jti"
	}
	return ""
}

// isAssertionType reports whether a typ header value is
// client-authentication+jwt (RFC 7523bis), compared as RFC 7515 §4.1.9
// says: case-insensitively, and with the "application/" prefix optional.
func isAssertionType(typ any) bool {
	s, ok := typ.(string)
	if !ok {
		return false
	}
	s = strings.ToLower(s)
	return strings.TrimPrefix(s, "application/") == AssertionJWTType
}

// supportedAssertionAlgs are the algorithms PrivateKeyJWT.Algs may name:
// asymmetric only (no none, no HMAC, RFC 7523bis), RS256 by option.
var supportedAssertionAlgs = []string{"PS256", "ES256", "EdDSA", "RS256"}

// signatureAlgs converts algorithm names for go-jose's parse-time allow-list.
func signatureAlgs(names []string) []jose.SignatureAlgorithm {
	algs := make([]jose.SignatureAlgorithm, len(names))
	for i, alg := range names {
		algs[i] = jose.SignatureAlgorithm(alg)
	}
	return algs
}
