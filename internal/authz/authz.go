// Package authz holds m2mauth's domain: the APIs (resource servers) that
// tokens are issued for, the applications (OAuth clients) that ask for them,
// their client secrets and grants, the signing keys, and the interfaces the
// stores implement. It imports no adapter: HTTP, SQL and JOSE live above it.
package authz

import (
	"cmp"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Errors returned by stores and by the domain's validation. Callers match
// them with errors.Is; adapters wrap them with detail.
var (
	// ErrNotFound means no row has the given key.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique key (API identifier, grant audience) is taken
	// or the object cannot change in the asked way (the management API).
	ErrConflict = errors.New("conflict")
	// ErrInvalid means an input failed validation; the wrapped message says why.
	ErrInvalid = errors.New("invalid")
	// ErrUnavailable means the store could not be reached (a lost
	// connection, a timeout, a lock another process holds): nothing was
	// changed and the same call may succeed later. Stores wrap it around
	// the driver's error; any other store error is a failure of the store
	// itself (a full disk, a broken schema).
	ErrUnavailable = errors.New("store unavailable")
)

// Signing algorithms an API may choose for its access tokens (RFC 7518 §3,
// RFC 8037 for EdDSA). Only asymmetric algorithms: resource servers verify
// tokens with public keys from the JWKS.
const (
	ES256 = "ES256"
	RS256 = "RS256"
	PS256 = "PS256"
	EdDSA = "EdDSA"
)

// SigningAlgs lists every supported signing algorithm, in the order the
// discovery document and the JWKS present them.
var SigningAlgs = []string{ES256, EdDSA, RS256, PS256}

// ValidSigningAlg reports whether alg is one of SigningAlgs.
func ValidSigningAlg(alg string) bool {
	for _, a := range SigningAlgs {
		if a == alg {
			return true
		}
	}
	return false
}

// ManagementAudience is the identifier of m2mauth's own management API. The
// management API is an API like any other in the data model: applications
// are granted its scopes to administer the server.
const ManagementAudience = "urn:m2mauth:admin"

// Management API scopes. An application needs the scope named for each
// management action.
const (
	ScopeReadAPIs           = "read:apis"
	ScopeCreateAPIs         = "create:apis"
	ScopeUpdateAPIs         = "update:apis"
	ScopeDeleteAPIs         = "delete:apis"
	ScopeReadApplications   = "read:applications"
	ScopeCreateApplications = "create:applications"
	ScopeUpdateApplications = "update:applications"
	ScopeDeleteApplications = "delete:applications"
	ScopeReadKeys           = "read:keys"
	ScopeRotateKeys         = "rotate:keys"
	ScopeReadAudit          = "read:audit"
	ScopeRevokeTokens       = "revoke:tokens"
	// ScopeUpdateIntrospection sets which audiences an application may
	// introspect (RFC 7662 §4): Application.IntrospectAudiences.
	ScopeUpdateIntrospection = "update:introspection"
	// ScopeReadTrustedIssuers lists and reads trusted issuers.
	ScopeReadTrustedIssuers = "read:trusted-issuers"
	// ScopeUpdateTrustedIssuers adds and removes trusted issuers: whoever
	// holds it decides which external identities may become applications.
	ScopeUpdateTrustedIssuers = "update:trusted-issuers"
)

// ManagementScopes is the scope list of the management API, with the
// descriptions shown to administrators.
var ManagementScopes = []Scope{
	{ScopeReadAPIs, "List and read APIs"},
	{ScopeCreateAPIs, "Register APIs"},
	{ScopeUpdateAPIs, "Change APIs and their scopes"},
	{ScopeDeleteAPIs, "Delete APIs"},
	{ScopeReadApplications, "List and read applications and their grants"},
	{ScopeCreateApplications, "Create applications"},
	{ScopeUpdateApplications, "Change, disable and grant applications"},
	{ScopeDeleteApplications, "Delete applications"},
	{ScopeReadKeys, "List signing keys (public data only)"},
	{ScopeRotateKeys, "Rotate signing keys"},
	{ScopeReadAudit, "Read the audit log"},
	{ScopeRevokeTokens, "Revoke access tokens"},
	{ScopeUpdateIntrospection, "Choose which audiences' tokens an application may introspect"},
	{ScopeReadTrustedIssuers, "List and read trusted issuers (workload identity federation)"},
	{ScopeUpdateTrustedIssuers, "Add and remove trusted issuers (workload identity federation)"},
}

// DefaultTokenLifetime is an API's access-token lifetime when none is given:
// 3600 seconds.
const DefaultTokenLifetime = 3600 * time.Second

// MaxTokenLifetime bounds an API's access-token lifetime: 86400 seconds.
// Longer-lived bearer tokens defeat revocation by expiry.
const MaxTokenLifetime = 24 * time.Hour

// Scope is one permission an API defines (RFC 6749 §3.3 scope-token).
type Scope struct {
	Value       string `json:"value"`
	Description string `json:"description"`
}

// API is a resource server that access tokens are issued for. Identifier is
// the audience string tokens carry in "aud" (RFC 9068 §3, RFC 8707 §2).
type API struct {
	ID            string
	Identifier    string
	Name          string
	Scopes        []Scope
	TokenLifetime time.Duration // whole seconds
	SigningAlg    string        // one of SigningAlgs
	System        bool          // m2mauth's own management API: never deleted
	// DPoP is PolicyOptional (a DPoP proof, when sent, binds the token)
	// or PolicyRequired (a token request without a proof is refused):
	// RFC 9449. "" reads as PolicyOptional.
	DPoP string
	// DPoPNonce requires a server-provided nonce in the DPoP proofs of
	// token requests for the API (RFC 9449 §8).
	DPoPNonce bool
	// MTLSBound is PolicyOptional (a token requested over mutual TLS is
	// bound to the client certificate) or PolicyRequired (a token request
	// without a client certificate is refused): RFC 8705 §3. "" reads as
	// PolicyOptional.
	MTLSBound string
	// Profile is ProfileNone or ProfileFAPI2 (FAPI 2.0 Security Profile,
	// client credentials: docs/fapi2.md). "" reads as ProfileNone.
	Profile string
	// TokenReuse is the API's opt-in token reuse (docs/token-reuse.md);
	// an application's own setting overrides it (EffectiveTokenReuse).
	TokenReuse TokenReuse
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// TokenReuse is the opt-in token reuse of an application or an API
// (docs/token-reuse.md): a repeated token request gets the token already
// issued for the same client, audience, scopes and sender-constraint key
// while it has at least MinRemaining left. The zero TokenReuse is off.
type TokenReuse struct {
	// MinRemaining is in whole seconds: at least one, and less than the
	// API's token lifetime (checked by manage); 0 is off.
	MinRemaining time.Duration
}

// Enabled reports whether r turns token reuse on.
func (r TokenReuse) Enabled() bool { return r.MinRemaining > 0 }

// EffectiveTokenReuse returns the token reuse that applies to a token of
// app for api: the application's own setting if it has one, else the
// API's; the zero TokenReuse (off) if neither has one.
func EffectiveTokenReuse(app *Application, api *API) TokenReuse {
	if app.TokenReuse.Enabled() {
		return app.TokenReuse
	}
	return api.TokenReuse
}

// Sender-constraint policies of an API (API.DPoP, API.MTLSBound).
const (
	PolicyOptional = "optional"
	PolicyRequired = "required"
)

// Security profiles of an API (API.Profile).
const (
	ProfileNone  = "none"
	ProfileFAPI2 = "fapi2"
)

// HasScope reports whether the API defines scope value s.
func (a *API) HasScope(s string) bool {
	for _, sc := range a.Scopes {
		if sc.Value == s {
			return true
		}
	}
	return false
}

// ScopeValues returns the values of the API's scopes, in definition order.
func (a *API) ScopeValues() []string {
	out := make([]string, len(a.Scopes))
	for i, sc := range a.Scopes {
		out[i] = sc.Value
	}
	return out
}

// Application is an OAuth client (RFC 6749 §2) that obtains access tokens
// with the client credentials grant.
type Application struct {
	ClientID    string
	Name        string
	Description string
	Disabled    bool
	// IntrospectAudiences are the audiences (API identifiers) whose tokens
	// the application may introspect although they were issued to other
	// applications (RFC 7662 §4): meant for resource servers. Never the
	// management API's. Empty: only its own tokens.
	IntrospectAudiences []string
	// TokensNotBefore, when set, kills every token issued to the application
	// before it ("revoke all tokens").
	TokensNotBefore time.Time
	// Policy is the application's rate, quotas and allowed source
	// addresses; the zero Policy: the server's default.
	Policy Policy
	// TokenReuse is the application's opt-in token reuse, for every API
	// it is granted; the zero TokenReuse: the API's (EffectiveTokenReuse).
	TokenReuse TokenReuse
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// MayIntrospect reports whether the application may introspect a token
// for audience issued to another application.
func (a *Application) MayIntrospect(audience string) bool {
	if audience == ManagementAudience {
		return false
	}
	for _, v := range a.IntrospectAudiences {
		if v == audience {
			return true
		}
	}
	return false
}

// ApplicationPatch names the fields UpdateApplication changes; nil fields
// (and a zero TokensNotBefore) are left as the store holds them, so two
// writers changing different fields never undo each other.
type ApplicationPatch struct {
	Name                *string
	Description         *string
	Disabled            *bool
	IntrospectAudiences *[]string
	// TokensNotBefore raises the application's cutoff to this time if it
	// is later than the stored one: the cutoff only moves forward, so a
	// revoke-all is never undone. Zero: unchanged.
	TokensNotBefore time.Time
	// Policy replaces the whole policy when not nil.
	Policy *Policy
	// TokenReuse replaces the token reuse when not nil; a pointer to the
	// zero TokenReuse removes it.
	TokenReuse *TokenReuse
	// UpdatedAt is the time of the change; required.
	UpdatedAt time.Time
}

// APIPatch names the fields UpdateAPI changes; nil fields are left as the
// store holds them. The identifier, System and CreatedAt never change.
type APIPatch struct {
	Name          *string
	Scopes        *[]Scope // scopes no longer defined leave every grant for the API
	TokenLifetime *time.Duration
	SigningAlg    *string
	DPoP          *string
	DPoPNonce     *bool
	MTLSBound     *string
	Profile       *string
	// TokenReuse replaces the token reuse when not nil; a pointer to the
	// zero TokenReuse removes it.
	TokenReuse *TokenReuse
	// UpdatedAt is the time of the change; required.
	UpdatedAt time.Time
}

// Secret is one client secret of an application. Only a keyed hash of the
// secret is kept; the secret itself is shown once, when created.
type Secret struct {
	ID         string // also embedded in the secret string, so it is found in O(1)
	ClientID   string
	Hash       []byte // HMAC-SHA-256 of the secret under the server's pepper
	Prefix     string // non-secret, for display: "m2ms_<id>"
	CreatedAt  time.Time
	UpdatedAt  time.Time // last change of its expiry (CreatedAt until then); a use is not a change
	ExpiresAt  time.Time // zero: never expires
	LastUsedAt time.Time // zero: never used
}

// Expired reports whether the secret has expired at now.
func (s *Secret) Expired(now time.Time) bool {
	return !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt)
}

// Credential types: the secretless credentials an application may hold.
const (
	// CredentialJWKS is a JWKS of public keys given inline, that verify
	// the client's assertions (private_key_jwt, RFC 7523 §2.2).
	CredentialJWKS = "jwks"
	// CredentialJWKSURI is the https URL of such a JWKS.
	CredentialJWKSURI = "jwks_uri"
	// CredentialFederated matches the JWTs a trusted issuer gives the
	// workload (a Kubernetes service-account token, a GitHub Actions OIDC
	// token, a SPIFFE JWT-SVID): FederatedCredentialConfig.
	CredentialFederated = "federated"
	// CredentialTLSClientAuth matches the client certificate of a mutual
	// TLS connection, chaining to a configured CA (or a SPIFFE trust
	// domain's bundle), by its subject DN or one SAN (RFC 8705 §2.1):
	// TLSClientAuthConfig.
	CredentialTLSClientAuth = "tls_client_auth"
	// CredentialSelfSignedTLSClientAuth matches a client certificate
	// registered in a JWKS, by x5c or x5t#S256 (RFC 8705 §2.2):
	// KeyCredentialConfig with JWKS.
	CredentialSelfSignedTLSClientAuth = "self_signed_tls_client_auth"
)

// TLSClientAuthConfig is the Config of a tls_client_auth credential:
// exactly one field is set (RFC 8705 §2.1.2).
type TLSClientAuthConfig struct {
	SubjectDN string `json:"subject_dn,omitempty"` // RFC 4514
	SANDNS    string `json:"san_dns,omitempty"`
	SANURI    string `json:"san_uri,omitempty"`
	SANIP     string `json:"san_ip,omitempty"` // canonical text form
	SANEmail  string `json:"san_email,omitempty"`
}

// Credential is a secretless credential of an application, of one of the
// Credential types. Config is the type's configuration as a JSON object:
// {"jwks": {"keys": [...]}} or {"jwks_uri": "https://..."}; later types
// (federated, tls_client_auth) bring their own.
type Credential struct {
	ID       string
	ClientID string
	Type     string
	// TrustedIssuerID is the trusted issuer a federated credential
	// matches (FederatedCredentialConfig.TrustedIssuer); "" for the others.
	// The store keeps it as a column, to find the credentials of an issuer.
	TrustedIssuerID string
	Config          []byte // JSON object
	CreatedAt       time.Time
	ExpiresAt       time.Time // zero: never expires
	LastUsedAt      time.Time // zero: never used
}

// KeyCredentialConfig is the Config of the jwks and jwks_uri credential
// types: the public keys inline (a JWKS, RFC 7517 §5) or where to fetch
// them (https).
type KeyCredentialConfig struct {
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`
}

// FederatedCredentialConfig is the Config of a federated credential: the
// JWTs of TrustedIssuer whose sub matches Subject, whose aud is Audience
// and whose claims meet Claims authenticate the application.
type FederatedCredentialConfig struct {
	// TrustedIssuer is the id of the TrustedIssuer.
	TrustedIssuer string `json:"trusted_issuer"`
	// Subject is the sub expected: exact, or a glob in which each "*"
	// matches any run of characters other than ":" (MatchSubject).
	Subject string `json:"subject"`
	// Audience is the aud expected; "" means the server's issuer identifier.
	Audience string `json:"audience,omitempty"`
	// Claims are further conditions: claim name (a dotted path reaches
	// into nested objects, as "kubernetes.io.namespace") → one value, or a
	// list of which the claim must equal one. A claim that is a number or
	// a boolean is compared as its JSON text.
	Claims map[string]ClaimCondition `json:"claims,omitempty"`
}

// ClaimCondition is the accepted values of one claim: a JSON string
// (exactly this value) or an array of strings (one of these). It is
// encoded back the way it was given.
type ClaimCondition struct {
	Values []string
	List   bool // given as an array
}

// MarshalJSON encodes c as a string, or as an array if it was given as one.
func (c ClaimCondition) MarshalJSON() ([]byte, error) {
	if !c.List && len(c.Values) == 1 {
		return json.Marshal(c.Values[0])
	}
	return json.Marshal(c.Values)
}

// UnmarshalJSON decodes a string or an array of strings; anything else,
// null included, is an error.
func (c *ClaimCondition) UnmarshalJSON(b []byte) error {
	var one string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*c = ClaimCondition{Values: []string{one}}
		return nil
	}
	var list []*string
	if len(b) == 0 || b[0] != '[' || json.Unmarshal(b, &list) != nil {
		return errors.New("a claim condition is a string or an array of strings")
	}
	out := ClaimCondition{List: true, Values: make([]string, len(list))}
	for i, v := range list {
		if v == nil {
			return errors.New("a claim condition is a string or an array of strings")
		}
		out.Values[i] = *v
	}
	*c = out
	return nil
}

// Trusted issuer kinds.
const (
	// TrustedIssuerOIDC is an OpenID Connect issuer: its keys are found by
	// discovery ({issuer}/.well-known/openid-configuration, then its
	// jwks_uri), or at JWKSURI if given. GitHub Actions, GitLab, clouds.
	TrustedIssuerOIDC = "oidc"
	// TrustedIssuerKubernetes is a Kubernetes cluster's service-account
	// token issuer: discovery like OIDC, or JWKSURI, or an inline JWKS for
	// clusters whose issuer is not reachable.
	TrustedIssuerKubernetes = "kubernetes"
	// TrustedIssuerSPIFFE is a SPIFFE trust domain: its JWT-SVID keys come
	// from its bundle endpoint (BundleURL, the https_web profile) or an
	// inline bundle (JWKS).
	TrustedIssuerSPIFFE = "spiffe"
)

// TrustedIssuer is an external issuer of workload identity tokens whose
// JWTs may authenticate applications through their federated credentials.
// Issuer is the key every lookup uses: the iss of the tokens for oidc and
// kubernetes, "spiffe://" + TrustDomain for spiffe (a JWT-SVID's sub
// starts with it); the store keeps it unique.
type TrustedIssuer struct {
	ID          string
	Name        string
	Kind        string // TrustedIssuerOIDC, TrustedIssuerKubernetes or TrustedIssuerSPIFFE
	Issuer      string
	JWKSURI     string          // https; "" to use discovery (oidc, kubernetes)
	JWKS        json.RawMessage // inline keys or SPIFFE bundle; nil if none
	TrustDomain string          // spiffe only
	BundleURL   string          // spiffe only: https bundle endpoint
	// SingleUse makes each token's jti usable once (authz.Replay): tokens
	// without a jti are refused. For issuers that give a fresh token per
	// request (GitHub Actions); Kubernetes and SPIFFE reuse theirs.
	SingleUse bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Expired reports whether the credential has expired at now.
func (c *Credential) Expired(now time.Time) bool {
	return !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt)
}

// Grant lets an application obtain access tokens for one API with a subset
// of that API's scopes.
type Grant struct {
	ID       string
	ClientID string
	APIID    string
	Audience string // the API's identifier, resolved by the store on read
	Scopes   []string
	// Claims are static claims added to every token issued for the grant:
	// a JSON object, compact with members sorted by name; nil for none.
	Claims json.RawMessage
	// TokenLifetime, when not zero, shortens the API's token lifetime for
	// this grant (whole seconds); see EffectiveTokenLifetime.
	TokenLifetime time.Duration
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// HasScope reports whether the grant includes scope value s.
func (g *Grant) HasScope(s string) bool {
	for _, v := range g.Scopes {
		if v == s {
			return true
		}
	}
	return false
}

// Client is everything the token endpoint needs to authenticate an
// application and authorize its request, read in one store call: the
// application, its secrets, and its grants each with the granted API.
type Client struct {
	Application Application
	Secrets     []Secret
	Grants      []ClientGrant
}

// ClientGrant is a grant together with the API it is for.
type ClientGrant struct {
	Grant Grant
	API   *API
}

// Secret returns the secret with the given id, or nil.
func (c *Client) Secret(id string) *Secret {
	for i := range c.Secrets {
		if c.Secrets[i].ID == id {
			return &c.Secrets[i]
		}
	}
	return nil
}

// KeyState is a signing key's place in its rotation: a key is published as
// next before it signs, signs while active, and stays published while
// retired until every token it signed has expired.
type KeyState string

// Signing-key states.
const (
	KeyNext    KeyState = "next"
	KeyActive  KeyState = "active"
	KeyRetired KeyState = "retired"
)

// SigningKey is one asymmetric key that signs access tokens. The private
// key is kept sealed (AES-256-GCM under the server's master key); the public
// half is published in the JWKS under KID.
type SigningKey struct {
	KID         string
	Alg         string
	State       KeyState
	Private     []byte // sealed PKCS #8 DER
	CreatedAt   time.Time
	ActivatedAt time.Time // zero while next
	RetiredAt   time.Time // zero unless retired
	// RemoveAfter is when a retired key leaves the JWKS: its retirement plus
	// the longest token lifetime any API had then.
	RemoveAfter time.Time
}

// Page asks for one page of a list: at most Limit items after the opaque
// Cursor ("" for the first page).
type Page struct {
	Limit  int
	Cursor string
}

// DefaultPageLimit and MaxPageLimit bound Page.Limit.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 500
)

// Normalize returns p with Limit clamped into [1, MaxPageLimit].
func (p Page) Normalize() Page {
	if p.Limit <= 0 {
		p.Limit = DefaultPageLimit
	}
	if p.Limit > MaxPageLimit {
		p.Limit = MaxPageLimit
	}
	return p
}

// AuditEvent is one entry of the audit log: a management action or a failed
// client authentication. It never holds a secret or a token.
type AuditEvent struct {
	ID         string
	Time       time.Time
	Actor      string // client_id of the acting application; "" for the server itself
	Action     string // e.g. "application.create", "client.authentication_failed"
	Target     string // id of the object acted on (client_id, API id, kid, jti)
	RemoteAddr string // the caller's address, "" for the server itself
	Details    string // JSON object with action-specific, non-secret detail; "" for none
}

// AuditFilter narrows ListAudit. Zero fields do not filter.
type AuditFilter struct {
	Since  time.Time // Time at or after
	Until  time.Time // Time before
	Actor  string
	Target string
	Action string
}

// Issuance counts the access tokens issued to one application for one
// audience within one hour.
type Issuance struct {
	ClientID     string
	Audience     string
	Hour         time.Time // start of the UTC hour
	Count        int64
	LastIssuedAt time.Time
}

// IssuanceOrder returns the indexes of counts in the order of the
// counters' key (ClientID, Audience, Hour), strings compared byte-wise as
// the stores' primary keys ("C" collation) compare them: the order in
// which a flush writes them, so that consecutive rows land on the same
// pages and replicas lock rows in one order. Equal keys keep no
// particular order. Each row's first 16 bytes of client_id are compared
// as two integers held beside its index, so that a flush of 100 000
// counters mostly compares within one array rather than dereferencing two
// strings per comparison (under half the time of sorting the rows
// themselves: BenchmarkIssuanceOrder); equal prefixes fall back to the
// full comparison (TestIssuanceOrder).
func IssuanceOrder(counts []Issuance) []int32 {
	type ordered struct {
		hi, lo uint64 // client_id's bytes 0–7 and 8–15, big-endian, zero-padded
		i      int32
	}
	keys := make([]ordered, len(counts))
	for i := range counts {
		var b [16]byte
		copy(b[:], counts[i].ClientID)
		keys[i] = ordered{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), int32(i)}
	}
	slices.SortFunc(keys, func(x, y ordered) int {
		if c := cmp.Or(cmp.Compare(x.hi, y.hi), cmp.Compare(x.lo, y.lo)); c != 0 {
			return c
		}
		a, b := &counts[x.i], &counts[y.i]
		return cmp.Or(strings.Compare(a.ClientID, b.ClientID), strings.Compare(a.Audience, b.Audience), a.Hour.Compare(b.Hour))
	})
	order := make([]int32, len(keys))
	for j := range keys {
		order[j] = keys[j].i
	}
	return order
}

// NewID returns prefix followed by 20 lowercase hex digits (80 bits) read
// from r. IDs are not secrets; they only need to be unique.
func NewID(r io.Reader, prefix string) (string, error) {
	var b [10]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("authz: reading randomness: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// NewClientID returns a new client_id: 26 lowercase base32 characters (128
// bits) read from r. Its alphabet needs no escaping in HTTP Basic or forms.
func NewClientID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("authz: reading randomness: %w", err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

// MaxSubjectWildcards bounds the "*" in a federated credential's subject.
const MaxSubjectWildcards = 8

// MatchSubject reports whether subject matches pattern, a federated
// credential's Subject: every character stands for itself except "*",
// which matches any run (possibly empty) of characters other than ":".
// A wildcard never crosses a ":" so that "repo:acme/billing:ref:*" cannot
// match "repo:acme/billing:environment:prod:ref:x" style subjects that
// carry more segments than the pattern names. Linear in the lengths (a
// pattern has at most MaxSubjectWildcards wildcards, checked when stored).
func MatchSubject(pattern, subject string) bool {
	// A "*" never yields a ":", so the ":"s of subject align one to one,
	// in order, with those of pattern: match segment by segment.
	if strings.Count(pattern, ":") != strings.Count(subject, ":") {
		return false
	}
	for {
		p, pRest, more := strings.Cut(pattern, ":")
		sub, sRest, _ := strings.Cut(subject, ":")
		if !matchSegment(p, sub) {
			return false
		}
		if !more {
			return true
		}
		pattern, subject = pRest, sRest
	}
}

// matchSegment is a glob match of s against p in which "*" matches any
// run of characters: greedy, backtracking to the last star only, which is
// exact for one wildcard class. O(len(p)·len(s)) at worst.
func matchSegment(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			mark++
			si, pi = mark, star+1
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
