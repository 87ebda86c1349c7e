package oauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/jwks"
)

// Workload identity federation: client authentication with a JWT that a
// trusted issuer gave the workload (docs/secretless-clients.md).
const (
	// MethodFederatedJWT is client authentication with a trusted OIDC or
	// Kubernetes issuer's JWT as client_assertion of type jwt-bearer (RFC
	// 7523 §2.2) whose iss is not its sub.
	MethodFederatedJWT = "federated_jwt"
	// MethodSPIFFEJWT is client authentication with a SPIFFE JWT-SVID
	// (draft-ietf-oauth-spiffe-client-auth).
	MethodSPIFFEJWT = "spiffe_jwt"
	// AssertionTypeJWTSPIFFE is the client_assertion_type of a JWT-SVID
	// (draft-ietf-oauth-spiffe-client-auth §4).
	AssertionTypeJWTSPIFFE = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"
	// GrantTypeJWTBearer is the JWT bearer authorization grant (RFC 7523
	// §2.1), authenticated by its assertion alone.
	GrantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// MaxFederatedLifetime bounds how far ahead a trusted issuer's JWT
	// may expire: 24 h. Kubernetes tokens last an hour by default, GitHub
	// Actions tokens minutes; a longer one is more likely stolen than
	// needed.
	MaxFederatedLifetime = 24 * time.Hour
)

// FederatedSigningAlgs are the algorithms a trusted issuer's JWT may be
// signed with, the parse-time allow-list: what Kubernetes (RS256), GitHub
// Actions (RS256), clouds and SPIRE (RS256, ES256, ES384, PS256) use. No
// none, no HMAC; RSA keys of at least jwks.MinRSABits.
var FederatedSigningAlgs = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}

var federatedAllow = signatureAlgs(FederatedSigningAlgs)

// TrustedIssuerSource finds trusted issuers (authz.TrustedIssuers).
type TrustedIssuerSource interface {
	// TrustedIssuerByIssuer returns the trusted issuer whose Issuer is
	// issuer, or an error wrapping authz.ErrNotFound.
	TrustedIssuerByIssuer(ctx context.Context, issuer string) (authz.TrustedIssuer, error)
}

// FederatedCredentialSource lists federated credentials (authz.Credentials).
type FederatedCredentialSource interface {
	// ListFederatedCredentials returns the federated credentials of every
	// application that name trusted issuer trustedIssuerID, ordered by
	// (ClientID, CreatedAt, ID).
	ListFederatedCredentials(ctx context.Context, trustedIssuerID string) ([]authz.Credential, error)
}

// FederatedKeySource fetches a trusted issuer's keys (jwks.Fetcher): each
// returns the keys with kid (all if "") or an error wrapping
// jwks.ErrUnknownKey, fetching again on an unknown kid at most once per
// rate-limit interval.
type FederatedKeySource interface {
	// Lookup reads the JWKS at rawURL.
	Lookup(ctx context.Context, rawURL, kid string) ([]jose.JSONWebKey, error)
	// LookupDiscovered reads the JWKS that issuer's OpenID configuration names.
	LookupDiscovered(ctx context.Context, issuer, kid string) ([]jose.JSONWebKey, error)
	// LookupBundle reads the jwt-svid keys of the SPIFFE bundle at rawURL.
	LookupBundle(ctx context.Context, rawURL, kid string) ([]jose.JSONWebKey, error)
}

// Federated holds what the federated_jwt and spiffe_jwt methods share;
// Authenticators returns the two methods. A JWT is verified with its
// trusted issuer's keys, its times checked, then matched against the
// federated credentials that name the issuer: exactly one application
// must match.
type Federated struct {
	S           *Server
	Issuers     TrustedIssuerSource
	Credentials FederatedCredentialSource
	Keys        FederatedKeySource
	// Replay records the jti of single-use issuers' JWTs (authz.Replay).
	Replay ReplayStore
	// Audience is AudienceStrict ("" too) or AudienceLenient, as for
	// private_key_jwt.
	Audience string
}

// Authenticators returns the methods federated_jwt and spiffe_jwt.
func (f *Federated) Authenticators() []ClientAuthenticator {
	return []ClientAuthenticator{federatedAuth{f, false}, federatedAuth{f, true}}
}

