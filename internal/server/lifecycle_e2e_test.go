package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/fake"
)

// newTestClock returns a settable clock for a test server, at the current
// whole second.
func newTestClock() *fake.Clock { return fake.NewClock(time.Now().UTC().Truncate(time.Second)) }

// TestSecretRotationWithOverlap: a second secret is added and the first is
// given a day; both work during the overlap, the old one fails after it,
// deleting a secret stops it at once, and last use is recorded. The old
// secret's updated_at is the rotation; a use changes no updated_at.
func TestSecretRotationWithOverlap(t *testing.T) {
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now))
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "rotating", map[string][]string{usageAPI: nil})
	old := app.ClientSecret
	base := "/admin/v1/applications/" + app.ClientID + "/secrets"
	clk.Add(time.Minute) // the rotation comes after the old secret's creation

	var fresh admin.CreatedSecret
	e.mustCall(201, "POST", base, adm, map[string]any{"expire_others_in": 86400}, &fresh)
	e.addSecret(fresh.ClientSecret)
	if fresh.ExpiresAt != nil || !strings.HasPrefix(fresh.ClientSecret, fresh.Prefix+"_") {
		t.Fatalf("new secret %+v", fresh.SecretResource)
	}
	for _, s := range []string{old, fresh.ClientSecret} {
		e.tokenFor(app.ClientID, s, usageAPI)
	}

	var list admin.List[admin.SecretResource]
	e.mustCall(200, "GET", base, adm, nil, &list)
	if len(list.Items) != 2 {
		t.Fatalf("%d secrets", len(list.Items))
	}
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), old[len(old)-43:]) || strings.Contains(string(raw), fresh.ClientSecret[len(fresh.ClientSecret)-43:]) {
		t.Fatal("the secret list shows a secret")
	}
	updated := map[string]time.Time{}
	for _, s := range list.Items {
		if s.ID == app.Secret.ID && (s.ExpiresAt == nil || !s.ExpiresAt.Equal(clk.Now().Add(24*time.Hour))) {
			t.Fatalf("old secret expiry %v", s.ExpiresAt)
		}
		if s.ID == app.Secret.ID && (!s.CreatedAt.Equal(app.Secret.CreatedAt) || !s.UpdatedAt.Equal(fresh.CreatedAt)) {
			t.Fatalf("old secret created %v, updated %v; want %v, %v", s.CreatedAt, s.UpdatedAt, app.Secret.CreatedAt, fresh.CreatedAt)
		}
		if s.ID == fresh.ID && s.ExpiresAt != nil {
			t.Fatalf("new secret expiry %v", s.ExpiresAt)
		}
		if s.ID == fresh.ID && (!s.UpdatedAt.Equal(s.CreatedAt) || !s.UpdatedAt.Equal(fresh.UpdatedAt)) {
			t.Fatalf("new secret created %v, updated %v (%v when created); want all equal", s.CreatedAt, s.UpdatedAt, fresh.UpdatedAt)
		}
		updated[s.ID] = s.UpdatedAt
	}

	// Last use reaches the store in a batch, not per token.
	if err := e.srv.recorder.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.mustCall(200, "GET", base, adm, nil, &list)
	for _, s := range list.Items {
		if s.LastUsedAt == nil || !s.LastUsedAt.Equal(clk.Now()) {
			t.Fatalf("secret %s last used %v, want %v", s.ID, s.LastUsedAt, clk.Now())
		}
		if !s.UpdatedAt.Equal(updated[s.ID]) {
			t.Fatalf("secret %s updated %v after its use, want %v as before", s.ID, s.UpdatedAt, updated[s.ID])
		}
	}

	clk.Add(24*time.Hour - time.Second)
	adm = e.adminToken()
	e.tokenFor(app.ClientID, old, usageAPI) // still inside the overlap
	clk.Add(time.Second)
	adm = e.adminToken()
	if status, body := e.postForm("/oauth/token", formOf(app.ClientID, old, usageAPI), nil); status != 401 || !strings.Contains(string(body), "invalid_client") {
		t.Fatalf("expired secret: %d %s", status, body)
	}
	e.tokenFor(app.ClientID, fresh.ClientSecret, usageAPI)

	t.Run("delete stops a secret at once", func(t *testing.T) {
		e := e.with(t)
		var third admin.CreatedSecret
		e.mustCall(201, "POST", base, adm, map[string]any{"expires_in": 3600}, &third)
		e.addSecret(third.ClientSecret)
		if third.ExpiresAt == nil || !third.ExpiresAt.Equal(clk.Now().Add(time.Hour)) {
			t.Fatalf("expires_at %v", third.ExpiresAt)
		}
		e.tokenFor(app.ClientID, third.ClientSecret, usageAPI)
		e.mustCall(204, "DELETE", base+"/"+third.ID, adm, nil, nil)
		if status, _ := e.postForm("/oauth/token", formOf(app.ClientID, third.ClientSecret, usageAPI), nil); status != 401 {
			t.Fatalf("deleted secret: %d", status)
		}
		e.mustCall(404, "DELETE", base+"/"+third.ID, adm, nil, nil)
	})
	t.Run("the secret list pages like every list", func(t *testing.T) {
		e := e.with(t)
		var all admin.List[admin.SecretResource]
		e.mustCall(200, "GET", base, adm, nil, &all)
		var first, rest admin.List[admin.SecretResource]
		e.mustCall(200, "GET", base+"?limit=1", adm, nil, &first)
		if len(first.Items) != 1 || first.NextCursor == "" || first.Items[0].ID != all.Items[0].ID {
			t.Fatalf("first page %+v", first)
		}
		e.mustCall(200, "GET", base+"?limit=10&cursor="+first.NextCursor, adm, nil, &rest)
		if len(rest.Items) != len(all.Items)-1 || rest.NextCursor != "" {
			t.Fatalf("second page %+v of %d", rest, len(all.Items))
		}
		e.mustCall(400, "GET", base+"?cursor=bm9wZQ", adm, nil, nil)
	})
	t.Run("bad requests", func(t *testing.T) {
		e := e.with(t)
		e.mustCall(400, "POST", base, adm, map[string]any{"expires_in": 0}, nil)
		e.mustCall(400, "POST", base, adm, map[string]any{"expire_others_in": -1}, nil)
		e.mustCall(404, "POST", "/admin/v1/applications/nosuch/secrets", adm, map[string]any{}, nil)
	})
}

