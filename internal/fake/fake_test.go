package fake_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/manage"
	"github.com/m2mauth/m2mauth/internal/oauth"
	"github.com/m2mauth/m2mauth/internal/token"
)

// The fakes stand in for these interfaces.
var (
	_ oauth.Events       = (*fake.Events)(nil)
	_ oauth.ClientSource = (*fake.Clients)(nil)
	_ token.ClientSource = (*fake.Clients)(nil)
	_ oauth.DenyList     = (*fake.DenyList)(nil)
	_ token.DenyList     = (*fake.DenyList)(nil)
	_ manage.DenyList    = (*fake.DenyList)(nil)
	_ authz.Keys         = (*fake.Keys)(nil)
)

func TestClock(t *testing.T) {
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	c := fake.NewClock(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now = %v, want %v", c.Now(), t0)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { c.Add(time.Second); _ = c.Now() })
	}
	wg.Wait()
	if want := t0.Add(8 * time.Second); !c.Now().Equal(want) {
		t.Fatalf("Now = %v after 8 s, want %v", c.Now(), want)
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now = %v after Set, want %v", c.Now(), t0)
	}
}

func TestEvents(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var e fake.Events
	e.ClientAuthFailed(ctx, "c1", "127.0.0.1:1", "wrong client secret")
	e.SecretUsed("c1", "s1", at)
	e.TokenIssued("c1", "https://api/", "j1", at, false)
	e.TokenRevoked(ctx, "c1", "j1", "https://api/", "127.0.0.1:1")
	if got := e.AuthFailures(); len(got) != 1 || got[0] != (fake.AuthFailure{ClientID: "c1", RemoteAddr: "127.0.0.1:1", Reason: "wrong client secret"}) {
		t.Errorf("AuthFailures = %+v", got)
	}
	if got := e.SecretUses(); len(got) != 1 || got[0] != (fake.SecretUse{ClientID: "c1", SecretID: "s1", At: at}) {
		t.Errorf("SecretUses = %+v", got)
	}
	if got := e.TokensIssued(); len(got) != 1 || got[0] != (fake.Issued{ClientID: "c1", Audience: "https://api/", JTI: "j1", At: at}) {
		t.Errorf("TokensIssued = %+v", got)
	}
	if got := e.TokensRevoked(); len(got) != 1 || got[0] != (fake.Revoked{ClientID: "c1", JTI: "j1", Audience: "https://api/", RemoteAddr: "127.0.0.1:1"}) {
		t.Errorf("TokensRevoked = %+v", got)
	}
}

func TestClients(t *testing.T) {
	c := &fake.Clients{ByID: map[string]*authz.Client{"c1": {Application: authz.Application{ClientID: "c1"}}}}
	if got, err := c.Client(t.Context(), "c1"); err != nil || got != c.ByID["c1"] {
		t.Fatalf("Client(c1) = %v, %v", got, err)
	}
	if _, err := c.Client(t.Context(), "c2"); !errors.Is(err, authz.ErrNotFound) {
		t.Fatalf("Client(c2) error %v, want ErrNotFound", err)
	}
	c.Err = authz.ErrUnavailable
	if _, err := c.Client(t.Context(), "c1"); !errors.Is(err, authz.ErrUnavailable) {
		t.Fatalf("Client with Err set: %v", err)
	}
	if c.Calls() != 3 {
		t.Fatalf("Calls = %d, want 3", c.Calls())
	}
}

func TestDenyList(t *testing.T) {
	exp := time.Date(2025, 6, 1, 13, 0, 0, 0, time.UTC)
	d := fake.NewDenyList()
	if err := d.Revoke(t.Context(), "a", exp); err != nil || !d.Revoked("a") || d.Revoked("b") {
		t.Fatalf("Revoke: %v; Revoked(a) = %v, Revoked(b) = %v", err, d.Revoked("a"), d.Revoked("b"))
	}
	d.Add("b", exp)
	d.Err = errors.New("database is down")
	if err := d.Revoke(t.Context(), "c", exp); err == nil || d.Revoked("c") {
		t.Fatalf("Revoke with Err set: %v; Revoked(c) = %v", err, d.Revoked("c"))
	}
	if len(d.JTI) != 2 || !d.JTI["b"].Equal(exp) {
		t.Fatalf("JTI = %v", d.JTI)
	}
}

func TestKeys(t *testing.T) {
	ctx := t.Context()
	k := fake.NewKeys()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, key := range []authz.SigningKey{
		{KID: "b", Alg: authz.ES256, State: authz.KeyActive, CreatedAt: t0},
		{KID: "a", Alg: authz.ES256, State: authz.KeyNext, CreatedAt: t0},
		{KID: "c", Alg: authz.ES256, State: authz.KeyNext, CreatedAt: t0.Add(-time.Second)},
	} {
		if err := k.CreateKey(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.CreateKey(ctx, authz.SigningKey{KID: "a"}); !errors.Is(err, authz.ErrConflict) {
		t.Fatalf("a taken kid: %v, want ErrConflict", err)
	}
	list, _ := k.ListKeys(ctx)
	if len(list) != 3 || list[0].KID != "c" || list[1].KID != "a" || list[2].KID != "b" {
		t.Fatalf("ListKeys order %v", list)
	}
	err := k.UpdateKeys(ctx, map[string]authz.KeyState{"a": authz.KeyActive}, []authz.SigningKey{{KID: "a", State: authz.KeyRetired}})
	if !errors.Is(err, authz.ErrConflict) {
		t.Fatalf("UpdateKeys from the wrong state: %v, want ErrConflict", err)
	}
	if err := k.DeleteKey(ctx, "x"); !errors.Is(err, authz.ErrNotFound) {
		t.Fatalf("DeleteKey(x): %v, want ErrNotFound", err)
	}
}
