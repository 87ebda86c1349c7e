package manage_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

func jwksOf(t *testing.T, keys ...jose.JSONWebKey) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCredentialValidation: public signing keys for the allowed algorithms
// only, and https URLs only; nothing is written for a refused one.
func TestCredentialValidation(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	id := e.app("worker").Application.ClientID
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	for _, tc := range []struct {
		name string
		in   manage.NewCredential
		ok   bool
	}{
		{"EC P-256 jwks", manage.NewCredential{Type: "jwks", JWKS: jwksOf(t, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "k1", Algorithm: "ES256"})}, true},
		{"Ed25519 and RSA jwks", manage.NewCredential{Type: "jwks", JWKS: jwksOf(t, jose.JSONWebKey{Key: ed, KeyID: "e"}, jose.JSONWebKey{Key: &rsa2048.PublicKey, KeyID: "r", Algorithm: "PS256"})}, true},
		{"https jwks_uri", manage.NewCredential{Type: "jwks_uri", JWKSURI: "https://keys.example.com/jwks.json"}, true},
		{"private key", manage.NewCredential{Type: "jwks", JWKS: jwksOf(t, jose.JSONWebKey{Key: ec, KeyID: "p"})}, false},
		{"symmetric key", manage.NewCredential{Type: "jwks", JWKS: jwksOf(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "s"})}, false},
		{"RSA 1024", manage.NewCredential{Type: "jwks", JWKS: jwksOf(t, jose.JSONWebKey{Key: &rsa1024.PublicKey, KeyID: "r"})}, false},
		{"P-384, no allowed alg", manage.NewCredential{Type: "jwks", JWKS: jwksOf(t, jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "p"})}, false},
		{"alg HS256 on an EC key", manage.NewCredential{Type: "jwks", JWKS: jwksOf(t, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "k", Algorithm: "HS256"})}, false},
		{"RS256 on an EC key", manage.NewCredential{Type: "jwks", JWKS: jwksOf(t, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "k", Algorithm: "RS256"})}, false},
		{"empty jwks", manage.NewCredential{Type: "jwks", JWKS: json.RawMessage(`{"keys":[]}`)}, false},
		{"http jwks_uri", manage.NewCredential{Type: "jwks_uri", JWKSURI: "http://keys.example.com/jwks.json"}, false},
		{"loopback http jwks_uri", manage.NewCredential{Type: "jwks_uri", JWKSURI: "http://127.0.0.1/jwks.json"}, false},
		{"both", manage.NewCredential{Type: "jwks_uri", JWKSURI: "https://keys.example.com/", JWKS: jwksOf(t, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "k1"})}, false},
		{"unknown type", manage.NewCredential{Type: "x509"}, false},
		{"tls_client_auth without a subject or SAN", manage.NewCredential{Type: "tls_client_auth"}, false},
		{"federated without trusted issuer", manage.NewCredential{Type: "federated", Subject: "x"}, false},
		{"jwks_uri with a subject", manage.NewCredential{Type: "jwks_uri", JWKSURI: "https://keys.example.com/", Subject: "x"}, false},
		{"zero expires_in", manage.NewCredential{Type: "jwks_uri", JWKSURI: "https://keys.example.com/", ExpiresIn: new(int64)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.store.ListCredentials(ctx, id)
			c, err := e.svc.CreateCredential(ctx, manage.System(), id, tc.in)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(c.ID, "cred_") || c.CreatedAt.IsZero() || c.Type != tc.in.Type {
					t.Errorf("created %+v", c)
				}
				if strings.Contains(string(c.Config), `"d"`) {
					t.Errorf("stored config holds a private member: %s", c.Config)
				}
				return
			}
			if kind(t, err) != manage.Invalid {
				t.Fatalf("%v, want Invalid", err)
			}
			if after, _ := e.store.ListCredentials(ctx, id); len(after) != len(before) {
				t.Error("a refused credential was stored")
			}
		})
	}
}

