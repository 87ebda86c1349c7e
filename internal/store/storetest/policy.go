package storetest

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// testPolicyColumns checks the policy of applications and the claims and
// token lifetime of grants through every read: Get, List, Client.
func testPolicyColumns(t *testing.T, open func(t *testing.T) authz.Store) {
	full := authz.Policy{
		Rate:       &authz.Rate{PerSecond: 2.5, Burst: 5},
		Quota:      &authz.Quota{PerHour: 100, PerDay: 2000},
		Mode:       authz.PolicyObserve,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	}

	t.Run("policy round-trips through get, list and client", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := newApp(1), newApp(2)
		a.Policy = full
		noErr(t, s.CreateApplication(ctx, a, nil, nil))
		noErr(t, s.CreateApplication(ctx, b, nil, nil))
		check := func(what string, want ...authz.Application) {
			t.Helper()
			list, _, err := s.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{})
			noErr(t, err)
			if len(list) != len(want) {
				t.Fatalf("%s: %d applications listed, want %d", what, len(list), len(want))
			}
			for i, w := range want {
				got, err := s.GetApplication(ctx, w.ClientID)
				noErr(t, err)
				samePolicy(t, what+": GetApplication", got, w)
				c, err := s.Client(ctx, w.ClientID)
				noErr(t, err)
				samePolicy(t, what+": Client", c.Application, w)
				samePolicy(t, what+": ListApplications", list[i], w)
			}
		}
		check("created", a, b)

		rateOnly := authz.Policy{Rate: &authz.Rate{PerSecond: 5, Burst: 5}, Mode: authz.PolicyEnforce}
		got, err := s.UpdateApplication(ctx, b.ClientID, authz.ApplicationPatch{Policy: &rateOnly, UpdatedAt: at(time.Hour)})
		noErr(t, err)
		b.Policy, b.UpdatedAt = rateOnly, at(time.Hour)
		samePolicy(t, "UpdateApplication", got, b)
		check("set", a, b)

		name := "renamed"
		_, err = s.UpdateApplication(ctx, b.ClientID, authz.ApplicationPatch{Name: &name, UpdatedAt: at(2 * time.Hour)})
		noErr(t, err)
		b.Name, b.UpdatedAt = name, at(2*time.Hour)
		check("kept by a patch that does not name it", a, b)

		_, err = s.UpdateApplication(ctx, a.ClientID, authz.ApplicationPatch{Policy: &authz.Policy{}, UpdatedAt: at(time.Hour)})
		noErr(t, err)
		a.Policy, a.UpdatedAt = authz.Policy{}, at(time.Hour)
		check("cleared", a, b)
	})

	t.Run("claims and token lifetime round-trip through get, list, client and update", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api := newAPI(1)
		noErr(t, s.CreateAPI(ctx, api))
		g := newGrant("app_01", api, 1, "read:things")
		g.Claims = json.RawMessage(`{"org":"acme","tenant_id":"t-42","tier":3}`)
		g.TokenLifetime = 600 * time.Second
		noErr(t, s.CreateApplication(ctx, newApp(1), nil, []authz.Grant{g}))
		plain := newGrant("app_01", newAPI(2), 2)
		noErr(t, s.CreateAPI(ctx, newAPI(2)))
		noErr(t, s.CreateGrant(ctx, plain))
		check := func(what string, want ...authz.Grant) {
			t.Helper()
			list, err := s.ListGrants(ctx, "app_01")
			noErr(t, err)
			same(t, what+": ListGrants", list, want)
			c, err := s.Client(ctx, "app_01")
			noErr(t, err)
			for i, w := range want {
				got, err := s.GetGrant(ctx, w.ClientID, w.ID)
				noErr(t, err)
				same(t, what+": GetGrant", got, w)
				same(t, what+": Client", c.Grants[i].Grant, w)
			}
		}
		check("created", g, plain)

		g.Claims, g.TokenLifetime, g.UpdatedAt = json.RawMessage(`{"env":"prod"}`), 0, at(time.Hour)
		plain.Claims, plain.TokenLifetime, plain.UpdatedAt = json.RawMessage(`{"a":[1,2]}`), 90*time.Second, at(time.Hour)
		noErr(t, s.UpdateGrant(ctx, g))
		noErr(t, s.UpdateGrant(ctx, plain))
		check("updated", g, plain)

		g.Claims, g.UpdatedAt = nil, at(2*time.Hour)
		noErr(t, s.UpdateGrant(ctx, g))
		check("claims removed", g, plain)
	})
}

// samePolicy compares two applications, their policies by their stored
// form (netip.Prefix has no exported fields for same to compare).
func samePolicy(t *testing.T, what string, got, want authz.Application) {
	t.Helper()
	gp, err := authz.EncodePolicy(got.Policy)
	noErr(t, err)
	wp, err := authz.EncodePolicy(want.Policy)
	noErr(t, err)
	if gp != wp {
		t.Errorf("%s: policy\n got %s\nwant %s", what, gp, wp)
	}
	got.Policy, want.Policy = authz.Policy{}, authz.Policy{}
	same(t, what, got, want)
}
