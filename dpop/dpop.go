// Package dpop implements OAuth 2.0 Demonstrating Proof of Possession
// (DPoP, RFC 9449): checking the proof a client sends in the DPoP header
// ([Verify], §4.3), the key thumbprint a token is bound to ([Thumbprint],
// RFC 7638, the cnf.jkt value of §6.1), the access-token hash ath
// ([AccessTokenHash], §4.2), stateless server nonces ([Nonces], §8 and §9)
// and making proofs ([Signer], §4.2).
//
// The authorization server, resource servers (package rs) and clients
// (package m2mclient) share it, so that one set of rules decides what a
// proof is. Algorithms are fixed when the proof is parsed (go-jose's
// allow-list): asymmetric ones only, never none or HMAC.
package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

// DefaultAlgs are the proof algorithms accepted when VerifyOptions.Algs is
// empty, in order of preference: the dpop_signing_alg_values_supported a
// server advertises by default.
var DefaultAlgs = []string{"ES256", "PS256", "EdDSA", "RS256"}

// SupportedAlgs are every algorithm VerifyOptions.Algs may name: the
// asymmetric JWS algorithms (RFC 7518 §3.1, RFC 8037) with curves
// P-256/P-384 and RSA keys of at least MinRSABits.
var SupportedAlgs = []string{"ES256", "ES384", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA"}

var (
	// ErrInvalidProof is matched (errors.Is) by every refusal of a proof,
	// ErrUseNonce included: invalid_dpop_proof (RFC 9449 §5, §7.1). The
	// error's message says why, in words safe to log; it never holds the
	// proof. Errors that match neither (the Replay store failing, bad
	// options) are the server's own.
	ErrInvalidProof = errors.New("dpop: invalid proof")
	// ErrUseNonce is matched by a refusal because the proof lacks the
	// current server nonce, or holds a stale one (RFC 9449 §8, §9): answer
	// use_dpop_nonce with a fresh DPoP-Nonce header. Such errors match
	// ErrInvalidProof too, so test for ErrUseNonce first.
	ErrUseNonce = errors.New("dpop: nonce required")
)

// Limits on what an unauthenticated caller may send.
const (
	// MaxHeaderBytes is the longest DPoP header value read: 8 KiB (a proof
	// with a 4096-bit RSA key is about 1.5 KiB).
	MaxHeaderBytes = 8 << 10
	// MaxJTIBytes is the longest jti accepted.
	MaxJTIBytes = 256
	// MinRSABits is the smallest RSA modulus accepted, and signed with.
	MinRSABits = 2048
)

// Defaults of VerifyOptions.
const (
	DefaultMaxAge = 60 * time.Second
	DefaultLeeway = 10 * time.Second
)

// Replay records proofs' jti values. It is the same store that records
// client assertions' jti.
type Replay interface {
	// UseJTI records key until exp and reports whether it was new. An error
	// means the store could not answer (the proof is then neither accepted
	// nor refused).
	UseJTI(ctx context.Context, key string, exp time.Time) (fresh bool, err error)
}

// VerifyOptions say what the proof must match.
type VerifyOptions struct {
	// Method is the request's method, which htm must equal (case-sensitive).
	Method string
	// URL is the request's absolute URL as the server is known to clients
	// (behind a proxy, its external URL). htu must match it per RFC 9449
	// §4.3 and RFC 3986 §6.2.2–§6.2.3: query and fragment ignored, scheme
	// and host case-insensitive, default ports dropped, an empty path is
	// "/", percent-encodings compared with their hex digits in one case and
	// unreserved characters decoded; the path is otherwise compared as is
	// (dot segments are not removed).
	URL string
	// Now is the time of the check; zero means time.Now().
	Now time.Time
	// MaxAge is how old iat may be (default DefaultMaxAge) and Leeway how
	// far in the future (default DefaultLeeway, for clock skew).
	MaxAge time.Duration
	Leeway time.Duration
	// Algs are the algorithms accepted (default DefaultAlgs); each must be
	// one of SupportedAlgs.
	Algs []string
	// AccessToken is the access token the request carries (at a resource
	// server): ath must then be its hash (RFC 9449 §4.3 step 11, §7). Empty
	// at the token endpoint, where ath is ignored.
	AccessToken string
	// Nonces, if set, requires the nonce claim to be a valid server nonce;
	// otherwise Verify returns an error matching ErrUseNonce.
	Nonces *Nonces
	// Replay, if set, records each accepted proof's jti, under the key
	// "dpop:" + JKT + ":" + jti until iat + MaxAge + Leeway, and refuses a
	// proof whose jti it has seen (RFC 9449 §11.1).
	Replay Replay
}

// Proof is an accepted proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of Key, base64url: a token
	// bound to this key carries it as cnf.jkt.
	JKT      string
	JTI      string
	IssuedAt time.Time
	// Nonce is the nonce claim, if any (checked only when Nonces was set).
	Nonce string
	// Key is the public key from the proof's header.
	Key jose.JSONWebKey
	// Alg is the proof's JWS algorithm.
	Alg string
}

