package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// jtiBytes is the number of random bytes in a jti: 128 bits.
const jtiBytes = 16

// Signer makes DPoP proofs with one key (RFC 9449 §4.2). Safe for
// concurrent use.
type Signer struct {
	signer jose.Signer
	rand   io.Reader
	now    func() time.Time
	alg    string
	jwk    jose.JSONWebKey
	jkt    string
}

// NewSigner returns a signer of proofs with key: ES256 for an ECDSA P-256
// key, ES384 for P-384, EdDSA for Ed25519, PS256 for RSA of at least
// MinRSABits. key may be any crypto.Signer (a KMS or HSM key, say) whose
// Public is of these types. rand gives the jti (default crypto/rand) and
// now the iat (default time.Now).
func NewSigner(key crypto.Signer, rand io.Reader, now func() time.Time) (*Signer, error) {
	if key == nil {
		return nil, errors.New("dpop: no key")
	}
	var alg jose.SignatureAlgorithm
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			alg = jose.ES256
		case elliptic.P384():
			alg = jose.ES384
		default:
			return nil, errors.New("dpop: ECDSA keys must be on P-256 or P-384")
		}
	case ed25519.PublicKey:
		alg = jose.EdDSA
	case *rsa.PublicKey:
		if pub.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("dpop: RSA keys must have at least %d bits", MinRSABits)
		}
		alg = jose.PS256
	default:
		return nil, fmt.Errorf("dpop: unsupported key type %T", pub)
	}
	var signingKey any
	switch k := key.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey, ed25519.PrivateKey:
		signingKey = k
	default:
		signingKey = cryptosigner.Opaque(key)
	}
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: signingKey}, &jose.SignerOptions{
		EmbedJWK:     true,
		ExtraHeaders: map[jose.HeaderKey]any{jose.HeaderType: "dpop+jwt"},
	})
	if err != nil {
		return nil, fmt.Errorf("dpop: signer: %w", err)
	}
	jwk := jose.JSONWebKey{Key: key.Public()}
	jkt, err := Thumbprint(jwk)
	if err != nil {
		return nil, err
	}
	if rand == nil {
		rand = defaultRand
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{signer: js, rand: rand, now: now, alg: string(alg), jwk: jwk, jkt: jkt}, nil
}

var defaultRand = rand.Reader

// signedClaims are a proof's claims as the Signer writes them.
type signedClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// Proof returns a proof, the value of a DPoP header, for a request with
// method to url (its query and fragment are left out of htu). accessToken,
// if not empty, is the token the request carries (ath); nonce, if not
// empty, is the server's latest DPoP-Nonce.
func (s *Signer) Proof(method, url, accessToken, nonce string) (string, error) {
	if i := strings.IndexAny(url, "?#"); i >= 0 {
		url = url[:i]
	}
	b := make([]byte, jtiBytes)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("dpop: jti: %w", err)
	}
	c := signedClaims{
		JTI:   base64.RawURLEncoding.EncodeToString(b),
		HTM:   method,
		HTU:   url,
		IAT:   s.now().Unix(),
		Nonce: nonce,
	}
	if accessToken != "" {
		c.ATH = AccessTokenHash(accessToken)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("dpop: claims: %w", err)
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("dpop: signing: %w", err)
	}
	return jws.CompactSerialize()
}

// Thumbprint returns the key's RFC 7638 thumbprint: the cnf.jkt of tokens
// bound to it.
func (s *Signer) Thumbprint() string { return s.jkt }

// Alg returns the proofs' JWS algorithm.
func (s *Signer) Alg() string { return s.alg }

// PublicKey returns the public key the proofs carry.
func (s *Signer) PublicKey() jose.JSONWebKey { return s.jwk }
