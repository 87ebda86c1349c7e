package manage_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

// TestAPISenderPolicyCreate: an API is created with the policies and the
// profile given, or their defaults, by an actor holding only create:apis;
// values outside their sets, and a fapi2 API signing with RS256, are
// refused with a detail naming the field, and nothing is written.
func TestAPISenderPolicyCreate(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	creator := e.actor(authz.ScopeCreateAPIs)

	a, err := e.svc.CreateAPI(ctx, creator, manage.NewAPI{Identifier: "https://plain.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	if a.DPoP != authz.PolicyOptional || a.DPoPNonce || a.MTLSBound != authz.PolicyOptional || a.Profile != authz.ProfileNone {
		t.Errorf("defaults = %q, %v, %q, %q; want optional, false, optional, none", a.DPoP, a.DPoPNonce, a.MTLSBound, a.Profile)
	}
	in := manage.NewAPI{Identifier: "https://strict.example.com/", SigningAlg: authz.PS256,
		DPoP: authz.PolicyRequired, DPoPNonce: true, MTLSBound: authz.PolicyRequired, Profile: authz.ProfileFAPI2}
	a, err = e.svc.CreateAPI(ctx, creator, in)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := e.store.GetAPI(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.DPoP != in.DPoP || !stored.DPoPNonce || stored.MTLSBound != in.MTLSBound || stored.Profile != in.Profile {
		t.Errorf("stored = %+v, want the policies of %+v", stored, in)
	}
	var details map[string]any
	events, _, err := e.store.ListAudit(ctx, authz.AuditFilter{Action: "api.create", Target: a.ID}, authz.Page{})
	if err != nil || len(events) != 1 {
		t.Fatalf("api.create events = %v, %v", events, err)
	}
	if err := json.Unmarshal([]byte(events[0].Details), &details); err != nil {
		t.Fatal(err)
	}
	if details["dpop"] != "required" || details["dpop_nonce"] != true || details["mtls_bound"] != "required" || details["profile"] != "fapi2" {
		t.Errorf("api.create details = %v, want the four policy fields", details)
	}

	for _, alg := range []string{authz.PS256, authz.ES256, authz.EdDSA} {
		if _, err := e.svc.CreateAPI(ctx, creator, manage.NewAPI{Identifier: "https://fapi2-" + strings.ToLower(alg) + ".example.com/",
			SigningAlg: alg, Profile: authz.ProfileFAPI2}); err != nil {
			t.Errorf("fapi2 with %s: %v", alg, err)
		}
	}

	before := e.auditCount("api.create")
	for _, tc := range []struct {
		name   string
		in     manage.NewAPI
		detail string
	}{
		{"dpop outside its set", manage.NewAPI{DPoP: "always"}, "dpop must be optional or required"},
		{"dpop in capitals", manage.NewAPI{DPoP: "Required"}, "dpop must be optional or required"},
		{"mtls_bound outside its set", manage.NewAPI{MTLSBound: "yes"}, "mtls_bound must be optional or required"},
		{"profile outside its set", manage.NewAPI{Profile: "fapi1"}, "profile must be none or fapi2"},
		{"fapi2 with RS256", manage.NewAPI{Profile: authz.ProfileFAPI2, SigningAlg: authz.RS256}, "PS256, ES256 or EdDSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Identifier = "https://refused.example.com/"
			_, err := e.svc.CreateAPI(ctx, creator, tc.in)
			if kind(t, err) != manage.Invalid || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("error %v, want Invalid containing %q", err, tc.detail)
			}
		})
	}
	if after := e.auditCount("api.create"); after != before {
		t.Errorf("refused creations wrote %d audit events", after-before)
	}
	if _, err := e.store.GetAPIByIdentifier(ctx, "https://refused.example.com/"); err == nil {
		t.Error("a refused API was stored")
	}
}

