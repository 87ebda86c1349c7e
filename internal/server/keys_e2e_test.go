package server

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/store/sqlite"
	"github.com/m2mauth/m2mauth/internal/token"
	"github.com/m2mauth/m2mauth/rs"
)

func withKeyRotationPeriod(d time.Duration) envOption {
	return func(c *Config, _ *Deps) { c.KeyRotationPeriod = d }
}

// withMasterKeys gives the server its master key and, unless "", the
// previous one, both in standard base64.
func withMasterKeys(primary, previous string) envOption {
	return func(c *Config, _ *Deps) { c.MasterKey, c.PreviousMasterKey = primary, previous }
}

// keyList reads GET /admin/v1/keys with tok.
func (e *testEnv) keyList(tok string) []admin.KeyResource {
	e.t.Helper()
	var l admin.List[admin.KeyResource]
	e.mustCall(http.StatusOK, "GET", "/admin/v1/keys", tok, nil, &l)
	return l.Items
}

// keyIn returns the only key of alg in state st, failing the test unless
// there is exactly one.
func keyIn(t testing.TB, keys []admin.KeyResource, alg string, st authz.KeyState) admin.KeyResource {
	t.Helper()
	var found []admin.KeyResource
	for _, k := range keys {
		if k.Alg == alg && k.State == string(st) {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s keys in state %s, want 1: %+v", len(found), alg, st, keys)
	}
	return found[0]
}

// jwksKIDs returns the kids the server publishes.
func (e *testEnv) jwksKIDs() map[string]bool {
	e.t.Helper()
	resp, body := e.send(mustRequest("GET", e.url+"/.well-known/jwks.json"))
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("jwks: %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		e.t.Fatal(err)
	}
	kids := map[string]bool{}
	for _, k := range set.Keys {
		kids[k.KeyID] = true
	}
	return kids
}

// kid returns the kid in a token's header.
func kid(t testing.TB, tok string) string {
	t.Helper()
	h, _ := jwtParts(t, tok)
	s, _ := h["kid"].(string)
	return s
}

// rsStatus is the status a resource server protected by v's middleware
// answers to a request bearing tok.
func rsStatus(v *rs.Validator, tok string) int {
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	req := httptest.NewRequest("GET", "/meters", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// auditEvents returns the audit events with action, newest first.
func (e *testEnv) auditEvents(action string) []authz.AuditEvent {
	e.t.Helper()
	events, _, err := e.srv.store.ListAudit(context.Background(), authz.AuditFilter{Action: action}, authz.Page{Limit: authz.MaxPageLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	return events
}

// TestSigningKeyRotation follows a forced rotation end to end: the next key
// is published before it signs; after POST /admin/v1/keys/rotate tokens
// carry its kid and a new next key is published; a token of the old key
// still passes a resource server's rs middleware until it expires; once the
// old key's RemoveAfter has passed it is pruned from the JWKS and the old
// token is refused.
func TestSigningKeyRotation(t *testing.T) {
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now))
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...) // ES256, tokens last 3600 s
	app := e.createApp(adm, "meter reader", map[string][]string{usageAPI: nil})

	keys := e.keyList(adm)
	oldActive := keyIn(t, keys, authz.ES256, authz.KeyActive)
	next := keyIn(t, keys, authz.ES256, authz.KeyNext)
	if !e.jwksKIDs()[next.KID] {
		t.Fatal("the next key is not in the JWKS before it signs")
	}
	oldTok := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	if kid(t, oldTok) != oldActive.KID {
		t.Fatalf("token signed by %s, want the active key %s", kid(t, oldTok), oldActive.KID)
	}
	v, err := rs.New(t.Context(), rs.Config{Issuer: e.url, Audience: usageAPI, Now: clk.Now, MinRefreshInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := rsStatus(v, oldTok); got != http.StatusNoContent {
		t.Fatalf("resource server answered %d to a fresh token", got)
	}

	clk.Add(5 * time.Minute)
	rotatedAt := clk.Now()
	var rotated admin.List[admin.KeyResource]
	e.mustCall(http.StatusOK, "POST", "/admin/v1/keys/rotate", adm, map[string]string{"alg": authz.ES256}, &rotated)
	if got := keyIn(t, rotated.Items, authz.ES256, authz.KeyActive); got.KID != next.KID || !got.ActivatedAt.Equal(rotatedAt) {
		t.Errorf("active after rotation: %+v, want %s activated at %v", got, next.KID, rotatedAt)
	}
	retired := keyIn(t, rotated.Items, authz.ES256, authz.KeyRetired)
	// The longest token lifetime is the usage API's 3600 s.
	removeAfter := rotatedAt.Add(time.Hour + token.RemovalMargin)
	if retired.KID != oldActive.KID || !retired.RetiredAt.Equal(rotatedAt) || !retired.RemoveAfter.Equal(removeAfter) {
		t.Errorf("retired after rotation: %+v, want %s retired at %v, removed after %v", retired, oldActive.KID, rotatedAt, removeAfter)
	}
	newNext := keyIn(t, rotated.Items, authz.ES256, authz.KeyNext)
	if newNext.KID == next.KID || newNext.KID == oldActive.KID {
		t.Errorf("no new next key: %+v", rotated.Items)
	}
	jwks := e.jwksKIDs()
	for _, k := range []string{oldActive.KID, next.KID, newNext.KID} {
		if !jwks[k] {
			t.Errorf("key %s is not in the JWKS after rotation", k)
		}
	}
	events := e.auditEvents("key.rotate")
	if len(events) != 1 || events[0].Actor != e.admin.ClientID || events[0].Target != authz.ES256 || !strings.Contains(events[0].Details, next.KID) {
		t.Errorf("audit of the rotation: %+v", events)
	}

	newTok := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	if kid(t, newTok) != next.KID {
		t.Errorf("after rotation, token signed by %s, want %s", kid(t, newTok), next.KID)
	}
	e.verifyWithJWKS(newTok)
	if got := rsStatus(v, newTok); got != http.StatusNoContent {
		t.Errorf("resource server answered %d to a token of the new active key", got)
	}
	if got := rsStatus(v, oldTok); got != http.StatusNoContent {
		t.Errorf("resource server answered %d to a token of the retired key before it expires", got)
	}

	// The old token expires 3600 s after it was issued (rs allows 30 s of
	// leeway); its key stays published until RemoveAfter.
	clk.Add(time.Hour - 5*time.Minute - time.Minute)
	if got := rsStatus(v, oldTok); got != http.StatusNoContent {
		t.Errorf("resource server answered %d to a token of the retired key a minute before it expires", got)
	}
	clk.Add(time.Minute + rs.DefaultLeeway + time.Second)
	if got := rsStatus(v, oldTok); got != http.StatusUnauthorized {
		t.Errorf("resource server answered %d to an expired token", got)
	}
	if err := e.srv.rotateKeysStep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !e.jwksKIDs()[oldActive.KID] {
		t.Error("the retired key left the JWKS before RemoveAfter")
	}

	clk.Add(removeAfter.Sub(clk.Now()))
	if err := e.srv.rotateKeysStep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e.jwksKIDs()[oldActive.KID] {
		t.Error("the retired key is still in the JWKS after RemoveAfter")
	}
	adm = e.adminToken() // the first one has expired
	for _, k := range e.keyList(adm) {
		if k.KID == oldActive.KID {
			t.Errorf("the pruned key is still listed: %+v", k)
		}
	}
	if got := rsStatus(v, oldTok); got != http.StatusUnauthorized {
		t.Errorf("resource server answered %d to the token of a pruned key", got)
	}
	if removed := e.auditEvents("key.remove"); len(removed) != 1 || removed[0].Target != oldActive.KID || removed[0].Actor != "" {
		t.Errorf("audit of the removal: %+v", removed)
	}
	fresh := e.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	if got := rsStatus(v, fresh); got != http.StatusNoContent {
		t.Errorf("resource server answered %d to a fresh token after pruning", got)
	}
}

// TestAutomaticKeyRotation: the rotation step rotates a key once it has
// signed for the rotation period, not before, and only once.
func TestAutomaticKeyRotation(t *testing.T) {
	clk := newTestClock()
	const period = 24 * time.Hour
	e := newTestEnv(t, withClock(clk.Now), withKeyRotationPeriod(period))
	keys := e.keyList(e.adminToken())
	active := keyIn(t, keys, authz.ES256, authz.KeyActive)
	next := keyIn(t, keys, authz.ES256, authz.KeyNext)

	clk.Add(period - time.Second)
	if err := e.srv.rotateKeysStep(t.Context()); err != nil {
		t.Fatal(err)
	}
	adm := e.adminToken()
	if got := keyIn(t, e.keyList(adm), authz.ES256, authz.KeyActive); got.KID != active.KID {
		t.Fatalf("rotated a second before the period elapsed: active %s", got.KID)
	}

	clk.Add(time.Second)
	for range 2 {
		if err := e.srv.rotateKeysStep(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	keys = e.keyList(adm)
	if got := keyIn(t, keys, authz.ES256, authz.KeyActive); got.KID != next.KID {
		t.Errorf("active key %s after the period, want the former next %s", got.KID, next.KID)
	}
	if got := keyIn(t, keys, authz.ES256, authz.KeyRetired); got.KID != active.KID {
		t.Errorf("retired key %s, want %s", got.KID, active.KID)
	}
	newNext := keyIn(t, keys, authz.ES256, authz.KeyNext)
	if !e.jwksKIDs()[newNext.KID] {
		t.Error("the new next key is not published")
	}
	if tok := e.adminToken(); kid(t, tok) != next.KID {
		t.Errorf("token signed by %s, want %s", kid(t, tok), next.KID)
	}
	events := e.auditEvents("key.rotate")
	if len(events) != 1 || events[0].Actor != "" || events[0].Target != authz.ES256 {
		t.Errorf("audit of the automatic rotation: %+v", events)
	}
}

// TestKeysEndpoints: reading the keys needs read:keys and rotating them
// rotate:keys; neither answer ever holds private material.
func TestKeysEndpoints(t *testing.T) {
	clk := newTestClock()
	e := newTestEnv(t, withClock(clk.Now))
	adm := e.adminToken()
	e.createAPI(adm, "https://eddsa.example.com", authz.EdDSA, "read:things")
	reader := e.createApp(adm, "key reader", map[string][]string{authz.ManagementAudience: {authz.ScopeReadKeys}})
	other := e.createApp(adm, "API reader", map[string][]string{authz.ManagementAudience: {authz.ScopeReadAPIs}})
	readerTok := e.tokenFor(reader.ClientID, reader.ClientSecret, authz.ManagementAudience)
	otherTok := e.tokenFor(other.ClientID, other.ClientSecret, authz.ManagementAudience)

	access := []struct {
		name   string
		method string
		path   string
		token  string
		want   int
	}{
		{"no token", "GET", "/admin/v1/keys", "", http.StatusUnauthorized},
		{"without read:keys", "GET", "/admin/v1/keys", otherTok, http.StatusForbidden},
		{"with read:keys", "GET", "/admin/v1/keys", readerTok, http.StatusOK},
		{"rotate without rotate:keys", "POST", "/admin/v1/keys/rotate", readerTok, http.StatusForbidden},
	}
	for _, tc := range access {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			var p problemBody
			resp := e.call(tc.method, tc.path, tc.token, nil, &p)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tc.want, p)
			}
			if tc.want == http.StatusForbidden && p.Code != admin.CodeInsufficientScope {
				t.Errorf("code %q, want insufficient_scope", p.Code)
			}
		})
	}

	t.Run("no private material", func(t *testing.T) {
		e := e.with(t)
		resp, body := e.send(func() *http.Request {
			r := mustRequest("GET", e.url+"/admin/v1/keys")
			r.Header.Set("Authorization", "Bearer "+readerTok)
			return r
		}())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		var raw struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		want := []string{"activated_at", "alg", "created_at", "kid", "remove_after", "retired_at", "state", "updated_at"}
		if len(raw.Items) != 4 { // ES256 and EdDSA, active and next
			t.Errorf("%d keys, want 4", len(raw.Items))
		}
		for _, item := range raw.Items {
			if got := slices.Sorted(maps.Keys(item)); !slices.Equal(got, want) {
				t.Errorf("key members %v, want %v", got, want)
			}
			if item["state"] == "next" && item["activated_at"] != nil {
				t.Errorf("next key with activated_at %v, want null", item["activated_at"])
			}
			if item["retired_at"] != nil || item["remove_after"] != nil {
				t.Errorf("unretired key with retired_at %v, remove_after %v", item["retired_at"], item["remove_after"])
			}
		}
		stored, err := e.srv.store.ListKeys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range stored {
			if len(k.Private) > 8 && strings.Contains(string(body), string(k.Private[len(k.Private)-8:])) {
				t.Error("the answer holds sealed private material")
			}
		}
	})

	rotations := []struct {
		name    string
		body    any
		want    int
		rotated []string // algorithms whose active key changes
	}{
		{"unsupported algorithm", map[string]string{"alg": "HS256"}, http.StatusBadRequest, nil},
		{"algorithm not in use", map[string]string{"alg": authz.RS256}, http.StatusNotFound, nil},
		{"unknown member", map[string]string{"algorithm": authz.ES256}, http.StatusBadRequest, nil},
		{"one algorithm", map[string]string{"alg": authz.EdDSA}, http.StatusOK, []string{authz.EdDSA}},
		{"empty object: every algorithm", map[string]string{}, http.StatusOK, []string{authz.ES256, authz.EdDSA}},
		{"no body: every algorithm", nil, http.StatusOK, []string{authz.ES256, authz.EdDSA}},
	}
	for _, tc := range rotations {
		t.Run("rotate: "+tc.name, func(t *testing.T) {
			e := e.with(t)
			clk.Add(token.JWKSMaxAge * time.Second) // each next key is old enough to rotate to
			adm := e.adminToken()
			before := e.keyList(adm)
			var p problemBody
			resp := e.call("POST", "/admin/v1/keys/rotate", adm, tc.body, &p)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tc.want, p)
			}
			after := e.keyList(adm)
			for _, alg := range []string{authz.ES256, authz.EdDSA} {
				changed := keyIn(t, before, alg, authz.KeyActive).KID != keyIn(t, after, alg, authz.KeyActive).KID
				if changed != slices.Contains(tc.rotated, alg) {
					t.Errorf("%s rotated = %v", alg, changed)
				}
			}
		})
	}
}

