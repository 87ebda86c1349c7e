package jwks

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key uses of a SPIFFE bundle (SPIFFE Trust Domain and Bundle §4.2.1).
const (
	UseJWTSVID  = "jwt-svid"  // verifies JWT-SVIDs
	UseX509SVID = "x509-svid" // an X.509 root; not for JWTs
)

// Bundle is a SPIFFE trust bundle (SPIFFE Trust Domain and Bundle §4): a
// JWKS whose keys say what they are for, with two more members.
type Bundle struct {
	// Set holds the bundle's jwt-svid keys, with Use "sig"; the x509-svid
	// keys are left out.
	Set
	// Authorities are the X.509 CA certificates of the bundle's x509-svid
	// keys, the roots of the trust domain's X.509-SVIDs: each key's first
	// x5c certificate; keys without a readable one are ignored (SPIFFE
	// X509-SVID §6.2).
	Authorities []*x509.Certificate
	// Sequence is spiffe_sequence (§4.1.1), 0 if absent.
	Sequence uint64
	// RefreshHint is spiffe_refresh_hint (§4.1.2), how often the bundle
	// should be fetched again, in whole seconds; 0 if absent.
	RefreshHint time.Duration
}

// ParseBundle reads raw, a SPIFFE bundle given inline, strictly: every key
// must have "use" jwt-svid or x509-svid, every jwt-svid key must be a
// public signing key CheckKey accepts, and there must be at least one
// jwt-svid key or X.509 authority. x509-svid keys are read as SPIFFE
// X509-SVID §6.2 says, leniently: one without a readable x5c certificate
// is ignored. Returns an error naming the first key that is refused.
func ParseBundle(raw []byte) (Bundle, error) {
	return parseBundle(raw, true)
}

// parseBundle reads raw. Like parse, a private or symmetric key refuses
// the whole bundle; if strict is false, jwt-svid keys that cannot verify
// and keys of other uses are skipped.
func parseBundle(raw []byte, strict bool) (Bundle, error) {
	var doc struct {
		Keys        []json.RawMessage `json:"keys"`
		Sequence    *json.Number      `json:"spiffe_sequence"`
		RefreshHint *json.Number      `json:"spiffe_refresh_hint"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return Bundle{}, fmt.Errorf("jwks: not a SPIFFE bundle: %w", err)
	}
	var b Bundle
	if doc.Sequence != nil {
		n, err := parseUint(*doc.Sequence)
		if err != nil {
			return Bundle{}, fmt.Errorf("jwks: spiffe_sequence: %w", err)
		}
		b.Sequence = n
	}
	if doc.RefreshHint != nil {
		n, err := parseUint(*doc.RefreshHint)
		if err != nil {
			return Bundle{}, fmt.Errorf("jwks: spiffe_refresh_hint: %w", err)
		}
		if n > uint64(DefaultMaxTTL/time.Second) {
			n = uint64(DefaultMaxTTL / time.Second) // the Fetcher bounds it anyway; no overflow
		}
		b.RefreshHint = time.Duration(n) * time.Second
	}
	for i, r := range doc.Keys {
		var probe struct {
			Kty string `json:"kty"`
			D   string `json:"d"`
			K   string `json:"k"`
			Use string `json:"use"`
		}
		if err := json.Unmarshal(r, &probe); err != nil {
			return Bundle{}, fmt.Errorf("jwks: key %d: %w", i, err)
		}
		if probe.Kty == "oct" || probe.K != "" || probe.D != "" {
			return Bundle{}, fmt.Errorf("jwks: key %d: a private or symmetric key; a bundle holds public keys only", i)
		}
		switch probe.Use {
		case UseJWTSVID:
		case UseX509SVID:
			if c := authority(r); c != nil {
				b.Authorities = append(b.Authorities, c)
			}
			continue
		default:
			if strict {
				return Bundle{}, fmt.Errorf("jwks: key %d: use %q; a SPIFFE bundle key is %s or %s", i, probe.Use, UseJWTSVID, UseX509SVID)
			}
			continue
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			if strict {
				return Bundle{}, fmt.Errorf("jwks: key %d: %w", i, err)
			}
			continue
		}
		k.Use = "sig" // what jwt-svid means for a JWS
		if err := CheckKey(k); err != nil {
			if strict || !k.IsPublic() {
				return Bundle{}, fmt.Errorf("jwks: key %d: %w", i, err)
			}
			continue
		}
		b.Keys = append(b.Keys, k)
	}
	if strict && len(b.Keys) == 0 && len(b.Authorities) == 0 {
		return Bundle{}, errors.New("jwks: the bundle has no jwt-svid keys and no x509-svid authorities")
	}
	return b, nil
}

// authority returns the CA certificate of the x509-svid key r: the first
// value of its x5c, standard base64 DER (RFC 7517 §4.7), the rest
// ignored; nil if there is none, it does not parse or it is not a CA
// certificate (SPIFFE X509-SVID §4.1, §6.2). The JWK's own key members are
// not used: the certificate is the authority.
func authority(r json.RawMessage) *x509.Certificate {
	var k struct {
		X5C []string `json:"x5c"`
	}
	if json.Unmarshal(r, &k) != nil || len(k.X5C) == 0 {
		return nil
	}
	der, err := base64.StdEncoding.DecodeString(k.X5C[0])
	if err != nil {
		return nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil || !c.BasicConstraintsValid || !c.IsCA {
		return nil
	}
	return c
}

// parseUint reads a JSON number that must be a non-negative integer.
func parseUint(n json.Number) (uint64, error) {
	v, err := strconv.ParseUint(n.String(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not a non-negative integer", n)
	}
	return v, nil
}
