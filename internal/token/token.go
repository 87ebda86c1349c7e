// Package token mints and verifies JWT access tokens (RFC 9068) and manages
// the signing keys that sign them.
package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	// go-jose's fork of encoding/json matches member names exactly.
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Claims are the claims of an m2mauth access token (RFC 9068 §2.2).
// Times are NumericDate seconds.
type Claims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"` // space-delimited (RFC 8693 §4.2)
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	// Confirmation binds the token to a key (RFC 7800 cnf): a DPoP key's
	// thumbprint (RFC 9449 §6.1) or a client certificate's (RFC 8705
	// §3.1); nil for a bearer token. Before jti, which ends the payload
	// of a token without extra claims (endsWithJTI).
	Confirmation *Confirmation `json:"cnf,omitempty"`
	JTI          string        `json:"jti"`

	// payload is the JSON payload of a token with extra claims (Issue's
	// Request.Claims), "" for one without: Extra decodes it on demand. A
	// string keeps Claims comparable.
	payload string
}

// Extra returns the token's claims that are not Claims' own members: the
// custom claims of the grant it was issued for (Issue's Request.Claims).
// Only for claims Verify returned; nil if there are none.
func (c *Claims) Extra() (map[string]json.RawMessage, error) {
	if len(c.payload) == 0 {
		return nil, nil
	}
	var all map[string]json.RawMessage
	if err := josejson.Unmarshal([]byte(c.payload), &all); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for _, own := range []string{"iss", "sub", "aud", "client_id", "scope", "iat", "exp", "nbf", "cnf", "jti"} {
		delete(all, own)
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
}

// Scopes returns the scope claim split on spaces.
func (c *Claims) Scopes() []string { return strings.Fields(c.Scope) }

// Confirmation is the cnf claim of a sender-constrained token (RFC 7800
// §3.1).
type Confirmation struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the DPoP key, base64url
	// (RFC 9449 §6.1).
	JKT string `json:"jkt,omitempty"`
	// X5TS256 is the SHA-256 of the client certificate's DER, base64url
	// (RFC 8705 §3.1).
	X5TS256 string `json:"x5t#S256,omitempty"`
}

// Request is what the token endpoint decided to issue.
type Request struct {
	// Confirmation, when set, binds the token (cnf).
	Confirmation *Confirmation
	ClientID     string
	Audience     string
	Scopes       []string
	Lifetime     time.Duration // whole seconds
	Alg          string        // the API's signing algorithm
	// Claims are extra claims for the token: a compact JSON object whose
	// members are none of Claims' (authz.ReservedClaims), as manage
	// stores a grant's; nil for none.
	Claims json.RawMessage
}

// Issuer mints access tokens. It is safe for concurrent use.
type Issuer struct {
	url    string
	issSub string // the claims' start, up to sub (issSubPrefix)
	keys   *Keys
	now    func() time.Time
	rand   io.Reader
	// Signing, if set before the first Issue, is called as a token's
	// signature starts with its algorithm; the function it returns is
	// called when the signature ends (metrics.Metrics.StartSigning).
	Signing func(alg string) (done func())
}

// NewIssuer returns an Issuer whose tokens carry iss = url and are signed
// by keys; jti values read 16 bytes each from r, and so do the signers
// that take randomness (PS256's salt); now is the clock.
func NewIssuer(url string, keys *Keys, now func() time.Time, r io.Reader) *Issuer {
	return &Issuer{url: url, issSub: issSubPrefix(url), keys: keys, now: now, rand: r}
}

// URL returns the issuer identifier.
func (i *Issuer) URL() string { return i.url }

// issueBufs are Issue's scratch buffers: the claims JSON, then the signing
// input, digest and signature after it.
var issueBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledBuf bounds the buffers issueBufs keeps, so that one token with
// large custom claims does not pin its buffer.
const maxPooledBuf = 16 << 10

