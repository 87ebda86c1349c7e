package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
)

// memCredentials is a CredentialSource over a map, by client_id.
type memCredentials map[string][]authz.Credential

func (m memCredentials) ListCredentials(_ context.Context, clientID string) ([]authz.Credential, error) {
	return m[clientID], nil
}

// memReplay is a ReplayStore in memory.
type memReplay struct {
	mu   sync.Mutex
	used map[string]time.Time
}

func (m *memReplay) UseJTI(_ context.Context, key string, exp time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used == nil {
		m.used = map[string]time.Time{}
	}
	if _, ok := m.used[key]; ok {
		return false, nil
	}
	m.used[key] = exp
	return true, nil
}

// jwksCredential is a jwks credential of "owner" holding the public halves
// of keys, as kid k0, k1, ….
func jwksCredential(t *testing.T, id string, keys ...crypto.Signer) authz.Credential {
	t.Helper()
	var set jose.JSONWebKeySet
	for i, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: "k" + string(rune('0'+i)), Use: "sig"})
	}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(authz.KeyCredentialConfig{JWKS: raw})
	return authz.Credential{ID: id, ClientID: "owner", Type: authz.CredentialJWKS, Config: cfg}
}

// pkFixture is newFixture with private_key_jwt as its only method and
// "owner" holding creds.
func pkFixture(t *testing.T, pk *PrivateKeyJWT, creds ...authz.Credential) (*fixture, *fake.Events) {
	f := newFixture(t)
	events := &fake.Events{}
	f.srv.Events = events
	pk.S, pk.Credentials, pk.Replay = f.srv, memCredentials{"owner": creds}, &memReplay{}
	f.srv.ClientAuth = []ClientAuthenticator{pk}
	return f, events
}

// signAssertion signs owner's client assertion for f's issuer with alg and
// kid, with header typ (none if "").
func signAssertion(t *testing.T, f *fixture, alg jose.SignatureAlgorithm, key crypto.Signer, kid, typ string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	payload, _ := json.Marshal(map[string]any{
		"iss": "owner", "sub": "owner", "aud": f.srv.Issuer.URL(),
		"exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text(),
	})
	jws, err := sig.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// postAssertion asks f's token endpoint for a token with assertion.
func postAssertion(f *fixture, assertion string) *httptest.ResponseRecorder {
	form := url.Values{
		"grant_type": {"client_credentials"}, "audience": {testAudience},
		"client_assertion_type": {AssertionTypeJWTBearer}, "client_assertion": {assertion},
	}
	r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	f.srv.HandleToken(w, r)
	return w
}

// TestPrivateKeyJWTAlgs: the configured algorithms, and only they, verify
// assertions; RS256 only when listed; discovery lists what is configured.
func TestPrivateKeyJWTAlgs(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name   string
		algs   []string
		want   []string // SigningAlgs
		accept []jose.SignatureAlgorithm
		refuse []jose.SignatureAlgorithm
	}{
		{"default", nil, AssertionSigningAlgs, []jose.SignatureAlgorithm{jose.ES256, jose.PS256}, []jose.SignatureAlgorithm{jose.RS256}},
		{"RS256 listed", []string{"ES256", "RS256"}, []string{"ES256", "RS256"}, []jose.SignatureAlgorithm{jose.ES256, jose.RS256}, []jose.SignatureAlgorithm{jose.PS256}},
		{"spaces, duplicates and unsupported names", []string{" PS256", "HS256", "PS256 ", "none"}, []string{"PS256"}, []jose.SignatureAlgorithm{jose.PS256}, []jose.SignatureAlgorithm{jose.ES256, jose.RS256}},
		{"nothing usable: the default", []string{"HS256"}, AssertionSigningAlgs, []jose.SignatureAlgorithm{jose.ES256}, []jose.SignatureAlgorithm{jose.RS256}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pk := &PrivateKeyJWT{Algs: tc.algs}
			f, _ := pkFixture(t, pk, jwksCredential(t, "cred-ec", ec), jwksCredential(t, "cred-rsa", rk))
			if got := pk.SigningAlgs(); !slices.Equal(got, tc.want) {
				t.Fatalf("SigningAlgs = %q, want %q", got, tc.want)
			}
			if got := f.srv.AuthSigningAlgs(); !slices.Equal(got, tc.want) {
				t.Fatalf("Server.AuthSigningAlgs = %q, want %q", got, tc.want)
			}
			d := &Discovery{Issuer: "https://issuer", APIs: &countingAPIs{scope: "read"}, AuthMethods: f.srv.AuthMethods(), AuthSigningAlgs: f.srv.AuthSigningAlgs()}
			m, err := d.metadata(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.TokenEndpointAuthSigningAlgs, tc.want) {
				t.Errorf("discovery lists %q, want %q", m.TokenEndpointAuthSigningAlgs, tc.want)
			}
			key := func(alg jose.SignatureAlgorithm) crypto.Signer {
				if alg == jose.ES256 {
					return ec
				}
				return rk
			}
			for _, alg := range tc.accept {
				if w := postAssertion(f, signAssertion(t, f, alg, key(alg), "k0", AssertionJWTType)); w.Code != http.StatusOK {
					t.Errorf("%s: %d %s, want 200", alg, w.Code, w.Body)
				}
			}
			for _, alg := range tc.refuse {
				if w := postAssertion(f, signAssertion(t, f, alg, key(alg), "k0", AssertionJWTType)); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), ErrInvalidClient) {
					t.Errorf("%s: %d %s, want 401 invalid_client", alg, w.Code, w.Body)
				}
			}
		})
	}
	t.Run("no private_key_jwt registered", func(t *testing.T) {
		f := newFixture(t)
		if got := f.srv.AuthSigningAlgs(); got != nil {
			t.Errorf("AuthSigningAlgs = %q, want nil", got)
		}
	})
}

