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

func ptr[T any](v T) *T { return &v }

// bundleOf is a SPIFFE bundle of keys, each with the use given (""
// leaves use out), and a spiffe_sequence.
func bundleOf(t *testing.T, keys []jose.JSONWebKey, uses []string) json.RawMessage {
	t.Helper()
	var out []json.RawMessage
	for i, k := range keys {
		k.Use = ""
		b, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if uses[i] != "" {
			m["use"] = uses[i]
		}
		b, _ = json.Marshal(m)
		out = append(out, b)
	}
	b, err := json.Marshal(map[string]any{"keys": out, "spiffe_sequence": 7, "spiffe_refresh_hint": 300})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrustedIssuerValidation: each kind takes its own fields, https URLs
// without query or fragment, public keys of the allowed algorithms; the
// defaults (spiffe issuer, single_use) are filled in; nothing is written
// for a refused one.
func TestTrustedIssuerValidation(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey := jose.JSONWebKey{Key: &rsa2048.PublicKey, KeyID: "r1", Algorithm: "RS256", Use: "sig"}
	many := make([]jose.JSONWebKey, 21)
	for i := range many {
		many[i] = jose.JSONWebKey{Key: &p256.PublicKey, KeyID: fmt.Sprint(i)}
	}
	x509Key := jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "x"}
	svid := jose.JSONWebKey{Key: &p256.PublicKey, KeyID: "j1"}
	noUse := jose.JSONWebKey{Key: ed, KeyID: "j2"}
	oidc := func(issuer string) manage.NewTrustedIssuer {
		return manage.NewTrustedIssuer{Name: "ci", Kind: "oidc", Issuer: issuer}
	}
	k8s := func(keys json.RawMessage) manage.NewTrustedIssuer {
		return manage.NewTrustedIssuer{Name: "cluster", Kind: "kubernetes", Issuer: "https://kubernetes.default.svc.cluster.local", JWKS: keys}
	}
	spiffe := func(td string, bundle json.RawMessage) manage.NewTrustedIssuer {
		return manage.NewTrustedIssuer{Name: "mesh", Kind: "spiffe", TrustDomain: td, JWKS: bundle}
	}
	n := 0
	uniq := func() string { n++; return fmt.Sprintf("https://issuer%d.example.com", n) }
	for _, tc := range []struct {
		name string
		in   manage.NewTrustedIssuer
		want *authz.TrustedIssuer // nil: Invalid
	}{
		{"oidc by discovery", oidc("https://token.actions.githubusercontent.com"), &authz.TrustedIssuer{Issuer: "https://token.actions.githubusercontent.com", SingleUse: true}},
		{"oidc with jwks_uri", manage.NewTrustedIssuer{Name: "gl", Kind: "oidc", Issuer: "https://gitlab.example.com", JWKSURI: "https://gitlab.example.com/oauth/discovery/keys?x=1"}, &authz.TrustedIssuer{Issuer: "https://gitlab.example.com", JWKSURI: "https://gitlab.example.com/oauth/discovery/keys?x=1", SingleUse: true}},
		{"oidc, single_use false", manage.NewTrustedIssuer{Name: "x", Kind: "oidc", Issuer: "https://reuse.example.com/", SingleUse: ptr(false)}, &authz.TrustedIssuer{Issuer: "https://reuse.example.com/"}},
		{"oidc with inline jwks", manage.NewTrustedIssuer{Name: "x", Kind: "oidc", Issuer: uniq(), JWKS: jwksOf(t, rsaKey)}, nil},
		{"oidc with a trust domain", manage.NewTrustedIssuer{Name: "x", Kind: "oidc", Issuer: uniq(), TrustDomain: "example.org"}, nil},
		{"oidc without issuer", manage.NewTrustedIssuer{Name: "x", Kind: "oidc"}, nil},
		{"http issuer", oidc("http://issuer.example.com"), nil},
		{"loopback http issuer without the switch", oidc("http://127.0.0.1:8443"), nil},
		{"issuer with a query", oidc("https://issuer.example.com/?tenant=1"), nil},
		{"issuer with an empty query", oidc("https://issuer.example.com/?"), nil},
		{"issuer with a fragment", oidc("https://issuer.example.com/#x"), nil},
		{"issuer with user info", oidc("https://user:pw@issuer.example.com/"), nil},
		{"relative issuer", oidc("/issuer"), nil},
		{"issuer over 2048 bytes", oidc("https://issuer.example.com/" + strings.Repeat("a", 2048)), nil},
		{"http jwks_uri", manage.NewTrustedIssuer{Name: "x", Kind: "oidc", Issuer: uniq(), JWKSURI: "http://keys.example.com/"}, nil},
		{"no name", manage.NewTrustedIssuer{Kind: "oidc", Issuer: uniq()}, nil},
		{"name over 200 bytes", manage.NewTrustedIssuer{Name: strings.Repeat("n", 201), Kind: "oidc", Issuer: uniq()}, nil},
		{"unknown kind", manage.NewTrustedIssuer{Name: "x", Kind: "saml", Issuer: uniq()}, nil},

		{"kubernetes by discovery", manage.NewTrustedIssuer{Name: "eks", Kind: "kubernetes", Issuer: "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC"}, &authz.TrustedIssuer{Issuer: "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC"}},
		{"kubernetes inline RSA and ES384", k8s(jwksOf(t, rsaKey, jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "e", Algorithm: "ES384"})), &authz.TrustedIssuer{Issuer: "https://kubernetes.default.svc.cluster.local"}},
		{"kubernetes jwks and jwks_uri", manage.NewTrustedIssuer{Name: "x", Kind: "kubernetes", Issuer: uniq(), JWKSURI: "https://keys.example.com/", JWKS: jwksOf(t, rsaKey)}, nil},
		{"kubernetes private key", k8s(jwksOf(t, jose.JSONWebKey{Key: rsa2048, KeyID: "p"})), nil},
		{"kubernetes RSA 1024", k8s(jwksOf(t, jose.JSONWebKey{Key: &rsa1024.PublicKey, KeyID: "r"})), nil},
		{"kubernetes HS256 alg", k8s(jwksOf(t, jose.JSONWebKey{Key: &p256.PublicKey, KeyID: "h", Algorithm: "HS256"})), nil},
		{"kubernetes P-521 key", k8s(jwksOf(t, jose.JSONWebKey{Key: &p521.PublicKey, KeyID: "p"})), nil},
		{"kubernetes 21 keys", k8s(jwksOf(t, many...)), nil},
		{"kubernetes jwks over 64 KiB", k8s(json.RawMessage(`{"keys":[],"x":"` + strings.Repeat("a", 64<<10) + `"}`)), nil},
		{"kubernetes empty jwks", k8s(json.RawMessage(`{"keys":[]}`)), nil},

		{"spiffe bundle endpoint", manage.NewTrustedIssuer{Name: "mesh", Kind: "spiffe", TrustDomain: "prod.example.org", BundleURL: "https://spire.example.org/bundle"}, &authz.TrustedIssuer{Issuer: "spiffe://prod.example.org", TrustDomain: "prod.example.org", BundleURL: "https://spire.example.org/bundle"}},
		{"spiffe inline bundle", spiffe("inline.example.org", bundleOf(t, []jose.JSONWebKey{svid, x509Key, noUse}, []string{"jwt-svid", "x509-svid", ""})), &authz.TrustedIssuer{Issuer: "spiffe://inline.example.org", TrustDomain: "inline.example.org"}},
		{"spiffe issuer given and equal", manage.NewTrustedIssuer{Name: "m", Kind: "spiffe", Issuer: "spiffe://given.example.org", TrustDomain: "given.example.org", BundleURL: "https://spire.example.org/b2"}, &authz.TrustedIssuer{Issuer: "spiffe://given.example.org", TrustDomain: "given.example.org", BundleURL: "https://spire.example.org/b2"}},
		{"spiffe issuer different", manage.NewTrustedIssuer{Name: "m", Kind: "spiffe", Issuer: "spiffe://other.example.org", TrustDomain: "td.example.org", BundleURL: "https://spire.example.org/b"}, nil},
		{"spiffe both bundle_url and jwks", manage.NewTrustedIssuer{Name: "m", Kind: "spiffe", TrustDomain: "td.example.org", BundleURL: "https://spire.example.org/b", JWKS: bundleOf(t, []jose.JSONWebKey{svid}, []string{"jwt-svid"})}, nil},
		{"spiffe neither", manage.NewTrustedIssuer{Name: "m", Kind: "spiffe", TrustDomain: "td.example.org"}, nil},
		{"spiffe jwks_uri", manage.NewTrustedIssuer{Name: "m", Kind: "spiffe", TrustDomain: "td.example.org", JWKSURI: "https://spire.example.org/b"}, nil},
		{"spiffe x509-svid keys only", spiffe("td.example.org", bundleOf(t, []jose.JSONWebKey{x509Key}, []string{"x509-svid"})), nil},
		{"spiffe key of use sig", spiffe("td.example.org", bundleOf(t, []jose.JSONWebKey{svid}, []string{"sig"})), nil},
		{"spiffe private x509-svid key", spiffe("td.example.org", bundleOf(t, []jose.JSONWebKey{{Key: p384, KeyID: "x"}}, []string{"x509-svid"})), nil},
		{"spiffe uppercase trust domain", manage.NewTrustedIssuer{Name: "m", Kind: "spiffe", TrustDomain: "Example.org", BundleURL: "https://spire.example.org/b"}, nil},
		{"spiffe trust domain with scheme", manage.NewTrustedIssuer{Name: "m", Kind: "spiffe", TrustDomain: "spiffe://example.org", BundleURL: "https://spire.example.org/b"}, nil},
		{"spiffe trust domain over 255 bytes", manage.NewTrustedIssuer{Name: "m", Kind: "spiffe", TrustDomain: strings.Repeat("a", 256), BundleURL: "https://spire.example.org/b"}, nil},
		{"spiffe without trust domain", manage.NewTrustedIssuer{Name: "m", Kind: "spiffe", BundleURL: "https://spire.example.org/b"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.store.ListTrustedIssuers(ctx)
			ti, err := e.svc.CreateTrustedIssuer(ctx, manage.System(), tc.in)
			if tc.want == nil {
				if kind(t, err) != manage.Invalid {
					t.Fatalf("%v, want Invalid", err)
				}
				if after, _ := e.store.ListTrustedIssuers(ctx); len(after) != len(before) {
					t.Error("a refused trusted issuer was stored")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(ti.ID, "tis_") || ti.Kind != tc.in.Kind || ti.Name != tc.in.Name || ti.CreatedAt.IsZero() ||
				ti.Issuer != tc.want.Issuer || ti.JWKSURI != tc.want.JWKSURI || ti.TrustDomain != tc.want.TrustDomain ||
				ti.BundleURL != tc.want.BundleURL || ti.SingleUse != tc.want.SingleUse {
				t.Fatalf("created %+v, want %+v", ti, tc.want)
			}
			stored, err := e.store.GetTrustedIssuer(ctx, ti.ID)
			if err != nil || stored.Issuer != ti.Issuer || string(stored.JWKS) != string(ti.JWKS) {
				t.Fatalf("stored %+v, %v", stored, err)
			}
			if strings.Contains(string(stored.JWKS), `"d"`) {
				t.Errorf("stored keys hold a private member: %s", stored.JWKS)
			}
		})
	}

	t.Run("inline bundle kept as a bundle", func(t *testing.T) {
		ti, err := e.store.TrustedIssuerByIssuer(ctx, "spiffe://inline.example.org")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Keys     []map[string]any `json:"keys"`
			Sequence int              `json:"spiffe_sequence"`
		}
		if err := json.Unmarshal(ti.JWKS, &doc); err != nil || doc.Sequence != 7 || len(doc.Keys) != 3 {
			t.Fatalf("stored bundle %s: %v", ti.JWKS, err)
		}
		if doc.Keys[2]["use"] != "jwt-svid" || doc.Keys[1]["use"] != "x509-svid" {
			t.Fatalf("key uses %v, %v: a key without use should be stored as jwt-svid", doc.Keys[1]["use"], doc.Keys[2]["use"])
		}
	})
}

