// Package interop tests m2mauth against client libraries that share no
// code with it: private_key_jwt assertions (RFC 7523 §2.2) signed with
// github.com/golang-jwt/jwt/v5, which is independent of go-jose, sent with
// net/http, and the issued access token verified with the same library
// against the published JWKS, as a resource server in another stack would.
// It is a module of its own so that its dependencies stay out of the
// server's.
package interop

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/m2mauth/m2mauth/internal/server"
)

const audience = "https://meters.interop.test"

// TestPrivateKeyJWTGolangJWT: an application without a secret whose jwks
// credential holds an ES256 or a PS256 public key gets a token with an
// assertion signed by golang-jwt, typed client-authentication+jwt (RFC
// 7523bis) or not, with and without client_id in the body; the same
// assertion is refused the second time (RFC 7523 §3, jti).
func TestPrivateKeyJWTGolangJWT(t *testing.T) {
	m := startServer(t)
	adm := m.adminToken(t)
	m.mustCall(t, http.StatusCreated, "POST", "/admin/v1/apis", adm, map[string]any{
		"identifier": audience, "name": "meters", "signing_alg": "ES256",
		"scopes": []map[string]string{{"value": "read:meters", "description": "read meters"}},
	}, nil)

	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		method jwt.SigningMethod
		key    crypto.Signer
	}{
		{"ES256", jwt.SigningMethodES256, ecKey},
		{"PS256", jwt.SigningMethodPS256, rsaKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var app struct {
				ClientID     string `json:"client_id"`
				ClientSecret string `json:"client_secret"`
			}
			m.mustCall(t, http.StatusCreated, "POST", "/admin/v1/applications", adm, map[string]any{
				"name": "interop " + tc.name, "client_secret": false,
				"grants": []map[string]any{{"audience": audience, "scopes": []string{"read:meters"}}},
			}, &app)
			if app.ClientSecret != "" {
				t.Fatal("an application created with client_secret false has a secret")
			}
			kid := "interop-" + strings.ToLower(tc.name)
			m.mustCall(t, http.StatusCreated, "POST", "/admin/v1/applications/"+app.ClientID+"/credentials", adm, map[string]any{
				"type": "jwks", "jwks": map[string]any{"keys": []map[string]string{publicJWK(t, tc.key.Public(), kid, tc.method.Alg())}},
			}, nil)

			for _, v := range []struct {
				name         string
				typed        bool
				sendClientID bool
			}{
				{"typed, client_id in the body", true, true},
				{"typed, no client_id", true, false},
				{"untyped", false, true},
			} {
				t.Run(v.name, func(t *testing.T) {
					a := m.sign(t, tc.method, tc.key, kid, app.ClientID, v.typed)
					status, body := m.token(t, a, app.ClientID, v.sendClientID)
					if status != http.StatusOK {
						t.Fatalf("token request: %d %s", status, body)
					}
					var tr struct {
						AccessToken string `json:"access_token"`
						TokenType   string `json:"token_type"`
						ExpiresIn   int    `json:"expires_in"`
						Scope       string `json:"scope"`
					}
					if err := json.Unmarshal(body, &tr); err != nil {
						t.Fatal(err)
					}
					if tr.TokenType != "Bearer" || tr.ExpiresIn <= 0 || tr.Scope != "read:meters" {
						t.Fatalf("token response %s", body)
					}
					claims := m.verify(t, tr.AccessToken)
					if claims["client_id"] != app.ClientID || claims["sub"] != app.ClientID || claims["scope"] != "read:meters" {
						t.Fatalf("access token claims %v", claims)
					}

					status, body = m.token(t, a, app.ClientID, v.sendClientID)
					if status != http.StatusUnauthorized || !bytes.Contains(body, []byte(`"invalid_client"`)) {
						t.Fatalf("replayed assertion: %d %s, want 401 invalid_client", status, body)
					}
				})
			}

			t.Run("signed by another key", func(t *testing.T) {
				var other crypto.Signer
				if tc.method == jwt.SigningMethodES256 {
					other, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				} else {
					other, _ = rsa.GenerateKey(rand.Reader, 2048)
				}
				status, body := m.token(t, m.sign(t, tc.method, other, kid, app.ClientID, true), app.ClientID, true)
				if status != http.StatusUnauthorized || !bytes.Contains(body, []byte(`"invalid_client"`)) {
					t.Fatalf("%d %s, want 401 invalid_client", status, body)
				}
			})
		})
	}
}

// m2mauth is a real m2mauth server on a loopback port.
type m2mauth struct {
	url   string
	admin server.Credentials
}

