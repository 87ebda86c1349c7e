package manage_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

func reuseOf(sec int64) authz.TokenReuse {
	return authz.TokenReuse{MinRemaining: time.Duration(sec) * time.Second}
}

// lastDetails returns the details of the newest audit event of action on
// target, and how many there are. Callers move the clock on between
// events: events of one instant come in no set order.
func (e *env) lastDetails(action, target string) (map[string]any, int) {
	e.t.Helper()
	events, _, err := e.store.ListAudit(e.t.Context(), authz.AuditFilter{Action: action, Target: target}, authz.Page{Limit: authz.MaxPageLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(events) == 0 {
		return nil, 0
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(events[0].Details), &d); err != nil { // newest first
		e.t.Fatal(err)
	}
	return d, len(events)
}

// TestTokenReuseAPI: an API's token reuse is at least 1 s, in whole
// seconds, and below its token lifetime, whichever of the two a change
// names; a refused change changes nothing; null (the zero TokenReuse)
// removes it; each change is audited.
func TestTokenReuseAPI(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	full := manage.System()
	for _, tc := range []struct {
		name     string
		reuse    authz.TokenReuse
		lifetime int64
		ok       bool
	}{
		{"off", authz.TokenReuse{}, 0, true},
		{"one second", reuseOf(1), 0, true},
		{"just below the lifetime", reuseOf(3599), 3600, true},
		{"the lifetime", reuseOf(3600), 3600, false},
		{"above the lifetime", reuseOf(600), 300, false},
		{"negative", reuseOf(-1), 0, false},
		{"a fraction of a second", authz.TokenReuse{MinRemaining: 1500 * time.Millisecond}, 0, false},
	} {
		t.Run("create: "+tc.name, func(t *testing.T) {
			a, err := e.svc.CreateAPI(ctx, full, manage.NewAPI{Identifier: "https://" + time.Now().Format("150405.000000000") + ".example.com/", TokenLifetime: tc.lifetime, TokenReuse: tc.reuse})
			if tc.ok != (err == nil) {
				t.Fatalf("CreateAPI: %v, want ok %v", err, tc.ok)
			}
			if err != nil {
				if kind(t, err) != manage.Invalid {
					t.Fatalf("kind %v, want Invalid", kind(t, err))
				}
				return
			}
			if a.TokenReuse != tc.reuse {
				t.Fatalf("created with %v, want %v", a.TokenReuse, tc.reuse)
			}
			if d, n := e.lastDetails("api.create", a.ID); n != 1 || (tc.reuse.Enabled() && d["token_reuse"] == nil) {
				t.Fatalf("api.create details %v", d)
			}
		})
	}

	api, err := e.store.GetAPIByIdentifier(ctx, usageAPI)
	if err != nil {
		t.Fatal(err)
	}
	updater := e.actor(authz.ScopeUpdateAPIs)
	set := func(ch manage.APIChange) (authz.API, error) {
		e.clock.Add(time.Second)
		return e.svc.UpdateAPI(ctx, updater, api.ID, ch)
	}
	r := reuseOf(300)
	got, err := set(manage.APIChange{TokenReuse: &r})
	if err != nil || got.TokenReuse != r {
		t.Fatalf("set 300: %v, %v", got.TokenReuse, err)
	}
	d, n := e.lastDetails("api.update", api.ID)
	if tr, _ := d["token_reuse"].(map[string]any); tr["min_remaining"] != float64(300) {
		t.Fatalf("api.update details %v", d)
	}
	for _, tc := range []struct {
		name string
		ch   manage.APIChange
	}{
		{"a reuse at the lifetime", manage.APIChange{TokenReuse: ptr(reuseOf(3600))}},
		{"a lifetime at the reuse", manage.APIChange{TokenLifetime: ptr(int64(300))}},
		{"both at once", manage.APIChange{TokenLifetime: ptr(int64(600)), TokenReuse: ptr(reuseOf(600))}},
	} {
		if _, err := set(tc.ch); err == nil || kind(t, err) != manage.Invalid {
			t.Fatalf("%s: %v, want Invalid", tc.name, err)
		}
	}
	if now, _ := e.store.GetAPI(ctx, api.ID); now.TokenReuse != r || now.TokenLifetime != api.TokenLifetime {
		t.Fatalf("a refused change changed the API: %v, %v", now.TokenReuse, now.TokenLifetime)
	}
	if _, m := e.lastDetails("api.update", api.ID); m != n {
		t.Fatal("a refused change was audited")
	}
	if got, err := set(manage.APIChange{TokenLifetime: ptr(int64(600)), TokenReuse: ptr(reuseOf(599))}); err != nil || got.TokenReuse != reuseOf(599) {
		t.Fatalf("both within bounds: %v, %v", got.TokenReuse, err)
	}
	got, err = set(manage.APIChange{TokenReuse: &authz.TokenReuse{}})
	if err != nil || got.TokenReuse.Enabled() {
		t.Fatalf("remove: %v, %v", got.TokenReuse, err)
	}
	if d, _ := e.lastDetails("api.update", api.ID); d["token_reuse"] != nil {
		t.Fatalf("removal audited as %v, want null", d["token_reuse"])
	} else if _, present := d["token_reuse"]; !present {
		t.Fatal("removal not in the audit details")
	}
}

// TestTokenReuseApplication: an application's token reuse is below the
// token lifetime of every API it is granted; null removes it; each change
// is audited.
func TestTokenReuseApplication(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	full := manage.System()
	if _, err := e.svc.CreateApplication(ctx, full, manage.NewApplication{Name: "long", Grants: []manage.GrantInput{{Audience: usageAPI}}, TokenReuse: reuseOf(3600)}); kind(t, err) != manage.Invalid {
		t.Fatalf("reuse at the granted API's lifetime: %v, want Invalid", err)
	}
	created, err := e.svc.CreateApplication(ctx, full, manage.NewApplication{Name: "ok", Grants: []manage.GrantInput{{Audience: usageAPI}}, TokenReuse: reuseOf(120)})
	if err != nil || created.Application.TokenReuse != reuseOf(120) {
		t.Fatalf("create: %v, %v", created.Application.TokenReuse, err)
	}
	id := created.Application.ClientID
	if d, _ := e.lastDetails("application.create", id); d["token_reuse"] == nil {
		t.Fatalf("application.create details %v", d)
	}
	if _, _, err := e.svc.UpdateApplication(ctx, full, id, manage.ApplicationChange{TokenReuse: ptr(reuseOf(4000))}); kind(t, err) != manage.Invalid {
		t.Fatalf("update above the lifetime: %v, want Invalid", err)
	}
	if app, _ := e.store.GetApplication(ctx, id); app.TokenReuse != reuseOf(120) {
		t.Fatalf("a refused change changed it to %v", app.TokenReuse)
	}
	e.clock.Add(time.Second)
	app, _, err := e.svc.UpdateApplication(ctx, full, id, manage.ApplicationChange{TokenReuse: &authz.TokenReuse{}})
	if err != nil || app.TokenReuse.Enabled() {
		t.Fatalf("remove: %v, %v", app.TokenReuse, err)
	}
	d, _ := e.lastDetails("application.update", id)
	if v, present := d["token_reuse"]; !present || v != nil {
		t.Fatalf("removal audited as %v", d)
	}
}

// TestTokenReusePermissions: setting token_reuse needs the scope that
// changes the application (update:applications, also at creation) or the
// API (create:apis, update:apis); an actor without it is refused and
// nothing is written.
func TestTokenReusePermissions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	target := e.app("target").Application.ClientID
	api, err := e.store.GetAPIByIdentifier(ctx, usageAPI)
	if err != nil {
		t.Fatal(err)
	}
	r := reuseOf(60)

	creator := e.actor(authz.ScopeCreateApplications, authz.ScopeReadApplications)
	before := e.auditCount("application.create")
	_, err = e.svc.CreateApplication(ctx, creator, manage.NewApplication{Name: "x", TokenReuse: r})
	wantForbidden(t, err, authz.ScopeUpdateApplications)
	if e.auditCount("application.create") != before {
		t.Fatal("a refused create was written")
	}
	if _, err := e.svc.CreateApplication(ctx, creator, manage.NewApplication{Name: "y"}); err != nil {
		t.Fatalf("the same actor without token_reuse: %v", err)
	}

	reader := e.actor(authz.ScopeReadApplications, authz.ScopeReadAPIs, authz.ScopeCreateApplications)
	_, _, err = e.svc.UpdateApplication(ctx, reader, target, manage.ApplicationChange{TokenReuse: &r})
	wantForbidden(t, err, authz.ScopeUpdateApplications)
	_, err = e.svc.UpdateAPI(ctx, reader, api.ID, manage.APIChange{TokenReuse: &r})
	wantForbidden(t, err, authz.ScopeUpdateAPIs)
	_, err = e.svc.CreateAPI(ctx, reader, manage.NewAPI{Identifier: "https://new.example.com/", TokenReuse: r})
	wantForbidden(t, err, authz.ScopeCreateAPIs)

	if app, _ := e.store.GetApplication(ctx, target); app.TokenReuse.Enabled() {
		t.Fatal("a refused update changed the application")
	}
	if a, _ := e.store.GetAPI(ctx, api.ID); a.TokenReuse.Enabled() {
		t.Fatal("a refused update changed the API")
	}

	// An application updater may not reach a stronger application.
	weak := e.actor(authz.ScopeUpdateApplications)
	_, _, err = e.svc.UpdateApplication(ctx, weak, e.boot.Application.ClientID, manage.ApplicationChange{TokenReuse: &r})
	if err == nil {
		t.Fatal("a weaker actor set token_reuse on the administrator")
	}
}