// TestTrustedIssuerInsecureURLs: with AllowInsecureIssuers, http to a
// loopback host passes, and to any other host still does not.
func TestTrustedIssuerInsecureURLs(t *testing.T) {
	e := newEnv(t)
	e.svc.AllowInsecureIssuers = true
	ctx := t.Context()
	for _, issuer := range []string{"http://127.0.0.1:9000", "http://localhost:9001/realm", "http://[::1]:9002"} {
		if _, err := e.svc.CreateTrustedIssuer(ctx, manage.System(), manage.NewTrustedIssuer{Name: "dev", Kind: "oidc", Issuer: issuer}); err != nil {
			t.Errorf("%s: %v", issuer, err)
		}
	}
	if _, err := e.svc.CreateTrustedIssuer(ctx, manage.System(), manage.NewTrustedIssuer{Name: "dev", Kind: "oidc", Issuer: "http://issuer.example.com"}); kind(t, err) != manage.Invalid {
		t.Fatalf("http to a remote host: %v", err)
	}
	if _, err := e.svc.CreateTrustedIssuer(ctx, manage.System(), manage.NewTrustedIssuer{Name: "dev", Kind: "spiffe", TrustDomain: "dev.local", BundleURL: "http://127.0.0.1:9003/bundle"}); err != nil {
		t.Fatalf("loopback bundle_url: %v", err)
	}
}

