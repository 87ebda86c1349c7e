package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestFloor(t *testing.T) {
	for _, alg := range []string{"none", "ES256", "EdDSA", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			sig, err := newSigner(alg)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(newFloor(sig))
			defer srv.Close()

			post := func(id, secret, grant string) *http.Response {
				form := url.Values{"grant_type": {grant}, "audience": {floorAudience}}
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(id, secret)
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			resp := post(floorClientID, floorSecret, "client_credentials")
			defer resp.Body.Close()
			var tok struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.TokenType != "Bearer" {
				t.Fatalf("token: %s, %+v, %v", resp.Status, tok, err)
			}
			parts := strings.Split(tok.AccessToken, ".")
			if len(parts) != 3 {
				t.Fatalf("access_token %q: want three parts", tok.AccessToken)
			}
			if sig != nil {
				raw, err := base64.RawURLEncoding.DecodeString(parts[2])
				if err != nil {
					t.Fatal(err)
				}
				if !verify(sig.key.Public(), []byte(parts[0]+"."+parts[1]), raw) {
					t.Fatal("the floor's signature does not verify")
				}
			}
			for name, r := range map[string]*http.Response{
				"wrong secret":   post(floorClientID, "nope", "client_credentials"),
				"unknown client": post("someone", floorSecret, "client_credentials"),
			} {
				r.Body.Close()
				if r.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s: %s, want 401", name, r.Status)
				}
			}
			r := post(floorClientID, floorSecret, "password")
			r.Body.Close()
			if r.StatusCode != http.StatusBadRequest {
				t.Errorf("grant_type password: %s, want 400", r.Status)
			}
		})
	}
}

func verify(pub crypto.PublicKey, input, sig []byte) bool {
	d := sha256.Sum256(input)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, d[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(k, input, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig) == nil
	}
	return false
}

func TestDriveFloor(t *testing.T) {
	srv := httptest.NewServer(newFloor(nil))
	defer srv.Close()
	tgt := target{URL: srv.URL, ClientID: floorClientID, Secret: floorSecret, Audience: floorAudience}
	r, err := drive(context.Background(), newClient(4), tgt, loadOpts{Conns: 4, Duration: 5 * time.Second, Requests: 200})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 200 || r.OK != 200 {
		t.Fatalf("%d requests, %d OK (%v); want 200 bounded by --requests", r.Requests, r.OK, r.Codes)
	}
	if _, err := drive(context.Background(), newClient(1), target{URL: "http://192.0.2.1:80"}, loadOpts{Conns: 1, Duration: time.Second}); err == nil {
		t.Fatal("drive to a non-loopback address: no error")
	}
	if _, err := drive(context.Background(), newClient(1), tgt, loadOpts{Conns: 1, Duration: time.Hour}); err == nil {
		t.Fatal("drive for an hour: no error")
	}
}