// proofHeader is the protected header, decoded before go-jose parses it
// to give precise reasons. go-jose's json is case-sensitive.
type proofHeader struct {
	Typ *string                        `json:"typ"`
	Alg string                         `json:"alg"`
	JWK map[string]josejson.RawMessage `json:"jwk"`
}

// claims are the proof's claims (RFC 9449 §4.2).
type claims struct {
	JTI   *string  `json:"jti"`
	HTM   *string  `json:"htm"`
	HTU   *string  `json:"htu"`
	IAT   *float64 `json:"iat"`
	ATH   *string  `json:"ath"`
	Nonce *string  `json:"nonce"`
}

// privateMembers are JWK members that hold private or symmetric key
// material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidProof}, args...)...)
}

func useNonce(reason string) error {
	return fmt.Errorf("%w: %w: %s", ErrInvalidProof, ErrUseNonce, reason)
}

// Verify checks the DPoP header values of one request (RFC 9449 §4.3): one
// value (step 1) of at most MaxHeaderBytes, a JWS compact serialization
// (step 2) with typ dpop+jwt (step 4), an alg from o.Algs (step 5), a
// signature by the header's jwk (step 6), which is a public key (step 7) of
// the alg's type and size; jti, htm, htu and iat present (step 3), htm and
// htu matching the request (steps 8–9), a valid nonce if o.Nonces is set
// (step 10), iat within [Now-MaxAge, Now+Leeway] (step 11), ath matching
// o.AccessToken if set (step 12; checking the key against the token's
// cnf.jkt is the caller's, with Proof.JKT), and, if o.Replay is set, a jti
// not seen before.
//
// A refusal matches ErrInvalidProof, and also ErrUseNonce for a missing or
// stale nonce; any other error is the replay store's or the options'.
func Verify(ctx context.Context, header []string, o VerifyOptions) (*Proof, error) {
	algs, err := allowList(o.Algs)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	maxAge, leeway := o.MaxAge, o.Leeway
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if leeway <= 0 {
		leeway = DefaultLeeway
	}

	switch len(header) {
	case 0:
		return nil, invalid("no DPoP header")
	case 1:
	default:
		return nil, invalid("%d DPoP headers, want one", len(header))
	}
	raw := header[0]
	if len(raw) > MaxHeaderBytes {
		return nil, invalid("DPoP header longer than %d bytes", MaxHeaderBytes)
	}
	if raw == "" {
		return nil, invalid("empty DPoP header")
	}
	if strings.Count(raw, ".") != 2 {
		return nil, invalid("not a JWS compact serialization")
	}

	// The header first, for reasons go-jose would not give.
	var h proofHeader
	b, err := base64.RawURLEncoding.DecodeString(raw[:strings.IndexByte(raw, '.')])
	if err != nil || josejson.Unmarshal(b, &h) != nil {
		return nil, invalid("malformed JWS header")
	}
	if h.Typ == nil || *h.Typ != "dpop+jwt" {
		return nil, invalid("typ is not dpop+jwt")
	}
	if !containsAlg(algs, h.Alg) {
		return nil, invalid("alg %q is not allowed", safe(h.Alg))
	}
	if h.JWK == nil {
		return nil, invalid("no jwk in the header")
	}
	for _, m := range privateMembers {
		if _, ok := h.JWK[m]; ok {
			return nil, invalid("jwk holds private key material")
		}
	}

	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return nil, invalid("malformed JWS")
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid("not one signature")
	}
	sig := jws.Signatures[0]
	alg := sig.Protected.Algorithm
	jwk := sig.Protected.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, invalid("jwk is not a valid public key")
	}
	if err := checkKey(jwk.Key, jose.SignatureAlgorithm(alg)); err != nil {
		return nil, err
	}
	payload, err := jws.Verify(jwk.Key)
	if err != nil {
		return nil, invalid("signature does not verify")
	}

	var c claims
	if err := josejson.Unmarshal(payload, &c); err != nil {
		return nil, invalid("malformed claims")
	}
	switch {
	case c.JTI == nil || *c.JTI == "":
		return nil, invalid("no jti")
	case len(*c.JTI) > MaxJTIBytes:
		return nil, invalid("jti longer than %d bytes", MaxJTIBytes)
	case c.HTM == nil:
		return nil, invalid("no htm")
	case *c.HTM != o.Method:
		return nil, invalid("htm does not match the request method")
	case c.HTU == nil:
		return nil, invalid("no htu")
	case c.IAT == nil:
		return nil, invalid("no iat")
	}
	want, err := normalizeURL(o.URL)
	if err != nil {
		return nil, invalid("the request URL is not an absolute http(s) URL")
	}
	got, err := normalizeURL(*c.HTU)
	if err != nil {
		return nil, invalid("htu is not an absolute http(s) URL")
	}
	if got != want {
		return nil, invalid("htu does not match the request URL")
	}
	iat, ok := numericDate(*c.IAT)
	if !ok {
		return nil, invalid("iat is not a valid time")
	}
	if iat.Before(now.Add(-maxAge)) {
		return nil, invalid("iat is more than %s old", maxAge)
	}
	if iat.After(now.Add(leeway)) {
		return nil, invalid("iat is more than %s in the future", leeway)
	}
	if o.AccessToken != "" {
		if c.ATH == nil {
			return nil, invalid("no ath")
		}
		if subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(AccessTokenHash(o.AccessToken))) != 1 {
			return nil, invalid("ath does not match the access token")
		}
	}
	var nonce string
	if c.Nonce != nil {
		nonce = *c.Nonce
	}
	if o.Nonces != nil {
		if nonce == "" {
			return nil, useNonce("no nonce")
		}
		if !o.Nonces.Valid(nonce) {
			return nil, useNonce("nonce is not current")
		}
	}

	jkt, err := Thumbprint(*jwk)
	if err != nil {
		return nil, invalid("jwk has no thumbprint")
	}
	if o.Replay != nil {
		fresh, err := o.Replay.UseJTI(ctx, "dpop:"+jkt+":"+*c.JTI, iat.Add(maxAge+leeway))
		if err != nil {
			return nil, fmt.Errorf("dpop: recording jti: %w", err)
		}
		if !fresh {
			return nil, invalid("jti already used")
		}
	}
	return &Proof{JKT: jkt, JTI: *c.JTI, IssuedAt: iat, Nonce: nonce, Key: *jwk, Alg: alg}, nil
}

