package server

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
)

// BenchmarkTokenEndpointScaling shows that a token costs the same whether
// the application holds 1 or 5 secrets (the secret's id names the one hash
// to check) and whether the server holds 10 or 100 000 applications (one
// keyed lookup, from memory). ES256 throughout.
func BenchmarkTokenEndpointScaling(b *testing.B) {
	cases := []struct {
		name          string
		secrets, apps int
	}{
		{"secrets=1", 1, 10},
		{"secrets=5", 5, 10},
		{"apps=10", 1, 10},
		{"apps=100000", 1, 100_000},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			e := newTestEnv(b, quietLog(slog.NewTextHandler(io.Discard, nil)))
			adm := e.adminToken()
			const aud = "https://bench/"
			api := e.createAPI(adm, aud, "ES256", "read")
			clientID, secret := populate(b, e, api.ID, tc.apps, tc.secrets)
			body := formOf(clientID, secret, aud).Encode()
			h := e.srv.Handler()
			// b.Loop starts the timer afresh: populate is not measured.
			benchTokenRequests(b, h, body)
		})
	}
}

// populate writes apps applications straight to the store, each granted
// apiID, and gives the last one nSecrets secrets, the last of which it
// returns (the token endpoint must find it among the others).
func populate(b *testing.B, e *testEnv, apiID string, apps, nSecrets int) (clientID, secret string) {
	ctx := context.Background()
	now := authz.StoreTime(time.Now())
	hasher := e.srv.oauth.Hasher
	for i := 0; i < apps; i++ {
		id := "bench" + strconv.Itoa(i)
		var secrets []authz.Secret
		n := 1
		if i == apps-1 {
			n = nSecrets
		}
		for j := 0; j < n; j++ {
			sid, plain, err := clientsecret.Generate(rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			secrets = append(secrets, authz.Secret{ID: sid, ClientID: id, Hash: hasher.Hash(plain), Prefix: clientsecret.DisplayPrefix(sid), CreatedAt: now, UpdatedAt: now})
			secret = plain
		}
		g := authz.Grant{ID: "grt_b" + strconv.Itoa(i), ClientID: id, APIID: apiID, Scopes: []string{"read"}, CreatedAt: now, UpdatedAt: now}
		if err := e.srv.store.CreateApplication(ctx, authz.Application{ClientID: id, Name: id, CreatedAt: now, UpdatedAt: now}, secrets, []authz.Grant{g}); err != nil {
			b.Fatal(err)
		}
		clientID = id
	}
	return clientID, secret
}
