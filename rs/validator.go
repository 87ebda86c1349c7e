package rs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	// go-jose's fork of encoding/json matches field names case-sensitively,
	// so "ISS" cannot stand in for "iss".
	"github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"
)

// maxTokenBytes bounds the tokens Validate parses: 16 KiB, far above any
// access token m2mauth issues.
const maxTokenBytes = 16 << 10

// Errors returned by Validate. Every error Validate returns matches
// ErrInvalidToken and exactly one of the others with errors.Is (in
// introspection mode, ErrInactive too), except ErrIntrospectionUnavailable.
// Their messages are safe to show to clients: they never contain the token.
var (
	// ErrInvalidToken matches every token rejection (RFC 6750 §3.1 invalid_token).
	ErrInvalidToken = errors.New("invalid token")

	// ErrMalformed: not a JWS compact serialization (RFC 7515 §7.1) in
	// canonical base64url, a payload that is not a JSON claims set, or a
	// token above 16 KiB.
	ErrMalformed = errors.New("malformed token")
	// ErrAlgorithm: the header's "alg" is not in Config.Algorithms, or
	// differs from the "alg" of the key its "kid" names.
	ErrAlgorithm = errors.New("signing algorithm not accepted")
	// ErrTokenType: the header's "typ" is not "at+jwt" (RFC 9068 §4).
	ErrTokenType = errors.New("not a JWT access token (typ must be at+jwt)")
	// ErrUnknownKey: the header has no "kid", or the issuer's JWKS has no
	// key with it, even after a refetch.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("invalid signature")
	// ErrIssuer: "iss" differs from Config.Issuer.
	ErrIssuer = errors.New("wrong issuer")
	// ErrAudience: "aud" does not contain Config.Audience.
	ErrAudience = errors.New("wrong audience")
	// ErrExpired: "exp" has passed, leeway included.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: "nbf" or "iat" is in the future, leeway included.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrMissingClaim: a claim RFC 9068 §2.2 requires is absent: exp, iat,
	// sub, client_id or jti. (A missing iss or aud is ErrIssuer or
	// ErrAudience.)
	ErrMissingClaim = errors.New("required claim missing")
)

// tokenError is what Validate returns: a reason from the list above and a
// detail written by this package, never copied from the token.
type tokenError struct {
	reason error
	detail string
}

func invalid(reason error) error { return &tokenError{reason: reason} }

func (e *tokenError) Error() string { return "rs: invalid token: " + e.description() }

func (e *tokenError) Unwrap() []error { return []error{ErrInvalidToken, e.reason} }

// description is the error_description sent to the client.
func (e *tokenError) description() string {
	if e.detail == "" {
		return e.reason.Error()
	}
	return e.reason.Error() + ": " + e.detail
}

// Claims are the verified claims of an access token (RFC 9068 §2.2).
type Claims struct {
	Issuer   string   // "iss"
	Subject  string   // "sub"; for client credentials tokens, the client_id
	ClientID string   // "client_id": the application the token was issued to
	JTI      string   // "jti": unique token identifier
	Audience []string // "aud"
	Scopes   []string // "scope", split at spaces (RFC 6749 §3.3); nil if absent

	IssuedAt  time.Time // "iat", UTC
	ExpiresAt time.Time // "exp", UTC

	// Confirmation is the "cnf" claim (RFC 7800): the key or certificate
	// a sender-constrained token is bound to. Zero for a bearer token.
	Confirmation Confirmation

	// payload is the verified JSON payload, read by Claim on demand so
	// that tokens without custom claims cost nothing more.
	payload []byte
}

