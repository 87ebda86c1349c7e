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
	"time"

	"github.com/go-jose/go-jose/v4"
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
	JTI      string `json:"jti"`
}

// Scopes returns the scope claim split on spaces.
func (c *Claims) Scopes() []string { return strings.Fields(c.Scope) }

// Request is what the token endpoint decided to issue.
type Request struct {
	ClientID string
	Audience string
	Scopes   []string
	Lifetime time.Duration // whole seconds
	Alg      string        // the API's signing algorithm
}

// Issuer mints access tokens. It is safe for concurrent use.
type Issuer struct {
	url  string
	keys *Keys
	now  func() time.Time
	rand io.Reader
}

// NewIssuer returns an Issuer whose tokens carry iss = url and are signed
// by keys; jti values read 16 bytes each from r; now is the clock.
func NewIssuer(url string, keys *Keys, now func() time.Time, r io.Reader) *Issuer {
	return &Issuer{url: url, keys: keys, now: now, rand: r}
}

// URL returns the issuer identifier.
func (i *Issuer) URL() string { return i.url }

// Issue signs an access token for req with the active key of req.Alg.
// Returns the compact JWS and its claims; an error only if there is no
// active key for the algorithm or randomness fails.
func (i *Issuer) Issue(req Request) (string, Claims, error) {
	sk, err := i.keys.signer(req.Alg)
	if err != nil {
		return "", Claims{}, err
	}
	var b [16]byte
	if _, err := io.ReadFull(i.rand, b[:]); err != nil {
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
		JTI:      base64.RawURLEncoding.EncodeToString(b[:]),
	}
	payload, err := json.Marshal(&c)
	if err != nil {
		return "", Claims{}, err
	}
	jws, err := sk.signer.Sign(payload)
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: signing: %w", err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: serializing: %w", err)
	}
	return s, c, nil
}

// Verification errors. Verify wraps them with detail that never includes
// the token.
var (
	ErrMalformed  = errors.New("malformed token")
	ErrSignature  = errors.New("invalid token signature")
	ErrUnknownKey = errors.New("token signed by an unknown key")
	ErrIssuer     = errors.New("token from another issuer")
	ErrExpired    = errors.New("token expired")
)

// allowedAlgs is the algorithm allow-list at parse time: only the
// asymmetric algorithms m2mauth signs with.
var allowedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256}

// MaxTokenBytes bounds the tokens Verify parses: 16384 bytes, the bound
// of the rs package and of an introspection or revocation request's body.
const MaxTokenBytes = 16 << 10

// Verify checks a token this server issued: at most MaxTokenBytes, compact
// JWS in canonical base64url with an allowed algorithm, typ at+jwt (RFC
// 9068 §4), a published kid whose algorithm matches, a valid signature, iss
// equal to this issuer and exp in the future. The audience is the caller's
// to check. Returns the claims, or an error wrapping ErrMalformed,
// ErrUnknownKey, ErrSignature, ErrIssuer or ErrExpired.
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
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if c.Issuer != i.url {
		return nil, ErrIssuer
	}
	if c.Expiry == 0 || i.now().Unix() >= c.Expiry {
		return nil, ErrExpired
	}
	return &c, nil
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
