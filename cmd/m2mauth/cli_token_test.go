package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/m2mclient"
)

// fakeTokenEndpoint answers POST /oauth/token after check has looked at the
// form; check returns "" for a token, else an error code to refuse with.
func fakeTokenEndpoint(t *testing.T, check func(r *http.Request, form url.Values) string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/oauth/token" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		if code := check(r, r.PostForm); code != "" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":%q,"error_description":"client authentication failed"}`, code)
			return
		}
		fmt.Fprint(w, `{"access_token":"header.payload.sig","token_type":"Bearer","expires_in":300,"scope":"read:usage"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestTokenPrivateKey(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	var base string
	base = fakeTokenEndpoint(t, func(r *http.Request, form url.Values) string {
		if r.Header.Get("Authorization") != "" || form.Has("client_secret") {
			t.Error("a secret was sent")
		}
		if form.Get("grant_type") != "client_credentials" || form.Get("client_id") != "app-1" || form.Get("audience") != usageAPI ||
			form.Get("scope") != "read:usage" || form.Get("client_assertion_type") != m2mclient.AssertionTypeJWTBearer {
			t.Errorf("form = %v", form)
		}
		jws, err := jose.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		payload, err := jws.Verify(&key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Iss, Sub, Aud, Jti string
			Iat, Exp           int64
		}
		json.Unmarshal(payload, &c)
		h := jws.Signatures[0].Protected
		if c.Iss != "app-1" || c.Sub != "app-1" || c.Aud != base || c.Exp-c.Iat != 60 || c.Jti == "" ||
			h.KeyID != "key-1" || h.ExtraHeaders[jose.HeaderType] != m2mclient.AssertionJWTType {
			t.Errorf("assertion claims %+v, header %+v", c, h)
		}
		return ""
	})
	out, _, err := runCLI(t, "", "token", "--server", base, "--client-id", "app-1", "--private-key", keyFile, "--key-id", "key-1",
		"--audience", usageAPI, "--scope", "read:usage", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var resp tokenResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatal(err)
	}
	if resp != (tokenResponse{AccessToken: "header.payload.sig", TokenType: "Bearer", ExpiresIn: 300, Scope: "read:usage"}) {
		t.Errorf("response = %+v", resp)
	}
}

func TestTokenAssertionFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("eyJ.svid.sig\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantType string
		clientID string
	}{
		{"Kubernetes token, no client_id", nil, m2mclient.AssertionTypeJWTBearer, ""},
		{"JWT-SVID with client_id", []string{"--assertion-type", "jwt-spiffe", "--client-id", "app-1"}, m2mclient.AssertionTypeJWTSPIFFE, "app-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := fakeTokenEndpoint(t, func(r *http.Request, form url.Values) string {
				want := url.Values{"grant_type": {"client_credentials"}, "audience": {usageAPI}, "client_assertion_type": {tt.wantType}, "client_assertion": {"eyJ.svid.sig"}}
				if tt.clientID != "" {
					want.Set("client_id", tt.clientID)
				}
				if form.Encode() != want.Encode() || r.Header.Get("Authorization") != "" {
					t.Errorf("form = %v, want %v", form, want)
				}
				return ""
			})
			out, _, err := runCLI(t, "", append([]string{"token", "--server", base, "--assertion-file", file, "--audience", usageAPI}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if out != "header.payload.sig\n" {
				t.Errorf("out = %q", out)
			}
		})
	}
}

func TestTokenSecretlessErrors(t *testing.T) {
	t.Parallel()
	base := fakeTokenEndpoint(t, func(*http.Request, url.Values) string { return "invalid_client" })
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	os.WriteFile(file, []byte("eyJ.x.y"), 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"both methods", []string{"--client-id", "c", "--private-key", file, "--assertion-file", file}, "give --private-key or --assertion-file, not both"},
		{"secret and key", []string{"--client-id", "c", "--client-secret", "s", "--private-key", file}, "--client-secret cannot be given with --private-key"},
		{"key without client_id", []string{"--private-key", file}, "--private-key needs --client-id"},
		{"key id without key", []string{"--client-id", "c", "--client-secret", "s", "--key-id", "k"}, "--key-id needs --private-key"},
		{"type without file", []string{"--client-id", "c", "--client-secret", "s", "--assertion-type", "jwt-spiffe"}, "--assertion-type needs --assertion-file"},
		{"unknown type", []string{"--assertion-file", file, "--assertion-type", "saml"}, `--assertion-type "saml" must be jwt-bearer or jwt-spiffe`},
		{"key file not PEM", []string{"--client-id", "c", "--private-key", file}, "holds no PEM block"},
		{"assertion file missing", []string{"--assertion-file", filepath.Join(dir, "nope")}, "no such file"},
		{"assertion refused", []string{"--assertion-file", file}, "token request: 401 Unauthorized: client authentication failed (invalid_client)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := runCLI(t, "", append([]string{"token", "--server", base}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "eyJ") {
				t.Errorf("the error holds the assertion: %v", err)
			}
		})
	}
}