// Claim decodes the token's claim name into v (as encoding/json would,
// but with member names matched exactly) and reports whether the token
// has it. It reads any claim; m2mauth's custom claims, set per grant
// ("claims" of a grant in the management API, for example tenant_id), are
// the ones the fields above do not hold. An error means the claim is
// there but does not decode into v.
//
//	var tenant string
//	if ok, err := claims.Claim("tenant_id", &tenant); err != nil || !ok { ... }
func (c *Claims) Claim(name string, v any) (bool, error) {
	if len(c.payload) == 0 {
		return false, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(c.payload, &all); err != nil {
		return false, fmt.Errorf("rs: claims: %w", err)
	}
	raw, ok := all[name]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("rs: claim %q: %w", name, err)
	}
	return true, nil
}

// Confirmation is a token's "cnf" claim, as far as m2mauth binds tokens.
// A token with either member is sender-constrained: Middleware accepts it
// only from the holder of that key or certificate. Validate alone does not
// check it.
type Confirmation struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the DPoP key the token is
	// bound to, base64url (RFC 9449 §6.1).
	JKT string `json:"jkt,omitempty"`
	// X5TS256 ("x5t#S256") is the base64url SHA-256 of the DER client
	// certificate the token is bound to (RFC 8705 §3.1).
	X5TS256 string `json:"x5t#S256,omitempty"`
}

// HasScope reports whether the token was granted scope s.
func (c *Claims) HasScope(s string) bool {
	return slices.Contains(c.Scopes, s)
}

// Validator verifies access tokens for one API. It is safe for concurrent
// use and holds no goroutines: key refreshes run in the calling request.
type Validator struct {
	issuer   string
	audience string
	algs     []jose.SignatureAlgorithm
	leeway   time.Duration
	now      func() time.Time
	log      *slog.Logger
	keys     *keyCache
	// introspection is nil unless Config.Introspection is set.
	introspection *introspector
	// tokens is nil when Config.TokenCacheEntries is negative.
	tokens *tokenCache
	// verified, if set, is called after each full verification; tests
	// count cache misses with it.
	verified func()

	policy      Policy
	dpop        dpopSettings
	mtls        *mtlsSettings
	externalURL string
	metadataURL string
}

// New checks cfg, discovers the issuer's jwks_uri and fetches the JWKS. It
// reads {Issuer}/.well-known/oauth-authorization-server (RFC 8414 §3.1),
// falling back to {Issuer}/.well-known/openid-configuration, and requires the
// document's "issuer" to equal cfg.Issuer exactly (RFC 8414 §3.3).
//
// New fails, without retrying, if cfg is invalid, the issuer cannot be
// reached, its metadata is wrong, or its JWKS holds no key for
// cfg.Algorithms; ctx bounds the requests. A service that may start before
// its issuer should retry New with a backoff.
func New(ctx context.Context, cfg Config) (*Validator, error) {
	s, err := cfg.check()
	if err != nil {
		return nil, err
	}
	intro, err := newIntrospector(cfg.Introspection, s)
	if err != nil {
		return nil, err
	}
	meta, err := discover(ctx, s.client, s.issuer, s.issuerURL)
	if err != nil {
		return nil, err
	}
	if intro != nil {
		if err := intro.setEndpoint(meta, s.issuerURL); err != nil {
			return nil, err
		}
	}
	jwksURL := meta.JWKSURI
	keys := &keyCache{
		jwksURL:     jwksURL,
		client:      s.client,
		now:         s.now,
		minInterval: s.minInterval,
		log:         s.log,
	}
	if err := keys.refresh(ctx); err != nil {
		return nil, err
	}
	if !keys.hasKeyFor(s.algs) {
		return nil, fmt.Errorf("rs: JWKS at %s has no usable key for algorithms %v", jwksURL, s.algs)
	}
	var tokens *tokenCache
	if s.cacheEntries > 0 {
		tokens = newTokenCache(s.cacheEntries, s.cacheMaxAge)
	}
	return &Validator{
		tokens:   tokens,
		issuer:   s.issuer,
		audience: cfg.Audience,
		algs:     s.algs,
		leeway:   s.leeway,
		now:      s.now,
		log:      s.log,
		keys:     keys,

		introspection: intro,

		policy:      s.policy,
		dpop:        s.dpop,
		mtls:        s.mtls,
		externalURL: s.externalURL,
		metadataURL: s.metadataURL,
	}, nil
}