// TestAPISenderPolicyUpdate: an actor holding only update:apis patches
// each policy field alone, leaving the others; the audit event names what
// changed and shows the values after; actors without update:apis, values
// outside their sets, RS256 on a fapi2 API (either way round) and the
// management API are refused, and nothing is written.
func TestAPISenderPolicyUpdate(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	updater := e.actor(authz.ScopeUpdateAPIs)
	api, err := e.store.GetAPIByIdentifier(ctx, usageAPI)
	if err != nil {
		t.Fatal(err)
	}

	want := api
	for _, tc := range []struct {
		name    string
		ch      manage.APIChange
		changed string
		apply   func(a *authz.API)
	}{
		{"dpop", manage.APIChange{DPoP: ptr(authz.PolicyRequired)}, "dpop", func(a *authz.API) { a.DPoP = authz.PolicyRequired }},
		{"dpop_nonce", manage.APIChange{DPoPNonce: ptr(true)}, "dpop_nonce", func(a *authz.API) { a.DPoPNonce = true }},
		{"mtls_bound", manage.APIChange{MTLSBound: ptr(authz.PolicyRequired)}, "mtls_bound", func(a *authz.API) { a.MTLSBound = authz.PolicyRequired }},
		{"profile", manage.APIChange{Profile: ptr(authz.ProfileFAPI2)}, "profile", func(a *authz.API) { a.Profile = authz.ProfileFAPI2 }},
		{"dpop back", manage.APIChange{DPoP: ptr(authz.PolicyOptional)}, "dpop", func(a *authz.API) { a.DPoP = authz.PolicyOptional }},
		{"dpop_nonce back", manage.APIChange{DPoPNonce: ptr(false)}, "dpop_nonce", func(a *authz.API) { a.DPoPNonce = false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			audited := func() []authz.AuditEvent {
				events, _, err := e.store.ListAudit(ctx, authz.AuditFilter{Action: "api.update", Target: api.ID}, authz.Page{Limit: authz.MaxPageLimit})
				if err != nil {
					t.Fatal(err)
				}
				return events
			}
			before := audited()
			got, err := e.svc.UpdateAPI(ctx, updater, api.ID, tc.ch)
			if err != nil {
				t.Fatal(err)
			}
			tc.apply(&want)
			want.UpdatedAt = got.UpdatedAt
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				t.Errorf("UpdateAPI = %+v\nwant %+v", got, want)
			}
			events := slices.DeleteFunc(audited(), func(ev authz.AuditEvent) bool {
				return slices.ContainsFunc(before, func(b authz.AuditEvent) bool { return b.ID == ev.ID })
			})
			if len(events) != 1 {
				t.Fatalf("%d new api.update events, want 1", len(events))
			}
			var details struct {
				Changed   []string `json:"changed"`
				DPoP      string   `json:"dpop"`
				DPoPNonce bool     `json:"dpop_nonce"`
				MTLSBound string   `json:"mtls_bound"`
				Profile   string   `json:"profile"`
			}
			last := events[0]
			if err := json.Unmarshal([]byte(last.Details), &details); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(details.Changed, []string{tc.changed}) || details.DPoP != want.DPoP || details.DPoPNonce != want.DPoPNonce ||
				details.MTLSBound != want.MTLSBound || details.Profile != want.Profile {
				t.Errorf("api.update details = %s, want changed [%s] and the values after", last.Details, tc.changed)
			}
		})
	}

	// The API is now fapi2, signing with ES256.
	rsa, err := e.svc.CreateAPI(ctx, manage.System(), manage.NewAPI{Identifier: "https://rsa.example.com/", SigningAlg: authz.RS256})
	if err != nil {
		t.Fatal(err)
	}
	mgmt, err := e.store.GetAPIByIdentifier(ctx, authz.ManagementAudience)
	if err != nil {
		t.Fatal(err)
	}
	before := e.auditCount("api.update")
	for _, tc := range []struct {
		name   string
		actor  manage.Actor
		id     string
		ch     manage.APIChange
		kind   manage.Kind
		detail string
	}{
		{"an actor with read and create but not update", e.actor(authz.ScopeReadAPIs, authz.ScopeCreateAPIs), api.ID,
			manage.APIChange{DPoP: ptr(authz.PolicyRequired)}, manage.Forbidden, authz.ScopeUpdateAPIs},
		{"dpop outside its set", updater, api.ID, manage.APIChange{DPoP: ptr("")}, manage.Invalid, "dpop must be optional or required"},
		{"mtls_bound outside its set", updater, api.ID, manage.APIChange{MTLSBound: ptr("on")}, manage.Invalid, "mtls_bound must be optional or required"},
		{"profile outside its set", updater, api.ID, manage.APIChange{Profile: ptr("FAPI2")}, manage.Invalid, "profile must be none or fapi2"},
		{"RS256 on a fapi2 API", updater, api.ID, manage.APIChange{SigningAlg: ptr(authz.RS256)}, manage.Invalid, "PS256, ES256 or EdDSA"},
		{"fapi2 on an RS256 API", updater, rsa.ID, manage.APIChange{Profile: ptr(authz.ProfileFAPI2)}, manage.Invalid, "not RS256"},
		{"the management API's dpop", manage.System(), mgmt.ID, manage.APIChange{DPoP: ptr(authz.PolicyRequired)}, manage.Forbidden, "m2mauth's own"},
		{"the management API's profile", updater, mgmt.ID, manage.APIChange{Profile: ptr(authz.ProfileFAPI2)}, manage.Forbidden, "m2mauth's own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.UpdateAPI(ctx, tc.actor, tc.id, tc.ch)
			if kind(t, err) != tc.kind || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("error %v, want kind %v containing %q", err, tc.kind, tc.detail)
			}
		})
	}
	if after := e.auditCount("api.update"); after != before {
		t.Errorf("refused updates wrote %d audit events", after-before)
	}
	for _, id := range []string{api.ID, rsa.ID, mgmt.ID} {
		got, err := e.store.GetAPI(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if id == api.ID && (got.SigningAlg != authz.ES256 || got.Profile != authz.ProfileFAPI2) ||
			id != api.ID && (got.Profile != authz.ProfileNone || got.DPoP != authz.PolicyOptional) {
			t.Errorf("API %s after refused updates = %+v", id, got)
		}
	}

	// Both at once: leaving fapi2 while moving to RS256 is allowed, as is
	// taking fapi2 while moving to PS256.
	if _, err := e.svc.UpdateAPI(ctx, updater, api.ID, manage.APIChange{Profile: ptr(authz.ProfileNone), SigningAlg: ptr(authz.RS256)}); err != nil {
		t.Errorf("leaving fapi2 for RS256: %v", err)
	}
	if _, err := e.svc.UpdateAPI(ctx, updater, rsa.ID, manage.APIChange{Profile: ptr(authz.ProfileFAPI2), SigningAlg: ptr(authz.PS256)}); err != nil {
		t.Errorf("taking fapi2 with PS256: %v", err)
	}
}

