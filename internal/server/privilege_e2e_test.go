package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/pgtest"
)

// refusal is a problem answer with the members the privilege and lock-out
// rules add.
type refusal struct {
	Type          string   `json:"type"`
	Status        int      `json:"status"`
	Code          string   `json:"code"`
	Detail        string   `json:"detail"`
	MissingScopes []string `json:"missing_scopes"`
}

// adminWith creates an application holding exactly scopes of the
// management API (granted by the full administrator adm) and returns it
// with a management token.
func (e *testEnv) adminWith(adm, name string, scopes ...string) (admin.CreatedApplication, string) {
	e.t.Helper()
	app := e.createApp(adm, name, map[string][]string{authz.ManagementAudience: scopes})
	return app, e.tokenFor(app.ClientID, app.ClientSecret, authz.ManagementAudience)
}

// refused makes a management request that must be refused with status and
// returns the problem.
func (e *testEnv) refused(status int, method, path, tok string, body any) refusal {
	e.t.Helper()
	var p refusal
	resp := e.call(method, path, tok, body, &p)
	if resp.StatusCode != status {
		e.t.Fatalf("%s %s: status %d, want %d (%+v)", method, path, resp.StatusCode, status, p)
	}
	if resp.Header.Get("Content-Type") != "application/problem+json" {
		e.t.Fatalf("%s %s: content type %q", method, path, resp.Header.Get("Content-Type"))
	}
	if status == http.StatusForbidden {
		if p.Code != admin.CodeInsufficientScope || !strings.HasSuffix(p.Type, "insufficient-scope") {
			e.t.Fatalf("%s %s: problem %+v, want insufficient_scope", method, path, p)
		}
		if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) {
			e.t.Fatalf("%s %s: challenge %q", method, path, ch)
		}
	}
	return p
}

// wantMissing fails t unless p names every scope in want as missing, in
// its detail and its missing_scopes.
func wantMissing(t testing.TB, p refusal, want ...string) {
	t.Helper()
	for _, sc := range want {
		if !slices.Contains(p.MissingScopes, sc) || !strings.Contains(p.Detail, sc) {
			t.Fatalf("problem %+v does not name missing scope %s", p, sc)
		}
	}
}

func grantOf(t testing.TB, app admin.ApplicationResource, audience string) admin.GrantResource {
	t.Helper()
	for _, g := range app.Grants {
		if g.Audience == audience {
			return g
		}
	}
	t.Fatalf("application %s has no grant for %s: %+v", app.ClientID, audience, app.Grants)
	return admin.GrantResource{}
}