// WithPolicy returns a Validator like v but whose Middleware applies policy
// p, for routes whose policy differs from the API's. It shares v's keys,
// introspection cache and DPoP replay store, so a proof used on one route
// cannot be replayed on another.
//
//	strict := v.WithPolicy(rs.SenderConstrained)
//	mux.Handle("POST /meters", strict.Middleware(createMeter))
//
// It panics if p is neither BearerAllowed nor SenderConstrained.
func (v *Validator) WithPolicy(p Policy) *Validator {
	if p != BearerAllowed && p != SenderConstrained {
		panic(fmt.Sprintf("rs: WithPolicy: unknown policy %d", int(p)))
	}
	w := *v
	w.policy = p
	return &w
}

// Policy returns the policy v's Middleware applies.
func (v *Validator) Policy() Policy { return v.policy }

// Validate verifies an access token as RFC 9068 §4 prescribes and returns
// its claims. The checks, in order: JWS compact form with an "alg" from
// Config.Algorithms (RFC 7515 §7.1, RFC 8725 §3.1); "typ" at+jwt or
// application/at+jwt, case-insensitively; a "kid" naming a JWKS key whose
// "alg" matches the header; the signature; "iss" equal to Config.Issuer;
// "aud" containing Config.Audience; the presence of exp, iat, sub, client_id
// and jti (RFC 9068 §2.2); "exp" not passed and "nbf" and "iat" not in the
// future, each with Config.Leeway (RFC 7519 §4.1).
//
// Validate may fetch the JWKS, at most once per Config.MinRefreshInterval
// and for at most DefaultHTTPTimeout: when the token's "kid" is unknown (the
// call waits for the fetch), and when the cached keys are older than the
// JWKS max-age (one call refreshes while the others use the cached keys).
// ctx supplies that fetch's request values but not its cancellation, so a
// departing client does not waste it. A failed fetch is logged and the
// cached keys stay in use.
//
// In introspection mode (Config.Introspection) a token that passes these
// checks is then introspected; see IntrospectionConfig.
//
// A "cnf" claim must be an object of jkt and x5t#S256 strings (another
// confirmation method is ErrSenderConstraint). Validate checks the token
// alone: a token with Claims.Confirmation set is sender-constrained, and
// only Middleware, which sees the request, checks its proof or
// certificate.
//
// Every error matches ErrInvalidToken and one reason (ErrMalformed,
// ErrAlgorithm, ..., ErrInactive) with errors.Is, except
// ErrIntrospectionUnavailable, which matches only itself.
func (v *Validator) Validate(ctx context.Context, token string) (*Claims, error) {
	claims, err := v.validateLocally(ctx, token)
	if err != nil || v.introspection == nil {
		return claims, err
	}
	// Cached or not, a token is introspected: the introspector's own
	// cache, by jti, bounds how long a revoked token stays accepted.
	if err := v.introspection.check(ctx, token, claims); err != nil {
		return nil, err
	}
	return claims, nil
}

