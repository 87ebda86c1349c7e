package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkTokenEndpoint measures the whole token endpoint in process —
// routing, form parsing, client lookup in SQLite, HMAC check, authorization,
// signing, JSON response — per signing algorithm. Compare with
// BenchmarkBareSignature for the cost of the signature alone.
func BenchmarkTokenEndpoint(b *testing.B) {
	e := newTestEnv(b)
	// Quiet logs: the benchmark measures the endpoint, not log formatting.
	e.srv.log = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e.srv.oauth.Log = e.srv.log
	adm := e.adminToken()
	for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256"} {
		aud := "https://bench-" + strings.ToLower(alg) + "/"
		e.createAPI(adm, aud, alg, "read:meters", "create:meters")
		app := e.createApp(adm, "bench "+alg, map[string][]string{aud: nil})
		body := formOf(app.ClientID, app.ClientSecret, aud).Encode()
		h := e.srv.Handler()
		b.Run(alg, func(b *testing.B) { benchTokenRequests(b, h, body) })
	}
}

// benchTokenRequests posts the form body to the token endpoint of h, in
// process, once per iteration; each must succeed.
func benchTokenRequests(b *testing.B, h http.Handler, body string) {
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkBareSignature measures one signature over a typical JWS signing
// input with the standard library alone: the floor under
// BenchmarkTokenEndpoint.
func BenchmarkBareSignature(b *testing.B) {
	input := []byte(strings.Repeat("eyJhbGciOiJFUzI1NiJ9", 20))
	digest := sha256.Sum256(input)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	sign := map[string]func() error{
		"ES256": func() error { _, err := ecdsa.SignASN1(rand.Reader, ec, digest[:]); return err },
		"EdDSA": func() error { ed25519.Sign(ed, input); return nil },
		"RS256": func() error { _, err := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, digest[:]); return err },
		"PS256": func() error {
			_, err := rsa.SignPSS(rand.Reader, rk, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			return err
		},
	}
	for _, alg := range []string{"ES256", "EdDSA", "RS256", "PS256"} {
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := sign[alg](); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
