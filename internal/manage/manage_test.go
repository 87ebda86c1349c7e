package manage_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/manage"
	"github.com/m2mauth/m2mauth/internal/store/sqlite"
	"github.com/m2mauth/m2mauth/internal/token"
)

// noKeys is a KeyEnsurer for algorithms that need no key in these tests.
type noKeys struct{}

func (noKeys) Ensure(context.Context, string) error { return nil }

// env is a Service on a real SQLite store with a bootstrapped management
// API, and its clock.
type env struct {
	t     *testing.T
	svc   *manage.Service
	store *sqlite.Store
	clock *fake.Clock
	boot  manage.CreatedApplication
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "m2mauth.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pepper := make([]byte, clientsecret.PepperLen)
	rand.Read(pepper)
	hasher, err := clientsecret.NewHasher(pepper)
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClock(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	svc := &manage.Service{
		Store: st, Hasher: hasher, Keys: noKeys{}, DenyList: fake.NewDenyList(), DefaultAlg: authz.ES256,
		Now: c.Now, Rand: rand.Reader, Log: slog.New(slog.DiscardHandler),
	}
	boot, err := svc.Bootstrap(t.Context())
	if err != nil || boot == nil {
		t.Fatalf("bootstrap: %v, %v", boot, err)
	}
	e := &env{t: t, svc: svc, store: st, clock: c, boot: *boot}
	if _, err := e.svc.CreateAPI(t.Context(), manage.System(), manage.NewAPI{Identifier: "https://usage.example.com/", Scopes: []authz.Scope{{Value: "read:usage"}, {Value: "write:usage"}}}); err != nil {
		t.Fatal(err)
	}
	return e
}

const usageAPI = "https://usage.example.com/"

// actor returns an actor holding exactly scopes, backed by an application
// granted them (so that other applications can be compared with it).
func (e *env) actor(scopes ...string) manage.Actor {
	e.t.Helper()
	sc := slices.Clone(scopes)
	name := fmt.Sprint(scopes)
	if len(name) > 200 { // every management scope is longer than a name may be
		name = name[:200]
	}
	app, err := e.svc.CreateApplication(e.t.Context(), manage.System(), manage.NewApplication{
		Name: name, Grants: []manage.GrantInput{{Audience: authz.ManagementAudience, Scopes: &sc}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return manage.Actor{ClientID: app.Application.ClientID, Scopes: scopes}
}

func (e *env) app(name string) manage.CreatedApplication {
	e.t.Helper()
	app, err := e.svc.CreateApplication(e.t.Context(), manage.System(), manage.NewApplication{Name: name, Grants: []manage.GrantInput{{Audience: usageAPI}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return app
}

// kind returns err's manage.Kind, failing t if err is not a *manage.Error.
func kind(t *testing.T, err error) manage.Kind {
	t.Helper()
	var me *manage.Error
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T) is not a *manage.Error", err, err)
	}
	return me.Kind
}

func wantForbidden(t *testing.T, err error, missing ...string) {
	t.Helper()
	var me *manage.Error
	if !errors.As(err, &me) || me.Kind != manage.Forbidden {
		t.Fatalf("error %v, want Forbidden", err)
	}
	for _, sc := range missing {
		if !slices.Contains(me.MissingScopes, sc) {
			t.Fatalf("Forbidden names %v, want %s among them", me.MissingScopes, sc)
		}
	}
}

func (e *env) auditCount(action string) int {
	e.t.Helper()
	events, _, err := e.store.ListAudit(e.t.Context(), authz.AuditFilter{Action: action}, authz.Page{Limit: authz.MaxPageLimit})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(events)
}

// TestEveryActionNeedsItsScope: an actor holding every management scope
// but the one an action needs is refused with Forbidden naming it, and
// nothing is written.
func TestEveryActionNeedsItsScope(t *testing.T) {
	e := newEnv(t)
	target := e.app("target")
	id := target.Application.ClientID
	ctx := t.Context()
	noop := []string{}
	cases := []struct {
		scope string
		call  func(a manage.Actor) error
	}{
		{authz.ScopeCreateAPIs, func(a manage.Actor) error {
			_, err := e.svc.CreateAPI(ctx, a, manage.NewAPI{Identifier: "https://new.example.com/"})
			return err
		}},
		{authz.ScopeReadAPIs, func(a manage.Actor) error {
			_, _, err := e.svc.ListAPIs(ctx, a, authz.APIFilter{}, authz.Page{})
			return err
		}},
		{authz.ScopeUpdateAPIs, func(a manage.Actor) error {
			n := "x"
			_, err := e.svc.UpdateAPI(ctx, a, "api_nope", manage.APIChange{Name: &n})
			return err
		}},
		{authz.ScopeDeleteAPIs, func(a manage.Actor) error { return e.svc.DeleteAPI(ctx, a, "api_nope") }},
		{authz.ScopeCreateApplications, func(a manage.Actor) error {
			_, err := e.svc.CreateApplication(ctx, a, manage.NewApplication{Name: "n"})
			return err
		}},
		{authz.ScopeReadApplications, func(a manage.Actor) error {
			_, _, err := e.svc.GetApplication(ctx, a, id)
			return err
		}},
		{authz.ScopeUpdateApplications, func(a manage.Actor) error {
			d := "x"
			_, _, err := e.svc.UpdateApplication(ctx, a, id, manage.ApplicationChange{Description: &d})
			return err
		}},
		{authz.ScopeUpdateApplications, func(a manage.Actor) error {
			_, err := e.svc.CreateSecret(ctx, a, id, manage.NewSecret{})
			return err
		}},
		{authz.ScopeUpdateApplications, func(a manage.Actor) error {
			_, err := e.svc.CreateGrant(ctx, a, id, manage.GrantInput{Audience: authz.ManagementAudience, Scopes: &noop})
			return err
		}},
		{authz.ScopeDeleteApplications, func(a manage.Actor) error { return e.svc.DeleteApplication(ctx, a, id) }},
		{authz.ScopeUpdateIntrospection, func(a manage.Actor) error {
			aud := []string{usageAPI}
			_, _, err := e.svc.UpdateApplication(ctx, a, id, manage.ApplicationChange{Introspection: manage.Introspection{Audiences: &aud}})
			return err
		}},
		{authz.ScopeReadKeys, func(a manage.Actor) error {
			_, err := e.svc.ListKeys(ctx, a)
			return err
		}},
		{authz.ScopeRotateKeys, func(a manage.Actor) error { return e.svc.RotateKeys(ctx, a, "", true) }},
		{authz.ScopeReadAudit, func(a manage.Actor) error {
			_, _, err := e.svc.ListAudit(ctx, a, authz.AuditFilter{}, authz.Page{})
			return err
		}},
		{authz.ScopeRevokeTokens, func(a manage.Actor) error {
			_, err := e.svc.RevokeApplicationTokens(ctx, a, id)
			return err
		}},
		{authz.ScopeRevokeTokens, func(a manage.Actor) error {
			_, err := e.svc.RevokeToken(ctx, a, "x")
			return err
		}},
	}
	before := e.auditCount("")
	for _, tc := range cases {
		t.Run(tc.scope, func(t *testing.T) {
			var less []string
			for _, sc := range authz.ManagementScopes {
				if sc.Value != tc.scope {
					less = append(less, sc.Value)
				}
			}
			wantForbidden(t, tc.call(manage.Actor{ClientID: "someone", Scopes: less}), tc.scope)
		})
	}
	if after := e.auditCount(""); after != before {
		t.Fatalf("refused actions wrote %d audit events", after-before)
	}
}

// TestManagementGrantsAreBoundedByTheActor: a management-API grant holds
// only scopes the actor holds, whichever way it is made, and omitted
// scopes mean the actor's own.
func TestManagementGrantsAreBoundedByTheActor(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	creator := e.actor(authz.ScopeCreateApplications, authz.ScopeReadAPIs)
	updater := e.actor(authz.ScopeUpdateApplications, authz.ScopeReadApplications)
	worker := e.app("worker")
	all := []string{authz.ScopeReadAudit, authz.ScopeCreateApplications}

	_, err := e.svc.CreateApplication(ctx, creator, manage.NewApplication{Name: "child", Grants: []manage.GrantInput{{Audience: authz.ManagementAudience, Scopes: &all}}})
	wantForbidden(t, err, authz.ScopeReadAudit)

	child, err := e.svc.CreateApplication(ctx, creator, manage.NewApplication{Name: "child", Grants: []manage.GrantInput{{Audience: authz.ManagementAudience}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := child.Grants[0].Scopes; !slices.Equal(got, []string{authz.ScopeReadAPIs, authz.ScopeCreateApplications}) {
		t.Fatalf("omitted scopes granted %v, want the creator's own", got)
	}

	wide := []string{authz.ScopeUpdateApplications, authz.ScopeDeleteApplications}
	_, err = e.svc.CreateGrant(ctx, updater, worker.Application.ClientID, manage.GrantInput{Audience: authz.ManagementAudience, Scopes: &wide})
	wantForbidden(t, err, authz.ScopeDeleteApplications)

	grants, _ := e.store.ListGrants(ctx, updater.ClientID)
	var own authz.Grant
	for _, g := range grants {
		if g.Audience == authz.ManagementAudience {
			own = g
		}
	}
	_, err = e.svc.UpdateGrant(ctx, updater, updater.ClientID, own.ID, scopesChange(append(slices.Clone(updater.Scopes), authz.ScopeRotateKeys)))
	wantForbidden(t, err, authz.ScopeRotateKeys)

	// Grants on other APIs are not bounded by management scopes.
	if _, err := e.svc.UpdateGrant(ctx, updater, worker.Application.ClientID, worker.Grants[0].ID, scopesChange([]string{"read:usage"})); err != nil {
		t.Fatal(err)
	}
}

// TestNoActionOnAStrongerApplication: a secret, a change, a grant change
// or a deletion of an application holding management scopes the actor
// lacks is refused, and revoking its tokens is not.
func TestNoActionOnAStrongerApplication(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	a := e.actor(authz.ScopeUpdateApplications, authz.ScopeDeleteApplications, authz.ScopeRevokeTokens)
	boot := e.boot.Application.ClientID

	_, err := e.svc.CreateSecret(ctx, a, boot, manage.NewSecret{})
	wantForbidden(t, err, authz.ScopeReadAudit, authz.ScopeRotateKeys)
	name := "pwned"
	_, _, err = e.svc.UpdateApplication(ctx, a, boot, manage.ApplicationChange{Name: &name})
	wantForbidden(t, err, authz.ScopeReadAudit)
	wantForbidden(t, e.svc.DeleteGrant(ctx, a, boot, e.boot.Grants[0].ID), authz.ScopeReadAudit)
	wantForbidden(t, e.svc.DeleteApplication(ctx, a, boot), authz.ScopeReadAudit)
	secrets, _ := e.store.ListSecrets(ctx, boot)
	wantForbidden(t, e.svc.DeleteSecret(ctx, a, boot, secrets[0].ID), authz.ScopeReadAudit)
	if got, _ := e.store.ListSecrets(ctx, boot); len(got) != 1 {
		t.Fatalf("the stronger application has %d secrets", len(got))
	}
	if _, err := e.svc.RevokeApplicationTokens(ctx, a, boot); err != nil {
		t.Fatalf("revoke-all on a stronger application: %v", err)
	}
	// An equal or weaker one is fine.
	peer := e.actor(authz.ScopeUpdateApplications)
	if _, err := e.svc.CreateSecret(ctx, a, peer.ClientID, manage.NewSecret{}); err != nil {
		t.Fatal(err)
	}
}

// TestIntrospectionRights: introspection rights need update:introspection,
// name existing audiences, never the management API; can_introspect true
// means every other audience.
func TestIntrospectionRights(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	full := manage.System()
	id := e.app("rs").Application.ClientID
	mgmt := []string{authz.ManagementAudience}
	_, _, err := e.svc.UpdateApplication(ctx, full, id, manage.ApplicationChange{Introspection: manage.Introspection{Audiences: &mgmt}})
	if kind(t, err) != manage.Invalid {
		t.Fatalf("management audience: %v", err)
	}
	unknown := []string{"https://nobody.example.com/"}
	if _, _, err = e.svc.UpdateApplication(ctx, full, id, manage.ApplicationChange{Introspection: manage.Introspection{Audiences: &unknown}}); kind(t, err) != manage.Invalid {
		t.Fatalf("unknown audience: %v", err)
	}
	yes := true
	app, _, err := e.svc.UpdateApplication(ctx, full, id, manage.ApplicationChange{Introspection: manage.Introspection{CanIntrospect: &yes}})
	if err != nil || !slices.Equal(app.IntrospectAudiences, []string{usageAPI}) {
		t.Fatalf("can_introspect true: %v, %v", app.IntrospectAudiences, err)
	}
	if app.MayIntrospect(authz.ManagementAudience) {
		t.Fatal("may introspect management tokens")
	}
}

// TestLastAdministratorGuard: the changes that would leave no usable full
// administrator are refused, roll back whole (no audit event), and the
// same changes pass once there is another.
func TestLastAdministratorGuard(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	boot := e.boot.Application.ClientID
	full := manage.Actor{ClientID: boot, Scopes: manage.System().Scopes}
	secrets, _ := e.store.ListSecrets(ctx, boot)
	before := e.auditCount("")

	for name, err := range map[string]error{
		"delete grant": e.svc.DeleteGrant(ctx, full, boot, e.boot.Grants[0].ID),
		"narrow grant": func() error {
			_, err := e.svc.UpdateGrant(ctx, full, boot, e.boot.Grants[0].ID, scopesChange([]string{authz.ScopeReadAPIs}))
			return err
		}(),
		"delete last secret": e.svc.DeleteSecret(ctx, full, boot, secrets[0].ID),
		"disable by the system": func() error {
			yes := true
			_, _, err := e.svc.UpdateApplication(ctx, manage.System(), boot, manage.ApplicationChange{Disabled: &yes})
			return err
		}(),
		"delete by the system": e.svc.DeleteApplication(ctx, manage.System(), boot),
	} {
		if kind(t, err) != manage.LastAdministrator {
			t.Errorf("%s: %v, want LastAdministrator", name, err)
		}
	}
	if after := e.auditCount(""); after != before {
		t.Fatalf("refused changes wrote %d audit events", after-before)
	}
	if c, err := e.store.Client(ctx, boot); err != nil || c.Application.Disabled || len(c.Secrets) != 1 || len(c.Grants) != 1 || len(c.Grants[0].Grant.Scopes) != len(authz.ManagementScopes) {
		t.Fatalf("the administrator changed: %+v, %v", c, err)
	}

	// An expiring secret is no administrator once it has expired.
	second := e.actor(manage.System().Scopes...)
	in := int64(60)
	zero := int64(0)
	if _, err := e.svc.CreateSecret(ctx, full, second.ClientID, manage.NewSecret{ExpiresIn: &in, ExpireOthersIn: &zero}); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(2 * time.Minute)
	if err := e.svc.DeleteApplication(ctx, second, boot); kind(t, err) != manage.LastAdministrator {
		t.Fatalf("deleting the last usable administrator: %v", err)
	}
	if _, err := e.svc.CreateSecret(ctx, full, second.ClientID, manage.NewSecret{}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteApplication(ctx, second, boot); err != nil {
		t.Fatalf("with another administrator: %v", err)
	}
}

// TestSecretLimitUnderConcurrency: 32 concurrent secret adds leave exactly
// MaxSecretsPerApplication secrets; every other add is TooMany.
func TestSecretLimitUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	id := e.app("target").Application.ClientID
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Go(func() { _, errs[i] = e.svc.CreateSecret(t.Context(), manage.System(), id, manage.NewSecret{}) })
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		if err == nil {
			created++
		} else if kind(t, err) != manage.TooMany {
			t.Fatalf("add: %v", err)
		}
	}
	list, _ := e.store.ListSecrets(t.Context(), id)
	if len(list) != manage.MaxSecretsPerApplication || created != manage.MaxSecretsPerApplication-1 {
		t.Fatalf("%d secrets, %d adds acknowledged; want %d", len(list), created, manage.MaxSecretsPerApplication)
	}
	if n := e.auditCount("secret.create"); n != created {
		t.Fatalf("%d secret.create events for %d secrets", n, created)
	}
}

// TestUpgrade: the management API gets this version's scopes and the
// configured lifetime; the bootstrap administrator gets only the scopes
// that are new, so a scope an operator took from it stays taken.
func TestUpgrade(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	api, _ := e.store.GetAPIByIdentifier(ctx, authz.ManagementAudience)
	old := slices.DeleteFunc(slices.Clone(api.Scopes), func(s authz.Scope) bool { return s.Value == authz.ScopeUpdateIntrospection })
	if _, err := e.store.UpdateAPI(ctx, api.ID, authz.APIPatch{Scopes: &old, UpdatedAt: api.UpdatedAt}); err != nil { // as an older version left it
		t.Fatal(err)
	}
	g := e.boot.Grants[0]
	g.Scopes = slices.DeleteFunc(slices.Clone(g.Scopes), func(s string) bool { return s == authz.ScopeRotateKeys || s == authz.ScopeUpdateIntrospection })
	if err := e.store.UpdateGrant(ctx, g); err != nil { // and an operator narrowed it
		t.Fatal(err)
	}
	e.svc.AdminTokenLifetime = 30 * time.Minute
	for range 2 { // idempotent
		if err := e.svc.Upgrade(ctx); err != nil {
			t.Fatal(err)
		}
	}
	api, _ = e.store.GetAPIByIdentifier(ctx, authz.ManagementAudience)
	if !slices.Equal(api.Scopes, authz.ManagementScopes) || api.TokenLifetime != 30*time.Minute {
		t.Fatalf("management API after upgrade: %+v", api)
	}
	got, _ := e.store.GetGrant(ctx, g.ClientID, g.ID)
	if !slices.Contains(got.Scopes, authz.ScopeUpdateIntrospection) || slices.Contains(got.Scopes, authz.ScopeRotateKeys) {
		t.Fatalf("bootstrap grant after upgrade: %v", got.Scopes)
	}
	if n := e.auditCount("management.upgrade"); n != 1 {
		t.Fatalf("%d management.upgrade events, want 1", n)
	}
}

// TestRecover: a new full administrator appears whatever the state of the
// others, and is audited.
func TestRecover(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if err := e.store.DeleteApplication(ctx, e.boot.Application.ClientID); err != nil { // by hand
		t.Fatal(err)
	}
	rec, err := e.svc.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.store.Client(ctx, rec.Application.ClientID)
	if err != nil || len(c.Grants) != 1 || len(c.Grants[0].Grant.Scopes) != len(authz.ManagementScopes) {
		t.Fatalf("recovered administrator %+v, %v", c, err)
	}
	id, err := clientsecret.Parse(rec.ClientSecret)
	if err != nil || c.Secret(id) == nil || !e.svc.Hasher.Verify(rec.ClientSecret, c.Secret(id).Hash) {
		t.Fatalf("recovered secret does not authenticate: %v", err)
	}
	if n := e.auditCount("administrator.recover"); n != 1 {
		t.Fatalf("%d administrator.recover events", n)
	}
}

// TestRevokeToken: a revoked token's jti is stored with its audit event;
// an invalid token is Invalid and changes nothing.
func TestRevokeToken(t *testing.T) {
	e := newEnv(t)
	e.svc.Verifier = verifierFunc(func(tok string) (*token.Claims, error) {
		if tok != "good" {
			return nil, token.ErrSignature
		}
		return &token.Claims{JTI: "jti-1", ClientID: "c", Audience: usageAPI, Expiry: e.clock.Now().Add(time.Hour).Unix()}, nil
	})
	if _, err := e.svc.RevokeToken(t.Context(), manage.System(), "forged"); kind(t, err) != manage.Invalid {
		t.Fatalf("forged: %v", err)
	}
	if _, err := e.svc.RevokeToken(t.Context(), manage.System(), "good"); err != nil {
		t.Fatal(err)
	}
	revoked, _ := e.store.ListRevoked(t.Context())
	if _, ok := revoked["jti-1"]; !ok || len(revoked) != 1 || e.auditCount("token.revoke") != 1 {
		t.Fatalf("deny-list %v", revoked)
	}
}

type verifierFunc func(string) (*token.Claims, error)

func (f verifierFunc) Verify(tok string) (*token.Claims, error) { return f(tok) }

// scopesChange is a GrantChange of the scopes only.
func scopesChange(scopes []string) manage.GrantChange { return manage.GrantChange{Scopes: &scopes} }
