package m2mclient

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"

	"golang.org/x/oauth2"
)

// Client assertion types (RFC 7521 §4.2, draft-ietf-oauth-spiffe-client-auth).
const (
	AssertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	AssertionTypeJWTSPIFFE = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe"
)

// AssertionJWTType is the `typ` header of the assertions PrivateKeyJWT
// signs (RFC 7523bis).
const AssertionJWTType = "client-authentication+jwt"

// Signer signs client assertions. A key in a KMS or an HSM implements it;
// [NewSigner] and [LoadSigner] make one of a local key.
type Signer interface {
	// Alg is the JWS algorithm (RFC 7518 §3.1): ES256, EdDSA, PS256 or RS256.
	Alg() string
	// KeyID is the `kid` header, "" for none.
	KeyID() string
	// Sign returns the JWS signature of signingInput (RFC 7515 §5.1), as
	// it goes in the JWS: for ES256 the 64 bytes R || S, not ASN.1.
	Sign(ctx context.Context, signingInput []byte) ([]byte, error)
}

// keySigner is a Signer of a crypto.Signer.
type keySigner struct {
	key crypto.Signer
	alg string
	kid string
}

func (s *keySigner) Alg() string   { return s.alg }
func (s *keySigner) KeyID() string { return s.kid }

func (s *keySigner) Sign(_ context.Context, in []byte) ([]byte, error) {
	switch s.alg {
	case "EdDSA":
		return s.key.Sign(rand.Reader, in, crypto.Hash(0))
	case "ES256":
		h := sha256.Sum256(in)
		der, err := s.key.Sign(rand.Reader, h[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		var sig struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) > 0 {
			return nil, errors.New("m2mclient: the key returned a malformed ECDSA signature")
		}
		out := make([]byte, 64)
		sig.R.FillBytes(out[:32])
		sig.S.FillBytes(out[32:])
		return out, nil
	case "PS256":
		h := sha256.Sum256(in)
		return s.key.Sign(rand.Reader, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	default: // RS256
		h := sha256.Sum256(in)
		return s.key.Sign(rand.Reader, h[:], crypto.SHA256)
	}
}

// NewSigner returns a Signer of key, whose public key decides the
// algorithm: EC P-256 signs ES256, Ed25519 EdDSA, RSA of at least 2048
// bits PS256, or RS256 if alg says so. alg "" means that default; kid is
// the `kid` header, "" for none.
func NewSigner(key crypto.Signer, alg, kid string) (Signer, error) {
	if key == nil {
		return nil, errors.New("m2mclient: no key")
	}
	var want []string
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("m2mclient: EC keys must be on P-256 (ES256)")
		}
		want = []string{"ES256"}
	case ed25519.PublicKey:
		want = []string{"EdDSA"}
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return nil, fmt.Errorf("m2mclient: RSA key of %d bits: at least 2048 are needed", pub.N.BitLen())
		}
		want = []string{"PS256", "RS256"}
	default:
		return nil, fmt.Errorf("m2mclient: unsupported key type %T", pub)
	}
	if alg == "" {
		alg = want[0]
	}
	for _, w := range want {
		if alg == w {
			return &keySigner{key: key, alg: alg, kid: kid}, nil
		}
	}
	return nil, fmt.Errorf("m2mclient: a %T cannot sign %s", key.Public(), alg)
}

// LoadSigner reads a PEM private key from path (LoadPrivateKey) and
// returns NewSigner(key, "", kid).
func LoadSigner(path, kid string) (Signer, error) {
	key, err := LoadPrivateKey(path)
	if err != nil {
		return nil, err
	}
	return NewSigner(key, "", kid)
}

// LoadPrivateKey reads a PEM private key from path: PKCS#8 "PRIVATE KEY",
// SEC 1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY". Errors wrap the
// file's read error (fs.ErrNotExist for a missing file) and never hold key
// material.
func LoadPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("m2mclient: reading the private key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("m2mclient: %s holds no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("m2mclient: %s holds a %q PEM block, not a private key", path, block.Type)
	}
	if err != nil {
		// The parser's error names no key material.
		return nil, fmt.Errorf("m2mclient: parsing the private key in %s: %w", path, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("m2mclient: unsupported key type %T in %s", key, path)
	}
	return s, nil
}

// PrivateKeyJWT returns a source of tokens for an application that
// authenticates with private_key_jwt (RFC 7523 §2.2, RFC 7521 §4.2): each
// token request carries a fresh assertion signed by s, with `typ`
// client-authentication+jwt, iss = sub = ClientID, aud =
// AssertionAudience (default Issuer), iat, exp = iat + AssertionLifetime
// and a random jti. ctx is used for every request and signature.
func (c Config) PrivateKeyJWT(ctx context.Context, s Signer) (oauth2.TokenSource, error) {
	if err := c.validate(true, true); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errors.New("m2mclient: no signer")
	}
	return c.assertionSource(ctx, AssertionTypeJWTBearer, func(ctx context.Context) (string, error) {
		return c.signAssertion(ctx, s)
	}), nil
}

// signAssertion returns a new client assertion signed by s.
func (c Config) signAssertion(ctx context.Context, s Signer) (string, error) {
	header := map[string]string{"alg": s.Alg(), "typ": AssertionJWTType}
	if kid := s.KeyID(); kid != "" {
		header["kid"] = kid
	}
	now := c.now()
	claims := map[string]any{
		"iss": c.ClientID,
		"sub": c.ClientID,
		"aud": c.assertionAudience(),
		"iat": now.Unix(),
		"exp": now.Add(c.assertionLifetime()).Unix(),
		"jti": rand.Text(),
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sig, err := s.Sign(ctx, []byte(in))
	if err != nil {
		return "", fmt.Errorf("m2mclient: signing the client assertion: %w", err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
