package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// strictAPI returns newAPI(n) with every sender-constraint policy and the
// profile set away from its default.
func strictAPI(n int) authz.API {
	a := newAPI(n)
	a.SigningAlg = authz.PS256
	a.DPoP = authz.PolicyRequired
	a.DPoPNonce = true
	a.MTLSBound = authz.PolicyRequired
	a.Profile = authz.ProfileFAPI2
	return a
}

// testAPIPolicy checks an API's sender-constraint policies and profile
// (API.DPoP, DPoPNonce, MTLSBound, Profile): stored by every write, read
// by every read, including the token endpoint's Client, and patched one at
// a time without losing another writer's change.
func testAPIPolicy(t *testing.T, open func(t *testing.T) authz.Store) {
	t.Run("every read returns what was stored", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		strict, plain := strictAPI(1), newAPI(2)
		noErr(t, s.CreateAPI(ctx, strict))
		noErr(t, s.CreateAPI(ctx, plain))
		app := newApp(1)
		noErr(t, s.CreateApplication(ctx, app, nil, []authz.Grant{
			newGrant(app.ClientID, strict, 1, "read:things"),
			newGrant(app.ClientID, plain, 2, "read:things"),
		}))
		for _, want := range []authz.API{strict, plain} {
			got, err := s.GetAPI(ctx, want.ID)
			noErr(t, err)
			same(t, "GetAPI", got, want)
			got, err = s.GetAPIByIdentifier(ctx, want.Identifier)
			noErr(t, err)
			same(t, "GetAPIByIdentifier", got, want)
			noErr(t, s.Manage(ctx, func(tx authz.Tx) error {
				got, err := tx.GetAPI(ctx, want.ID)
				same(t, "Tx.GetAPI", got, want)
				return err
			}))
		}
		list, _, err := s.ListAPIs(ctx, authz.APIFilter{}, authz.Page{})
		noErr(t, err)
		same(t, "ListAPIs", list, []authz.API{strict, plain})
		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		if len(c.Grants) != 2 {
			t.Fatalf("Client has %d grants, want 2", len(c.Grants))
		}
		same(t, "Client grant API (strict)", *c.Grants[0].API, strict)
		same(t, "Client grant API (plain)", *c.Grants[1].API, plain)

		name := "Renamed"
		got, err := s.UpdateAPI(ctx, strict.ID, authz.APIPatch{Name: &name, UpdatedAt: at(time.Hour)})
		noErr(t, err)
		strict.Name, strict.UpdatedAt = name, at(time.Hour)
		same(t, "UpdateAPI of the name", got, strict)
	})

	t.Run("fields left empty are stored as their defaults", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newAPI(1)
		a.DPoP, a.MTLSBound, a.Profile = "", "", ""
		noErr(t, s.CreateAPI(ctx, a))
		got, err := s.GetAPI(ctx, a.ID)
		noErr(t, err)
		same(t, "GetAPI", got, newAPI(1))

		b := strictAPI(2)
		noErr(t, s.CreateAPI(ctx, b))
		empty := ""
		got, err = s.UpdateAPI(ctx, b.ID, authz.APIPatch{DPoP: &empty, MTLSBound: &empty, Profile: &empty, UpdatedAt: b.UpdatedAt})
		noErr(t, err)
		b.DPoP, b.MTLSBound, b.Profile = authz.PolicyOptional, authz.PolicyOptional, authz.ProfileNone
		same(t, "UpdateAPI to empty values", got, b)
	})

	t.Run("bootstrap stores the policy fields", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		api := newAPI(1)
		api.Identifier, api.Scopes, api.System = authz.ManagementAudience, authz.ManagementScopes, true
		api.DPoP, api.MTLSBound, api.Profile = "", "", ""
		app := newApp(1)
		_, err := s.Bootstrap(ctx, authz.Bootstrap{API: api, App: app, Secret: newSecret(app.ClientID, 1),
			Grant: newGrant(app.ClientID, api, 1, authz.ScopeReadAPIs)})
		noErr(t, err)
		want := api
		want.DPoP, want.MTLSBound, want.Profile = authz.PolicyOptional, authz.PolicyOptional, authz.ProfileNone
		got, err := s.GetAPI(ctx, api.ID)
		noErr(t, err)
		same(t, "bootstrapped API", got, want)
		c, err := s.Client(ctx, app.ClientID)
		noErr(t, err)
		same(t, "bootstrapped Client grant API", *c.Grants[0].API, want)
	})

	t.Run("a patch of one field back to its default leaves the others", func(t *testing.T) {
		optional, no, none := authz.PolicyOptional, false, authz.ProfileNone
		for _, tc := range []struct {
			name  string
			patch authz.APIPatch
			want  func(a *authz.API)
		}{
			{"dpop", authz.APIPatch{DPoP: &optional}, func(a *authz.API) { a.DPoP = optional }},
			{"dpop nonce", authz.APIPatch{DPoPNonce: &no}, func(a *authz.API) { a.DPoPNonce = no }},
			{"mtls bound", authz.APIPatch{MTLSBound: &optional}, func(a *authz.API) { a.MTLSBound = optional }},
			{"profile", authz.APIPatch{Profile: &none}, func(a *authz.API) { a.Profile = none }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, ctx := open(t), t.Context()
				a := strictAPI(1)
				noErr(t, s.CreateAPI(ctx, a))
				app := newApp(1)
				noErr(t, s.CreateApplication(ctx, app, nil, []authz.Grant{newGrant(app.ClientID, a, 1, "read:things")}))
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
				c, err := s.Client(ctx, app.ClientID)
				noErr(t, err)
				same(t, "Client grant API", *c.Grants[0].API, want)
			})
		}
	})

	t.Run("concurrent patches of different fields all survive", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithTimeout(t.Context(), concurrencyWait)
		defer cancel()
		a := newAPI(1)
		noErr(t, s.CreateAPI(ctx, a))

		// Half the writers patch dpop, half the profile, and every write
		// also flips dpop_nonce or mtls_bound, the field of its kind's
		// partner (dpop writers: dpop_nonce; profile writers: mtls_bound).
		// Writers of one kind take turns (kinds[k].mu), so the last value
		// each acknowledged is the last written; the two kinds race.
		const apiWriters = 16
		type last struct {
			mu           sync.Mutex
			value, other any
		}
		var kinds [2]last
		errs := parallel(apiWriters, func(i int) error {
			k := i % 2
			for n := range writesEach {
				on := (i/2+n)%2 == 0
				policy := authz.PolicyOptional
				if on {
					policy = authz.PolicyRequired
				}
				p := authz.APIPatch{UpdatedAt: at(time.Duration(i*writesEach+n) * time.Second)}
				var value, other any
				if k == 0 {
					p.DPoP, p.DPoPNonce, value, other = &policy, &on, policy, on
				} else {
					profile := authz.ProfileNone
					if on {
						profile = authz.ProfileFAPI2
					}
					p.Profile, p.MTLSBound, value, other = &profile, &policy, profile, policy
				}
				kinds[k].mu.Lock()
				got, err := s.UpdateAPI(ctx, a.ID, p)
				if err == nil {
					kinds[k].value, kinds[k].other = value, other
				}
				kinds[k].mu.Unlock()
				if err != nil {
					return err
				}
				written, writtenOther := any(got.DPoP), any(got.DPoPNonce)
				if k == 1 {
					written, writtenOther = got.Profile, got.MTLSBound
				}
				if written != value || writtenOther != other {
					return fmt.Errorf("patch to %v, %v returned %v, %v", value, other, written, writtenOther)
				}
			}
			return nil
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		}
		if t.Failed() {
			return
		}
		want := a
		want.DPoP, want.DPoPNonce = kinds[0].value.(string), kinds[0].other.(bool)
		want.Profile, want.MTLSBound = kinds[1].value.(string), kinds[1].other.(string)
		got, err := s.GetAPI(ctx, a.ID)
		noErr(t, err)
		want.UpdatedAt = got.UpdatedAt // one of the writers', whichever came last
		same(t, "API after the writers", got, want)
	})
}