// TestAuditLog: management actions are recorded with their actor and
// address, failed client authentications too, issuance is counted per
// application and audience, filters and pagination work, and no secret or
// token is ever in the log.
func TestAuditLog(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	api := e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "audited", map[string][]string{usageAPI: nil})
	var sec admin.CreatedSecret
	e.mustCall(201, "POST", "/admin/v1/applications/"+app.ClientID+"/secrets", adm, map[string]any{}, &sec)
	e.addSecret(sec.ClientSecret)
	e.mustCall(200, "PATCH", "/admin/v1/applications/"+app.ClientID, adm, map[string]any{"disabled": true}, nil)
	wrong := app.ClientSecret[:len(app.ClientSecret)-1] + "x"
	if wrong == app.ClientSecret {
		wrong = app.ClientSecret[:len(app.ClientSecret)-1] + "y"
	}
	e.postForm("/oauth/token", formOf(app.ClientID, wrong, usageAPI), nil)
	e.postForm("/oauth/token", formOf(app.ClientID, app.ClientSecret, usageAPI), nil) // disabled
	e.mustCall(200, "PATCH", "/admin/v1/applications/"+app.ClientID, adm, map[string]any{"disabled": false}, nil)
	tok := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	e.tokenFor(app.ClientID, sec.ClientSecret, usageAPI)
	// FlushAll, as at shutdown: the issuance counters too, however young
	// (TestUsageInterval shows when Flush writes them).
	if err := e.srv.recorder.FlushAll(context.Background()); err != nil {
		t.Fatal(err)
	}

	var log admin.List[admin.AuditEventResource]
	e.mustCall(200, "GET", "/admin/v1/audit?limit=500", adm, nil, &log)
	want := []struct{ action, target, actor string }{
		{"api.create", api.ID, e.admin.ClientID},
		{"application.create", app.ClientID, e.admin.ClientID},
		{"secret.create", app.ClientID, e.admin.ClientID},
		{"application.update", app.ClientID, e.admin.ClientID},
		{"client.authentication_failed", app.ClientID, app.ClientID},
	}
	for _, w := range want {
		found := false
		for _, ev := range log.Items {
			if ev.Action == w.action && ev.Target == w.target && ev.Actor == w.actor && ev.RemoteAddr != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s event for %s by %s", w.action, w.target, w.actor)
		}
	}
	var reasons []string
	for _, ev := range log.Items {
		if ev.Action == "client.authentication_failed" {
			var d struct{ Reason string }
			json.Unmarshal(ev.Details, &d)
			reasons = append(reasons, d.Reason)
		}
	}
	if strings.Join(reasons, ",") != "application disabled,wrong client secret" { // newest first
		t.Errorf("failure reasons %v", reasons)
	}
	raw, _ := json.Marshal(log)
	for _, s := range []string{app.ClientSecret, sec.ClientSecret, wrong, e.admin.ClientSecret, tok, adm} {
		if strings.Contains(string(raw), s) || strings.Contains(string(raw), s[len(s)-20:]) {
			t.Fatal("the audit log holds a secret or a token")
		}
	}

	t.Run("filters and pagination", func(t *testing.T) {
		e := e.with(t)
		var only admin.List[admin.AuditEventResource]
		e.mustCall(200, "GET", "/admin/v1/audit?action=application.update&target="+app.ClientID, adm, nil, &only)
		if len(only.Items) != 2 {
			t.Fatalf("%d application.update events", len(only.Items))
		}
		e.mustCall(200, "GET", "/admin/v1/audit?actor="+app.ClientID, adm, nil, &only)
		if len(only.Items) != 2 {
			t.Fatalf("%d events by the application", len(only.Items))
		}
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		e.mustCall(200, "GET", "/admin/v1/audit?since="+future, adm, nil, &only)
		if len(only.Items) != 0 {
			t.Fatalf("%d events in the future", len(only.Items))
		}
		seen := map[string]bool{}
		cursor := ""
		for {
			var pg admin.List[admin.AuditEventResource]
			e.mustCall(200, "GET", "/admin/v1/audit?limit=2&cursor="+cursor, adm, nil, &pg)
			for _, ev := range pg.Items {
				if seen[ev.ID] {
					t.Fatal("event repeated across pages")
				}
				seen[ev.ID] = true
			}
			if cursor = pg.NextCursor; cursor == "" {
				break
			}
		}
		if len(seen) != len(log.Items) {
			t.Fatalf("paged %d events, listed %d", len(seen), len(log.Items))
		}
		e.mustCall(400, "GET", "/admin/v1/audit?since=yesterday", adm, nil, nil)
	})

	t.Run("issuance is counted per application and audience", func(t *testing.T) {
		e := e.with(t)
		var usage admin.List[admin.IssuanceResource]
		e.mustCall(200, "GET", "/admin/v1/applications/"+app.ClientID+"/usage", adm, nil, &usage)
		if len(usage.Items) != 1 || usage.Items[0].Count != 2 || usage.Items[0].Audience != usageAPI {
			t.Fatalf("usage %+v", usage.Items)
		}
	})

	t.Run("reading the audit log needs read:audit", func(t *testing.T) {
		e := e.with(t)
		ro := e.createApp(adm, "ro", map[string][]string{"urn:m2mauth:admin": {"read:apis"}})
		tok := e.tokenFor(ro.ClientID, ro.ClientSecret, "urn:m2mauth:admin")
		resp := e.call("GET", "/admin/v1/audit", tok, nil, nil)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

// TestLifecycleIsAudited: each lifecycle action — an application revoking
// its token, a secret rotated, a signing key rotated, an application
// disabled — is in the audit log with its actor, and no secret or token is.
func TestLifecycleIsAudited(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "audited lifecycle", map[string][]string{usageAPI: nil})
	tok := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	_, claims := jwtParts(t, tok)

	form := formOf(app.ClientID, app.ClientSecret, "")
	form.Del("grant_type")
	form.Del("audience")
	form.Set("token", tok)
	if status, body := e.postForm("/oauth/revoke", form, nil); status != 200 {
		t.Fatalf("revoke: %d %s", status, body)
	}
	var sec admin.CreatedSecret
	e.mustCall(201, "POST", "/admin/v1/applications/"+app.ClientID+"/secrets", adm, map[string]any{"expire_others_in": 3600}, &sec)
	e.addSecret(sec.ClientSecret)
	e.mustCall(200, "POST", "/admin/v1/keys/rotate", adm, map[string]any{"alg": "ES256", "force": true}, nil)
	e.mustCall(200, "PATCH", "/admin/v1/applications/"+app.ClientID, adm, map[string]any{"disabled": true}, nil)

	var log admin.List[admin.AuditEventResource]
	e.mustCall(200, "GET", "/admin/v1/audit?limit=500", adm, nil, &log)
	for _, w := range []struct{ action, actor, target string }{
		{"token.revoke", app.ClientID, claims["jti"].(string)},
		{"secret.create", e.admin.ClientID, app.ClientID},
		{"key.rotate", e.admin.ClientID, "ES256"},
		{"application.update", e.admin.ClientID, app.ClientID},
	} {
		found := false
		for _, ev := range log.Items {
			if ev.Action == w.action && ev.Actor == w.actor && (w.target == "" || ev.Target == w.target) && ev.RemoteAddr != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s by %s on %s in the audit log", w.action, w.actor, w.target)
		}
	}
	raw, _ := json.Marshal(log)
	for _, s := range []string{app.ClientSecret, sec.ClientSecret, tok, adm} {
		if strings.Contains(string(raw), s) {
			t.Fatal("the audit log holds a secret or a token")
		}
	}
}

// TestRotateAnswersEveryKey: the rotation's answer is the whole key list,
// and a query parameter cannot turn a rotation that happened into an error.
func TestRotateAnswersEveryKey(t *testing.T) {
	e := newTestEnv(t)
	adm := e.adminToken()
	var out admin.List[admin.KeyResource]
	e.mustCall(200, "POST", "/admin/v1/keys/rotate?limit=0", adm, map[string]any{"alg": "ES256", "force": true}, &out)
	if len(out.Items) != 3 || out.NextCursor != "" { // next, active, retired
		t.Fatalf("rotation answered %d keys, cursor %q", len(out.Items), out.NextCursor)
	}
	var page admin.List[admin.KeyResource]
	e.mustCall(200, "GET", "/admin/v1/keys?limit=2", adm, nil, &page)
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("first page of keys: %d, cursor %q", len(page.Items), page.NextCursor)
	}
}