// federatedAuth is federated_jwt, or spiffe_jwt if spiffe.
type federatedAuth struct {
	f      *Federated
	spiffe bool
}

func (a federatedAuth) Method() string {
	if a.spiffe {
		return MethodSPIFFEJWT
	}
	return MethodFederatedJWT
}

func (a federatedAuth) authenticate(ctx context.Context, c credentials) (authenticated, error) {
	return a.f.authenticate(ctx, c, a.spiffe)
}

// federatedClaims are the registered claims of a trusted issuer's JWT and
// all of its members, for the claim conditions.
type federatedClaims struct {
	jwt.Claims
	raw map[string]json.RawMessage
}

func (f *Federated) authenticate(ctx context.Context, c credentials, spiffe bool) (authenticated, error) {
	if c.assertion == "" {
		return authenticated{}, authFailure("no assertion")
	}
	tok, err := jwt.ParseSigned(c.assertion, federatedAllow)
	if err != nil || len(tok.Headers) != 1 {
		return authenticated{}, authFailure("assertion malformed or its alg not allowed")
	}
	h := tok.Headers[0]
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return authenticated{}, authFailure("assertion malformed")
	}
	ti, reason, err := f.issuer(ctx, unverified, spiffe)
	if err != nil || reason != "" {
		return authenticated{}, orFailure(err, reason)
	}
	keys, err := f.keys(ctx, ti, h.KeyID, h.Algorithm)
	if err != nil {
		return authenticated{}, err
	}
	var cl federatedClaims
	verified := false
	for _, k := range keys {
		if tok.Claims(k.Key, &cl.Claims, &cl.raw) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return authenticated{}, authFailure("assertion signature")
	}
	now := f.S.Now()
	// Less than a second left is expired: a token issued on it would be
	// born expired (Server.FederatedLifetimeFull false).
	if reason := checkAssertionTimes(cl.Claims, now, time.Second, MaxFederatedLifetime); reason != "" {
		return authenticated{}, authFailure(reason)
	}
	cred, reason, err := f.match(ctx, ti, cl, c.clientID, now)
	if err != nil || reason != "" {
		return authenticated{}, orFailure(err, reason)
	}
	client, err := f.S.Clients.Client(ctx, cred.ClientID)
	if errors.Is(err, authz.ErrNotFound) {
		return authenticated{}, authFailure("unknown client_id")
	}
	if err != nil {
		return authenticated{}, fmt.Errorf("looking up client: %w", err)
	}
	// draft-ietf-oauth-spiffe-client-auth: a JWT-SVID is reused until it
	// expires, its jti optional; it is never replay-checked.
	if ti.SingleUse && !spiffe {
		if cl.ID == "" {
			return authenticated{}, authFailure("assertion without jti (single-use issuer)")
		}
		fresh, err := f.Replay.UseJTI(ctx, "fed:"+ti.Issuer+":"+cl.ID, cl.Expiry.Time())
		if err != nil {
			return authenticated{}, fmt.Errorf("recording the assertion's jti: %w", err)
		}
		if !fresh {
			return authenticated{}, authFailure("assertion replayed")
		}
	}
	return authenticated{
		client: client, credentialID: cred.ID, notAfter: cl.Expiry.Time(),
		issuer: ti.Issuer, subject: cl.Subject,
	}, nil
}

// orFailure is err if set, else the refusal reason.
func orFailure(err error, reason string) error {
	if err != nil {
		return err
	}
	return authFailure(reason)
}

// issuer finds the trusted issuer of a JWT by its unverified claims: its
// iss for federated_jwt (an OIDC or Kubernetes issuer), "spiffe://" + the
// trust domain of its sub for spiffe_jwt. Returns a refusal reason, or an
// error if the store cannot answer.
func (f *Federated) issuer(ctx context.Context, cl jwt.Claims, spiffe bool) (authz.TrustedIssuer, string, error) {
	key := cl.Issuer
	if spiffe {
		td, ok := SPIFFETrustDomain(cl.Subject)
		if !ok {
			return authz.TrustedIssuer{}, "JWT-SVID sub is not a SPIFFE ID", nil
		}
		key = "spiffe://" + td
	} else if key == "" {
		return authz.TrustedIssuer{}, "assertion without iss", nil
	}
	ti, err := f.Issuers.TrustedIssuerByIssuer(ctx, key)
	if errors.Is(err, authz.ErrNotFound) {
		return authz.TrustedIssuer{}, "issuer not trusted", nil
	}
	if err != nil {
		return authz.TrustedIssuer{}, "", fmt.Errorf("looking up the trusted issuer: %w", err)
	}
	if (ti.Kind == authz.TrustedIssuerSPIFFE) != spiffe {
		return authz.TrustedIssuer{}, "assertion type does not fit the trusted issuer's kind", nil
	}
	return ti, "", nil
}

