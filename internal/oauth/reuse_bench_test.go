package oauth

import (
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/token"
)

// BenchmarkHandleTokenReuse measures the token endpoint with token reuse
// on, as BenchmarkHandleToken measures it without: "hit" answers the
// cached token (client authentication and every check still run, no
// signature), "issued" is the same request with reuse off for the API, in
// the same run. signatures/op counts the Issuer's signatures.
func BenchmarkHandleTokenReuse(b *testing.B) {
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
	for _, bc := range []struct {
		name  string
		reuse time.Duration
	}{{"hit", 300 * time.Second}, {"issued", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			api := authz.API{Identifier: testAudience, Scopes: []authz.Scope{{Value: "read"}}, TokenLifetime: time.Hour, SigningAlg: authz.ES256,
				TokenReuse: authz.TokenReuse{MinRemaining: bc.reuse}}
			clients := &fake.Clients{ByID: map[string]*authz.Client{"owner": {
				Application: authz.Application{ClientID: "owner"},
				Secrets:     []authz.Secret{{ID: id, ClientID: "owner", Hash: hasher.Hash(plain)}},
				Grants:      []authz.ClientGrant{{Grant: authz.Grant{Scopes: []string{"read"}}, API: &api}},
			}}}
			issuer := token.NewIssuer("https://issuer", keys, now, rand.Reader)
			var sigs atomic.Int64
			issuer.Signing = func(string) func() { sigs.Add(1); return func() {} }
			srv := &Server{Clients: clients, Hasher: hasher, Issuer: issuer, Now: now, Log: log, DenyList: fake.NewDenyList(), Reuse: NewReuseCache(0)}
			const body = "grant_type=client_credentials&audience=https%3A%2F%2Fusage%2F"
			auth := basic("owner", plain)
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(body))
				r.Header.Set("Content-Type", form)
				r.Header.Set("Authorization", auth)
				w := httptest.NewRecorder()
				srv.HandleToken(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(sigs.Load())/float64(b.N), "signatures/op")
		})
	}
}
