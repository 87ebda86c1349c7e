// Package jwks parses JSON Web Key Sets (RFC 7517 §5) of public signing
// keys and fetches them from URLs with a cache: the one place m2mauth
// reads keys it does not hold itself (private_key_jwt jwks_uri, trusted
// issuers).
package jwks

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// MinRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3, §3.5).
const MinRSABits = 2048

// Set is a parsed JWKS: public signing keys only.
type Set struct {
	Keys []jose.JSONWebKey
}

// Lookup returns the keys with key ID kid, or every key if kid is "" (an
// assertion without a kid header is tried against each key that fits).
func (s Set) Lookup(kid string) []jose.JSONWebKey {
	if kid == "" {
		return s.Keys
	}
	var out []jose.JSONWebKey
	for _, k := range s.Keys {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// Parse reads raw, a JWKS document, strictly: every key must be a public
// signing key (see CheckKey) that go-jose reads, and there must be at
// least one. Returns an error naming the first key that is not.
func Parse(raw []byte) (Set, error) {
	return parse(raw, true)
}

// parse reads raw. A JWKS holding a private or symmetric key is refused
// whole, strict or not: its publisher leaked the key. If strict is false,
// keys that go-jose cannot read (a key type from a newer RFC) or that can
// never verify (an "enc" key, a short RSA key) are skipped instead.
func parse(raw []byte, strict bool) (Set, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return Set{}, fmt.Errorf("jwks: not a JWKS: %w", err)
	}
	var set Set
	for i, r := range doc.Keys {
		var probe struct {
			Kty string `json:"kty"`
			D   string `json:"d"`
			K   string `json:"k"`
		}
		if err := json.Unmarshal(r, &probe); err != nil {
			return Set{}, fmt.Errorf("jwks: key %d: %w", i, err)
		}
		if probe.Kty == "oct" || probe.K != "" || probe.D != "" {
			return Set{}, fmt.Errorf("jwks: key %d: a private or symmetric key; a JWKS holds public keys only", i)
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			if strict {
				return Set{}, fmt.Errorf("jwks: key %d: %w", i, err)
			}
			continue
		}
		if err := CheckKey(k); err != nil {
			if strict || !k.IsPublic() {
				return Set{}, fmt.Errorf("jwks: key %d: %w", i, err)
			}
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	if strict && len(set.Keys) == 0 {
		return Set{}, errors.New("jwks: no keys")
	}
	return set, nil
}

// CheckKey returns an error unless k is a public signing key m2mauth
// accepts: EC P-256/P-384/P-521, Ed25519, or RSA of at least MinRSABits,
// with "use" absent or "sig".
func CheckKey(k jose.JSONWebKey) error {
	if !k.IsPublic() {
		return errors.New("a private or symmetric key; only public keys are accepted")
	}
	if k.Use != "" && k.Use != "sig" {
		return fmt.Errorf("use %q, not sig", k.Use)
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key of %d bits; at least %d are required", pub.N.BitLen(), MinRSABits)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Errorf("key type %T is not accepted", k.Key)
	}
	return nil
}

// Fits reports whether k may verify a JWS with header alg: the JWK's
// "alg", when present, must equal it (RFC 7517 §4.4), and the key's type
// and curve must be the ones alg is defined for (RFC 7518 §3, RFC 8037
// §3.1).
func Fits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pub := k.Key.(type) {
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// CheckURL returns an error unless raw is an absolute https URL without
// user info or fragment, or, if allowInsecure is set, an http URL whose
// host is a loopback address or "localhost" (for tests and development).
func CheckURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("jwks: URL: %w", err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("jwks: URL %q: want an absolute URL without user info or fragment", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowInsecure && isLoopback(u.Hostname()) {
			return nil
		}
		if allowInsecure {
			return fmt.Errorf("jwks: URL %q: http only to a loopback host", raw)
		}
	}
	return fmt.Errorf("jwks: URL %q: want https", raw)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Key is one public signing key of a Set.
type Key = jose.JSONWebKey
