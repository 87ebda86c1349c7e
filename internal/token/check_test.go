package token

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
)

// TestCheck: each reason a token is not live, a store that cannot tell,
// and a live token.
func TestCheck(t *testing.T) {
	const aud = "https://api.example.com"
	unavailable := fmt.Errorf("sqlite: database is locked: %w", authz.ErrUnavailable)
	tests := []struct {
		name string
		// change alters the world after the token is issued at the clock's
		// time; nil for none.
		change func(f *fixture, deny *fake.DenyList, src *fake.Clients, c Claims)
		// tamper alters the token; nil for none.
		tamper       func(tok string) string
		wantInactive string // "" for live
		wantErr      error
		wantLookup   bool // the store was asked
	}{
		{name: "live", wantLookup: true},
		{name: "live, granted more scopes than the token has", wantLookup: true, change: func(_ *fixture, _ *fake.DenyList, src *fake.Clients, _ Claims) {
			src.ByID["client-1"].Grants[0].Grant.Scopes = []string{"read:things", "write:things"}
		}},
		{name: "live, tokens revoked before it was issued", wantLookup: true, change: func(f *fixture, _ *fake.DenyList, src *fake.Clients, _ Claims) {
			src.ByID["client-1"].Application.TokensNotBefore = f.clock.Now().Add(-time.Second)
		}},
		{name: "not a token", tamper: func(string) string { return "opaque" }, wantInactive: ErrMalformed.Error()},
		{name: "bad signature", tamper: func(tok string) string { return tok[:len(tok)-4] + "AAAA" }, wantInactive: ErrSignature.Error()},
		{name: "expired", change: func(f *fixture, _ *fake.DenyList, _ *fake.Clients, _ Claims) { f.clock.Add(time.Hour) }, wantInactive: ErrExpired.Error()},
		{name: "deny-listed", change: func(_ *fixture, deny *fake.DenyList, _ *fake.Clients, c Claims) {
			deny.JTI[c.JTI] = time.Unix(c.Expiry, 0)
		}, wantInactive: inactiveRevoked},
		{name: "application deleted", wantLookup: true, change: func(_ *fixture, _ *fake.DenyList, src *fake.Clients, _ Claims) {
			delete(src.ByID, "client-1")
		}, wantInactive: inactiveDeleted},
		{name: "application disabled", wantLookup: true, change: func(_ *fixture, _ *fake.DenyList, src *fake.Clients, _ Claims) {
			src.ByID["client-1"].Application.Disabled = true
		}, wantInactive: inactiveDisabled},
		{name: "application's tokens revoked after it was issued", wantLookup: true, change: func(f *fixture, _ *fake.DenyList, src *fake.Clients, _ Claims) {
			src.ByID["client-1"].Application.TokensNotBefore = f.clock.Now().Add(time.Millisecond)
		}, wantInactive: inactiveTokensRevoked},
		{name: "audience no longer granted", wantLookup: true, change: func(_ *fixture, _ *fake.DenyList, src *fake.Clients, _ Claims) {
			src.ByID["client-1"].Grants[0].API.Identifier = "https://other.example.com"
		}, wantInactive: inactiveAudienceDropped},
		{name: "no grants at all", wantLookup: true, change: func(_ *fixture, _ *fake.DenyList, src *fake.Clients, _ Claims) {
			src.ByID["client-1"].Grants = nil
		}, wantInactive: inactiveAudienceDropped},
		{name: "scope no longer granted", wantLookup: true, change: func(_ *fixture, _ *fake.DenyList, src *fake.Clients, _ Claims) {
			src.ByID["client-1"].Grants[0].Grant.Scopes = []string{"write:things"}
		}, wantInactive: inactiveScopeDropped},
		{name: "store unavailable", wantLookup: true, change: func(_ *fixture, _ *fake.DenyList, src *fake.Clients, _ Claims) {
			src.Err = unavailable
		}, wantErr: unavailable},
		{name: "store failing otherwise", wantLookup: true, change: func(_ *fixture, _ *fake.DenyList, src *fake.Clients, _ Claims) {
			src.Err = errors.New("disk I/O error")
		}, wantErr: errors.New("disk I/O error")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.ensure(t, authz.ES256)
			deny := fake.NewDenyList()
			src := &fake.Clients{ByID: map[string]*authz.Client{"client-1": {
				Application: authz.Application{ClientID: "client-1"},
				Grants: []authz.ClientGrant{{
					Grant: authz.Grant{ClientID: "client-1", Scopes: []string{"read:things"}},
					API:   &authz.API{Identifier: aud, Scopes: []authz.Scope{{Value: "read:things"}, {Value: "write:things"}}},
				}},
			}}}
			tok, claims := f.issue(t, authz.ES256, time.Hour)
			if tc.change != nil {
				tc.change(f, deny, src, claims)
			}
			if tc.tamper != nil {
				tok = tc.tamper(tok)
			}
			c := &Checker{Issuer: f.issuer, DenyList: deny, Clients: src}
			res, err := c.Check(t.Context(), tok)
			if (src.Calls() > 0) != tc.wantLookup {
				t.Errorf("store asked %d times, want lookup %v", src.Calls(), tc.wantLookup)
			}
			if tc.wantErr != nil {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr.Error()) || (errors.Is(tc.wantErr, authz.ErrUnavailable) && !errors.Is(err, authz.ErrUnavailable)) {
					t.Fatalf("Check = %+v, %v; want an error wrapping %v", res, err, tc.wantErr)
				}
				if res != (Result{}) {
					t.Fatalf("a result with the error: %+v", res)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantInactive != "" {
				if !strings.HasPrefix(res.Inactive, tc.wantInactive) || res.Claims != nil || res.Client != nil {
					t.Fatalf("Check = %+v, want inactive %q and nothing else", res, tc.wantInactive)
				}
				if len(tok) > 20 && strings.Contains(res.Inactive, tok[len(tok)-20:]) {
					t.Fatal("the reason repeats the token")
				}
				return
			}
			if res.Inactive != "" || res.Claims == nil || *res.Claims != claims || res.Client != src.ByID["client-1"] {
				t.Fatalf("Check = %+v, want live with the claims and the client", res)
			}
		})
	}
}
