package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkTokenEndpoint measures the whole token endpoint in process —
// routing, form parsing, client lookup in SQLite, HMAC check, authorization,
// signing, JSON response — per signing algorithm. Compare with
// BenchmarkBareSignature for the cost of the signature alone.
func BenchmarkTokenEndpoint(b *testing.B) {
	// Quiet logs: the benchmark measures the endpoint, not log formatting.
	e := newTestEnv(b, quietLog(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
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

// BenchmarkTokenEndpointPrivateKeyJWT is BenchmarkTokenEndpoint for one
// ES256 API with each client authentication: client_secret_post, and
// private_key_jwt with an ES256 assertion (RFC 7523 §2.2) verified with an
// inline jwks credential. The second adds one ES256 verify, the read of
// the application's credentials and the jti's write in SQLite (replay
// protection); the assertions are signed beforehand, outside the timer,
// as a client would. Compare with BenchmarkES256.
func BenchmarkTokenEndpointPrivateKeyJWT(b *testing.B) {
	e := newTestEnv(b, quietLog(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	adm := e.adminToken()
	const aud = "https://bench-pkjwt/"
	e.createAPI(adm, aud, "ES256", "read:meters")
	app := e.createApp(adm, "bench secret", map[string][]string{aud: nil})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var keyed struct {
		ClientID string `json:"client_id"`
	}
	e.mustCall(http.StatusCreated, "POST", "/admin/v1/applications", adm, map[string]any{
		"name": "bench private_key_jwt", "client_secret": false, "grants": []map[string]any{{"audience": aud}},
	}, &keyed)
	addJWKSCredential(e, keyed.ClientID, key, "k1")
	h := e.srv.Handler()

	b.Run("client_secret", func(b *testing.B) { benchTokenRequests(b, h, formOf(app.ClientID, app.ClientSecret, aud).Encode()) })
	b.Run("private_key_jwt ES256", func(b *testing.B) {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("client-authentication+jwt").WithHeader("kid", "k1"))
		if err != nil {
			b.Fatal(err)
		}
		var pool []string
		sign := func() {
			pool = pool[:0]
			now := time.Now()
			for range 500 {
				payload, _ := json.Marshal(map[string]any{"iss": keyed.ClientID, "sub": keyed.ClientID, "aud": e.url,
					"exp": now.Add(2 * time.Minute).Unix(), "iat": now.Unix(), "jti": rand.Text()})
				jws, err := sig.Sign(payload)
				if err != nil {
					b.Fatal(err)
				}
				a, _ := jws.CompactSerialize()
				pool = append(pool, url.Values{
					"grant_type": {"client_credentials"}, "audience": {aud},
					"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a},
				}.Encode())
			}
		}
		sign()
		next := 0
		b.ReportAllocs()
		for b.Loop() {
			if next == len(pool) {
				b.StopTimer()
				sign()
				next = 0
				b.StartTimer()
			}
			req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(pool[next]))
			next++
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkES256 measures one ES256 signature and one verification over a
// typical JWS signing input with the standard library alone: what
// private_key_jwt adds to a token request is one verify (the client signs).
func BenchmarkES256(b *testing.B) {
	input := []byte(strings.Repeat("eyJhbGciOiJFUzI1NiJ9", 20))
	digest := sha256.Sum256(input)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig, err := ecdsa.SignASN1(rand.Reader, ec, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.Run("sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ecdsa.SignASN1(rand.Reader, ec, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ecdsa.VerifyASN1(&ec.PublicKey, digest[:], sig) {
				b.Fatal("signature does not verify")
			}
		}
	})
}

// BenchmarkUseJTI measures the replay store's write alone (SQLite, one
// transaction per fresh jti): the part of BenchmarkTokenEndpointPrivateKeyJWT
// that is neither a signature nor today's overhead.
func BenchmarkUseJTI(b *testing.B) {
	e := newTestEnv(b)
	exp := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if fresh, err := e.srv.db.UseJTI(b.Context(), "bench:"+rand.Text(), exp); err != nil || !fresh {
			b.Fatalf("UseJTI = %v, %v", fresh, err)
		}
	}
}