// TestPrivateKeyJWTTyp: the typ header client-authentication+jwt (RFC
// 7523bis) compared as RFC 7515 §4.1.9 says; an untyped assertion is
// accepted unless RequireTyp; any other type is refused either way.
func TestPrivateKeyJWTTyp(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		typ        string
		optional   int // status without RequireTyp
		requireTyp int
	}{
		{"", http.StatusOK, http.StatusUnauthorized},
		{AssertionJWTType, http.StatusOK, http.StatusOK},
		{"application/Client-Authentication+JWT", http.StatusOK, http.StatusOK},
		{"JWT", http.StatusUnauthorized, http.StatusUnauthorized},
		{"at+jwt", http.StatusUnauthorized, http.StatusUnauthorized},
	} {
		for _, require := range []bool{false, true} {
			want := tc.optional
			if require {
				want = tc.requireTyp
			}
			f, events := pkFixture(t, &PrivateKeyJWT{RequireTyp: require}, jwksCredential(t, "cred", ec))
			w := postAssertion(f, signAssertion(t, f, jose.ES256, ec, "k0", tc.typ))
			if w.Code != want {
				t.Errorf("typ %q, RequireTyp %v: %d %s, want %d", tc.typ, require, w.Code, w.Body, want)
			}
			if want != http.StatusOK && len(events.AuthFailures()) != 1 {
				t.Errorf("typ %q, RequireTyp %v: %d failures recorded, want 1", tc.typ, require, len(events.AuthFailures()))
			}
		}
	}
}

// TestPrivateKeyJWTCredentialUsed: the credential whose key verified the
// assertion, not another of the application's, is reported used (its
// last_used_at); a refusal reports none.
func TestPrivateKeyJWTCredentialUsed(t *testing.T) {
	oldKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// Both credentials publish kid k0: the key that verifies decides.
	f, events := pkFixture(t, &PrivateKeyJWT{}, jwksCredential(t, "cred-old", oldKey), jwksCredential(t, "cred-new", newKey))
	if w := postAssertion(f, signAssertion(t, f, jose.ES256, newKey, "k0", AssertionJWTType)); w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w := postAssertion(f, signAssertion(t, f, jose.ES256, stranger, "k0", AssertionJWTType)); w.Code != http.StatusUnauthorized {
		t.Fatalf("stranger's key: %d %s", w.Code, w.Body)
	}
	if w := postAssertion(f, signAssertion(t, f, jose.ES256, oldKey, "k0", AssertionJWTType)); w.Code != http.StatusOK {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	want := []fake.CredentialUse{{ClientID: "owner", CredentialID: "cred-new", At: f.clock.Now()}, {ClientID: "owner", CredentialID: "cred-old", At: f.clock.Now()}}
	if got := events.CredentialUses(); !slices.Equal(got, want) {
		t.Errorf("credential uses %+v, want %+v", got, want)
	}
	if got := events.SecretUses(); len(got) != 0 {
		t.Errorf("secret uses %+v, want none", got)
	}
}
