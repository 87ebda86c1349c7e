package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/token"
)

// BenchmarkHandleToken measures the token endpoint's hot path in process:
// a client_secret_basic request that gets a token, and one whose secret is
// wrong.
func BenchmarkHandleToken(b *testing.B) {
	now := func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }
	log := slog.New(slog.DiscardHandler)
	sealer, err := masterkey.NewSealer(rand.Reader, make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	keys := token.NewKeys(fake.NewKeys(), sealer, now, rand.Reader, log)
	if err := keys.Ensure(b.Context(), authz.ES256); err != nil {
		b.Fatal(err)
	}
	hasher, err := clientsecret.NewHasher(make([]byte, clientsecret.PepperLen))
	if err != nil {
		b.Fatal(err)
	}
	id, plain, err := clientsecret.Generate(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	api := authz.API{Identifier: testAudience, Scopes: []authz.Scope{{Value: "read"}}, TokenLifetime: time.Hour, SigningAlg: authz.ES256}
	clients := &fake.Clients{ByID: map[string]*authz.Client{"owner": {
		Application: authz.Application{ClientID: "owner"},
		Secrets:     []authz.Secret{{ID: id, ClientID: "owner", Hash: hasher.Hash(plain)}},
		Grants:      []authz.ClientGrant{{Grant: authz.Grant{Scopes: []string{"read"}}, API: &api}},
	}}}
	srv := &Server{Clients: clients, Hasher: hasher, Issuer: token.NewIssuer("https://issuer", keys, now, rand.Reader), Now: now, Log: log}
	const body = "grant_type=client_credentials&audience=https%3A%2F%2Fusage%2F"
	for _, bc := range []struct {
		name, secret string
		want         int
	}{{"issued", plain, http.StatusOK}, {"wrong secret", plain[:len(plain)-1] + "x", http.StatusUnauthorized}} {
		b.Run(bc.name, func(b *testing.B) {
			auth := basic("owner", bc.secret)
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(body))
				r.Header.Set("Content-Type", form)
				r.Header.Set("Authorization", auth)
				w := httptest.NewRecorder()
				srv.HandleToken(w, r)
				if w.Code != bc.want {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// acceptAll is a ReplayStore that finds every jti fresh, so that one
// assertion serves every iteration: the benchmark measures the method, not
// a replay store.
type acceptAll struct{}

func (acceptAll) UseJTI(context.Context, string, time.Time) (bool, error) { return true, nil }

// BenchmarkHandleTokenPrivateKeyJWT is BenchmarkHandleToken with
// private_key_jwt: an ES256 client assertion (kid of an inline jwks
// credential) instead of a client secret. Compare its ns/op with
// BenchmarkHandleToken/issued: the difference is one ES256 verify, the
// assertion's parsing and claim checks, and the credential's keys parsed
// from JSON (BenchmarkES256 in internal/server has the bare operations).
func BenchmarkHandleTokenPrivateKeyJWT(b *testing.B) {
	now := func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }
	log := slog.New(slog.DiscardHandler)
	sealer, err := masterkey.NewSealer(rand.Reader, make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	keys := token.NewKeys(fake.NewKeys(), sealer, now, rand.Reader, log)
	if err := keys.Ensure(b.Context(), authz.ES256); err != nil {
		b.Fatal(err)
	}
	api := authz.API{Identifier: testAudience, Scopes: []authz.Scope{{Value: "read"}}, TokenLifetime: time.Hour, SigningAlg: authz.ES256}
	clients := &fake.Clients{ByID: map[string]*authz.Client{"owner": {
		Application: authz.Application{ClientID: "owner"},
		Grants:      []authz.ClientGrant{{Grant: authz.Grant{Scopes: []string{"read"}}, API: &api}},
	}}}
	srv := &Server{Clients: clients, Issuer: token.NewIssuer("https://issuer", keys, now, rand.Reader), Now: now, Log: log}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	cfg, _ := json.Marshal(authz.KeyCredentialConfig{JWKS: set})
	creds := memCredentials{"owner": {{ID: "cred", ClientID: "owner", Type: authz.CredentialJWKS, Config: cfg}}}
	srv.ClientAuth = []ClientAuthenticator{&PrivateKeyJWT{S: srv, Credentials: creds, Replay: acceptAll{}}}

	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType(AssertionJWTType).WithHeader("kid", "k1"))
	if err != nil {
		b.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{"iss": "owner", "sub": "owner", "aud": "https://issuer", "exp": now().Add(time.Minute).Unix(), "jti": "bench"})
	jws, err := sig.Sign(payload)
	if err != nil {
		b.Fatal(err)
	}
	a, _ := jws.CompactSerialize()
	body := "grant_type=client_credentials&audience=https%3A%2F%2Fusage%2F&client_assertion_type=" +
		url.QueryEscape(AssertionTypeJWTBearer) + "&client_assertion=" + a
	b.Run("issued", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(body))
			r.Header.Set("Content-Type", form)
			w := httptest.NewRecorder()
			srv.HandleToken(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}