// randomMasterKey returns a new master key in standard base64.
func randomMasterKey(t testing.TB) string {
	t.Helper()
	k := make([]byte, masterkey.Len)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return masterkey.Encode(k)
}

// sealerOf returns a Sealer holding only the base64 master key k.
func sealerOf(t testing.TB, k string) *masterkey.Sealer {
	t.Helper()
	key, err := masterkey.Parse(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := masterkey.NewSealer(rand.Reader, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openDataDir opens the SQLite database of a data directory beside (or
// after) its server.
func openDataDir(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "m2mauth.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestMasterKeyRotation: a data directory sealed under master key A is
// restarted with B as primary and A as previous; signing keys and client
// secrets keep working and everything sealed is now under B, so B alone
// works and A alone is refused with a clear error.
func TestMasterKeyRotation(t *testing.T) {
	keyA, keyB := randomMasterKey(t), randomMasterKey(t)
	dir := t.TempDir()

	first := newTestEnv(t, withDataDir(dir), withMasterKeys(keyA, ""))
	adm := first.adminToken()
	first.createAPI(adm, usageAPI, "", usageScopes...)
	app := first.createApp(adm, "meter reader", map[string][]string{usageAPI: nil})
	oldTok := first.tokenFor(app.ClientID, app.ClientSecret, usageAPI)
	first.stop()

	rotating := newTestEnv(t, withDataDir(dir), withMasterKeys(keyB, keyA))
	// The same signing keys: a token signed before the restart verifies
	// against the JWKS, and the keys sign new tokens.
	rotating.verifyWithJWKS(oldTok)
	tok := rotating.tokenFor(app.ClientID, app.ClientSecret, usageAPI) // the pepper opened
	rotating.verifyWithJWKS(tok)
	if kid(t, tok) != kid(t, oldTok) {
		t.Errorf("signing key changed across the master-key rotation: %s, then %s", kid(t, oldTok), kid(t, tok))
	}

	st := openDataDir(t, dir)
	onlyB := sealerOf(t, keyB)
	stored, err := st.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range stored {
		if !onlyB.SealedByPrimary(k.Private) {
			t.Errorf("signing key %s is not sealed under the new master key", k.KID)
		}
		if _, err := onlyB.Open(k.Private, []byte(k.KID)); err != nil {
			t.Errorf("signing key %s does not open with the new master key: %v", k.KID, err)
		}
	}
	pepper, _, err := st.InitSetting(t.Context(), pepperSetting, []byte("unused"))
	if err != nil {
		t.Fatal(err)
	}
	if !onlyB.SealedByPrimary(pepper) {
		t.Error("the client-secret pepper is not sealed under the new master key")
	}
	if _, err := onlyB.Open(pepper, []byte(pepperSetting)); err != nil {
		t.Errorf("the pepper does not open with the new master key: %v", err)
	}
	rotating.stop()
	for _, env := range []*testEnv{first, rotating} {
		for _, k := range []string{keyA, keyB} {
			if strings.Contains(env.logs.String(), k) {
				t.Error("a master key appears in the server log")
			}
		}
	}

	t.Run("the new key alone", func(t *testing.T) {
		e := newTestEnv(t, withDataDir(dir), withMasterKeys(keyB, ""))
		e.verifyWithJWKS(e.tokenFor(app.ClientID, app.ClientSecret, usageAPI))
		e.verifyWithJWKS(oldTok)
		e.stop()
	})

	t.Run("a malformed previous key is refused", func(t *testing.T) {
		cfg := Config{Addr: "127.0.0.1:0", DataDir: dir, MasterKey: keyB, PreviousMasterKey: "not-a-key"}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		srv, err := New(t.Context(), cfg, Deps{Log: first.srv.log})
		if err == nil {
			srv.Close()
			t.Fatal("the server started with a malformed previous master key")
		}
		if !strings.Contains(err.Error(), "previous master key") || strings.Contains(err.Error(), "not-a-key") {
			t.Errorf("error %q does not name the previous master key, or repeats it", err)
		}
	})

	t.Run("the old key alone is refused", func(t *testing.T) {
		cfg := Config{Addr: "127.0.0.1:0", DataDir: dir, MasterKey: keyA}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		srv, err := New(t.Context(), cfg, Deps{Log: first.srv.log})
		if err == nil {
			srv.Close()
			t.Fatal("the server started with a master key that no longer opens the database")
		}
		if !errors.Is(err, masterkey.ErrOpen) || !strings.Contains(err.Error(), "master key") {
			t.Errorf("error %q does not say the master key is wrong", err)
		}
	})
}

// TestBootstrapAdministratorUpgrade: a data directory bootstrapped when
// the management API had fewer scopes gets this version's on restart, and
// its bootstrap administrator is granted them.
func TestBootstrapAdministratorUpgrade(t *testing.T) {
	for _, recorded := range []bool{true, false} {
		name := "administrator recorded at bootstrap"
		if !recorded {
			name = "bootstrapped before the administrator was recorded"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			first := newTestEnv(t, withDataDir(dir))
			first.stop()

			// Downgrade the data directory: the scopes of an older version.
			// Removing them from the API removes them from every grant.
			st := openDataDir(t, dir)
			api, err := st.GetAPIByIdentifier(t.Context(), authz.ManagementAudience)
			if err != nil {
				t.Fatal(err)
			}
			api.Scopes = slices.DeleteFunc(slices.Clone(api.Scopes), func(sc authz.Scope) bool {
				return sc.Value == authz.ScopeReadKeys || sc.Value == authz.ScopeRotateKeys || sc.Value == authz.ScopeReadAudit
			})
			if _, err := st.UpdateAPI(t.Context(), api.ID, authz.APIPatch{Scopes: &api.Scopes, UpdatedAt: api.UpdatedAt}); err != nil {
				t.Fatal(err)
			}
			grants, err := st.ListGrants(t.Context(), first.admin.ClientID)
			if err != nil || len(grants) != 1 || grants[0].HasScope(authz.ScopeReadKeys) {
				t.Fatalf("downgraded grants %+v, %v", grants, err)
			}
			if !recorded {
				db, err := sql.Open("sqlite", filepath.Join(dir, "m2mauth.db"))
				if err != nil {
					t.Fatal(err)
				}
				_, err = db.ExecContext(t.Context(), `DELETE FROM settings WHERE name = ?`, manage.BootstrapAdminSetting)
				db.Close()
				if err != nil {
					t.Fatal(err)
				}
			}

			e := newTestEnv(t, withDataDir(dir))
			adm := e.adminToken()
			var apis admin.List[admin.APIResource]
			e.mustCall(http.StatusOK, "GET", "/admin/v1/apis?identifier="+authz.ManagementAudience, adm, nil, &apis)
			if len(apis.Items) != 1 || !slices.Equal(apis.Items[0].Scopes, authz.ManagementScopes) {
				t.Errorf("management API scopes after restart: %+v", apis.Items)
			}
			_, claims := jwtParts(t, adm)
			scope, _ := claims["scope"].(string)
			for _, sc := range authz.ManagementScopes {
				if !slices.Contains(strings.Fields(scope), sc.Value) {
					t.Errorf("the administrator's token lacks %s: %q", sc.Value, scope)
				}
			}
			e.keyList(adm) // needs read:keys
		})
	}
}