// Issue signs an access token for req with the active key of req.Alg.
// Returns the compact JWS and its claims; an error only if there is no
// active key for the algorithm, randomness fails or the key fails to sign.
//
// The JWS is built by hand (jwsKey): the claims are marshalled without
// reflection as encoding/json would marshal Claims, with req.Claims'
// members after jti, and the token is one allocation.
func (i *Issuer) Issue(req Request) (string, Claims, error) {
	sk, err := i.keys.signer(req.Alg)
	if err != nil {
		return "", Claims{}, err
	}
	bp := issueBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuf {
			issueBufs.Put(bp)
		}
	}()
	buf := (*bp)[:16] // the pool's buffers hold at least 2048 bytes
	if _, err := io.ReadFull(i.rand, buf); err != nil {
		return "", Claims{}, fmt.Errorf("token: reading randomness: %w", err)
	}
	now := i.now().Unix()
	c := Claims{
		Issuer:   i.url,
		Subject:  req.ClientID, // RFC 9068 §2.2: the client, when no resource owner is involved
		Audience: req.Audience,
		ClientID: req.ClientID,
		Scope:    strings.Join(req.Scopes, " "),
		IssuedAt: now,
		Expiry:   now + int64(req.Lifetime/time.Second),
		JTI:      base64.RawURLEncoding.EncodeToString(buf),

		Confirmation: req.Confirmation,
	}
	buf = appendClaims(buf[:0], i.issSub, &c)
	if len(req.Claims) > 2 { // not "{}": its members go after jti
		buf = append(buf[:len(buf)-1], ',')
		buf = append(buf, req.Claims[1:]...)
		c.payload = string(buf)
	}
	// buf: claims | header "." base64url(claims) | signature.
	n := len(buf)
	buf = append(buf, sk.signer.header...)
	buf = base64.RawURLEncoding.AppendEncode(buf, buf[:n])
	input := buf[n:]
	var done func()
	if i.Signing != nil {
		done = i.Signing(req.Alg)
	}
	buf, err = sk.signer.appendSignature(buf, i.rand, input)
	if done != nil {
		done()
	}
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: signing: %w", err)
	}
	sig := buf[n+len(input):]
	var tok strings.Builder
	tok.Grow(len(input) + 1 + base64.RawURLEncoding.EncodedLen(len(sig)))
	tok.Write(input)
	tok.WriteByte('.')
	buf = base64.RawURLEncoding.AppendEncode(buf, sig)
	tok.Write(buf[n+len(input)+len(sig):])
	*bp = buf[:0]
	return tok.String(), c, nil
}

// Verification errors. Verify wraps them with detail that never includes
// the token.
var (
	// ErrMalformed: not a compact JWS in canonical base64url with an
	// allowed algorithm and typ at+jwt, claims that are not a JSON object
	// of the expected types, or an absurd lifetime.
	ErrMalformed = errors.New("malformed token")
	// ErrSignature: the signature does not verify, or the header's alg is
	// not the algorithm of the key its kid names.
	ErrSignature = errors.New("invalid token signature")
	// ErrUnknownKey: no published key has the header's kid.
	ErrUnknownKey = errors.New("token signed by an unknown key")
	// ErrIssuer: iss is not this issuer.
	ErrIssuer = errors.New("token from another issuer")
	// ErrExpired: exp has passed (RFC 7519 §4.1.4).
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf is in the future, or iat further in the future
	// than Leeway (RFC 7519 §4.1.5, §4.1.6).
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrMissingClaim: a claim RFC 9068 §2.2 requires is absent: exp, iat,
	// aud, sub, client_id or jti. (A missing iss is ErrIssuer.)
	ErrMissingClaim = errors.New("required claim missing")
)

// allowedAlgs is the algorithm allow-list at parse time: only the
// asymmetric algorithms m2mauth signs with.
var allowedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256}

// MaxTokenBytes bounds the tokens Verify parses: 16384 bytes, the bound
// of the rs package and of an introspection or revocation request's body.
const MaxTokenBytes = 16 << 10

// Leeway is the clock skew Verify tolerates for nbf and iat in the future:
// 5 s, for replicas whose clocks differ slightly. It is below the rs
// package's default (30 s), so a token rs refuses as not yet valid at its
// default is refused here too. exp gets none: this server issued the
// token, and a token is dead from its exp on.
const Leeway = 5 * time.Second

