package storetest

import (
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func testApplications(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("policy, claims and token lifetime", func(t *testing.T) { testPolicyColumns(t, open) })
	t.Run("create and get round-trip every field", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		full := newApp(1)
		full.Disabled = true
		full.IntrospectAudiences = []string{"https://api02.example.com", "https://api01.example.com"}
		full.TokensNotBefore = at(30 * time.Second)
		full.UpdatedAt = at(time.Hour)
		bare := newApp(2)
		bare.Description = ""
		for _, a := range []authz.Application{full, bare} {
			noErr(t, s.CreateApplication(ctx, a, nil, nil))
			got, err := s.GetApplication(ctx, a.ClientID)
			noErr(t, err)
			same(t, "GetApplication", got, a)
		}
	})

	// authz.StoreTime names what every store keeps; a store keeps it
	// whatever zone and precision a time was written in.
	t.Run("times read back in UTC to the microsecond", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		zone := time.FixedZone("UTC+5", 5*3600)
		created := time.Date(2025, 1, 2, 8, 0, 0, 1234567, zone)
		app := authz.Application{ClientID: "app_1", Name: "A", CreatedAt: created, UpdatedAt: created}
		noErr(t, s.CreateApplication(ctx, app, nil, nil))
		got, err := s.GetApplication(ctx, app.ClientID)
		noErr(t, err)
		if want := authz.StoreTime(created); got.CreatedAt != want {
			t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want)
		}
		// time.Local is another *Location even when the process runs in UTC.
		if got.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
		}
		if !got.TokensNotBefore.IsZero() {
			t.Errorf("TokensNotBefore = %v, want zero", got.TokensNotBefore)
		}
	})

	t.Run("create with secrets and grants", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api1, api2 := newAPI(1), newAPI(2)
		noErr(t, s.CreateAPI(ctx, api1))
		noErr(t, s.CreateAPI(ctx, api2))
		app := newApp(1)
		sec1, sec2 := newSecret(app.ClientID, 1), newSecret(app.ClientID, 2)
		sec2.ExpiresAt = at(24 * time.Hour)
		g1 := newGrant(app.ClientID, api1, 1, "read:things", "write:things")
		g2 := newGrant(app.ClientID, api2, 2)
		noErr(t, s.CreateApplication(ctx, app, []authz.Secret{sec1, sec2}, []authz.Grant{g1, g2}))

		secrets, err := s.ListSecrets(ctx, app.ClientID)
		noErr(t, err)
		same(t, "secrets", secrets, []authz.Secret{sec1, sec2})
		grants, err := s.ListGrants(ctx, app.ClientID)
		noErr(t, err)
		same(t, "grants", grants, []authz.Grant{g1, g2})
	})

	t.Run("client_id taken", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newApp(1)
		noErr(t, s.CreateApplication(ctx, a, nil, nil))
		b := newApp(2)
		b.ClientID = a.ClientID
		wantErr(t, s.CreateApplication(ctx, b, []authz.Secret{newSecret(b.ClientID, 9)}, nil), authz.ErrConflict)
		got, err := s.GetApplication(ctx, a.ClientID)
		noErr(t, err)
		same(t, "application holding the client_id", got, a)
		secrets, err := s.ListSecrets(ctx, a.ClientID)
		noErr(t, err)
		same(t, "secrets", secrets, []authz.Secret(nil))
	})

	// Each failing creation must leave nothing behind.
	for _, tc := range []struct {
		name    string
		grants  func(app authz.Application, api authz.API) []authz.Grant
		secrets func(app authz.Application) []authz.Secret
		want    error
	}{
		{
			name: "two grants for one API create nothing",
			grants: func(app authz.Application, api authz.API) []authz.Grant {
				return []authz.Grant{newGrant(app.ClientID, api, 1), newGrant(app.ClientID, api, 2)}
			},
			want: authz.ErrConflict,
		},
		{
			name: "grant for a missing API creates nothing",
			grants: func(app authz.Application, api authz.API) []authz.Grant {
				return []authz.Grant{newGrant(app.ClientID, api, 1), newGrant(app.ClientID, newAPI(9), 2)}
			},
			want: authz.ErrNotFound,
		},
		{
			name: "secret id taken creates nothing",
			secrets: func(app authz.Application) []authz.Secret {
				taken := newSecret("app_99", 1)
				return []authz.Secret{newSecret(app.ClientID, 1), {ID: taken.ID, ClientID: app.ClientID, Hash: taken.Hash, CreatedAt: at(0)}}
			},
			want: authz.ErrConflict,
		},
		{
			name: "grant id taken creates nothing",
			grants: func(app authz.Application, api authz.API) []authz.Grant {
				g := newGrant(app.ClientID, api, 1)
				g.ID = newGrant("app_99", api, 1).ID
				return []authz.Grant{g}
			},
			want: authz.ErrConflict,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := open(t), t.Context()
			api := newAPI(1)
			noErr(t, s.CreateAPI(ctx, api))
			// The owner of the ids that are taken.
			owner := newApp(99)
			noErr(t, s.CreateApplication(ctx, owner,
				[]authz.Secret{newSecret(owner.ClientID, 1)}, []authz.Grant{newGrant(owner.ClientID, api, 1)}))

			app := newApp(1)
			secrets := []authz.Secret{newSecret(app.ClientID, 1)}
			if tc.secrets != nil {
				secrets = tc.secrets(app)
			}
			var grants []authz.Grant
			if tc.grants != nil {
				grants = tc.grants(app, api)
			}
			wantErr(t, s.CreateApplication(ctx, app, secrets, grants), tc.want)

			_, err := s.GetApplication(ctx, app.ClientID)
			wantErr(t, err, authz.ErrNotFound)
			gotSecrets, err := s.ListSecrets(ctx, app.ClientID)
			noErr(t, err)
			same(t, "secrets", gotSecrets, []authz.Secret(nil))
			gotGrants, err := s.ListGrants(ctx, app.ClientID)
			noErr(t, err)
			same(t, "grants", gotGrants, []authz.Grant(nil))
			ownerSecrets, err := s.ListSecrets(ctx, owner.ClientID)
			noErr(t, err)
			same(t, "secrets of the other application", ownerSecrets, []authz.Secret{newSecret(owner.ClientID, 1)})
		})
	}

	t.Run("get a missing application", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.CreateApplication(ctx, newApp(1), nil, nil))
		_, err := s.GetApplication(ctx, "app_missing")
		wantErr(t, err, authz.ErrNotFound)
	})

	t.Run("update changes only the fields the patch names", func(t *testing.T) {
		name, description, yes := "Renamed", "", true
		audiences := []string{"https://api01.example.com", "https://api02.example.com"}
		for _, tc := range []struct {
			name  string
			patch authz.ApplicationPatch
			want  func(a *authz.Application)
		}{
			{"nothing but the updated time", authz.ApplicationPatch{}, func(a *authz.Application) {}},
			{"name", authz.ApplicationPatch{Name: &name}, func(a *authz.Application) { a.Name = name }},
			{"description to empty", authz.ApplicationPatch{Description: &description}, func(a *authz.Application) { a.Description = "" }},
			{"disabled", authz.ApplicationPatch{Disabled: &yes}, func(a *authz.Application) { a.Disabled = true }},
			{"introspect audiences", authz.ApplicationPatch{IntrospectAudiences: &audiences}, func(a *authz.Application) {
				a.IntrospectAudiences = audiences
			}},
			{"tokens not before", authz.ApplicationPatch{TokensNotBefore: at(90 * time.Minute)}, func(a *authz.Application) {
				a.TokensNotBefore = at(90 * time.Minute)
			}},
			{"every field", authz.ApplicationPatch{Name: &name, Description: &description, Disabled: &yes,
				IntrospectAudiences: &audiences, TokensNotBefore: at(90 * time.Minute)}, func(a *authz.Application) {
				a.Name, a.Description, a.Disabled, a.IntrospectAudiences, a.TokensNotBefore =
					name, description, true, audiences, at(90*time.Minute)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, ctx := open(t), t.Context()
				a, other := newApp(1), newApp(2)
				a.UpdatedAt = at(30 * time.Minute)
				noErr(t, s.CreateApplication(ctx, a, nil, nil))
				noErr(t, s.CreateApplication(ctx, other, nil, nil))
				tc.patch.UpdatedAt = at(time.Hour)
				want := a
				tc.want(&want)
				want.UpdatedAt = at(time.Hour)

				got, err := s.UpdateApplication(ctx, a.ClientID, tc.patch)
				noErr(t, err)
				same(t, "UpdateApplication", got, want)
				got, err = s.GetApplication(ctx, a.ClientID)
				noErr(t, err)
				same(t, "GetApplication", got, want)
				got, err = s.GetApplication(ctx, other.ClientID)
				noErr(t, err)
				same(t, "the other application", got, other)
			})
		}
	})

	t.Run("two patches of different fields both survive", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newApp(1)
		noErr(t, s.CreateApplication(ctx, a, nil, nil))
		name, yes := "Renamed", true
		_, err := s.UpdateApplication(ctx, a.ClientID, authz.ApplicationPatch{Disabled: &yes, UpdatedAt: at(time.Hour)})
		noErr(t, err)
		got, err := s.UpdateApplication(ctx, a.ClientID, authz.ApplicationPatch{Name: &name, UpdatedAt: at(2 * time.Hour)})
		noErr(t, err)
		want := a
		want.Name, want.Disabled, want.UpdatedAt = name, true, at(2*time.Hour)
		same(t, "after a rename that followed a disable", got, want)

		no := false
		cutoff := at(3 * time.Hour)
		_, err = s.UpdateApplication(ctx, a.ClientID, authz.ApplicationPatch{TokensNotBefore: cutoff, UpdatedAt: at(3 * time.Hour)})
		noErr(t, err)
		got, err = s.UpdateApplication(ctx, a.ClientID, authz.ApplicationPatch{Disabled: &no, UpdatedAt: at(4 * time.Hour)})
		noErr(t, err)
		want.Disabled, want.TokensNotBefore, want.UpdatedAt = false, cutoff, at(4*time.Hour)
		same(t, "after re-enabling that followed a revoke-all", got, want)
	})

	t.Run("tokens_not_before never moves backward", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newApp(1)
		noErr(t, s.CreateApplication(ctx, a, nil, nil))
		for _, tc := range []struct {
			name      string
			notBefore time.Time
			want      time.Time
		}{
			{"first cutoff", at(2 * time.Hour), at(2 * time.Hour)},
			{"an earlier cutoff is ignored", at(time.Hour), at(2 * time.Hour)},
			{"the same cutoff", at(2 * time.Hour), at(2 * time.Hour)},
			{"zero leaves it", time.Time{}, at(2 * time.Hour)},
			{"a later cutoff raises it", at(3 * time.Hour), at(3 * time.Hour)},
		} {
			got, err := s.UpdateApplication(ctx, a.ClientID, authz.ApplicationPatch{TokensNotBefore: tc.notBefore, UpdatedAt: at(time.Hour)})
			noErr(t, err)
			if !got.TokensNotBefore.Equal(tc.want) {
				t.Errorf("%s: UpdateApplication returned TokensNotBefore %v, want %v", tc.name, got.TokensNotBefore, tc.want)
			}
			stored, err := s.GetApplication(ctx, a.ClientID)
			noErr(t, err)
			if !stored.TokensNotBefore.Equal(tc.want) {
				t.Errorf("%s: stored TokensNotBefore %v, want %v", tc.name, stored.TokensNotBefore, tc.want)
			}
		}
	})

	t.Run("introspect audiences round-trip through get, list and client", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := newApp(1), newApp(2)
		a.IntrospectAudiences = []string{"https://api01.example.com"}
		noErr(t, s.CreateApplication(ctx, a, nil, nil))
		noErr(t, s.CreateApplication(ctx, b, nil, nil))
		check := func(what string, want ...authz.Application) {
			t.Helper()
			for _, w := range want {
				got, err := s.GetApplication(ctx, w.ClientID)
				noErr(t, err)
				same(t, what+": GetApplication", got, w)
				c, err := s.Client(ctx, w.ClientID)
				noErr(t, err)
				same(t, what+": Client", c.Application, w)
			}
			list, _, err := s.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{})
			noErr(t, err)
			same(t, what+": ListApplications", list, want)
		}
		check("created", a, b)

		audiences := []string{"https://api03.example.com", "https://api01.example.com", "https://api02.example.com"}
		got, err := s.UpdateApplication(ctx, b.ClientID, authz.ApplicationPatch{IntrospectAudiences: &audiences, UpdatedAt: at(time.Hour)})
		noErr(t, err)
		b.IntrospectAudiences, b.UpdatedAt = audiences, at(time.Hour)
		same(t, "UpdateApplication", got, b)
		check("set, in the order given", a, b)

		none := []string{}
		_, err = s.UpdateApplication(ctx, a.ClientID, authz.ApplicationPatch{IntrospectAudiences: &none, UpdatedAt: at(time.Hour)})
		noErr(t, err)
		a.IntrospectAudiences, a.UpdatedAt = nil, at(time.Hour)
		check("cleared", a, b)
	})

	t.Run("update a missing application", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		name := "Renamed"
		_, err := s.UpdateApplication(ctx, newApp(1).ClientID, authz.ApplicationPatch{Name: &name, UpdatedAt: at(time.Hour)})
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.UpdateApplication(ctx, newApp(1).ClientID, authz.ApplicationPatch{TokensNotBefore: at(time.Hour), UpdatedAt: at(time.Hour)})
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.GetApplication(ctx, newApp(1).ClientID)
		wantErr(t, err, authz.ErrNotFound)
	})

	t.Run("delete application removes its secrets and grants", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api := newAPI(1)
		noErr(t, s.CreateAPI(ctx, api))
		gone, kept := newApp(1), newApp(2)
		goneSecret, goneGrant := newSecret(gone.ClientID, 1), newGrant(gone.ClientID, api, 1, "read:things")
		keptSecret, keptGrant := newSecret(kept.ClientID, 1), newGrant(kept.ClientID, api, 1, "read:things")
		noErr(t, s.CreateApplication(ctx, gone, []authz.Secret{goneSecret}, []authz.Grant{goneGrant}))
		noErr(t, s.CreateApplication(ctx, kept, []authz.Secret{keptSecret}, []authz.Grant{keptGrant}))

		noErr(t, s.DeleteApplication(ctx, gone.ClientID))
		_, err := s.GetApplication(ctx, gone.ClientID)
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.Client(ctx, gone.ClientID)
		wantErr(t, err, authz.ErrNotFound)
		_, err = s.GetGrant(ctx, gone.ClientID, goneGrant.ID)
		wantErr(t, err, authz.ErrNotFound)
		wantErr(t, s.DeleteSecret(ctx, gone.ClientID, goneSecret.ID), authz.ErrNotFound)

		// A new application with the old client_id inherits nothing.
		noErr(t, s.CreateApplication(ctx, gone, nil, nil))
		secrets, err := s.ListSecrets(ctx, gone.ClientID)
		noErr(t, err)
		same(t, "secrets of the re-created application", secrets, []authz.Secret(nil))
		grants, err := s.ListGrants(ctx, gone.ClientID)
		noErr(t, err)
		same(t, "grants of the re-created application", grants, []authz.Grant(nil))

		secrets, err = s.ListSecrets(ctx, kept.ClientID)
		noErr(t, err)
		same(t, "secrets of the other application", secrets, []authz.Secret{keptSecret})
		grants, err = s.ListGrants(ctx, kept.ClientID)
		noErr(t, err)
		same(t, "grants of the other application", grants, []authz.Grant{keptGrant})
		_, err = s.GetAPI(ctx, api.ID)
		noErr(t, err)
	})

	t.Run("delete a missing application", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		wantErr(t, s.DeleteApplication(ctx, "app_missing"), authz.ErrNotFound)
		a := newApp(1)
		noErr(t, s.CreateApplication(ctx, a, nil, nil))
		noErr(t, s.DeleteApplication(ctx, a.ClientID))
		wantErr(t, s.DeleteApplication(ctx, a.ClientID), authz.ErrNotFound)
	})

	t.Run("list pages in creation order", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		want := sevenApps()
		for _, i := range []int{6, 3, 0, 5, 1, 4, 2} {
			noErr(t, s.CreateApplication(ctx, want[i], nil, nil))
		}
		got := pages(t, 3, func(p authz.Page) ([]authz.Application, string, error) {
			return s.ListApplications(ctx, authz.ApplicationFilter{}, p)
		})
		same(t, "applications over all pages", got, want)
	})

	t.Run("list without a limit uses the default", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		want := sevenApps()
		for _, a := range want {
			noErr(t, s.CreateApplication(ctx, a, nil, nil))
		}
		got, next, err := s.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "applications", got, want)
		if next != "" {
			t.Errorf("next cursor = %q, want none", next)
		}
	})

	t.Run("list an empty store", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		got, next, err := s.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{Limit: 3})
		noErr(t, err)
		if len(got) != 0 || next != "" {
			t.Errorf("ListApplications = %+v, %q; want nothing", got, next)
		}
	})

	t.Run("list filters", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		names := []string{"Billing worker", "billing cron", "Billing%", "Bill_x", "Billyx", "Reports", "Billing export"}
		disabled := []bool{false, false, true, false, true, true, true}
		var apps []authz.Application
		for i, name := range names {
			a := newApp(i + 1)
			a.Name = name
			a.Disabled = disabled[i]
			apps = append(apps, a)
			noErr(t, s.CreateApplication(ctx, a, nil, nil))
		}
		yes, no := true, false
		for _, tc := range []struct {
			name string
			f    authz.ApplicationFilter
			want []int // indexes into apps
		}{
			{"no filter", authz.ApplicationFilter{}, []int{0, 1, 2, 3, 4, 5, 6}},
			{"name prefix is case-sensitive", authz.ApplicationFilter{NamePrefix: "Billing"}, []int{0, 2, 6}},
			{"percent sign in a prefix is literal", authz.ApplicationFilter{NamePrefix: "Billing%"}, []int{2}},
			{"underscore in a prefix is literal", authz.ApplicationFilter{NamePrefix: "Bill_"}, []int{3}},
			{"whole name as prefix", authz.ApplicationFilter{NamePrefix: "Reports"}, []int{5}},
			{"no name has the prefix", authz.ApplicationFilter{NamePrefix: "Zeta"}, nil},
			{"disabled", authz.ApplicationFilter{Disabled: &yes}, []int{2, 4, 5, 6}},
			{"enabled", authz.ApplicationFilter{Disabled: &no}, []int{0, 1, 3}},
			{"prefix and disabled", authz.ApplicationFilter{NamePrefix: "Bill", Disabled: &yes}, []int{2, 4, 6}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var want []authz.Application
				for _, i := range tc.want {
					want = append(want, apps[i])
				}
				for _, limit := range []int{1, 2, 50} {
					got := pages(t, limit, func(p authz.Page) ([]authz.Application, string, error) {
						return s.ListApplications(ctx, tc.f, p)
					})
					same(t, "matching applications", got, want)
				}
			})
		}
	})

	t.Run("list with a malformed cursor", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.CreateApplication(ctx, newApp(1), nil, nil))
		_, _, err := s.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{Cursor: "!not a cursor!"})
		wantErr(t, err, authz.ErrInvalid)
	})
}

