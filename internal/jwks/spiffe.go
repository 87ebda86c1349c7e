package jwks

import (
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
	// Sequence is spiffe_sequence (§4.1.1), 0 if absent.
	Sequence uint64
	// RefreshHint is spiffe_refresh_hint (§4.1.2), how often the bundle
	// should be fetched again, in whole seconds; 0 if absent.
	RefreshHint time.Duration
}

// ParseBundle reads raw, a SPIFFE bundle given inline, strictly: every key
// must have "use" jwt-svid or x509-svid, every jwt-svid key must be a
// public signing key CheckKey accepts, and there must be at least one.
// x509-svid keys are not read. Returns an error naming the first key that
// is not.
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
	if strict && len(b.Keys) == 0 {
		return Bundle{}, errors.New("jwks: the bundle has no jwt-svid keys")
	}
	return b, nil
}

// parseUint reads a JSON number that must be a non-negative integer.
func parseUint(n json.Number) (uint64, error) {
	v, err := strconv.ParseUint(n.String(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not a non-negative integer", n)
	}
	return v, nil
}
