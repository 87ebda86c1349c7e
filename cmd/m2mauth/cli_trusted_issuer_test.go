package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/admin"
)

func TestTrustedIssuerCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t)

	gh := runJSON[admin.TrustedIssuerResource](t, ts, "trusted-issuer", "add", "--name", "github", "--kind", "oidc", "--issuer", "https://token.actions.githubusercontent.com")
	if !strings.HasPrefix(gh.ID, "tis_") || gh.Kind != "oidc" || !gh.SingleUse {
		t.Fatalf("trusted-issuer add oidc: %+v", gh)
	}

	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "sa-1", Algorithm: "RS256", Use: "sig"}}})
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, set, 0o600); err != nil {
		t.Fatal(err)
	}
	out := ts.run(t, "trusted-issuer", "add", "--name", "prod-cluster", "--kind", "kubernetes", "--issuer", "https://kubernetes.default.svc", "--jwks-file", file, "--single-use=true")
	mustContain(t, out, `Added trusted issuer "prod-cluster"`, "kubernetes", "https://kubernetes.default.svc", "1 inline", "Single use  yes")

	if l := runJSON[admin.TrustedIssuerResource](t, ts, "trusted-issuer", "add", "--name", "staging", "--kind", "kubernetes", "--issuer", "https://staging.example.com", "--jwks", file); len(l.JWKS) == 0 {
		t.Fatalf("--jwks, the alias of --jwks-file: %+v", l)
	}
	spire := runJSON[admin.TrustedIssuerResource](t, ts, "trusted-issuer", "add", "--name", "mesh", "--kind", "spiffe", "--trust-domain", "prod.example.org", "--bundle-url", "https://spire.example.org/bundle")
	if spire.Issuer != "spiffe://prod.example.org" || spire.SingleUse || spire.BundleURL != "https://spire.example.org/bundle" {
		t.Fatalf("trusted-issuer add spiffe: %+v", spire)
	}

	if _, _, err := ts.try(t, "trusted-issuer", "add", "--name", "x", "--kind", "oidc", "--issuer", "http://issuer.example.com"); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("an http issuer: %v", err)
	}
	if _, _, err := ts.try(t, "trusted-issuer", "add", "--name", "x", "--issuer", "https://issuer.example.com"); err == nil {
		t.Error("add without --kind succeeded")
	}

	table := ts.run(t, "trusted-issuer", "list")
	mustContain(t, table, "ID", "KIND", gh.ID, "discovery", "prod-cluster", "spiffe://prod.example.org", "https://spire.example.org/bundle")
	l := runJSON[admin.List[admin.TrustedIssuerResource]](t, ts, "trusted-issuer", "list", "--all")
	if len(l.Items) != 4 || l.Items[0].ID != gh.ID {
		t.Fatalf("list: %+v", l.Items)
	}

	// A federated credential naming it, with a one-of claim.
	app := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "deployer", "--no-secret")
	cred := runJSON[admin.CredentialResource](t, ts, "app", "credential", "add", app.ClientID, "--type", "federated", "--trusted-issuer", gh.ID,
		"--subject", "repo:acme/billing:environment:prod", "--claim", "repository_owner=acme", "--claim", "workflow=deploy", "--claim", "workflow=release")
	if cred.Type != "federated" || cred.TrustedIssuer != gh.ID || cred.Subject != "repo:acme/billing:environment:prod" || cred.Audience != "" {
		t.Fatalf("credential add --type federated: %+v", cred)
	}
	if c := cred.Claims["repository_owner"]; c.List || len(c.Values) != 1 || c.Values[0] != "acme" {
		t.Errorf("one --claim: %+v", c)
	}
	if c := cred.Claims["workflow"]; !c.List || strings.Join(c.Values, ",") != "deploy,release" {
		t.Errorf("a repeated --claim: %+v", c)
	}
	// The type follows from the flags; --audience is shown.
	out = ts.run(t, "app", "credential", "add", app.ClientID, "--trusted-issuer", spire.ID, "--subject", "spiffe://prod.example.org/ns/billing/sa/worker", "--audience", "https://auth.example.com")
	mustContain(t, out, "Added a federated credential", spire.ID, "spiffe://prod.example.org/ns/billing/sa/worker", "https://auth.example.com")
	mustContain(t, ts.run(t, "app", "credential", "list", app.ClientID), "repo:acme/billing:environment:prod ("+gh.ID+")", "federated")

	for name, args := range map[string][]string{
		"no subject":              {"--type", "federated", "--trusted-issuer", gh.ID},
		"federated with --jwks":   {"--type", "federated", "--trusted-issuer", gh.ID, "--subject", "x", "--jwks-uri", "https://keys.example.com/"},
		"subject on jwks_uri":     {"--type", "jwks_uri", "--jwks-uri", "https://keys.example.com/", "--subject", "x"},
		"claim without =":         {"--trusted-issuer", gh.ID, "--subject", "repo:acme/x:ref:y", "--claim", "environment"},
		"unknown type":            {"--type", "x509", "--jwks-uri", "https://keys.example.com/"},
		"GitHub wildcard owner":   {"--trusted-issuer", gh.ID, "--subject", "repo:*/billing:ref:refs/heads/main"},
		"unknown trusted issuer":  {"--trusted-issuer", "tis_nosuch", "--subject", "x"},
		"nothing but a client id": {},
	} {
		if _, _, err := ts.try(t, append([]string{"app", "credential", "add", app.ClientID}, args...)...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	if _, _, err := ts.try(t, "trusted-issuer", "remove", gh.ID); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("removing an issuer in use: %v", err)
	}
	ts.run(t, "app", "credential", "remove", app.ClientID, cred.ID)
	mustContain(t, ts.run(t, "trusted-issuer", "remove", gh.ID), "Removed trusted issuer "+gh.ID)
	if _, _, err := ts.try(t, "trusted-issuer", "remove", gh.ID); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("removing again: %v", err)
	}
	if l := runJSON[admin.List[admin.TrustedIssuerResource]](t, ts, "trusted-issuer", "list"); len(l.Items) != 3 {
		t.Fatalf("%d trusted issuers after remove, want 3", len(l.Items))
	}
}

func TestParseClaimConditions(t *testing.T) {
	got, err := parseClaimConditions([]string{"a=1", "b=x=y", "a=2", "c="})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	if string(b) != `{"a":["1","2"],"b":"x=y","c":""}` {
		t.Fatalf("got %s", b)
	}
	for _, bad := range []string{"novalue", "=v"} {
		if _, err := parseClaimConditions([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got, err := parseClaimConditions(nil); got != nil || err != nil {
		t.Errorf("no flags: %v, %v", got, err)
	}
}
