package manage_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
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
		{"unknown type", manage.NewCredential{Type: "federated"}, false},
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
