package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/m2mauth/m2mauth/dpop"
)

// dpopTokenEndpoint is a token endpoint that requires a DPoP proof with
// its nonce (RFC 9449 §8: the first request gets use_dpop_nonce) and
// answers a token of token_type typ whose cnf.jkt is jkt, or the proof's
// thumbprint if jkt is "".
func dpopTokenEndpoint(t *testing.T, typ, jkt string) (base string, requests *atomic.Int32) {
	t.Helper()
	nonces := dpop.NewNonces(make([]byte, 32), 0, nil)
	requests = &atomic.Int32{}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		p, err := dpop.Verify(r.Context(), r.Header.Values("DPoP"), dpop.VerifyOptions{Method: http.MethodPost, URL: srv.URL + "/oauth/token", Nonces: nonces})
		if err != nil {
			w.Header().Set("DPoP-Nonce", nonces.Current())
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":"use_dpop_nonce","error_description":%q}`, err.Error())
			return
		}
		if jkt == "" {
			jkt = p.JKT
		}
		payload, _ := json.Marshal(map[string]any{"cnf": map[string]string{"jkt": jkt}})
		tok := "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".sig"
		fmt.Fprintf(w, `{"access_token":%q,"token_type":%q,"expires_in":300}`, tok, typ)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

func writeDPoPKey(t *testing.T) (path string, jkt string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(key)
	path = filepath.Join(t.TempDir(), "dpop.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := dpop.NewSigner(key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return path, s.Thumbprint()
}

// TestTokenDPoPKey: --dpop-key sends a proof by the key, retries once with
// the server's nonce, prints the token on stdout and its token_type and
// cnf.jkt on stderr (and in -o json).
func TestTokenDPoPKey(t *testing.T) {
	t.Parallel()
	keyFile, jkt := writeDPoPKey(t)
	base, requests := dpopTokenEndpoint(t, "DPoP", "")
	out, errOut, err := runCLI(t, "", "token", "--server", base, "--client-id", "app-1", "--client-secret", "s3cret", "--audience", usageAPI, "--dpop-key", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("%d token requests, want 2 (the nonce retry)", n)
	}
	if !strings.HasPrefix(out, "eyJ") || strings.Count(out, "\n") != 1 {
		t.Errorf("stdout %q: want the token alone", out)
	}
	for _, want := range []string{"token_type DPoP", "cnf.jkt " + jkt, "Authorization: DPoP <token>", keyFile} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}

	out, _, err = runCLI(t, "", "token", "--server", base, "--client-id", "app-1", "--client-secret", "s3cret", "--audience", usageAPI, "--dpop-key", keyFile, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var resp tokenResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.TokenType != "DPoP" || resp.Confirmation == nil || resp.Confirmation.JKT != jkt {
		t.Errorf("response %+v, want token_type DPoP and cnf.jkt %s", resp, jkt)
	}
}

func TestTokenDPoPKeyErrors(t *testing.T) {
	t.Parallel()
	keyFile, _ := writeDPoPKey(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	bearer, _ := dpopTokenEndpoint(t, "Bearer", "")
	otherKey, _ := dpopTokenEndpoint(t, "DPoP", "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I")
	tests := []struct {
		name, base, key, want string
	}{
		{"missing key file", bearer, filepath.Join(dir, "nope.pem"), "openssl genpkey"},
		{"not PEM", bearer, notPEM, "holds no PEM block"},
		{"server ignores DPoP", bearer, keyFile, "not a DPoP-bound one"},
		{"token bound to another key", otherKey, keyFile, "is not the thumbprint of the --dpop-key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := runCLI(t, "", "token", "--server", tt.base, "--client-id", "app-1", "--client-secret", "s3cret", "--audience", usageAPI, "--dpop-key", tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