// keys returns ti's keys that may verify a JWS with kid (any if "") and
// alg: its inline JWKS or bundle, else fetched from its jwks_uri, its
// bundle endpoint or by OpenID discovery. An unknown kid or keys that
// cannot be had are a refusal (the fetch failure is logged).
func (f *Federated) keys(ctx context.Context, ti authz.TrustedIssuer, kid, alg string) ([]jose.JSONWebKey, error) {
	var found []jose.JSONWebKey
	var err error
	switch {
	case len(ti.JWKS) > 0 && ti.Kind == authz.TrustedIssuerSPIFFE:
		var b jwks.Bundle
		if b, err = jwks.ParseBundle(ti.JWKS); err == nil {
			found = b.Lookup(kid)
		}
	case len(ti.JWKS) > 0:
		var set jwks.Set
		if set, err = jwks.Parse(ti.JWKS); err == nil {
			found = set.Lookup(kid)
		}
	case f.Keys == nil:
		err = errors.New("no fetcher configured")
	case ti.Kind == authz.TrustedIssuerSPIFFE:
		found, err = f.Keys.LookupBundle(ctx, ti.BundleURL, kid)
	case ti.JWKSURI != "":
		found, err = f.Keys.Lookup(ctx, ti.JWKSURI, kid)
	default:
		found, err = f.Keys.LookupDiscovered(ctx, ti.Issuer, kid)
	}
	if err != nil && !errors.Is(err, jwks.ErrUnknownKey) {
		// Debug: the caller chose the issuer, and the fetcher has warned of
		// the failure once per (rate-limited) fetch attempt.
		f.S.Log.Debug("trusted issuer's keys unavailable", "issuer", ti.Issuer, "error", err)
		return nil, authFailure("trusted issuer's keys unavailable")
	}
	var out []jose.JSONWebKey
	for _, k := range found {
		if jwks.CheckKey(k) == nil && jwks.Fits(k, alg) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, authFailure("assertion key unknown")
	}
	return out, nil
}

// match returns the one federated credential of ti that the verified
// claims meet: its subject pattern, its audience and its claim conditions,
// unexpired, of application clientID if it is given. Several credentials
// of one application are one match (the first is reported); credentials
// of several applications are a refusal, as are none.
func (f *Federated) match(ctx context.Context, ti authz.TrustedIssuer, cl federatedClaims, clientID string, now time.Time) (authz.Credential, string, error) {
	creds, err := f.Credentials.ListFederatedCredentials(ctx, ti.ID)
	if err != nil {
		return authz.Credential{}, "", fmt.Errorf("listing federated credentials: %w", err)
	}
	issuer := f.S.Issuer.URL()
	var first authz.Credential
	apps := map[string]bool{}
	for _, cr := range creds {
		if cr.Type != authz.CredentialFederated || cr.Expired(now) || (clientID != "" && cr.ClientID != clientID) {
			continue
		}
		var cfg authz.FederatedCredentialConfig
		if err := json.Unmarshal(cr.Config, &cfg); err != nil {
			f.S.Log.Warn("stored federated credential does not parse", "client_id", cr.ClientID, "credential_id", cr.ID, "error", err)
			continue
		}
		want := cfg.Audience
		if want == "" {
			want = issuer // the credential's default: our issuer identifier
		}
		if !authz.MatchSubject(cfg.Subject, cl.Subject) || !assertionAudienceOK(cl.Audience, want, issuer, f.Audience) || !claimsMeet(cl.raw, cfg.Claims) {
			continue
		}
		if len(apps) == 0 {
			first = cr
		}
		apps[cr.ClientID] = true
	}
	switch len(apps) {
	case 0:
		return authz.Credential{}, "no federated credential matches", nil
	case 1:
		return first, "", nil
	}
	return authz.Credential{}, fmt.Sprintf("ambiguous: %d applications match; send client_id", len(apps)), nil
}

