package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/internal/admin"
)

func TestCredentialCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.run(t, "api", "create", "--identifier", usageAPI, "--scope", "read:usage")
	out := ts.run(t, "app", "create", "--name", "keyed-worker", "--grant", usageAPI, "--no-secret")
	mustContain(t, out, "No client secret")
	if strings.Contains(out, "client_secret") {
		t.Fatalf("app create --no-secret showed a secret:\n%s", out)
	}
	app := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "keyed-2", "--no-secret")
	if app.ClientSecret != "" || app.Secret != nil {
		t.Fatalf("--no-secret created %+v", app)
	}
	id := app.ClientID
	if l := runJSON[admin.List[admin.SecretResource]](t, ts, "app", "secret", "list", id); len(l.Items) != 0 {
		t.Fatalf("%d secrets", len(l.Items))
	}

	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, set, 0o600); err != nil {
		t.Fatal(err)
	}
	inline := runJSON[admin.CredentialResource](t, ts, "app", "credential", "add", id, "--jwks", file, "--expires-in", "720h")
	if !strings.HasPrefix(inline.ID, "cred_") || inline.Type != "jwks" || inline.ExpiresAt == nil || inline.LastUsedAt != nil ||
		inline.ExpiresAt.Sub(inline.CreatedAt) != 720*time.Hour || !strings.Contains(string(inline.JWKS), `"k1"`) {
		t.Fatalf("credential add --jwks: %+v", inline)
	}
	out = ts.run(t, "app", "credential", "add", id, "--jwks-uri", "https://keys.example.com/jwks.json")
	mustContain(t, out, "Added a jwks_uri credential", "https://keys.example.com/jwks.json", "never")

	if _, _, err := ts.try(t, "app", "credential", "add", id, "--jwks-uri", "http://keys.example.com/jwks.json"); err == nil {
		t.Error("an http jwks_uri was accepted")
	}
	private, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k, KeyID: "p"}}})
	if err := os.WriteFile(file, private, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.try(t, "app", "credential", "add", id, "--jwks", file); err == nil {
		t.Error("a private key was accepted")
	}

	table := ts.run(t, "app", "credential", "list", id)
	mustContain(t, table, "CREDENTIAL ID", inline.ID, "1 inline", "https://keys.example.com/jwks.json")
	l := runJSON[admin.List[admin.CredentialResource]](t, ts, "app", "credential", "list", id)
	if len(l.Items) != 2 {
		t.Fatalf("%d credentials, want 2", len(l.Items))
	}
	mustContain(t, ts.run(t, "app", "credential", "remove", id, inline.ID), "Removed credential "+inline.ID)
	if l := runJSON[admin.List[admin.CredentialResource]](t, ts, "app", "credential", "list", id); len(l.Items) != 1 {
		t.Fatalf("%d credentials after remove, want 1", len(l.Items))
	}
	if _, _, err := ts.try(t, "app", "credential", "remove", id, inline.ID); err == nil {
		t.Error("removing again succeeded")
	}
}