// TestPrivilegeEscalationRefused: each way an administrator holding a few
// management scopes used to make itself (or another application) a full
// administrator is refused with 403 naming the missing scopes, and what it
// may do it still can.
func TestPrivilegeEscalationRefused(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	worker := e.createApp(adm, "worker", map[string][]string{usageAPI: nil})
	bootstrap := e.admin.ClientID

	t.Run("create-only", func(t *testing.T) {
		e := e.with(t)
		_, tok := e.adminWith(adm, "creator", authz.ScopeCreateApplications)

		// The old escalation: a management grant without scopes.
		var created admin.CreatedApplication
		e.mustCall(201, "POST", "/admin/v1/applications", tok, map[string]any{
			"name": "child", "grants": []map[string]any{{"audience": authz.ManagementAudience}},
		}, &created)
		e.addSecret(created.ClientSecret)
		if g := grantOf(t, created.ApplicationResource, authz.ManagementAudience); !slices.Equal(g.Scopes, []string{authz.ScopeCreateApplications}) {
			t.Fatalf("omitted scopes granted %v, want the creator's own [create:applications]", g.Scopes)
		}
		p := e.refused(403, "POST", "/admin/v1/applications", tok, map[string]any{
			"name": "child", "grants": []map[string]any{{"audience": authz.ManagementAudience, "scopes": []string{authz.ScopeReadAudit, authz.ScopeCreateApplications, authz.ScopeUpdateApplications}}},
		})
		wantMissing(t, p, authz.ScopeReadAudit, authz.ScopeUpdateApplications)

		for name, body := range map[string]map[string]any{
			"can_introspect":       {"name": "rs", "can_introspect": true},
			"introspect_audiences": {"name": "rs", "introspect_audiences": []string{usageAPI}},
		} {
			t.Run(name+" without update:introspection", func(t *testing.T) {
				wantMissing(t, e.with(t).refused(403, "POST", "/admin/v1/applications", tok, body), authz.ScopeUpdateIntrospection)
			})
		}
	})

	t.Run("update-only", func(t *testing.T) {
		e := e.with(t)
		self, tok := e.adminWith(adm, "updater", authz.ScopeUpdateApplications)
		var me admin.ApplicationResource
		e.mustCall(200, "GET", "/admin/v1/applications/"+self.ClientID, adm, nil, &me)
		own := grantOf(t, me, authz.ManagementAudience)

		t.Run("widening its own management grant", func(t *testing.T) {
			p := e.with(t).refused(403, "PATCH", "/admin/v1/applications/"+self.ClientID+"/grants/"+own.ID, tok,
				map[string]any{"scopes": []string{authz.ScopeUpdateApplications, authz.ScopeDeleteApplications, authz.ScopeRotateKeys}})
			wantMissing(t, p, authz.ScopeDeleteApplications, authz.ScopeRotateKeys)
		})
		t.Run("adding a management grant to another application", func(t *testing.T) {
			p := e.with(t).refused(403, "POST", "/admin/v1/applications/"+worker.ClientID+"/grants", tok,
				map[string]any{"audience": authz.ManagementAudience, "scopes": []string{authz.ScopeReadAudit}})
			wantMissing(t, p, authz.ScopeReadAudit)
		})
		t.Run("a secret minted for a stronger application", func(t *testing.T) {
			e := e.with(t)
			p := e.refused(403, "POST", "/admin/v1/applications/"+bootstrap+"/secrets", tok, nil)
			wantMissing(t, p, authz.ScopeRotateKeys, authz.ScopeReadAudit, authz.ScopeDeleteApplications)
			var secrets admin.List[admin.SecretResource]
			e.mustCall(200, "GET", "/admin/v1/applications/"+bootstrap+"/secrets", adm, nil, &secrets)
			if len(secrets.Items) != 1 {
				t.Fatalf("the bootstrap administrator has %d secrets, want still 1", len(secrets.Items))
			}
		})
		t.Run("changing a stronger application", func(t *testing.T) {
			e := e.with(t)
			wantMissing(t, e.refused(403, "PATCH", "/admin/v1/applications/"+bootstrap, tok, map[string]any{"name": "pwned"}), authz.ScopeReadAudit)
			var boot admin.ApplicationResource
			e.mustCall(200, "GET", "/admin/v1/applications/"+bootstrap, adm, nil, &boot)
			g := grantOf(t, boot, authz.ManagementAudience)
			wantMissing(t, e.refused(403, "DELETE", "/admin/v1/applications/"+bootstrap+"/grants/"+g.ID, tok, nil), authz.ScopeReadAudit)
		})
		t.Run("can_introspect without update:introspection", func(t *testing.T) {
			wantMissing(t, e.with(t).refused(403, "PATCH", "/admin/v1/applications/"+worker.ClientID, tok, map[string]any{"can_introspect": true}), authz.ScopeUpdateIntrospection)
		})
		t.Run("what it may do, it can", func(t *testing.T) {
			e := e.with(t)
			e.mustCall(200, "PATCH", "/admin/v1/applications/"+worker.ClientID, tok, map[string]any{"description": "synced nightly"}, nil)
			var g admin.GrantResource
			e.mustCall(201, "POST", "/admin/v1/applications/"+worker.ClientID+"/grants", tok, map[string]any{"audience": authz.ManagementAudience}, &g)
			if !slices.Equal(g.Scopes, []string{authz.ScopeUpdateApplications}) {
				t.Fatalf("omitted scopes granted %v, want [update:applications]", g.Scopes)
			}
			var sec admin.CreatedSecret
			e.mustCall(201, "POST", "/admin/v1/applications/"+worker.ClientID+"/secrets", tok, nil, &sec)
			e.addSecret(sec.ClientSecret)
		})
	})

	t.Run("update:apis-only", func(t *testing.T) {
		e := e.with(t)
		_, tok := e.adminWith(adm, "api editor", authz.ScopeUpdateAPIs)
		var list admin.List[admin.APIResource]
		e.mustCall(200, "GET", "/admin/v1/apis?identifier="+authz.ManagementAudience, adm, nil, &list)
		mgmt := list.Items[0]
		for name, body := range map[string]map[string]any{
			"token_lifetime": {"token_lifetime": 86400},
			"signing_alg":    {"signing_alg": "RS256"},
			"name":           {"name": "mine now"},
			"scopes":         {"scopes": []map[string]string{{"value": "read:apis"}}},
		} {
			t.Run(name, func(t *testing.T) {
				p := e.with(t).refused(403, "PATCH", "/admin/v1/apis/"+mgmt.ID, tok, body)
				if !strings.Contains(p.Detail, "management API") {
					t.Fatalf("problem %+v does not say why", p)
				}
			})
		}
		// Not even a full administrator changes it.
		e.refused(403, "PATCH", "/admin/v1/apis/"+mgmt.ID, adm, map[string]any{"token_lifetime": 86400})
		var after admin.APIResource
		e.mustCall(200, "GET", "/admin/v1/apis/"+mgmt.ID, adm, nil, &after)
		if after.TokenLifetime != 900 || after.Name != mgmt.Name || after.SigningAlg != mgmt.SigningAlg {
			t.Fatalf("management API changed: %+v, was %+v", after, mgmt)
		}
		var usage admin.List[admin.APIResource]
		e.mustCall(200, "GET", "/admin/v1/apis?identifier="+usageAPI, adm, nil, &usage)
		e.mustCall(200, "PATCH", "/admin/v1/apis/"+usage.Items[0].ID, tok, map[string]any{"token_lifetime": 600}, nil)
	})

	t.Run("introspection is scoped", func(t *testing.T) {
		e := e.with(t)
		const other = "https://other.example.com/"
		e.createAPI(adm, other, "", "read:other")
		both := e.createApp(adm, "both", map[string][]string{usageAPI: nil, other: nil})
		var rsApp admin.CreatedApplication
		e.mustCall(201, "POST", "/admin/v1/applications", adm, map[string]any{"name": "usage rs", "introspect_audiences": []string{usageAPI}}, &rsApp)
		e.addSecret(rsApp.ClientSecret)
		if !slices.Equal(rsApp.IntrospectAudiences, []string{usageAPI}) || !rsApp.CanIntrospect {
			t.Fatalf("created %+v", rsApp.ApplicationResource)
		}
		if !e.active(rsApp, e.tokenFor(both.ClientID, both.ClientSecret, usageAPI)) {
			t.Fatal("a token of its audience is inactive to the resource server")
		}
		if e.active(rsApp, e.tokenFor(both.ClientID, both.ClientSecret, other)) {
			t.Fatal("the resource server sees a token of another audience")
		}
		wide := e.createResourceServer(adm, "every audience (deprecated can_introspect)")
		if slices.Contains(wide.IntrospectAudiences, authz.ManagementAudience) {
			t.Fatalf("can_introspect granted the management audience: %v", wide.IntrospectAudiences)
		}
		if e.active(wide, adm) || e.active(rsApp, adm) {
			t.Fatal("a management token is active to a resource server")
		}
		e.refused(400, "PATCH", "/admin/v1/applications/"+rsApp.ClientID, adm, map[string]any{"introspect_audiences": []string{authz.ManagementAudience}})
	})
}

