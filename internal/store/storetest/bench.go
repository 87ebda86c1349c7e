package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// BenchClient measures Client, the token endpoint's one lookup, on the
// empty store s, for an application with five secrets and three grants of
// APIs with three scopes each.
func BenchClient(b *testing.B, s authz.Store) {
	ctx := context.Background()
	now := at(0)
	app := authz.Application{ClientID: "app_bench", Name: "Bench", CreatedAt: now, UpdatedAt: now}
	var secrets []authz.Secret
	for i := range 5 {
		secrets = append(secrets, authz.Secret{
			ID:        fmt.Sprintf("sec_%d", i),
			Hash:      make([]byte, 32),
			Prefix:    fmt.Sprintf("m2ms_sec_%d", i),
			CreatedAt: now.Add(time.Duration(i) * time.Second),
			UpdatedAt: now.Add(time.Duration(i) * time.Second),
			ExpiresAt: now.Add(90 * 24 * time.Hour),
		})
	}
	var grants []authz.Grant
	for i := range 3 {
		api := authz.API{
			ID:         fmt.Sprintf("api_%d", i),
			Identifier: fmt.Sprintf("https://api%d.example.com", i),
			Name:       "API",
			Scopes: []authz.Scope{
				{Value: "read:things", Description: "Read things"},
				{Value: "write:things", Description: "Write things"},
				{Value: "delete:things", Description: "Delete things"},
			},
			TokenLifetime: time.Hour,
			SigningAlg:    authz.ES256,
			CreatedAt:     now,
			UpdatedAt:     now,
		}
		if err := s.CreateAPI(ctx, api); err != nil {
			b.Fatal(err)
		}
		grants = append(grants, authz.Grant{
			ID:        fmt.Sprintf("grant_%d", i),
			APIID:     api.ID,
			Scopes:    []string{"read:things", "write:things"},
			CreatedAt: now,
			UpdatedAt: now,
		})
	}
	if err := s.CreateApplication(ctx, app, secrets, grants); err != nil {
		b.Fatal(err)
	}

	b.ReportAllocs()
	for b.Loop() {
		c, err := s.Client(ctx, app.ClientID)
		if err != nil {
			b.Fatal(err)
		}
		if len(c.Secrets) != 5 || len(c.Grants) != 3 {
			b.Fatalf("Client = %d secrets, %d grants", len(c.Secrets), len(c.Grants))
		}
	}
}

// BenchClientParallel measures Client on the empty store s from
// GOMAXPROCS goroutines at once, for an application with one secret.
func BenchClientParallel(b *testing.B, s authz.Store) {
	ctx := context.Background()
	now := at(0)
	app := authz.Application{ClientID: "app_bench", Name: "Bench", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(ctx, app, []authz.Secret{{ID: "sec_1", Hash: make([]byte, 32), CreatedAt: now, UpdatedAt: now}}, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Client(ctx, app.ClientID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
