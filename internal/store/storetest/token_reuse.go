package storetest

import (
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// testTokenReuse checks the opt-in token reuse of applications and APIs
// (Application.TokenReuse, API.TokenReuse; migration 0009): stored by
// every write, read by every read, the token endpoint's Client included,
// and removed by a patch to the zero TokenReuse without touching the
// other fields.
func testTokenReuse(t *testing.T, open func(t *testing.T) authz.Store) {
	reuse := func(sec int) authz.TokenReuse {
		return authz.TokenReuse{MinRemaining: time.Duration(sec) * time.Second}
	}

	t.Run("created with it, every read returns it", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api := newAPI(1)
		api.TokenReuse = reuse(300)
		noErr(t, s.CreateAPI(ctx, api))
		app := newApp(1)
		app.TokenReuse = reuse(120)
		noErr(t, s.CreateApplication(ctx, app, nil, []authz.Grant{newGrant(app.ClientID, api, 1, "read:things")}))

		gotAPI, err := s.GetAPI(ctx, api.ID)
		noErr(t, err)
		same(t, "GetAPI", gotAPI, api)
		gotAPI, err = s.GetAPIByIdentifier(ctx, api.Identifier)
		noErr(t, err)
		same(t, "GetAPIByIdentifier", gotAPI, api)
		apis, _, err := s.ListAPIs(ctx, authz.APIFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "ListAPIs", apis, []authz.API{api})

		gotApp, err := s.GetApplication(ctx, app.ClientID)
		noErr(t, err)
		same(t, "GetApplication", gotApp, app)
		apps, _, err := s.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "ListApplications", apps, []authz.Application{app})

		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		same(t, "Client application", c.Application, app)
		same(t, "Client grant API", *c.Grants[0].API, api)
	})

	t.Run("patched on, changed, and removed, the other fields kept", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api := newAPI(1)
		noErr(t, s.CreateAPI(ctx, api))
		app := newApp(1)
		noErr(t, s.CreateApplication(ctx, app, nil, []authz.Grant{newGrant(app.ClientID, api, 1, "read:things")}))
		for i, r := range []authz.TokenReuse{reuse(60), reuse(600), {}} {
			when := at(time.Duration(i+1) * time.Hour)
			gotAPI, err := s.UpdateAPI(ctx, api.ID, authz.APIPatch{TokenReuse: &r, UpdatedAt: when})
			noErr(t, err)
			api.TokenReuse, api.UpdatedAt = r, when
			same(t, "UpdateAPI", gotAPI, api)
			gotApp, err := s.UpdateApplication(ctx, app.ClientID, authz.ApplicationPatch{TokenReuse: &r, UpdatedAt: when})
			noErr(t, err)
			app.TokenReuse, app.UpdatedAt = r, when
			same(t, "UpdateApplication", gotApp, app)

			c, err := s.Client(ctx, app.ClientID)
			noErr(t, err)
			same(t, "Client application", c.Application, app)
			same(t, "Client grant API", *c.Grants[0].API, api)
		}
	})

	t.Run("a patch of another field leaves it", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api := newAPI(1)
		api.TokenReuse = reuse(30)
		noErr(t, s.CreateAPI(ctx, api))
		app := newApp(1)
		app.TokenReuse = reuse(45)
		noErr(t, s.CreateApplication(ctx, app, nil, nil))
		name, yes := "Renamed", true
		gotAPI, err := s.UpdateAPI(ctx, api.ID, authz.APIPatch{Name: &name, UpdatedAt: at(time.Hour)})
		noErr(t, err)
		if gotAPI.TokenReuse != api.TokenReuse {
			t.Errorf("UpdateAPI of the name: token reuse %v, want %v", gotAPI.TokenReuse, api.TokenReuse)
		}
		gotApp, err := s.UpdateApplication(ctx, app.ClientID, authz.ApplicationPatch{Disabled: &yes, UpdatedAt: at(time.Hour)})
		noErr(t, err)
		if gotApp.TokenReuse != app.TokenReuse {
			t.Errorf("UpdateApplication of disabled: token reuse %v, want %v", gotApp.TokenReuse, app.TokenReuse)
		}
	})
}