// validateLocally is Validate without introspection. A token it verified
// before is answered from v.tokens while its entry lasts and the key that
// verified it is still in the JWKS. A token of the usual shape is parsed
// by hand (parseFast, fastjws.go), any other by go-jose, with the same
// checks and errors either way.
func (v *Validator) validateLocally(ctx context.Context, token string) (*Claims, error) {
	if token == "" || len(token) > maxTokenBytes {
		return nil, invalid(ErrMalformed)
	}
	var key [32]byte
	if v.tokens != nil {
		key = tokenKey(token)
		if c, kid, ok := v.tokens.get(key, v.now()); ok && len(v.keys.lookup(ctx, kid)) > 0 {
			return c, nil
		}
	}
	if !isCanonical(token) {
		return nil, invalid(ErrMalformed)
	}
	var sigBuf [512]byte // RSA-4096's signature
	if j, ok := parseFast(token, v.algs, sigBuf[:0]); ok {
		if claims, done, err := v.validateFast(ctx, &j, key); done {
			return claims, err
		}
	}
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, invalid(ErrAlgorithm)
		}
		return nil, invalid(ErrMalformed)
	}
	// A compact serialization has exactly one signature.
	header := jws.Signatures[0].Header
	if !isAccessTokenType(header.ExtraHeaders[jose.HeaderType]) {
		return nil, invalid(ErrTokenType)
	}
	payload, err := v.verify(ctx, jws, header, token)
	if err != nil {
		return nil, err
	}
	now := v.now()
	claims, err := v.checkClaims(payload, now)
	if err != nil {
		return nil, err
	}
	if v.tokens != nil {
		v.tokens.put(key, header.KeyID, claims, now)
	}
	if v.verified != nil {
		v.verified()
	}
	return claims, nil
}

// validateFast is the rest of validateLocally for a token parseFast read,
// with the same checks in the same order and the same errors as
// go-jose's path. done is false if go-jose must decide: a key whose type
// verifySignature does not handle.
func (v *Validator) validateFast(ctx context.Context, j *fastJWS, key [32]byte) (_ *Claims, done bool, _ error) {
	if !j.typOK {
		return nil, true, invalid(ErrTokenType)
	}
	if j.kid == "" {
		return nil, true, &tokenError{reason: ErrUnknownKey, detail: "no kid in header"}
	}
	keys := v.keys.lookup(ctx, j.kid)
	if len(keys) == 0 {
		return nil, true, invalid(ErrUnknownKey)
	}
	fits, verified := false, false
	for i := range keys {
		if !keyFits(&keys[i], string(j.alg)) {
			continue
		}
		fits = true
		ok, known := verifySignature(keys[i].Key, string(j.alg), j.input, j.sig)
		if !known {
			return nil, false, nil
		}
		if ok {
			verified = true
			break
		}
	}
	if !fits {
		return nil, true, &tokenError{reason: ErrAlgorithm, detail: "alg does not match the key"}
	}
	if !verified {
		return nil, true, invalid(ErrSignature)
	}
	now := v.now()
	claims, err := v.checkClaims(j.payload, now)
	if err != nil {
		return nil, true, err
	}
	if v.tokens != nil {
		v.tokens.put(key, j.kid, claims, now)
	}
	if v.verified != nil {
		v.verified()
	}
	return claims, true, nil
}

// isCanonical reports whether every dot-separated segment of token is
// canonical unpadded base64url (RFC 7515 §2, RFC 4648 §3.5). go-jose's
// decoder ignores line breaks and the unused low bits of a segment's last
// character, so without this check one signed token would have many
// accepted spellings, and a token with its last character changed could
// still verify.
func isCanonical(token string) bool {
	for seg := range strings.SplitSeq(token, ".") {
		if !isCanonicalSegment(seg) {
			return false
		}
	}
	return true
}

// isCanonicalSegment reports whether seg is canonical unpadded base64url:
// only the 64 alphabet characters, a length that is not 1 mod 4, and the
// unused low bits of the last character zero, which is exactly what
// base64.RawURLEncoding.Strict() accepts, without decoding.
func isCanonicalSegment(seg string) bool {
	var last byte
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case 'A' <= c && c <= 'Z':
			last = c - 'A'
		case 'a' <= c && c <= 'z':
			last = c - 'a' + 26
		case '0' <= c && c <= '9':
			last = c - '0' + 52
		case c == '-':
			last = 62
		case c == '_':
			last = 63
		default:
			return false
		}
	}
	switch len(seg) % 4 {
	case 1:
		return false
	case 2: // 8 bits of 12: the last character's low 4 bits are unused
		return last&0x0f == 0
	case 3: // 16 bits of 18: its low 2 bits are unused
		return last&0x03 == 0
	}
	return true
}