// TestAPISenderPolicyConcurrent: 16 actors holding only update:apis patch
// one API at once, half its dpop and half its profile; neither change is
// lost, and each write is audited.
func TestAPISenderPolicyConcurrent(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	updater := e.actor(authz.ScopeUpdateAPIs)
	api, err := e.store.GetAPIByIdentifier(ctx, usageAPI)
	if err != nil {
		t.Fatal(err)
	}
	before := e.auditCount("api.update")
	const writers = 16
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			ch := manage.APIChange{DPoP: ptr(authz.PolicyRequired)}
			if i%2 == 1 {
				ch = manage.APIChange{Profile: ptr(authz.ProfileFAPI2)}
			}
			_, errs[i] = e.svc.UpdateAPI(ctx, updater, api.ID, ch)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	got, err := e.store.GetAPI(ctx, api.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.DPoP != authz.PolicyRequired || got.Profile != authz.ProfileFAPI2 || got.MTLSBound != authz.PolicyOptional || got.DPoPNonce {
		t.Errorf("after the writers: dpop %q, profile %q, mtls_bound %q, dpop_nonce %v; want required, fapi2, optional, false",
			got.DPoP, got.Profile, got.MTLSBound, got.DPoPNonce)
	}
	if n := e.auditCount("api.update") - before; n != writers {
		t.Errorf("%d api.update events, want %d", n, writers)
	}
}
