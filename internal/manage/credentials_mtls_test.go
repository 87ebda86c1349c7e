package manage_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

// selfSigned returns a self-signed certificate and its key.
func selfSigned(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "worker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// TestTLSClientAuthCredentialValidation: exactly one of subject_dn and the
// four SANs, each well-formed; self-signed credentials carry their
// certificate (x5c) or its thumbprint (x5t#S256); nothing is written for a
// refused one.
func TestTLSClientAuthCredentialValidation(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	id := e.app("worker").Application.ClientID
	cert, key := selfSigned(t)
	other, _ := selfSigned(t)
	sum := sha256.Sum256(cert.Raw)
	tls := func(f func(*manage.NewCredential)) manage.NewCredential {
		c := manage.NewCredential{Type: authz.CredentialTLSClientAuth}
		f(&c)
		return c
	}
	selfSignedJWKS := func(k jose.JSONWebKey) manage.NewCredential {
		return manage.NewCredential{Type: authz.CredentialSelfSignedTLSClientAuth, JWKS: jwksOf(t, k)}
	}
	for _, tc := range []struct {
		name string
		in   manage.NewCredential
		want string // the stored config's member, "" if refused
	}{
		{"subject DN", tls(func(c *manage.NewCredential) { c.SubjectDN = `CN=worker,O=Example\, Inc.,C=DE` }), `"subject_dn":"CN=worker,O=Example\\, Inc.,C=DE"`},
		{"DNS SAN, lower-cased", tls(func(c *manage.NewCredential) { c.SANDNS = "Worker.Example.com" }), `"san_dns":"worker.example.com"`},
		{"wildcard DNS SAN", tls(func(c *manage.NewCredential) { c.SANDNS = "*.example.com" }), `"san_dns":"*.example.com"`},
		{"URI SAN", tls(func(c *manage.NewCredential) { c.SANURI = "urn:example:worker" }), `"san_uri":"urn:example:worker"`},
		{"SPIFFE ID", tls(func(c *manage.NewCredential) { c.SANURI = "spiffe://example.org/ns/billing/sa/worker" }), `"san_uri":"spiffe://example.org/ns/billing/sa/worker"`},
		{"IP SAN, canonical", tls(func(c *manage.NewCredential) { c.SANIP = "2001:DB8::0:1" }), `"san_ip":"2001:db8::1"`},
		{"email SAN", tls(func(c *manage.NewCredential) { c.SANEmail = "worker@example.com" }), `"san_email":"worker@example.com"`},
		{"self-signed with x5c", selfSignedJWKS(jose.JSONWebKey{Key: &key.PublicKey, Certificates: []*x509.Certificate{cert}}), `"x5c":[`},
		{"self-signed with x5t#S256", selfSignedJWKS(jose.JSONWebKey{Key: &key.PublicKey, CertificateThumbprintSHA256: sum[:]}), `"x5t#S256":`},

		{"nothing to match", tls(func(*manage.NewCredential) {}), ""},
		{"two to match", tls(func(c *manage.NewCredential) { c.SubjectDN, c.SANDNS = "CN=a", "a.example.com" }), ""},
		{"DN that does not parse", tls(func(c *manage.NewCredential) { c.SubjectDN = "worker" }), ""},
		{"DN with an unknown attribute", tls(func(c *manage.NewCredential) { c.SubjectDN = "XX=worker" }), ""},
		{"DN too long", tls(func(c *manage.NewCredential) { c.SubjectDN = "CN=" + strings.Repeat("a", 1100) }), ""},
		{"DNS SAN with a space", tls(func(c *manage.NewCredential) { c.SANDNS = "a b.example.com" }), ""},
		{"DNS SAN too long", tls(func(c *manage.NewCredential) { c.SANDNS = strings.Repeat("a.", 130) + "com" }), ""},
		{"relative URI SAN", tls(func(c *manage.NewCredential) { c.SANURI = "/worker" }), ""},
		{"SPIFFE ID without a path", tls(func(c *manage.NewCredential) { c.SANURI = "spiffe://example.org" }), ""},
		{"SPIFFE ID with an upper-case trust domain", tls(func(c *manage.NewCredential) { c.SANURI = "spiffe://Example.org/w" }), ""},
		{"IP SAN that is a name", tls(func(c *manage.NewCredential) { c.SANIP = "localhost" }), ""},
		{"email SAN without @", tls(func(c *manage.NewCredential) { c.SANEmail = "worker" }), ""},
		{"tls_client_auth with jwks", tls(func(c *manage.NewCredential) {
			c.SANDNS, c.JWKS = "a.example.com", jwksOf(t, jose.JSONWebKey{Key: &key.PublicKey})
		}), ""},
		{"SAN on a jwks credential", manage.NewCredential{Type: "jwks", SANDNS: "a.example.com", JWKS: jwksOf(t, jose.JSONWebKey{Key: &key.PublicKey})}, ""},
		{"self-signed key without certificate", selfSignedJWKS(jose.JSONWebKey{Key: &key.PublicKey}), ""},
		{"self-signed x5c of another key", selfSignedJWKS(jose.JSONWebKey{Key: &key.PublicKey, Certificates: []*x509.Certificate{other}}), ""},
		{"self-signed with jwks_uri", manage.NewCredential{Type: authz.CredentialSelfSignedTLSClientAuth, JWKSURI: "https://keys.example.com/"}, ""},
		{"self-signed with a SAN", manage.NewCredential{Type: authz.CredentialSelfSignedTLSClientAuth, SANDNS: "a.example.com",
			JWKS: jwksOf(t, jose.JSONWebKey{Key: &key.PublicKey, Certificates: []*x509.Certificate{cert}})}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.store.ListCredentials(ctx, id)
			c, err := e.svc.CreateCredential(ctx, manage.System(), id, tc.in)
			if tc.want != "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Type != tc.in.Type || !strings.Contains(string(c.Config), tc.want) {
					t.Fatalf("stored %s %s, want %s", c.Type, c.Config, tc.want)
				}
				// Keep under the per-application limit.
				if err := e.svc.DeleteCredential(ctx, manage.System(), id, c.ID); err != nil {
					t.Fatal(err)
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

// TestTLSClientAuthCredentialRules: the rules of every credential hold
// (update:applications, never on a stronger application), and the match
// is audited.
func TestTLSClientAuthCredentialRules(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	id := e.app("worker").Application.ClientID
	in := manage.NewCredential{Type: authz.CredentialTLSClientAuth, SANURI: "spiffe://example.org/worker"}
	_, err := e.svc.CreateCredential(ctx, e.actor(authz.ScopeReadApplications), id, in)
	wantForbidden(t, err, authz.ScopeUpdateApplications)
	weak := e.actor(authz.ScopeUpdateApplications, authz.ScopeReadApplications)
	_, err = e.svc.CreateCredential(ctx, weak, e.boot.Application.ClientID, in)
	wantForbidden(t, err, authz.ScopeReadAudit)
	if got, _ := e.store.ListCredentials(ctx, e.boot.Application.ClientID); len(got) != 0 {
		t.Fatal("a credential was added to a stronger application")
	}
	c, err := e.svc.CreateCredential(ctx, weak, id, in)
	if err != nil {
		t.Fatal(err)
	}
	events, _, _ := e.store.ListAudit(ctx, authz.AuditFilter{Action: "credential.create", Target: id}, authz.Page{Limit: authz.MaxPageLimit})
	found := false
	for _, ev := range events {
		var d map[string]any
		if err := json.Unmarshal([]byte(ev.Details), &d); err != nil {
			t.Fatal(err)
		}
		if d["credential_id"] == c.ID && d["type"] == authz.CredentialTLSClientAuth && d["san_uri"] == in.SANURI {
			found = true
		}
	}
	if !found {
		t.Fatalf("no credential.create event names the SAN: %+v", events)
	}
}