// TestLastAdministrator: no change may leave the server without an enabled
// application holding every management scope with a usable secret; each
// such change is 409 last-administrator and changes nothing.
func TestLastAdministrator(t *testing.T) {
	clock := newTestClock()
	e := newTestEnv(t, withClock(clock.Now))
	adm := e.adminToken()
	me := e.admin.ClientID
	var boot admin.ApplicationResource
	e.mustCall(200, "GET", "/admin/v1/applications/"+me, adm, nil, &boot)
	g := grantOf(t, boot, authz.ManagementAudience)
	var secrets admin.List[admin.SecretResource]
	e.mustCall(200, "GET", "/admin/v1/applications/"+me+"/secrets", adm, nil, &secrets)
	only := secrets.Items[0].ID

	lockout := func(t *testing.T, method, path, tok string, body any) {
		t.Helper()
		p := e.with(t).refused(409, method, path, tok, body)
		if !strings.HasSuffix(p.Type, "last-administrator") || p.Code != admin.CodeLastAdministrator {
			t.Fatalf("problem %+v, want type …last-administrator", p)
		}
	}
	t.Run("deleting its own management grant", func(t *testing.T) {
		lockout(t, "DELETE", "/admin/v1/applications/"+me+"/grants/"+g.ID, adm, nil)
	})
	t.Run("narrowing its own management grant", func(t *testing.T) {
		lockout(t, "PATCH", "/admin/v1/applications/"+me+"/grants/"+g.ID, adm, map[string]any{"scopes": []string{authz.ScopeReadAPIs}})
	})
	t.Run("deleting its only secret", func(t *testing.T) {
		lockout(t, "DELETE", "/admin/v1/applications/"+me+"/secrets/"+only, adm, nil)
	})
	e.mustCall(200, "GET", "/admin/v1/apis", e.adminToken(), nil, nil) // still an administrator

	t.Run("an administrator whose secrets expired cannot remove the last usable one", func(t *testing.T) {
		e := e.with(t)
		second, _ := e.adminWith(adm, "second admin")
		var sec admin.CreatedSecret
		e.mustCall(201, "POST", "/admin/v1/applications/"+second.ClientID+"/secrets", adm, map[string]any{"expires_in": 60, "expire_others_in": 0}, &sec)
		e.addSecret(sec.ClientSecret)
		tok := e.tokenFor(second.ClientID, sec.ClientSecret, authz.ManagementAudience)
		clock.Add(2 * time.Minute) // its secrets have expired; its token has not
		lockout(t, "DELETE", "/admin/v1/applications/"+me, tok, nil)
		lockout(t, "PATCH", "/admin/v1/applications/"+me, tok, map[string]any{"disabled": true})
		e.mustCall(200, "GET", "/admin/v1/applications/"+me, tok, nil, nil)
		// With another usable secret the bootstrap administrator may go.
		e.mustCall(204, "DELETE", "/admin/v1/applications/"+second.ClientID, adm, nil, nil)
	})

	t.Run("with a second full administrator the first may go", func(t *testing.T) {
		e := e.with(t)
		second, tok := e.adminWith(adm, "successor")
		e.mustCall(204, "DELETE", "/admin/v1/applications/"+me+"/grants/"+g.ID, tok, nil, nil)
		p := e.refused(409, "DELETE", "/admin/v1/applications/"+second.ClientID, tok, nil) // itself
		if p.Code != admin.CodeConflict {
			t.Fatalf("self-delete: %+v", p)
		}
	})

	var refusedEvents int
	for _, ev := range e.auditEvents("grant.delete") {
		if ev.Target == me {
			refusedEvents++
		}
	}
	if refusedEvents != 1 {
		t.Fatalf("%d grant.delete events for the bootstrap administrator, want 1 (the refused ones are not audited)", refusedEvents)
	}
}