// allowList returns algs as go-jose's allow-list; a name outside
// SupportedAlgs is an error of the options.
func allowList(algs []string) ([]jose.SignatureAlgorithm, error) {
	if len(algs) == 0 {
		algs = DefaultAlgs
	}
	out := make([]jose.SignatureAlgorithm, 0, len(algs))
	for _, a := range algs {
		supported := false
		for _, s := range SupportedAlgs {
			supported = supported || a == s
		}
		if !supported {
			return nil, fmt.Errorf("dpop: algorithm %q is not supported", a)
		}
		out = append(out, jose.SignatureAlgorithm(a))
	}
	return out, nil
}

func containsAlg(algs []jose.SignatureAlgorithm, alg string) bool {
	for _, a := range algs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// checkKey refuses a key that does not suit alg: RSA under MinRSABits, an
// EC curve other than the alg's, a key type of another family.
func checkKey(key any, alg jose.SignatureAlgorithm) error {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		want := map[jose.SignatureAlgorithm]elliptic.Curve{jose.ES256: elliptic.P256(), jose.ES384: elliptic.P384()}[alg]
		if want == nil || k.Curve != want {
			return invalid("EC key does not suit alg %s", alg)
		}
	case *rsa.PublicKey:
		if !strings.HasPrefix(string(alg), "RS") && !strings.HasPrefix(string(alg), "PS") {
			return invalid("RSA key does not suit alg %s", alg)
		}
		if k.N.BitLen() < MinRSABits {
			return invalid("RSA key shorter than %d bits", MinRSABits)
		}
	case ed25519.PublicKey:
		if alg != jose.EdDSA {
			return invalid("Ed25519 key does not suit alg %s", alg)
		}
	default:
		return invalid("jwk key type is not supported")
	}
	return nil
}

// numericDate converts a NumericDate (RFC 7519 §2), refusing values no
// clock will show.
func numericDate(f float64) (time.Time, bool) {
	if math.IsNaN(f) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// safe shortens and sanitizes an attacker's string for an error message.
func safe(s string) string {
	if len(s) > 32 {
		s = s[:32]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// Thumbprint returns k's RFC 7638 JWK thumbprint with SHA-256, base64url
// without padding: the cnf.jkt of a token bound to k (RFC 9449 §6.1).
func Thumbprint(k jose.JSONWebKey) (string, error) {
	if k.Key == nil {
		return "", errors.New("dpop: thumbprint of an empty JWK")
	}
	t, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// AccessTokenHash returns the ath of a proof sent with token: base64url of
// the SHA-256 of its ASCII bytes (RFC 9449 §4.2).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
