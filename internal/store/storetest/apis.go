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

	t.Run("update changes only the fields the patch names", func(t *testing.T) {
		name, alg, lifetime := "Renamed", authz.PS256, 60*time.Second
		required, yes, fapi2 := authz.PolicyRequired, true, authz.ProfileFAPI2
		scopes := []authz.Scope{{Value: "admin", Description: "Everything"}}
		for _, tc := range []struct {
			name  string
			patch authz.APIPatch
			want  func(a *authz.API)
		}{
			{"nothing but the updated time", authz.APIPatch{}, func(a *authz.API) {}},
			{"name", authz.APIPatch{Name: &name}, func(a *authz.API) { a.Name = name }},
			{"scopes", authz.APIPatch{Scopes: &scopes}, func(a *authz.API) { a.Scopes = scopes }},
			{"token lifetime", authz.APIPatch{TokenLifetime: &lifetime}, func(a *authz.API) { a.TokenLifetime = lifetime }},
			{"signing algorithm", authz.APIPatch{SigningAlg: &alg}, func(a *authz.API) { a.SigningAlg = alg }},
			{"dpop", authz.APIPatch{DPoP: &required}, func(a *authz.API) { a.DPoP = required }},
			{"dpop nonce", authz.APIPatch{DPoPNonce: &yes}, func(a *authz.API) { a.DPoPNonce = yes }},
			{"mtls bound", authz.APIPatch{MTLSBound: &required}, func(a *authz.API) { a.MTLSBound = required }},
			{"profile", authz.APIPatch{Profile: &fapi2}, func(a *authz.API) { a.Profile = fapi2 }},
			{"every field", authz.APIPatch{Name: &name, Scopes: &scopes, TokenLifetime: &lifetime, SigningAlg: &alg,
				DPoP: &required, DPoPNonce: &yes, MTLSBound: &required, Profile: &fapi2}, func(a *authz.API) {
				a.Name, a.Scopes, a.TokenLifetime, a.SigningAlg = name, scopes, lifetime, alg
				a.DPoP, a.DPoPNonce, a.MTLSBound, a.Profile = required, yes, required, fapi2
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, ctx := open(t), t.Context()
				a, other := newAPI(1), newAPI(2)
				a.System = true
				a.UpdatedAt = at(30 * time.Minute)
				noErr(t, s.CreateAPI(ctx, a))
				noErr(t, s.CreateAPI(ctx, other))
				tc.patch.UpdatedAt = at(time.Hour)
				want := a
				tc.want(&want)
				want.UpdatedAt = at(time.Hour)

				got, err := s.UpdateAPI(ctx, a.ID, tc.patch)
				noErr(t, err)
				same(t, "UpdateAPI", got, want)
				got, err = s.GetAPI(ctx, a.ID)
				noErr(t, err)
				same(t, "GetAPI", got, want)
				got, err = s.GetAPI(ctx, other.ID)
				noErr(t, err)
				same(t, "the other API", got, other)
			})
		}
	})

	t.Run("two patches of different fields both survive", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newAPI(1)
		noErr(t, s.CreateAPI(ctx, a))
		name, lifetime := "Renamed", time.Minute
		_, err := s.UpdateAPI(ctx, a.ID, authz.APIPatch{TokenLifetime: &lifetime, UpdatedAt: at(time.Hour)})
		noErr(t, err)
		got, err := s.UpdateAPI(ctx, a.ID, authz.APIPatch{Name: &name, UpdatedAt: at(2 * time.Hour)})
		noErr(t, err)
		want := a
		want.Name, want.TokenLifetime, want.UpdatedAt = name, lifetime, at(2*time.Hour)
		same(t, "API", got, want)
	})

	t.Run("update to no scopes", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newAPI(1)
		noErr(t, s.CreateAPI(ctx, a))
		none := []authz.Scope{}
		got, err := s.UpdateAPI(ctx, a.ID, authz.APIPatch{Scopes: &none, UpdatedAt: a.UpdatedAt})
		noErr(t, err)
		a.Scopes = nil
		same(t, "UpdateAPI", got, a)
		got, err = s.GetAPI(ctx, a.ID)
		noErr(t, err)
		same(t, "updated API", got, a)
	})

	t.Run("update a missing API", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		name := "Renamed"
		_, err := s.UpdateAPI(ctx, newAPI(1).ID, authz.APIPatch{Name: &name, UpdatedAt: at(time.Hour)})
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.GetAPI(ctx, newAPI(1).ID)
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
		g4 := newGrant(newApp(4).ClientID, api, 5, "c")
		noErr(t, s.CreateApplication(ctx, app1, nil, []authz.Grant{g1, g1other}))
		noErr(t, s.CreateApplication(ctx, app2, nil, []authz.Grant{g2}))
		noErr(t, s.CreateApplication(ctx, app3, nil, []authz.Grant{g3}))
		noErr(t, s.CreateApplication(ctx, newApp(4), nil, []authz.Grant{g4}))

		scopes := []authz.Scope{{Value: "d"}, {Value: "c"}}
		got, err := s.UpdateAPI(ctx, api.ID, authz.APIPatch{Scopes: &scopes, UpdatedAt: at(time.Hour)})
		noErr(t, err)
		api.Scopes, api.UpdatedAt = scopes, at(time.Hour)
		same(t, "UpdateAPI", got, api)

		// A grant whose scopes change counts as updated; one that keeps
		// them does not.
		g1.Scopes, g1.UpdatedAt = []string{"c"}, at(time.Hour) // order kept
		g2.Scopes, g2.UpdatedAt = nil, at(time.Hour)
		for _, want := range []authz.Grant{g1, g1other, g2, g3, g4} {
			got, err := s.GetGrant(ctx, want.ClientID, want.ID)
			noErr(t, err)
			same(t, "grant "+want.ID, got, want)
		}
		c, err := s.Client(ctx, app1.ClientID)
		noErr(t, err)
		for _, cg := range c.Grants {
			if cg.Grant.ID == g1.ID {
				same(t, "Client grant", cg.Grant, g1)
				same(t, "Client grant API", *cg.API, api)
			}
		}
	})

	t.Run("update without scopes leaves the grants alone", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api := newAPI(1)
		noErr(t, s.CreateAPI(ctx, api))
		app := newApp(1)
		g := newGrant(app.ClientID, api, 1, "read:things", "write:things")
		noErr(t, s.CreateApplication(ctx, app, nil, []authz.Grant{g}))
		name := "Renamed"
		_, err := s.UpdateAPI(ctx, api.ID, authz.APIPatch{Name: &name, UpdatedAt: at(time.Hour)})
		noErr(t, err)
		got, err := s.GetGrant(ctx, g.ClientID, g.ID)
		noErr(t, err)
		same(t, "grant", got, g)
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
