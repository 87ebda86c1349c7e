package token

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/masterkey"
)

// testIssuerURL is the iss of the tests' tokens.
const testIssuerURL = "https://auth.example.com"

// masterKey returns a master key made of byte b.
func masterKey(b byte) []byte { return bytes.Repeat([]byte{b}, masterkey.Len) }

// newSealer returns a Sealer with primary key byte primary and previous
// keys of the given bytes.
func newSealer(t testing.TB, primary byte, previous ...byte) *masterkey.Sealer {
	t.Helper()
	var prev [][]byte
	for _, b := range previous {
		prev = append(prev, masterKey(b))
	}
	s, err := masterkey.NewSealer(rand.Reader, masterKey(primary), prev...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixture is a key manager and an issuer over one store, on one clock.
type fixture struct {
	store  authz.Keys
	clock  *fake.Clock
	keys   *Keys
	issuer *Issuer
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{store: fake.NewKeys(), clock: fake.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))}
	f.keys = f.newKeys(newSealer(t, 1))
	f.issuer = NewIssuer(testIssuerURL, f.keys, f.clock.Now, rand.Reader)
	return f
}

// newKeys returns another key manager over the fixture's store and clock:
// another replica.
func (f *fixture) newKeys(sealer *masterkey.Sealer) *Keys {
	return NewKeys(f.store, sealer, f.clock.Now, rand.Reader, slog.New(slog.DiscardHandler))
}

// ensure calls Ensure for each alg, failing t on error.
func (f *fixture) ensure(t testing.TB, algs ...string) {
	t.Helper()
	for _, alg := range algs {
		if err := f.keys.Ensure(t.Context(), alg); err != nil {
			t.Fatal(err)
		}
	}
}

// issue signs a token for alg lasting lifetime.
func (f *fixture) issue(t testing.TB, alg string, lifetime time.Duration) (string, Claims) {
	t.Helper()
	tok, c, err := f.issuer.Issue(Request{ClientID: "client-1", Audience: "https://api.example.com", Scopes: []string{"read:things"}, Lifetime: lifetime, Alg: alg})
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

// byState returns the kids of alg's keys in each state, as k lists them.
func byState(k *Keys, alg string) map[authz.KeyState][]string {
	out := map[authz.KeyState][]string{}
	for _, m := range k.List() {
		if m.Alg == alg {
			out[m.State] = append(out[m.State], m.KID)
		}
	}
	return out
}

// storedByState is byState read straight from the store.
func storedByState(t testing.TB, st authz.Keys, alg string) map[authz.KeyState][]string {
	t.Helper()
	list, err := st.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[authz.KeyState][]string{}
	for _, m := range list {
		if m.Alg == alg {
			out[m.State] = append(out[m.State], m.KID)
		}
	}
	return out
}

// oneKID returns the only kid of alg's keys in state st, failing t unless
// there is exactly one.
func oneKID(t testing.TB, k *Keys, alg string, st authz.KeyState) string {
	t.Helper()
	kids := byState(k, alg)[st]
	if len(kids) != 1 {
		t.Fatalf("%s keys in state %s: %v, want exactly one", alg, st, kids)
	}
	return kids[0]
}

// issueVerified has the issuer's active alg key, loaded from the store as
// the server loads it, sign n tokens; it fails t unless direct reports
// that the key signs through its direct signer, and unless every token
// verifies with go-jose's parser (allow-list) and the published key, and
// with the issuer's own Verify. each, if not nil, sees every token.
func issueVerified(t *testing.T, alg string, n int, direct func(*jwsKey) bool, each func(i int, tok string)) {
	t.Helper()
	f := newFixture(t)
	f.ensure(t, alg)
	sk, err := f.keys.signer(alg)
	if err != nil {
		t.Fatal(err)
	}
	if !direct(sk.signer) {
		t.Fatalf("%s signs with %T through crypto.Signer, not its direct signer", alg, sk.signer.key)
	}
	var public jose.JSONWebKey
	if err := public.UnmarshalJSON(mustJWK(t, f.keys, sk.meta.KID)); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		tok, c := f.issue(t, alg, time.Minute)
		jws, err := jose.ParseSignedCompact(tok, allowedAlgs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jws.Verify(public.Key); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if got, err := f.issuer.Verify(tok); err != nil || got.JTI != c.JTI {
			t.Fatalf("token %d: Verify = %v, %v", i, got, err)
		}
		if each != nil {
			each(i, tok)
		}
	}
}