// sevenApps returns seven applications in list order. Two share a creation
// time, so their client_ids order them.
func sevenApps() []authz.Application {
	var list []authz.Application
	for i := range 7 {
		list = append(list, newApp(i+1))
	}
	list[5].CreatedAt = list[4].CreatedAt
	return list
}

func testClient(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("returns the application, its secrets and its grants with their APIs", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api1, api2 := newAPI(1), newAPI(2)
		api2.Scopes = nil
		noErr(t, s.CreateAPI(ctx, api1))
		noErr(t, s.CreateAPI(ctx, api2))
		app := newApp(1)
		app.IntrospectAudiences = []string{api2.Identifier}
		app.TokensNotBefore = at(time.Minute)
		secrets := []authz.Secret{newSecret(app.ClientID, 1), newSecret(app.ClientID, 2), newSecret(app.ClientID, 3)}
		secrets[1].ExpiresAt = at(time.Hour)
		secrets[1].UpdatedAt = at(30 * time.Minute)
		secrets[2].LastUsedAt = at(2 * time.Minute)
		grants := []authz.Grant{newGrant(app.ClientID, api1, 1, "read:things"), newGrant(app.ClientID, api2, 2)}
		noErr(t, s.CreateApplication(ctx, app, secrets, grants))
		other := newApp(2)
		noErr(t, s.CreateApplication(ctx, other, []authz.Secret{newSecret(other.ClientID, 1)},
			[]authz.Grant{newGrant(other.ClientID, api1, 1, "write:things")}))

		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		same(t, "application", c.Application, app)
		// The contract does not order a Client's secrets and grants.
		same(t, "secrets", sortedBy(c.Secrets, func(s authz.Secret) string { return s.ID }), secrets)
		same(t, "grants", sortedBy(c.Grants, func(g authz.ClientGrant) string { return g.Grant.ID }), []authz.ClientGrant{
			{Grant: grants[0], API: &api1},
			{Grant: grants[1], API: &api2},
		})
		if c.Secret(secrets[1].ID) == nil {
			t.Errorf("Client.Secret(%q) = nil", secrets[1].ID)
		}
	})

	t.Run("application without secrets or grants", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := newApp(1)
		app.Disabled = true
		noErr(t, s.CreateApplication(ctx, app, nil, nil))
		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		same(t, "client", *c, authz.Client{Application: app})
	})

	t.Run("missing application", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		noErr(t, s.CreateApplication(ctx, newApp(1), nil, nil))
		_, err := s.Client(ctx, "app_missing")
		wantErr(t, err, authz.ErrNotFound)
	})

	t.Run("sees every later write", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api := newAPI(1)
		noErr(t, s.CreateAPI(ctx, api))
		app := newApp(1)
		noErr(t, s.CreateApplication(ctx, app, nil, nil))
		_, err := s.Client(ctx, app.ClientID)
		noErr(t, err)

		sec := newSecret(app.ClientID, 1)
		noErr(t, s.CreateSecret(ctx, sec))
		g := newGrant(app.ClientID, api, 1, "read:things")
		noErr(t, s.CreateGrant(ctx, g))
		yes, name := true, "Renamed"
		app.Disabled = true
		app.UpdatedAt = at(time.Hour)
		_, err = s.UpdateApplication(ctx, app.ClientID, authz.ApplicationPatch{Disabled: &yes, UpdatedAt: app.UpdatedAt})
		noErr(t, err)
		api.Name = name
		api.UpdatedAt = at(2 * time.Hour)
		_, err = s.UpdateAPI(ctx, api.ID, authz.APIPatch{Name: &name, UpdatedAt: api.UpdatedAt})
		noErr(t, err)

		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		same(t, "client", *c, authz.Client{
			Application: app,
			Secrets:     []authz.Secret{sec},
			Grants:      []authz.ClientGrant{{Grant: g, API: &api}},
		})
	})

	// Stores may decode scope lists through a cache; what Client returns
	// must still be the caller's to change.
	t.Run("returns scope lists the caller may change", func(t *testing.T) {
		s, ctx, now := open(t), t.Context(), at(0)
		api := authz.API{ID: "api_1", Identifier: "https://api.example.com", Scopes: []authz.Scope{{Value: "read"}},
			TokenLifetime: time.Hour, SigningAlg: authz.ES256, CreatedAt: now, UpdatedAt: now}
		noErr(t, s.CreateAPI(ctx, api))
		app := authz.Application{ClientID: "app_1", CreatedAt: now, UpdatedAt: now}
		grant := authz.Grant{ID: "grant_1", APIID: api.ID, Scopes: []string{"read"}, CreatedAt: now, UpdatedAt: now}
		noErr(t, s.CreateApplication(ctx, app, nil, []authz.Grant{grant}))
		for range 2 {
			c, err := s.Client(ctx, app.ClientID)
			noErr(t, err)
			g := c.Grants[0]
			if g.API.Scopes[0].Value != "read" || g.Grant.Scopes[0] != "read" {
				t.Fatalf("scopes = %v, %v; want read", g.API.Scopes, g.Grant.Scopes)
			}
			g.API.Scopes[0].Value = "changed by the caller"
			g.Grant.Scopes[0] = "changed by the caller"
		}
	})
}
