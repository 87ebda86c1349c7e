package oauth

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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
		Grants:      []authz.ClientGrant{{Grant: authz.Grant{Scopes: []string{"read"}}, API: api}},
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
