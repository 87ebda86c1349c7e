package token

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/masterkey"
)

func TestEnsureCreatesActiveAndNext(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	active := oneKID(t, f.keys, authz.ES256, authz.KeyActive)
	next := oneKID(t, f.keys, authz.ES256, authz.KeyNext)
	if active == next {
		t.Fatal("active and next keys share a kid")
	}
	for _, m := range f.keys.List() {
		if m.Private != nil {
			t.Errorf("List shows the private key of %s", m.KID)
		}
		if !m.CreatedAt.Equal(f.clock.Now()) {
			t.Errorf("%s created at %v, want %v", m.KID, m.CreatedAt, f.clock.Now())
		}
		if m.State == authz.KeyActive && !m.ActivatedAt.Equal(f.clock.Now()) {
			t.Errorf("active key activated at %v, want %v", m.ActivatedAt, f.clock.Now())
		}
		if m.State == authz.KeyNext && !m.ActivatedAt.IsZero() {
			t.Errorf("next key has ActivatedAt %v", m.ActivatedAt)
		}
	}
	if got := f.keys.Algs(); !slices.Equal(got, []string{authz.ES256}) {
		t.Errorf("Algs = %v, want [ES256]", got)
	}

	t.Run("again creates nothing", func(t *testing.T) {
		f.ensure(t, authz.ES256)
		if got := len(f.keys.List()); got != 2 {
			t.Errorf("%d keys after a second Ensure, want 2", got)
		}
	})
	t.Run("unsupported algorithm", func(t *testing.T) {
		for _, alg := range []string{"HS256", "none", "", "es256"} {
			if err := f.keys.Ensure(t.Context(), alg); !errors.Is(err, authz.ErrInvalid) {
				t.Errorf("Ensure(%q) = %v, want ErrInvalid", alg, err)
			}
		}
	})
	t.Run("another replica loads the same keys", func(t *testing.T) {
		other := f.newKeys(newSealer(t, 1))
		if err := other.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		if string(other.JWKS()) != string(f.keys.JWKS()) {
			t.Errorf("JWKS differ:\n%s\n%s", other.JWKS(), f.keys.JWKS())
		}
	})
}

// TestJWKS: every algorithm's next and active keys are published (RFC 7517
// §5) under their RFC 7638 thumbprint, with no private member.
func TestJWKS(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.SigningAlgs...)
	raw := f.keys.JWKS()
	for _, member := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`} {
		if strings.Contains(string(raw), member) {
			t.Errorf("JWKS has private member %s", member)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	published := map[string]jose.JSONWebKey{}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Errorf("key %s is not public", k.KeyID)
		}
		if k.Use != "sig" {
			t.Errorf("key %s has use %q, want sig", k.KeyID, k.Use)
		}
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if want := base64.RawURLEncoding.EncodeToString(tp); k.KeyID != want {
			t.Errorf("kid %s is not the RFC 7638 thumbprint %s", k.KeyID, want)
		}
		published[k.KeyID] = k
	}
	for _, alg := range authz.SigningAlgs {
		for _, st := range []authz.KeyState{authz.KeyActive, authz.KeyNext} {
			kid := oneKID(t, f.keys, alg, st)
			k, ok := published[kid]
			if !ok {
				t.Errorf("%s %s key %s is not in the JWKS", alg, st, kid)
				continue
			}
			if k.Algorithm != alg {
				t.Errorf("%s key %s published with alg %q", alg, kid, k.Algorithm)
			}
		}
	}
	if len(set.Keys) != 2*len(authz.SigningAlgs) {
		t.Errorf("JWKS has %d keys, want %d", len(set.Keys), 2*len(authz.SigningAlgs))
	}
}

func TestJWKSEmpty(t *testing.T) {
	f := newFixture(t)
	if err := f.keys.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := string(f.keys.JWKS()); got != `{"keys":[]}` {
		t.Errorf("JWKS = %s", got)
	}
}

// TestSealedKeys: private keys are stored sealed under the master key;
// another master key cannot open them, and resealing after a master-key
// rotation moves them to the new key.
func TestSealedKeys(t *testing.T) {
	f := newFixture(t) // master key 1
	f.ensure(t, authz.ES256, authz.EdDSA)
	stored, err := f.store.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range stored {
		if len(m.Private) == 0 {
			t.Fatalf("key %s stored without its private half", m.KID)
		}
		if _, err := newSealer(t, 1).Open(m.Private, []byte(m.KID)); err != nil {
			t.Errorf("key %s does not open with the master key: %v", m.KID, err)
		}
	}

	t.Run("another master key cannot open them", func(t *testing.T) {
		err := f.newKeys(newSealer(t, 2)).Load(t.Context())
		if !errors.Is(err, masterkey.ErrOpen) {
			t.Fatalf("Load with another master key = %v, want ErrOpen", err)
		}
	})

	t.Run("reseal under a new master key", func(t *testing.T) {
		rotated := f.newKeys(newSealer(t, 2, 1))
		if err := rotated.Load(t.Context()); err != nil {
			t.Fatalf("Load with the old key as previous: %v", err)
		}
		n, err := rotated.Reseal(t.Context())
		if err != nil || n != len(stored) {
			t.Fatalf("Reseal = %d, %v; want %d, nil", n, err, len(stored))
		}
		if n, err := rotated.Reseal(t.Context()); err != nil || n != 0 {
			t.Errorf("second Reseal = %d, %v; want 0, nil", n, err)
		}
		if err := f.newKeys(newSealer(t, 2)).Load(t.Context()); err != nil {
			t.Errorf("Load with only the new master key: %v", err)
		}
		if err := f.newKeys(newSealer(t, 1)).Load(t.Context()); !errors.Is(err, masterkey.ErrOpen) {
			t.Errorf("Load with only the old master key = %v, want ErrOpen", err)
		}
		after := f.newKeys(newSealer(t, 2))
		if err := after.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
		if string(after.JWKS()) != string(f.keys.JWKS()) {
			t.Error("resealing changed the published keys")
		}
	})
}