// TestCredentialRules: update:applications, never on a stronger
// application, at most 10, audited; expiry; delete.
func TestCredentialRules(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	id := e.app("worker").Application.ClientID
	uri := manage.NewCredential{Type: "jwks_uri", JWKSURI: "https://keys.example.com/jwks.json"}

	_, err := e.svc.CreateCredential(ctx, e.actor(authz.ScopeReadApplications), id, uri)
	wantForbidden(t, err, authz.ScopeUpdateApplications)
	weak := e.actor(authz.ScopeUpdateApplications, authz.ScopeReadApplications)
	_, err = e.svc.CreateCredential(ctx, weak, e.boot.Application.ClientID, uri)
	wantForbidden(t, err, authz.ScopeReadAudit)
	if got, _ := e.store.ListCredentials(ctx, e.boot.Application.ClientID); len(got) != 0 {
		t.Fatal("a credential was added to a stronger application")
	}
	_, err = e.svc.CreateCredential(ctx, weak, "nosuch", uri)
	if kind(t, err) != manage.NotFound {
		t.Fatalf("unknown application: %v", err)
	}

	in := uri
	in.ExpiresIn = new(int64)
	*in.ExpiresIn = 3600
	first, err := e.svc.CreateCredential(ctx, weak, id, in)
	if err != nil {
		t.Fatal(err)
	}
	if want := first.CreatedAt.Add(3600e9); !first.ExpiresAt.Equal(want) {
		t.Errorf("expires at %v, want %v", first.ExpiresAt, want)
	}
	for range manage.MaxCredentialsPerApplication - 1 {
		if _, err := e.svc.CreateCredential(ctx, weak, id, uri); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.CreateCredential(ctx, weak, id, uri); kind(t, err) != manage.TooMany {
		t.Fatalf("the 11th credential: %v, want TooMany", err)
	}
	if n := e.auditCount("credential.create"); n != manage.MaxCredentialsPerApplication {
		t.Errorf("%d credential.create events, want %d", n, manage.MaxCredentialsPerApplication)
	}
	list, err := e.svc.ListCredentials(ctx, e.actor(authz.ScopeReadApplications), id)
	if err != nil || len(list) != manage.MaxCredentialsPerApplication {
		t.Fatalf("list: %d, %v", len(list), err)
	}
	if err := e.svc.DeleteCredential(ctx, weak, id, first.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteCredential(ctx, weak, id, first.ID); kind(t, err) != manage.NotFound {
		t.Fatalf("deleting again: %v", err)
	}
	if n := e.auditCount("credential.delete"); n != 1 {
		t.Errorf("%d credential.delete events, want 1", n)
	}
}

// TestCredentialCountsForTheLastAdministrator: an administrator with a
// credential and no secret is still an administrator; its last credential
// cannot then go.
func TestCredentialCountsForTheLastAdministrator(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	boot := e.boot.Application.ClientID
	cred, err := e.svc.CreateCredential(ctx, manage.System(), boot, manage.NewCredential{Type: "jwks_uri", JWKSURI: "https://keys.example.com/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	secrets, _ := e.store.ListSecrets(ctx, boot)
	if err := e.svc.DeleteSecret(ctx, manage.System(), boot, secrets[0].ID); err != nil {
		t.Fatalf("deleting the last secret of an administrator with a credential: %v", err)
	}
	if err := e.svc.DeleteCredential(ctx, manage.System(), boot, cred.ID); kind(t, err) != manage.LastAdministrator {
		t.Fatalf("deleting its last credential: %v, want LastAdministrator", err)
	}
}

// TestCreateApplicationWithoutSecret: NoSecret creates no secret.
func TestCreateApplicationWithoutSecret(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	app, err := e.svc.CreateApplication(ctx, manage.System(), manage.NewApplication{Name: "keyed", NoSecret: true, Grants: []manage.GrantInput{{Audience: usageAPI}}})
	if err != nil {
		t.Fatal(err)
	}
	if app.ClientSecret != "" || app.Secret.ID != "" {
		t.Errorf("created with a secret: %+v", app)
	}
	if got, _ := e.store.ListSecrets(ctx, app.Application.ClientID); len(got) != 0 {
		t.Errorf("%d secrets stored", len(got))
	}
}

// TestCredentialLimitUnderConcurrency: 32 concurrent credential adds on
// one application, by an actor holding only update:applications, leave
// exactly the limit; every other add is TooMany and unaudited.
func TestCredentialLimitUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	id := e.app("target").Application.ClientID
	actor := e.actor(authz.ScopeUpdateApplications)
	errs := make([]error, 32)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			in := manage.NewCredential{Type: "jwks_uri", JWKSURI: fmt.Sprintf("https://keys.example.com/%d.json", i)}
			_, errs[i] = e.svc.CreateCredential(t.Context(), actor, id, in)
		})
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
	list, err := e.store.ListCredentials(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != created || created != manage.MaxCredentialsPerApplication {
		t.Fatalf("%d credentials, %d adds acknowledged; want %d", len(list), created, manage.MaxCredentialsPerApplication)
	}
	if n := e.auditCount("credential.create"); n != created {
		t.Fatalf("%d credential.create events for %d credentials", n, created)
	}
}

// TestFederatedCredentialValidation: a federated credential names an
// existing trusted issuer and a bounded subject, audience and claims; a
// SPIFFE subject stays in its trust domain; a GitHub Actions subject names
// its owner unless a claim pins it. Nothing is written for a refused one.
func TestFederatedCredentialValidation(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	id := e.app("workload").Application.ClientID
	issuer := func(in manage.NewTrustedIssuer) string {
		ti, err := e.svc.CreateTrustedIssuer(ctx, manage.System(), in)
		if err != nil {
			t.Fatal(err)
		}
		return ti.ID
	}
	gl := issuer(manage.NewTrustedIssuer{Name: "gitlab", Kind: "oidc", Issuer: "https://gitlab.example.com"})
	gh := issuer(manage.NewTrustedIssuer{Name: "github", Kind: "oidc", Issuer: "https://token.actions.githubusercontent.com"})
	ghe := issuer(manage.NewTrustedIssuer{Name: "github enterprise", Kind: "oidc", Issuer: "https://token.actions.githubusercontent.com/acme-corp"})
	sp := issuer(manage.NewTrustedIssuer{Name: "mesh", Kind: "spiffe", TrustDomain: "example.org", BundleURL: "https://spire.example.org/bundle"})
	fed := func(ti, sub string) manage.NewCredential {
		return manage.NewCredential{Type: "federated", TrustedIssuer: ti, Subject: sub}
	}
	with := func(c manage.NewCredential, f func(*manage.NewCredential)) manage.NewCredential { f(&c); return c }
	one := func(v string) authz.ClaimCondition { return authz.ClaimCondition{Values: []string{v}} }
	list := func(v ...string) authz.ClaimCondition { return authz.ClaimCondition{Values: v, List: true} }
	manyClaims := map[string]authz.ClaimCondition{}
	for i := range 17 {
		manyClaims[fmt.Sprint("c", i)] = one("v")
	}
	manyValues := make([]string, 33)
	for _, tc := range []struct {
		name string
		in   manage.NewCredential
		ok   bool
	}{
		{"exact subject", fed(gl, "project_path:acme/billing:ref_type:branch:ref:main"), true},
		{"glob subject, audience and claims", with(fed(gl, "project_path:acme/*:ref_type:branch:ref:*"), func(c *manage.NewCredential) {
			c.Audience = "https://auth.example.com"
			c.Claims = map[string]authz.ClaimCondition{"namespace_path": one("acme"), "environment": list("staging", "prod")}
		}), true},
		{"unknown trusted issuer", fed("tis_nosuch", "x"), false},
		{"empty subject", fed(gl, ""), false},
		{"subject over 512 bytes", fed(gl, strings.Repeat("s", 513)), false},
		{"nine wildcards", fed(gl, strings.Repeat("*:", 8)+"*"), false},
		{"eight wildcards", fed(gl, strings.Repeat("a*:", 7)+"*"), true},
		{"audience over 2048 bytes", with(fed(gl, "x"), func(c *manage.NewCredential) { c.Audience = strings.Repeat("a", 2049) }), false},
		{"17 claims", with(fed(gl, "x"), func(c *manage.NewCredential) { c.Claims = manyClaims }), false},
		{"claim sub", with(fed(gl, "x"), func(c *manage.NewCredential) { c.Claims = map[string]authz.ClaimCondition{"sub": one("x")} }), false},
		{"claim aud", with(fed(gl, "x"), func(c *manage.NewCredential) { c.Claims = map[string]authz.ClaimCondition{"aud": one("x")} }), false},
		{"empty claim name", with(fed(gl, "x"), func(c *manage.NewCredential) { c.Claims = map[string]authz.ClaimCondition{"": one("x")} }), false},
		{"claim name over 128 bytes", with(fed(gl, "x"), func(c *manage.NewCredential) {
			c.Claims = map[string]authz.ClaimCondition{strings.Repeat("n", 129): one("x")}
		}), false},
		{"claim without values", with(fed(gl, "x"), func(c *manage.NewCredential) { c.Claims = map[string]authz.ClaimCondition{"env": list()} }), false},
		{"claim with 33 values", with(fed(gl, "x"), func(c *manage.NewCredential) { c.Claims = map[string]authz.ClaimCondition{"env": list(manyValues...)} }), false},
		{"claim value over 256 bytes", with(fed(gl, "x"), func(c *manage.NewCredential) {
			c.Claims = map[string]authz.ClaimCondition{"env": one(strings.Repeat("v", 257))}
		}), false},
		{"federated with jwks_uri", with(fed(gl, "x"), func(c *manage.NewCredential) { c.JWKSURI = "https://keys.example.com/" }), false},

		{"SPIFFE ID of the trust domain", fed(sp, "spiffe://example.org/ns/billing/sa/worker"), true},
		{"SPIFFE glob within the trust domain", fed(sp, "spiffe://example.org/ns/billing/sa/*"), true},
		{"SPIFFE ID of another trust domain", fed(sp, "spiffe://example.org.evil.com/ns/billing"), false},
		{"SPIFFE trust domain only", fed(sp, "spiffe://example.org/"), false},
		{"SPIFFE wildcard trust domain", fed(sp, "spiffe://*/ns/billing"), false},

		{"GitHub repository branch", fed(gh, "repo:acme/billing:ref:refs/heads/main"), true},
		{"GitHub any repository of the owner", fed(gh, "repo:acme/*:ref:refs/heads/main"), true},
		{"GitHub wildcard owner", fed(gh, "repo:*/billing:ref:refs/heads/main"), false},
		{"GitHub owner prefix", fed(gh, "repo:acme*/billing:environment:prod"), false},
		{"GitHub leading wildcard", fed(gh, "*:environment:prod"), false},
		{"GitHub Enterprise wildcard owner", fed(ghe, "repo:*/billing:ref:refs/heads/main"), false},
		{"GitHub wildcard owner pinned by repository_owner_id", with(fed(gh, "repo:*/billing:ref:refs/heads/main"), func(c *manage.NewCredential) {
			c.Claims = map[string]authz.ClaimCondition{"repository_owner_id": one("1234567")}
		}), true},
		{"GitHub wildcard owner pinned by repository_owner", with(fed(gh, "repo:*/*:*"), func(c *manage.NewCredential) {
			c.Claims = map[string]authz.ClaimCondition{"repository_owner": list("acme")}
		}), true},
		{"GitHub wildcard owner, two owners allowed", with(fed(gh, "repo:*/billing:ref:refs/heads/main"), func(c *manage.NewCredential) {
			c.Claims = map[string]authz.ClaimCondition{"repository_owner": list("acme", "other")}
		}), false},
		{"wildcard owner on another issuer", fed(gl, "repo:*/billing:ref:refs/heads/main"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.store.ListCredentials(ctx, id)
			if len(before) >= manage.MaxCredentialsPerApplication {
				for _, c := range before {
					_ = e.svc.DeleteCredential(ctx, manage.System(), id, c.ID)
				}
				before = nil
			}
			c, err := e.svc.CreateCredential(ctx, manage.System(), id, tc.in)
			if !tc.ok {
				if kind(t, err) != manage.Invalid {
					t.Fatalf("%v, want Invalid", err)
				}
				if after, _ := e.store.ListCredentials(ctx, id); len(after) != len(before) {
					t.Error("a refused credential was stored")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Type != "federated" || c.TrustedIssuerID != tc.in.TrustedIssuer {
				t.Fatalf("created %+v", c)
			}
			var cfg authz.FederatedCredentialConfig
			if err := json.Unmarshal(c.Config, &cfg); err != nil || cfg.TrustedIssuer != tc.in.TrustedIssuer ||
				cfg.Subject != tc.in.Subject || cfg.Audience != tc.in.Audience || len(cfg.Claims) != len(tc.in.Claims) {
				t.Fatalf("stored config %s: %v", c.Config, err)
			}
			stored, _ := e.store.ListFederatedCredentials(ctx, tc.in.TrustedIssuer)
			if !slices.ContainsFunc(stored, func(s authz.Credential) bool { return s.ID == c.ID }) {
				t.Fatal("the credential is not listed for its trusted issuer")
			}
		})
	}

	t.Run("audited with issuer and subject", func(t *testing.T) {
		events, _, _ := e.store.ListAudit(ctx, authz.AuditFilter{Action: "credential.create", Target: id}, authz.Page{Limit: authz.MaxPageLimit})
		found := false
		for _, ev := range events {
			var d map[string]any
			if err := json.Unmarshal([]byte(ev.Details), &d); err != nil {
				t.Fatal(err)
			}
			if d["trusted_issuer"] == sp && d["subject"] == "spiffe://example.org/ns/billing/sa/worker" && d["type"] == "federated" && d["issuer"] == "spiffe://example.org" {
				found = true
			}
		}
		if !found {
			t.Fatalf("no credential.create event names the trusted issuer and subject: %+v", events)
		}
	})
	t.Run("claim conditions keep their form", func(t *testing.T) {
		c, err := e.svc.CreateCredential(ctx, manage.System(), e.app("form").Application.ClientID, with(fed(gl, "x"), func(c *manage.NewCredential) {
			c.Claims = map[string]authz.ClaimCondition{"a": one("1"), "b": list("2")}
		}))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(c.Config), `"a":"1"`) || !strings.Contains(string(c.Config), `"b":["2"]`) {
			t.Fatalf("config %s", c.Config)
		}
	})
}

// TestCreateApplicationWithCredentials: credentials given at creation are
// created in its transaction, audited, counted against the limit; one
// refused refuses the whole application; the secret stays unless
// NoSecret.
func TestCreateApplicationWithCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	ti, err := e.svc.CreateTrustedIssuer(ctx, manage.System(), manage.NewTrustedIssuer{Name: "k8s", Kind: "kubernetes", Issuer: "https://k8s.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	creator := e.actor(authz.ScopeCreateApplications)
	fed := manage.NewCredential{Type: "federated", TrustedIssuer: ti.ID, Subject: "system:serviceaccount:billing:worker", Audience: "https://auth.example.com"}
	uri := manage.NewCredential{Type: "jwks_uri", JWKSURI: "https://keys.example.com/jwks.json"}

	app, err := e.svc.CreateApplication(ctx, creator, manage.NewApplication{Name: "pod", Grants: []manage.GrantInput{{Audience: usageAPI}}, Credentials: []manage.NewCredential{fed, uri}})
	if err != nil {
		t.Fatal(err)
	}
	if app.ClientSecret == "" || len(app.Credentials) != 2 || app.Credentials[0].Type != "federated" || app.Credentials[1].Type != "jwks_uri" ||
		app.Credentials[0].TrustedIssuerID != ti.ID {
		t.Fatalf("created %+v", app)
	}
	if got, _ := e.store.ListCredentials(ctx, app.Application.ClientID); len(got) != 2 {
		t.Fatalf("%d credentials stored", len(got))
	}
	if n := e.auditCount("credential.create"); n != 2 {
		t.Fatalf("%d credential.create events, want 2", n)
	}

	secretless, err := e.svc.CreateApplication(ctx, creator, manage.NewApplication{Name: "pod2", NoSecret: true, Credentials: []manage.NewCredential{fed}})
	if err != nil {
		t.Fatal(err)
	}
	if secretless.ClientSecret != "" || len(secretless.Credentials) != 1 {
		t.Fatalf("created %+v", secretless)
	}

	apps := func() int {
		l, _, _ := e.store.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{Limit: authz.MaxPageLimit})
		return len(l)
	}
	before, events := apps(), e.auditCount("")
	unknown := fed
	unknown.TrustedIssuer = "tis_nosuch"
	_, err = e.svc.CreateApplication(ctx, creator, manage.NewApplication{Name: "bad", Credentials: []manage.NewCredential{uri, unknown}})
	var me *manage.Error
	if !errors.As(err, &me) || me.Kind != manage.Invalid || !strings.Contains(me.Detail, "credentials[1]") || !strings.Contains(me.Detail, "unknown trusted issuer") {
		t.Fatalf("an unknown trusted issuer: %v", err)
	}
	_, err = e.svc.CreateApplication(ctx, creator, manage.NewApplication{Name: "bad", Credentials: []manage.NewCredential{{Type: "jwks_uri", JWKSURI: "http://keys.example.com/"}}})
	if !errors.As(err, &me) || me.Kind != manage.Invalid || !strings.Contains(me.Detail, "credentials[0]") {
		t.Fatalf("an http jwks_uri: %v", err)
	}
	eleven := slices.Repeat([]manage.NewCredential{uri}, manage.MaxCredentialsPerApplication+1)
	if _, err := e.svc.CreateApplication(ctx, creator, manage.NewApplication{Name: "bad", Credentials: eleven}); kind(t, err) != manage.TooMany {
		t.Fatalf("11 credentials: %v, want TooMany", err)
	}
	if apps() != before || e.auditCount("") != events {
		t.Fatal("a refused application was stored or audited")
	}
	ten := slices.Repeat([]manage.NewCredential{uri}, manage.MaxCredentialsPerApplication)
	full, err := e.svc.CreateApplication(ctx, creator, manage.NewApplication{Name: "full", Credentials: ten})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateCredential(ctx, manage.System(), full.Application.ClientID, uri); kind(t, err) != manage.TooMany {
		t.Fatalf("an 11th after 10 at creation: %v, want TooMany", err)
	}
}