// TestManagementConcurrency: 32 writers on one application at once —
// patches of different fields, revoke-all, secret adds past the limit —
// and every acknowledged change survives, the cutoff included, with the
// limit of 10 secrets held. On SQLite and on PostgreSQL.
func TestManagementConcurrency(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testManagementConcurrency(t, newTestEnv(t)) })
	t.Run("postgres", func(t *testing.T) {
		pg := pgtest.Start(t)
		e := newTestEnv(t, func(c *Config, _ *Deps) {
			c.DatabaseURL = pg.NewDatabase(t)
			c.MasterKey = randomMasterKey(t)
		})
		testManagementConcurrency(t, e)
	})
}

func testManagementConcurrency(t *testing.T, e *testEnv) {
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "target", map[string][]string{usageAPI: nil})
	path := "/admin/v1/applications/" + app.ClientID
	before := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	rsApp := e.createResourceServer(adm, "rs")

	const writers = 32
	type result struct {
		kind   string
		value  string
		status int
		cutoff time.Time
	}
	results := make([]result, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			<-start
			e := e.with(t)
			r := result{}
			var resp *http.Response
			switch {
			case i%2 == 0:
				r.kind = "secret"
				var sec admin.CreatedSecret
				resp = e.call("POST", path+"/secrets", adm, nil, &sec)
				if sec.ClientSecret != "" {
					e.addSecret(sec.ClientSecret)
				}
			case i == 3:
				r.kind = "revoke"
				var out admin.RevokedTokens
				resp = e.call("POST", path+"/revoke-tokens", adm, nil, &out)
				r.cutoff = out.TokensNotBefore
			case i%4 == 1:
				r.kind, r.value = "name", fmt.Sprintf("name-%02d", i)
				resp = e.call("PATCH", path, adm, map[string]any{"name": r.value}, nil)
			default:
				r.kind, r.value = "description", fmt.Sprintf("description-%02d", i)
				resp = e.call("PATCH", path, adm, map[string]any{"description": r.value}, nil)
			}
			r.status = resp.StatusCode
			results[i] = r
		})
	}
	close(start)
	wg.Wait()

	var got admin.ApplicationResource
	e.mustCall(200, "GET", path, adm, nil, &got)
	var secrets admin.List[admin.SecretResource]
	e.mustCall(200, "GET", path+"/secrets", adm, nil, &secrets)
	var raw json.RawMessage
	e.call("GET", path, adm, nil, &raw)

	created, refusedAtLimit := 0, 0
	names, descs := map[string]bool{}, map[string]bool{}
	for _, r := range results {
		switch {
		case r.kind == "secret" && r.status == 201:
			created++
		case r.kind == "secret" && r.status == 409:
			refusedAtLimit++
		case r.status != 200:
			t.Fatalf("%s write answered %d", r.kind, r.status)
		case r.kind == "name":
			names[r.value] = true
		case r.kind == "description":
			descs[r.value] = true
		}
	}
	if len(secrets.Items) != 10 || created != 9 || created+refusedAtLimit != writers/2 {
		t.Fatalf("%d secrets (%d created, %d refused at the limit), want 10 with 9 created", len(secrets.Items), created, refusedAtLimit)
	}
	// The last acknowledged rename and description are whichever committed
	// last; each must be one that was acknowledged, and the other fields
	// must hold.
	if !names[got.Name] || !descs[got.Description] || got.Disabled {
		t.Fatalf("application after the writers: %s", raw)
	}
	if e.active(rsApp, before) {
		t.Fatal("a token issued before the acknowledged revoke-all introspects active: a concurrent write undid the cutoff")
	}
	if !e.active(rsApp, e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)) {
		t.Fatal("a token issued after the revoke-all is inactive")
	}

	// Disabling races renames: the acknowledged disable survives.
	var wg2 sync.WaitGroup
	for i := range writers {
		wg2.Go(func() {
			body := map[string]any{"name": fmt.Sprintf("rename-%02d", i)}
			if i == writers/2 {
				body = map[string]any{"disabled": true}
			}
			if resp := e.with(t).call("PATCH", path, adm, body, nil); resp.StatusCode != 200 {
				t.Errorf("PATCH %v: %d", body, resp.StatusCode)
			}
		})
	}
	wg2.Wait()
	e.mustCall(200, "GET", path, adm, nil, &got)
	if !got.Disabled {
		t.Fatal("an acknowledged disable was undone by a concurrent rename")
	}
}
