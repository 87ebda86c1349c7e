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
	"strings"
	"testing"
)

// BenchmarkTokenHandler measures the server's token endpoint handler alone,
// per signing algorithm, beside the bare signature of the same algorithm in
// the same run (sub-benchmarks "<alg>/handler" and "<alg>/bare"): the
// done-when ratio of issue 12. Unlike BenchmarkTokenEndpoint, whose
// httptest.NewRequest and NewRecorder cost about a fifth of an EdDSA
// request, the request is parsed once and its body rewound per iteration,
// and the response goes to a reused writer, so what is measured is what
// the handler does: routing, middleware (request ID, access log, metrics,
// limits), form parsing, client authentication (HMAC), the application's
// lookup in the cache, authorization, signing and the JSON response. The
// access log is formatted as in production (slog to io.Discard).
func BenchmarkTokenHandler(b *testing.B) {
	e := newTestEnv(b)
	e.srv.log = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e.srv.oauth.Log = e.srv.log
	adm := e.adminToken()
	input := []byte(strings.Repeat("eyJhbGciOiJFUzI1NiJ9", 20))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	// bare is what the issuer's signer does per token: the SHA-256 of the
	// signing input (not for Ed25519) and the key's Sign.
	bare := map[string]func() error{
		"ES256": func() error {
			d := sha256.Sum256(input)
			_, err := ecdsa.SignASN1(rand.Reader, ec, d[:])
			return err
		},
		"EdDSA": func() error { ed25519.Sign(ed, input); return nil },
		"RS256": func() error {
			d := sha256.Sum256(input)
			_, err := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, d[:])
			return err
		},
	}
	h := e.srv.Handler()
	for _, alg := range []string{"ES256", "EdDSA", "RS256"} {
		aud := "https://handler-" + strings.ToLower(alg) + "/"
		e.createAPI(adm, aud, alg, "read:meters")
		app := e.createApp(adm, "handler "+alg, map[string][]string{aud: nil})
		body := formOf(app.ClientID, app.ClientSecret, aud).Encode()
		b.Run(alg+"/handler", func(b *testing.B) {
			var r strings.Reader
			req, err := http.NewRequest(http.MethodPost, e.url+"/oauth/token", &r)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.RemoteAddr = "127.0.0.1:40000"
			req.RequestURI = "/oauth/token"
			w := &benchWriter{h: make(http.Header, 8)}
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(body)
				req.Body = io.NopCloser(&r)
				req.ContentLength = int64(len(body))
				w.reset()
				h.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("status %d: %s", w.code, w.body)
				}
			}
		})
		b.Run(alg+"/bare", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bare[alg](); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchWriter is a reusable http.ResponseWriter: it keeps the status and
// the body for the benchmark's check and its memory across iterations, as
// a server connection keeps its buffers.
type benchWriter struct {
	h    http.Header
	code int
	body []byte
}

func (w *benchWriter) reset() {
	clear(w.h)
	w.code = 0
	w.body = w.body[:0]
}

func (w *benchWriter) Header() http.Header { return w.h }

func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}