// isAccessTokenType reports whether a "typ" header value marks a JWT access
// token: "at+jwt", or its full media type "application/at+jwt" (RFC 9068
// §2.1, §4). Media types compare case-insensitively (RFC 2045 §5.1).
func isAccessTokenType(typ any) bool {
	s, _ := typ.(string)
	return isAccessTokenTypeString(s)
}

func isAccessTokenTypeString(s string) bool {
	return strings.EqualFold(s, "at+jwt") || strings.EqualFold(s, "application/at+jwt")
}

// verify checks the signature with the key the header's kid names and
// returns the payload. token is the compact serialization jws was parsed
// from: its signing input (RFC 7515 §5.2) is the text before the last dot,
// so the signature is checked over it directly (verifySignature), without
// go-jose decoding the header a second time and re-encoding the payload.
func (v *Validator) verify(ctx context.Context, jws *jose.JSONWebSignature, header jose.Header, token string) ([]byte, error) {
	if header.KeyID == "" {
		return nil, &tokenError{reason: ErrUnknownKey, detail: "no kid in header"}
	}
	keys := v.keys.lookup(ctx, header.KeyID)
	if len(keys) == 0 {
		return nil, invalid(ErrUnknownKey)
	}
	// With "crit" or "b64" (RFC 7797) the signing input may differ from
	// the text; go-jose's Verify decides those rare tokens.
	_, crit := header.ExtraHeaders["crit"]
	_, b64 := header.ExtraHeaders["b64"]
	direct := !crit && !b64
	input := token[:strings.LastIndexByte(token, '.')]
	sig := jws.Signatures[0].Signature
	fits := false
	for i := range keys {
		if !keyFits(&keys[i], header.Algorithm) {
			continue
		}
		fits = true
		if direct {
			if ok, known := verifySignature(keys[i].Key, header.Algorithm, input, sig); known {
				if ok {
					return jws.UnsafePayloadWithoutVerification(), nil
				}
				continue
			}
		}
		if payload, err := jws.Verify(keys[i].Key); err == nil {
			return payload, nil
		}
	}
	if !fits {
		return nil, &tokenError{reason: ErrAlgorithm, detail: "alg does not match the key"}
	}
	return nil, invalid(ErrSignature)
}

// claimsSet is the JSON payload of an access token (RFC 9068 §2.2).
type claimsSet struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  audience        `json:"aud"`
	Expiry    numericDate     `json:"exp"`
	NotBefore numericDate     `json:"nbf"`
	IssuedAt  numericDate     `json:"iat"`
	ID        string          `json:"jti"`
	ClientID  string          `json:"client_id"`
	Scope     string          `json:"scope"`
	Cnf       json.RawMessage `json:"cnf"`
}

// numericDate is a NumericDate claim (RFC 7519 §2), read as go-jose's
// jwt.NumericDate reads it (a JSON number, its fraction dropped, below
// 2^62 in magnitude) but without a pointer: set is false when the claim is
// absent or null.
type numericDate struct {
	set  bool
	unix int64
}

func (n *numericDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	// Integers of up to 15 digits, every real date, are exact as float64:
	// parse them without strconv's copy of b.
	if len(b) <= 15 {
		var u int64
		digits := true
		for _, c := range b {
			if c < '0' || c > '9' {
				digits = false
				break
			}
			u = u*10 + int64(c-'0')
		}
		if digits {
			n.set, n.unix = true, u
			return nil
		}
	}
	var d jwt.NumericDate
	if err := d.UnmarshalJSON(b); err != nil {
		return err
	}
	n.set, n.unix = true, int64(d)
	return nil
}

func (n numericDate) time() time.Time { return time.Unix(n.unix, 0) }

// audience is the "aud" claim: a string or an array of strings (RFC 7519
// §4.1.3), read as go-jose's jwt.Audience reads it, with one string, the
// usual case, decoded without an intermediate interface value.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var aud jwt.Audience
	if err := aud.UnmarshalJSON(b); err != nil {
		return err
	}
	*a = audience(aud)
	return nil
}