// TestTrustedIssuerRules: the scopes, the unique issuer, the audit events,
// and the refusal to delete an issuer a credential names.
func TestTrustedIssuerRules(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	in := manage.NewTrustedIssuer{Name: "github", Kind: "oidc", Issuer: "https://token.actions.githubusercontent.com"}
	reader := e.actor(authz.ScopeReadTrustedIssuers)
	writer := e.actor(authz.ScopeUpdateTrustedIssuers)

	_, err := e.svc.CreateTrustedIssuer(ctx, reader, in)
	wantForbidden(t, err, authz.ScopeUpdateTrustedIssuers)
	ti, err := e.svc.CreateTrustedIssuer(ctx, writer, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateTrustedIssuer(ctx, writer, manage.NewTrustedIssuer{Name: "again", Kind: "oidc", Issuer: in.Issuer}); kind(t, err) != manage.Conflict {
		t.Fatalf("the same issuer twice: %v, want Conflict", err)
	}

	_, err = e.svc.ListTrustedIssuers(ctx, writer)
	wantForbidden(t, err, authz.ScopeReadTrustedIssuers)
	_, err = e.svc.GetTrustedIssuer(ctx, writer, ti.ID)
	wantForbidden(t, err, authz.ScopeReadTrustedIssuers)
	list, err := e.svc.ListTrustedIssuers(ctx, reader)
	if err != nil || len(list) != 1 || list[0].ID != ti.ID {
		t.Fatalf("list: %+v, %v", list, err)
	}
	got, err := e.svc.GetTrustedIssuer(ctx, reader, ti.ID)
	if err != nil || got.Issuer != in.Issuer || !got.SingleUse {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if _, err := e.svc.GetTrustedIssuer(ctx, reader, "tis_nosuch"); kind(t, err) != manage.NotFound {
		t.Fatalf("get unknown: %v", err)
	}

	app := e.app("deployer").Application.ClientID
	cred, err := e.svc.CreateCredential(ctx, manage.System(), app, manage.NewCredential{Type: "federated", TrustedIssuer: ti.ID, Subject: "repo:acme/billing:ref:refs/heads/main"})
	if err != nil {
		t.Fatal(err)
	}
	wantForbidden(t, e.svc.DeleteTrustedIssuer(ctx, reader, ti.ID), authz.ScopeUpdateTrustedIssuers)
	err = e.svc.DeleteTrustedIssuer(ctx, writer, ti.ID)
	var me *manage.Error
	if !errors.As(err, &me) || me.Kind != manage.Conflict || !strings.Contains(me.Detail, "credential") || !strings.Contains(me.Detail, app) {
		t.Fatalf("deleting an issuer a credential names: %v, want Conflict naming the credential's application", err)
	}
	if err := e.svc.DeleteCredential(ctx, manage.System(), app, cred.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteTrustedIssuer(ctx, writer, ti.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteTrustedIssuer(ctx, writer, ti.ID); kind(t, err) != manage.NotFound {
		t.Fatalf("deleting again: %v", err)
	}
	if c, d := e.auditCount("trusted_issuer.create"), e.auditCount("trusted_issuer.delete"); c != 1 || d != 1 {
		t.Fatalf("%d trusted_issuer.create and %d trusted_issuer.delete events, want 1 and 1", c, d)
	}
	events, _, _ := e.store.ListAudit(ctx, authz.AuditFilter{Action: "trusted_issuer.create"}, authz.Page{Limit: 10})
	if events[0].Actor != writer.ClientID || events[0].Target != ti.ID || !strings.Contains(events[0].Details, in.Issuer) {
		t.Fatalf("audit event %+v", events[0])
	}
}

// TestTrustedIssuerLimit: at most 100; the 101st is TooMany and unaudited.
func TestTrustedIssuerLimit(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for i := range manage.MaxTrustedIssuers {
		if _, err := e.svc.CreateTrustedIssuer(ctx, manage.System(), manage.NewTrustedIssuer{Name: "i", Kind: "oidc", Issuer: fmt.Sprintf("https://i%d.example.com", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.CreateTrustedIssuer(ctx, manage.System(), manage.NewTrustedIssuer{Name: "i", Kind: "oidc", Issuer: "https://one-more.example.com"}); kind(t, err) != manage.TooMany {
		t.Fatalf("the 101st: %v, want TooMany", err)
	}
	if n := e.auditCount("trusted_issuer.create"); n != manage.MaxTrustedIssuers {
		t.Fatalf("%d trusted_issuer.create events", n)
	}
}

// TestTrustedIssuerScopesAreBoundedByTheActor: the new scopes follow the
// rules of every management scope: an actor without update:trusted-issuers
// cannot grant it, nor act on an application holding it; an actor holding
// only update:trusted-issuers cannot attach a credential.
func TestTrustedIssuerScopesAreBoundedByTheActor(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	admin := e.actor(authz.ScopeCreateApplications, authz.ScopeUpdateApplications, authz.ScopeReadApplications, authz.ScopeReadTrustedIssuers)
	worker := e.app("worker").Application.ClientID
	ti, err := e.svc.CreateTrustedIssuer(ctx, manage.System(), manage.NewTrustedIssuer{Name: "k8s", Kind: "kubernetes", Issuer: "https://k8s.example.com"})
	if err != nil {
		t.Fatal(err)
	}

	want := []string{authz.ScopeUpdateTrustedIssuers}
	_, err = e.svc.CreateGrant(ctx, admin, worker, manage.GrantInput{Audience: authz.ManagementAudience, Scopes: &want})
	wantForbidden(t, err, authz.ScopeUpdateTrustedIssuers)
	_, err = e.svc.CreateApplication(ctx, admin, manage.NewApplication{Name: "child", Grants: []manage.GrantInput{{Audience: authz.ManagementAudience, Scopes: &want}}})
	wantForbidden(t, err, authz.ScopeUpdateTrustedIssuers)
	child, err := e.svc.CreateApplication(ctx, admin, manage.NewApplication{Name: "child", Grants: []manage.GrantInput{{Audience: authz.ManagementAudience}}})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(child.Grants[0].Scopes, authz.ScopeUpdateTrustedIssuers) {
		t.Fatalf("omitted scopes granted %v", child.Grants[0].Scopes)
	}

	// An application holding update:trusted-issuers is stronger than the
	// admin: no credential of its may be added by it.
	issuerAdmin := e.actor(authz.ScopeUpdateTrustedIssuers)
	fed := manage.NewCredential{Type: "federated", TrustedIssuer: ti.ID, Subject: "system:serviceaccount:billing:worker"}
	_, err = e.svc.CreateCredential(ctx, admin, issuerAdmin.ClientID, fed)
	wantForbidden(t, err, authz.ScopeUpdateTrustedIssuers)
	// And one holding only update:trusted-issuers attaches no credential.
	_, err = e.svc.CreateCredential(ctx, issuerAdmin, worker, fed)
	wantForbidden(t, err, authz.ScopeUpdateApplications)
	if got, _ := e.store.ListFederatedCredentials(ctx, ti.ID); len(got) != 0 {
		t.Fatalf("%d federated credentials were stored", len(got))
	}
	if _, err := e.svc.CreateCredential(ctx, admin, worker, fed); err != nil {
		t.Fatalf("an admin with update:applications on a weaker application: %v", err)
	}

	// Every trusted issuer action needs its scope, whatever else is held.
	for scope, call := range map[string]func(a manage.Actor) error{
		authz.ScopeUpdateTrustedIssuers: func(a manage.Actor) error {
			_, err := e.svc.CreateTrustedIssuer(ctx, a, manage.NewTrustedIssuer{Name: "x", Kind: "oidc", Issuer: "https://x.example.com"})
			return err
		},
		authz.ScopeReadTrustedIssuers: func(a manage.Actor) error { _, err := e.svc.ListTrustedIssuers(ctx, a); return err },
	} {
		var less []string
		for _, sc := range authz.ManagementScopes {
			if sc.Value != scope {
				less = append(less, sc.Value)
			}
		}
		wantForbidden(t, call(manage.Actor{ClientID: "someone", Scopes: less}), scope)
	}
	wantForbidden(t, e.svc.DeleteTrustedIssuer(ctx, manage.Actor{Scopes: []string{authz.ScopeReadTrustedIssuers}}, ti.ID), authz.ScopeUpdateTrustedIssuers)
}

// TestUpgradeAddsTheTrustedIssuerScopes: a database from before trusted
// issuers gets both scopes on the management API and for the bootstrap
// administrator; a new one has them from the start.
func TestUpgradeAddsTheTrustedIssuerScopes(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	newScopes := []string{authz.ScopeReadTrustedIssuers, authz.ScopeUpdateTrustedIssuers}
	for _, sc := range newScopes {
		if !slices.Contains(e.boot.Grants[0].Scopes, sc) {
			t.Fatalf("the bootstrap administrator lacks %s", sc)
		}
	}
	api, _ := e.store.GetAPIByIdentifier(ctx, authz.ManagementAudience)
	old := slices.DeleteFunc(slices.Clone(api.Scopes), func(s authz.Scope) bool { return slices.Contains(newScopes, s.Value) })
	if _, err := e.store.UpdateAPI(ctx, api.ID, authz.APIPatch{Scopes: &old, UpdatedAt: api.UpdatedAt}); err != nil {
		t.Fatal(err)
	}
	g := e.boot.Grants[0]
	g.Scopes = slices.DeleteFunc(slices.Clone(g.Scopes), func(s string) bool { return slices.Contains(newScopes, s) })
	if err := e.store.UpdateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	api, _ = e.store.GetAPIByIdentifier(ctx, authz.ManagementAudience)
	got, _ := e.store.GetGrant(ctx, g.ClientID, g.ID)
	for _, sc := range newScopes {
		if !api.HasScope(sc) || !slices.Contains(got.Scopes, sc) {
			t.Fatalf("after upgrade: API scopes %v, bootstrap grant %v; want %s in both", api.ScopeValues(), got.Scopes, sc)
		}
	}
}

// TestCredentialAndIssuerDeleteRace: 16 concurrent federated credential
// adds naming one issuer race its deletion. Either the deletion came
// first (every add is Invalid, no credential names the issuer) or it was
// refused (the issuer stays, every add succeeded and is stored): never a
// credential naming a deleted issuer.
func TestCredentialAndIssuerDeleteRace(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	apps := make([]string, 16)
	for i := range apps {
		apps[i] = e.app(fmt.Sprint("w", i)).Application.ClientID
	}
	for round := range 3 {
		ti, err := e.svc.CreateTrustedIssuer(ctx, manage.System(), manage.NewTrustedIssuer{Name: "k8s", Kind: "kubernetes", Issuer: fmt.Sprintf("https://k8s-%d.example.com", round)})
		if err != nil {
			t.Fatal(err)
		}
		errs := make([]error, len(apps))
		var delErr error
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range apps {
			wg.Go(func() {
				<-start
				_, errs[i] = e.svc.CreateCredential(ctx, manage.System(), apps[i], manage.NewCredential{Type: "federated", TrustedIssuer: ti.ID, Subject: "system:serviceaccount:ns:sa"})
			})
		}
		wg.Go(func() {
			<-start
			delErr = e.svc.DeleteTrustedIssuer(ctx, manage.System(), ti.ID)
		})
		close(start)
		wg.Wait()
		created := 0
		for _, err := range errs {
			if err == nil {
				created++
			} else if kind(t, err) != manage.Invalid {
				t.Fatalf("round %d: add: %v", round, err)
			}
		}
		stored, err := e.store.ListFederatedCredentials(ctx, ti.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, getErr := e.store.GetTrustedIssuer(ctx, ti.ID)
		switch {
		case delErr == nil:
			if created != 0 || len(stored) != 0 || !errors.Is(getErr, authz.ErrNotFound) {
				t.Fatalf("round %d: deleted, yet %d adds succeeded, %d stored, get: %v", round, created, len(stored), getErr)
			}
		case kind(t, delErr) == manage.Conflict:
			if created != len(apps) || len(stored) != len(apps) || getErr != nil {
				t.Fatalf("round %d: delete refused; %d adds succeeded, %d stored, get: %v", round, created, len(stored), getErr)
			}
		default:
			t.Fatalf("round %d: delete: %v", round, delErr)
		}
		for _, c := range stored {
			if err := e.svc.DeleteCredential(ctx, manage.System(), c.ClientID, c.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
}
