package cache_test

import (
	"context"
	"testing"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// TestGrantsShareTheirAPI: the applications granted one API hold one copy
// of it (the memory of a million applications), equal to what the store
// reads, and an API change gives every one of them the new copy.
func TestGrantsShareTheirAPI(t *testing.T) {
	db, c, clk := setup(t)
	ctx := context.Background()
	now := authz.StoreTime(clk.Now())
	app := authz.Application{ClientID: "c2", Name: "two", CreatedAt: now, UpdatedAt: now}
	g := authz.Grant{ID: "g2", ClientID: "c2", APIID: "api_1", Scopes: []string{"b"}, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateApplication(ctx, app, nil, []authz.Grant{g}); err != nil {
		t.Fatal(err)
	}
	read := func() (*authz.API, *authz.API) {
		t.Helper()
		c1, err := c.Client(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		c2, err := c.Client(ctx, "c2")
		if err != nil {
			t.Fatal(err)
		}
		return c1.Grants[0].API, c2.Grants[0].API
	}
	a1, a2 := read()
	if a1 != a2 {
		t.Fatal("two applications granted one API hold two copies of it")
	}
	stored, err := db.GetAPI(ctx, "api_1")
	if err != nil {
		t.Fatal(err)
	}
	if a1.Identifier != stored.Identifier || a1.Name != stored.Name {
		t.Errorf("the shared API is %+v, the store's %+v", a1, stored)
	}
	name := "renamed"
	if _, err := c.UpdateAPI(ctx, "api_1", authz.APIPatch{Name: &name, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	b1, b2 := read()
	if b1 != b2 || b1 == a1 || b1.Name != name || a1.Name != "api" {
		t.Errorf("after the API changed: %p %q and %p %q (before %p %q)", b1, b1.Name, b2, b2.Name, a1, a1.Name)
	}
}
