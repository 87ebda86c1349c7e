package storetest

import (
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func testAPIs(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("create and get round-trip every field", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		full := newAPI(1)
		full.System = true
		full.TokenLifetime = authz.MaxTokenLifetime
		full.SigningAlg = authz.EdDSA
		full.UpdatedAt = at(time.Hour)
		bare := newAPI(2)
		bare.Scopes = nil
		for _, a := range []authz.API{full, bare} {
			noErr(t, s.CreateAPI(ctx, a))
			got, err := s.GetAPI(ctx, a.ID)
			noErr(t, err)
			same(t, "GetAPI", got, a)
			got, err = s.GetAPIByIdentifier(ctx, a.Identifier)
			noErr(t, err)
			same(t, "GetAPIByIdentifier", got, a)
		}
	})

	t.Run("get a missing API", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.CreateAPI(ctx, newAPI(1)))
		_, err := s.GetAPI(ctx, "api_missing")
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.GetAPIByIdentifier(ctx, "https://missing.example.com")
		wantErr(t, err, authz.ErrNotFound)
	})

	t.Run("identifier taken", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newAPI(1)
		noErr(t, s.CreateAPI(ctx, a))
		b := newAPI(2)
		b.Identifier = a.Identifier
		wantErr(t, s.CreateAPI(ctx, b), authz.ErrConflict)
		_, err := s.GetAPI(ctx, b.ID)
		wantErr(t, err, authz.ErrNotFound)
		got, err := s.GetAPIByIdentifier(ctx, a.Identifier)
		noErr(t, err)
		same(t, "API holding the identifier", got, a)
	})

	t.Run("id taken", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newAPI(1)
		noErr(t, s.CreateAPI(ctx, a))
		b := newAPI(2)
		b.ID = a.ID
		wantErr(t, s.CreateAPI(ctx, b), authz.ErrConflict)
		got, err := s.GetAPI(ctx, a.ID)
		noErr(t, err)
		same(t, "API holding the id", got, a)
	})

	t.Run("update replaces the mutable fields only", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newAPI(1)
		a.UpdatedAt = at(30 * time.Minute)
		noErr(t, s.CreateAPI(ctx, a))
		u := a
		u.Name = "Renamed"
		u.Scopes = []authz.Scope{{Value: "admin", Description: "Everything"}}
		u.TokenLifetime = 60 * time.Second
		u.SigningAlg = authz.PS256
		u.UpdatedAt = at(time.Hour)
		u.Identifier = "https://changed.example.com"
		u.System = true
		u.CreatedAt = at(2 * time.Hour)
		noErr(t, s.UpdateAPI(ctx, u))

		want := a
		want.Name, want.Scopes, want.TokenLifetime, want.SigningAlg, want.UpdatedAt =
			u.Name, u.Scopes, u.TokenLifetime, u.SigningAlg, u.UpdatedAt
		got, err := s.GetAPI(ctx, a.ID)
		noErr(t, err)
		same(t, "updated API", got, want)
		_, err = s.GetAPIByIdentifier(ctx, u.Identifier)
		wantErr(t, err, authz.ErrNotFound)
	})

	t.Run("update to no scopes", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newAPI(1)
		noErr(t, s.CreateAPI(ctx, a))
		a.Scopes = nil
		noErr(t, s.UpdateAPI(ctx, a))
		got, err := s.GetAPI(ctx, a.ID)
		noErr(t, err)
		same(t, "updated API", got, a)
	})

	t.Run("update a missing API", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		wantErr(t, s.UpdateAPI(ctx, newAPI(1)), authz.ErrNotFound)
		_, err := s.GetAPI(ctx, newAPI(1).ID)
		wantErr(t, err, authz.ErrNotFound)
	})

	t.Run("update removes dropped scopes from grants", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		abc := []authz.Scope{{Value: "a"}, {Value: "b"}, {Value: "c"}}
		api, other := newAPI(1), newAPI(2)
		api.Scopes, other.Scopes = abc, abc
		noErr(t, s.CreateAPI(ctx, api))
		noErr(t, s.CreateAPI(ctx, other))
		app1, app2, app3 := newApp(1), newApp(2), newApp(3)
		g1 := newGrant(app1.ClientID, api, 1, "c", "a", "b")
		g1other := newGrant(app1.ClientID, other, 2, "a", "b", "c")
		g2 := newGrant(app2.ClientID, api, 3, "b")
		g3 := newGrant(app3.ClientID, api, 4)
		noErr(t, s.CreateApplication(ctx, app1, nil, []authz.Grant{g1, g1other}))
		noErr(t, s.CreateApplication(ctx, app2, nil, []authz.Grant{g2}))
		noErr(t, s.CreateApplication(ctx, app3, nil, []authz.Grant{g3}))

		api.Scopes = []authz.Scope{{Value: "d"}, {Value: "c"}}
		api.UpdatedAt = at(time.Hour)
		noErr(t, s.UpdateAPI(ctx, api))

		for _, tc := range []struct {
			g    authz.Grant
			want []string
		}{
			{g1, []string{"c"}}, // order kept
			{g1other, []string{"a", "b", "c"}},
			{g2, nil},
			{g3, nil},
		} {
			got, err := s.GetGrant(ctx, tc.g.ClientID, tc.g.ID)
			noErr(t, err)
			same(t, "scopes of "+tc.g.ID, got.Scopes, tc.want)
		}
		c, err := s.Client(ctx, app1.ClientID)
		noErr(t, err)
		for _, cg := range c.Grants {
			if cg.Grant.ID == g1.ID {
				same(t, "Client grant scopes", cg.Grant.Scopes, []string{"c"})
				same(t, "Client grant API", cg.API, api)
			}
		}
	})

	t.Run("delete API removes its grants", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		gone, kept := newAPI(1), newAPI(2)
		noErr(t, s.CreateAPI(ctx, gone))
		noErr(t, s.CreateAPI(ctx, kept))
		app := newApp(1)
		gGone := newGrant(app.ClientID, gone, 1, "read:things")
		gKept := newGrant(app.ClientID, kept, 2, "write:things")
		noErr(t, s.CreateApplication(ctx, app, nil, []authz.Grant{gGone, gKept}))

		noErr(t, s.DeleteAPI(ctx, gone.ID))
		_, err := s.GetAPI(ctx, gone.ID)
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.GetGrant(ctx, app.ClientID, gGone.ID)
		wantErr(t, err, authz.ErrNotFound)
		grants, err := s.ListGrants(ctx, app.ClientID)
		noErr(t, err)
		same(t, "grants left", grants, []authz.Grant{gKept})
		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		if len(c.Grants) != 1 || c.Grants[0].Grant.ID != gKept.ID {
			t.Errorf("Client grants = %+v, want only %s", c.Grants, gKept.ID)
		}
		got, err := s.GetApplication(ctx, app.ClientID)
		noErr(t, err)
		same(t, "application", got, app)
	})

	t.Run("delete a missing API", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		wantErr(t, s.DeleteAPI(ctx, "api_missing"), authz.ErrNotFound)
		a := newAPI(1)
		noErr(t, s.CreateAPI(ctx, a))
		noErr(t, s.DeleteAPI(ctx, a.ID))
		wantErr(t, s.DeleteAPI(ctx, a.ID), authz.ErrNotFound)
	})

	t.Run("identifier is free again after delete", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newAPI(1)
		noErr(t, s.CreateAPI(ctx, a))
		noErr(t, s.DeleteAPI(ctx, a.ID))
		b := newAPI(2)
		b.Identifier = a.Identifier
		noErr(t, s.CreateAPI(ctx, b))
	})

	t.Run("list pages in creation order", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		want := sevenAPIs()
		for _, i := range []int{4, 0, 6, 2, 5, 1, 3} { // not in order
			noErr(t, s.CreateAPI(ctx, want[i]))
		}
		got := pages(t, 3, func(p authz.Page) ([]authz.API, string, error) {
			return s.ListAPIs(ctx, authz.APIFilter{}, p)
		})
		same(t, "APIs over all pages", got, want)
	})

	t.Run("list ends with an empty cursor when the limit divides the count", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		want := sevenAPIs()[:6]
		for _, a := range want {
			noErr(t, s.CreateAPI(ctx, a))
		}
		first, next, err := s.ListAPIs(ctx, authz.APIFilter{}, authz.Page{Limit: 3})
		noErr(t, err)
		second, last, err := s.ListAPIs(ctx, authz.APIFilter{}, authz.Page{Limit: 3, Cursor: next})
		noErr(t, err)
		if next == "" || last != "" {
			t.Errorf("cursors = %q, %q; want non-empty, empty", next, last)
		}
		same(t, "two pages", append(first, second...), want)
	})

	t.Run("list without a limit uses the default", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		want := sevenAPIs()
		for _, a := range want {
			noErr(t, s.CreateAPI(ctx, a))
		}
		got, next, err := s.ListAPIs(ctx, authz.APIFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "APIs", got, want)
		if next != "" {
			t.Errorf("next cursor = %q, want none", next)
		}
	})

	t.Run("list an empty store", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		got, next, err := s.ListAPIs(ctx, authz.APIFilter{}, authz.Page{Limit: 3})
		noErr(t, err)
		if len(got) != 0 || next != "" {
			t.Errorf("ListAPIs = %+v, %q; want nothing", got, next)
		}
	})

	t.Run("list filtered by identifier", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		all := sevenAPIs()
		for _, a := range all {
			noErr(t, s.CreateAPI(ctx, a))
		}
		got, next, err := s.ListAPIs(ctx, authz.APIFilter{Identifier: all[3].Identifier}, authz.Page{Limit: 3})
		noErr(t, err)
		same(t, "matching APIs", got, []authz.API{all[3]})
		if next != "" {
			t.Errorf("next cursor = %q, want none", next)
		}
		got, _, err = s.ListAPIs(ctx, authz.APIFilter{Identifier: "https://missing.example.com"}, authz.Page{})
		noErr(t, err)
		same(t, "no match", got, []authz.API(nil))
	})

	t.Run("list with a malformed cursor", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.CreateAPI(ctx, newAPI(1)))
		_, _, err := s.ListAPIs(ctx, authz.APIFilter{}, authz.Page{Cursor: "!not a cursor!"})
		wantErr(t, err, authz.ErrInvalid)
	})
}

// sevenAPIs returns seven APIs in list order. Two share a creation time, so
// their IDs order them.
func sevenAPIs() []authz.API {
	var list []authz.API
	for i := range 7 {
		list = append(list, newAPI(i+1))
	}
	list[3].CreatedAt = list[2].CreatedAt
	return list
}