// claimsMeet reports whether the JWT's members meet every condition.
func claimsMeet(raw map[string]json.RawMessage, conds map[string]authz.ClaimCondition) bool {
	for name, cond := range conds {
		v, ok := claimValue(raw, name, 0)
		if !ok {
			return false
		}
		text, ok := claimText(v)
		if !ok {
			return false
		}
		met := false
		for _, want := range cond.Values {
			if text == want {
				met = true
				break
			}
		}
		if !met {
			return false
		}
	}
	return true
}

// maxClaimDepth bounds how deep a dotted claim name reaches.
const maxClaimDepth = 8

// claimValue finds claim name in obj: the member named so, or else, for
// each "." in name from the left, the rest of the name inside the object
// member named by what comes before it ("kubernetes.io.namespace" is
// namespace inside "kubernetes.io").
func claimValue(obj map[string]json.RawMessage, name string, depth int) (json.RawMessage, bool) {
	if v, ok := obj[name]; ok {
		return v, true
	}
	if depth >= maxClaimDepth {
		return nil, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		sub, ok := obj[name[:i]]
		if !ok {
			continue
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(sub, &inner) != nil {
			continue
		}
		if v, ok := claimValue(inner, name[i+1:], depth+1); ok {
			return v, true
		}
	}
	return nil, false
}

// claimText is a claim's value as a condition compares it: a string's
// value, a number's or a boolean's JSON text. Anything else (null, an
// object, an array) meets no condition.
func claimText(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", false
	}
	switch c := v[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", false
		}
		return s, true
	case c == 't' || c == 'f':
		return string(v), string(v) == "true" || string(v) == "false"
	case c == '-' || (c >= '0' && c <= '9'):
		return string(v), true
	}
	return "", false
}

// SPIFFETrustDomain returns the trust domain of id if it is a SPIFFE ID
// (SPIFFE ID §2): "spiffe://", a trust domain of lowercase letters,
// digits, ".", "-" and "_", and a path of non-empty segments other than
// "." and "..", of letters, digits, ".", "-" and "_". A JWT-SVID's sub
// names a workload, so the path must not be empty.
func SPIFFETrustDomain(id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok || len(id) > 2048 {
		return "", false
	}
	td, path, _ := strings.Cut(rest, "/")
	if td == "" || path == "" {
		return "", false
	}
	for i := 0; i < len(td); i++ {
		if c := td[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return "", false
		}
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", false
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return td, true
}

// assertionMethod tells the method of a jwt-bearer JWT from its unverified
// iss and sub (read without any check: the method verifies): a JWT whose
// iss is its sub is private_key_jwt (RFC 7523 §2.2: the client issued
// it); with spiffe, one without iss whose sub is a SPIFFE ID is a JWT-SVID
// (the jwt-bearer grant, which has no assertion type to say so); any other
// is a trusted issuer's (federated_jwt). sub is returned for
// private_key_jwt's client_id.
func assertionMethod(assertion string, spiffe bool) (method, sub string) {
	iss, sub := unverifiedIssuerSubject(assertion)
	switch {
	case iss == sub:
		return MethodPrivateKeyJWT, sub
	case spiffe && iss == "":
		if _, ok := SPIFFETrustDomain(sub); ok {
			return MethodSPIFFEJWT, ""
		}
	}
	return MethodFederatedJWT, ""
}

// unverifiedIssuerSubject reads the iss and sub of a compact JWS without
// any check, whatever its alg; "" for what cannot be read.
func unverifiedIssuerSubject(assertion string) (iss, sub string) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 || len(parts[1]) > MaxBodyBytes {
		return "", ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", ""
	}
	var cl struct {
		Issuer  any `json:"iss"`
		Subject any `json:"sub"`
	}
	if json.Unmarshal(payload, &cl) != nil {
		return "", ""
	}
	iss, _ = cl.Issuer.(string)
	sub, _ = cl.Subject.(string)
	return iss, sub
}
