package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/admin"
)

// TestCredentialCommandsMTLS: tls_client_auth by subject DN or SAN, and a
// self-signed certificate from a PEM file, each told from the flags.
func TestCredentialCommandsMTLS(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	id := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "mtls-worker", "--no-secret").ClientID

	dn := runJSON[admin.CredentialResource](t, ts, "app", "credential", "add", id, "--subject-dn", "CN=worker,O=Example,C=DE")
	if dn.Type != "tls_client_auth" || dn.SubjectDN != "CN=worker,O=Example,C=DE" {
		t.Fatalf("--subject-dn: %+v", dn)
	}
	out := ts.run(t, "app", "credential", "add", id, "--san-uri", "spiffe://example.org/worker")
	mustContain(t, out, "Added a tls_client_auth credential", "URI spiffe://example.org/worker")
	if _, _, err := ts.try(t, "app", "credential", "add", id, "--san-dns", "a.example.com", "--san-ip", "192.0.2.1"); err == nil {
		t.Error("two SANs were accepted")
	}
	if _, _, err := ts.try(t, "app", "credential", "add", id, "--type", "jwks", "--san-dns", "a.example.com"); err == nil {
		t.Error("a SAN on a jwks credential was accepted")
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "worker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "worker.crt")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	self := runJSON[admin.CredentialResource](t, ts, "app", "credential", "add", id, "--cert", file)
	if self.Type != "self_signed_tls_client_auth" || !strings.Contains(string(self.JWKS), `"x5c"`) {
		t.Fatalf("--cert: %+v", self)
	}
	if _, _, err := ts.try(t, "app", "credential", "add", id, "--cert", filepath.Join(t.TempDir(), "none.crt")); err == nil {
		t.Error("a missing --cert file was accepted")
	}
	table := ts.run(t, "app", "credential", "list", id)
	mustContain(t, table, "subject CN=worker,O=Example,C=DE", "self_signed_tls_client_auth", "1 inline")
}