func startServer(t *testing.T) *m2mauth {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var out io.Writer = io.Discard
	if dir := os.Getenv("M2MAUTH_TEST_LOG_DIR"); dir != "" {
		// CI greps every server log of the run for client secrets.
		f, err := os.CreateTemp(dir, "interop-"+strings.ReplaceAll(t.Name(), "/", "_")+"-*.log")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		out = f
	}
	cfg := server.Config{Addr: ln.Addr().String(), DataDir: t.TempDir(), Issuer: "http://" + ln.Addr().String()}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Deps{Log: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.Close()
	})
	m := &m2mauth{url: cfg.Issuer}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, server.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m.admin); err != nil {
		t.Fatal(err)
	}
	return m
}

// adminToken gets a management API token with the bootstrap credentials.
func (m *m2mauth) adminToken(t *testing.T) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {m.admin.Audience}}
	req, _ := http.NewRequest(http.MethodPost, m.url+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(m.admin.ClientID), url.QueryEscape(m.admin.ClientSecret))
	status, body := do(t, req)
	if status != http.StatusOK {
		t.Fatalf("admin token: %d %s", status, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	return tr.AccessToken
}

// mustCall makes a management API request with a JSON body and decodes
// the answer into out (nil to skip); the status must be want.
func (m *m2mauth) mustCall(t *testing.T, want int, method, path, bearer string, body, out any) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, m.url+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	status, b := do(t, req)
	if status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, status, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

// sign makes clientID's client assertion for m with golang-jwt: iss = sub
// = client_id, aud the issuer identifier as one string (RFC 7523bis), a
// lifetime of one minute, a random jti.
func (m *m2mauth) sign(t *testing.T, method jwt.SigningMethod, key crypto.Signer, kid, clientID string, typed bool) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(method, jwt.MapClaims{
		"iss": clientID, "sub": clientID, "aud": m.url,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": rand.Text(),
	})
	tok.Header["kid"] = kid
	if typed {
		tok.Header["typ"] = "client-authentication+jwt"
	} else {
		delete(tok.Header, "typ")
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// token posts a client_credentials request authenticated by assertion.
func (m *m2mauth) token(t *testing.T, assertion, clientID string, sendClientID bool) (int, []byte) {
	t.Helper()
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"audience":              {audience},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	if sendClientID {
		form.Set("client_id", clientID)
	}
	req, _ := http.NewRequest(http.MethodPost, m.url+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

// verify checks an access token with golang-jwt against m's published
// JWKS (RFC 9068: typ at+jwt, iss, aud, exp) and returns its claims.
func (m *m2mauth) verify(t *testing.T, accessToken string) jwt.MapClaims {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, m.url+"/.well-known/jwks.json", nil)
	status, body := do(t, req)
	if status != http.StatusOK {
		t.Fatalf("jwks: %d", status)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(accessToken, claims, func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k["kid"] == tok.Header["kid"] && k["kty"] == "EC" && k["crv"] == "P-256" {
				return ecPublicKey(k["x"], k["y"])
			}
		}
		return nil, fmt.Errorf("no P-256 key with kid %v in the JWKS", tok.Header["kid"])
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(m.url), jwt.WithAudience(audience), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	if typ := tok.Header["typ"]; typ != "at+jwt" {
		t.Fatalf("access token typ %v, want at+jwt (RFC 9068 §2.1)", typ)
	}
	return claims
}

// publicJWK is the JWK (RFC 7517, RFC 7518 §6) of an EC P-256 or RSA
// public key, built by hand.
func publicJWK(t *testing.T, pub crypto.PublicKey, kid, alg string) map[string]string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		raw, err := k.Bytes() // 0x04 || x || y (SEC 1 §2.3.3)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:]), "kid": kid, "alg": alg, "use": "sig"}
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()), "kid": kid, "alg": alg, "use": "sig"}
	}
	t.Fatalf("key type %T", pub)
	return nil
}

// ecPublicKey decodes a P-256 JWK's x and y.
func ecPublicKey(x, y string) (*ecdsa.PublicKey, error) {
	xb, err := base64.RawURLEncoding.DecodeString(x)
	if err != nil {
		return nil, err
	}
	yb, err := base64.RawURLEncoding.DecodeString(y)
	if err != nil {
		return nil, err
	}
	if len(xb) != 32 || len(yb) != 32 {
		return nil, fmt.Errorf("P-256 coordinates of %d and %d bytes", len(xb), len(yb))
	}
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, xb...), yb...))
}

func do(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