// claimsSet is a token's payload as Verify decodes it, with go-jose's
// JSON decoder: it matches member names exactly and refuses a member
// given twice, where encoding/json matches them case-insensitively (a
// claim "AUD" would stand in for "aud", or override it) and keeps the last
// of two. Times are pointers so that an absent claim is told from zero.
type claimsSet struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  string           `json:"aud"`
	ClientID  string           `json:"client_id"`
	Scope     string           `json:"scope"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	Expiry    *jwt.NumericDate `json:"exp"`
	// Confirmation is the cnf claim (RFC 7800), nil if absent.
	Confirmation *Confirmation `json:"cnf"`
	JTI          string        `json:"jti"`
}

// Verify checks a token this server issued, refusing at least everything
// the rs package's Validator refuses (the audience aside, which is the
// caller's to check):
//
//   - at most MaxTokenBytes, a compact JWS in canonical base64url (RFC 7515
//     §2, §7.1) whose alg is on the allow-list, checked at parse time (RFC
//     8725 §3.1), and typ at+jwt (RFC 9068 §4, RFC 8725 §3.11);
//   - a published kid whose algorithm is the header's, and a valid
//     signature;
//   - claims decoded with case-sensitive member names, iss equal to this
//     issuer, and exp, iat, aud, sub, client_id and jti present (RFC 9068
//     §2.2);
//   - a sane lifetime: exp after iat, by at most authz.MaxTokenLifetime;
//   - exp in the future (RFC 7519 §4.1.4), nbf if present not in the
//     future (§4.1.5), and iat not further in the future than Leeway
//     (§4.1.6).
//
// Returns the claims, or an error wrapping ErrMalformed, ErrUnknownKey,
// ErrSignature, ErrIssuer, ErrMissingClaim, ErrExpired or ErrNotYetValid.
func (i *Issuer) Verify(token string) (*Claims, error) {
	if len(token) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	if !canonical(token) {
		return nil, fmt.Errorf("%w: not canonical unpadded base64url", ErrMalformed)
	}
	jws, err := jose.ParseSignedCompact(token, allowedAlgs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, fmt.Errorf("%w: typ is not at+jwt", ErrMalformed)
	}
	sk := i.keys.publicKey(h.KeyID)
	if sk == nil {
		return nil, ErrUnknownKey
	}
	if sk.meta.Alg != h.Algorithm {
		return nil, fmt.Errorf("%w: algorithm does not match the key", ErrSignature)
	}
	payload, err := jws.Verify(sk.public.Key)
	if err != nil {
		return nil, ErrSignature
	}
	var c claimsSet
	if err := josejson.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: the claims are not a JSON object of the expected members", ErrMalformed)
	}
	claims, err := i.checkClaims(&c)
	if err != nil {
		return nil, err
	}
	if !endsWithJTI(payload, claims.JTI) {
		claims.payload = string(payload)
	}
	return claims, nil
}

// checkClaims applies Verify's claim checks to a decoded payload.
func (i *Issuer) checkClaims(c *claimsSet) (*Claims, error) {
	if c.Issuer != i.url {
		return nil, ErrIssuer
	}
	for _, m := range []struct {
		name    string
		missing bool
	}{
		{"exp", c.Expiry == nil},
		{"iat", c.IssuedAt == nil},
		{"aud", c.Audience == ""},
		{"sub", c.Subject == ""},
		{"client_id", c.ClientID == ""},
		{"jti", c.JTI == ""},
	} {
		if m.missing {
			return nil, fmt.Errorf("%w: %s", ErrMissingClaim, m.name)
		}
	}
	// NumericDates are bounded by ±2^62, so the difference cannot overflow.
	iat, exp := int64(*c.IssuedAt), int64(*c.Expiry)
	if exp <= iat {
		return nil, fmt.Errorf("%w: exp is not after iat", ErrMalformed)
	}
	if exp-iat > int64(authz.MaxTokenLifetime/time.Second) {
		return nil, fmt.Errorf("%w: lifetime longer than %v", ErrMalformed, authz.MaxTokenLifetime)
	}
	now := i.now()
	if now.Unix() >= exp {
		return nil, ErrExpired
	}
	late := now.Add(Leeway)
	if c.NotBefore != nil && late.Before(c.NotBefore.Time()) {
		return nil, fmt.Errorf("%w: nbf is in the future", ErrNotYetValid)
	}
	if late.Before(c.IssuedAt.Time()) {
		return nil, fmt.Errorf("%w: iat is in the future", ErrNotYetValid)
	}
	return &Claims{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		Audience: c.Audience,
		ClientID: c.ClientID,
		Scope:    c.Scope,
		IssuedAt: iat,
		Expiry:   exp,
		JTI:      c.JTI,

		Confirmation: c.Confirmation,
	}, nil
}

// endsWithJTI reports whether payload ends with the jti member, as the
// payload of a token Issue signed without extra claims does: Issue puts
// them after it. Verify then keeps no payload, at no cost.
func endsWithJTI(payload []byte, jti string) bool {
	const head, tail = `"jti":"`, `"}`
	n := len(head) + len(jti) + len(tail)
	if len(payload) < n {
		return false
	}
	end := payload[len(payload)-n:]
	return string(end[:len(head)]) == head && string(end[len(head):len(head)+len(jti)]) == jti && string(end[len(head)+len(jti):]) == tail
}

// canonical reports whether every dot-separated segment of token is
// canonical unpadded base64url (RFC 7515 §2). go-jose's decoder skips line
// breaks and ignores the unused low bits of a segment's last character, so
// without this check one signed token has many accepted spellings.
func canonical(token string) bool {
	if strings.ContainsAny(token, "\r\n") {
		return false
	}
	strict := base64.RawURLEncoding.Strict()
	for seg := range strings.SplitSeq(token, ".") {
		if _, err := strict.DecodeString(seg); err != nil {
			return false
		}
	}
	return true
}