func (a audience) contains(s string) bool { return slices.Contains(a, s) }

// checkClaims decodes a verified payload and checks its claims at now.
func (v *Validator) checkClaims(payload []byte, now time.Time) (*Claims, error) {
	var c claimsSet
	if !fastClaims(payload, &c) {
		c = claimsSet{}
		if err := json.Unmarshal(payload, &c); err != nil {
			return nil, &tokenError{reason: ErrMalformed, detail: "claims are not a valid JSON object"}
		}
	}
	if c.Issuer != v.issuer {
		return nil, invalid(ErrIssuer)
	}
	if !c.Audience.contains(v.audience) {
		return nil, invalid(ErrAudience)
	}
	for _, m := range []struct {
		name    string
		missing bool
	}{
		{"exp", !c.Expiry.set},
		{"iat", !c.IssuedAt.set},
		{"sub", c.Subject == ""},
		{"client_id", c.ClientID == ""},
		{"jti", c.ID == ""},
	} {
		if m.missing {
			return nil, &tokenError{reason: ErrMissingClaim, detail: m.name}
		}
	}

	// RFC 7519 §4.1.4: reject at or after exp.
	if !now.Before(c.Expiry.time().Add(v.leeway)) {
		return nil, invalid(ErrExpired)
	}
	if c.NotBefore.set && now.Add(v.leeway).Before(c.NotBefore.time()) {
		return nil, &tokenError{reason: ErrNotYetValid, detail: "nbf is in the future"}
	}
	if now.Add(v.leeway).Before(c.IssuedAt.time()) {
		return nil, &tokenError{reason: ErrNotYetValid, detail: "iat is in the future"}
	}

	cnf, err := parseConfirmation(c.Cnf)
	if err != nil {
		return nil, err
	}

	var scopes []string
	if c.Scope != "" {
		scopes = make([]string, 0, strings.Count(c.Scope, " ")+1)
	}
	for s := range strings.SplitSeq(c.Scope, " ") {
		if s != "" {
			scopes = append(scopes, s)
		}
	}
	if len(scopes) == 0 {
		scopes = nil
	}
	return &Claims{
		Issuer:    c.Issuer,
		Subject:   c.Subject,
		ClientID:  c.ClientID,
		JTI:       c.ID,
		Audience:  []string(c.Audience),
		Scopes:    scopes,
		IssuedAt:  c.IssuedAt.time().UTC(),
		ExpiresAt: c.Expiry.time().UTC(),

		Confirmation: cnf,
		payload:      payload,
	}, nil
}

// parseConfirmation reads a "cnf" claim (RFC 7800 §3.1): an object whose
// members jkt (RFC 9449 §6.1) and x5t#S256 (RFC 8705 §3.1), if present,
// are non-empty strings. Any other confirmation method (jwk, jwe, kid, ...)
// is refused: a binding this package cannot check must not be dropped.
func parseConfirmation(raw json.RawMessage) (Confirmation, error) {
	var cnf Confirmation
	if len(raw) == 0 {
		return cnf, nil
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return cnf, &tokenError{reason: ErrMalformed, detail: "cnf is not a JSON object"}
	}
	for name, value := range members {
		var dst *string
		switch name {
		case "jkt":
			dst = &cnf.JKT
		case "x5t#S256":
			dst = &cnf.X5TS256
		default:
			return Confirmation{}, &tokenError{reason: ErrSenderConstraint, detail: "cnf holds an unsupported confirmation method"}
		}
		if err := json.Unmarshal(value, dst); err != nil || *dst == "" {
			return Confirmation{}, &tokenError{reason: ErrMalformed, detail: "cnf." + name + " is not a non-empty string"}
		}
	}
	if len(members) == 0 {
		return cnf, &tokenError{reason: ErrMalformed, detail: "cnf is empty"}
	}
	return cnf, nil
}
