package rs_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/rs"
)

// alwaysFresh is a replay store that never refuses, so one proof can be
// verified b.N times: the benchmark then measures the proof check alone.
type alwaysFresh struct{}

func (alwaysFresh) UseJTI(context.Context, string, time.Time) (bool, error) { return true, nil }

// benchMiddleware runs h on a request with header b.N times.
func benchMiddleware(b *testing.B, h http.Handler, header http.Header) {
	b.Helper()
	r := httptest.NewRequest("GET", "http://api.example.com/meters", nil)
	r.Header = header
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkMiddlewareBearer is the cost of a protected request with a
// plain ES256 bearer token not seen before (the verified-token cache is
// off): the baseline of BenchmarkMiddlewareDPoP.
func BenchmarkMiddlewareBearer(b *testing.B) {
	iss := newTestIssuer(b)
	iss.addKey("es", "ES256")
	v := iss.validator(func(c *rs.Config) { c.TokenCacheEntries = -1 })
	tok := iss.token("es", "ES256", "at+jwt", iss.claims("read:meters"))
	benchMiddleware(b, v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})), bearerHeader(tok))
}

// BenchmarkMiddlewareDPoP is the cost of a protected request with a
// DPoP-bound ES256 token and an ES256 proof: token check, proof check
// (signature, htm/htu, iat, ath) and key binding, with the verified-token
// cache off. The replay store is a no-op here; BenchmarkReplayCache
// measures the default one.
func BenchmarkMiddlewareDPoP(b *testing.B) {
	iss := newTestIssuer(b)
	iss.addKey("es", "ES256")
	v := iss.validator(func(c *rs.Config) { c.DPoP.Replay = alwaysFresh{}; c.TokenCacheEntries = -1 })
	_, signer := newDPoPKey(b, iss.clock.Now)
	tok := iss.token("es", "ES256", "at+jwt", boundClaims(iss, "read:meters", map[string]any{"jkt": signer.Thumbprint()}))
	proof := mustProof(b, signer, "GET", "http://api.example.com/meters", tok, "")
	benchMiddleware(b, v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})), dpopHeader(tok, proof))
}

// BenchmarkReplayCache is the default replay cache's UseJTI with fresh
// keys from parallel goroutines.
func BenchmarkReplayCache(b *testing.B) {
	c := rs.NewReplayCache(rs.DefaultReplayEntries, nil)
	exp := time.Now().Add(time.Minute)
	var n atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			// Past the bound, answers are ErrReplayCacheFull: still the
			// cost a request pays.
			_, _ = c.UseJTI(ctx, "dpop:0123456789abcdefghijklmnopqrstuvwxyzABCDEFG:"+strconv.FormatInt(i, 10), exp)
		}
	})
}

// BenchmarkMiddlewareBearerCached is BenchmarkMiddlewareBearer with the
// default verified-token cache: a client reusing its token.
func BenchmarkMiddlewareBearerCached(b *testing.B) {
	iss := newTestIssuer(b)
	iss.addKey("es", "ES256")
	v := iss.validator(nil)
	tok := iss.token("es", "ES256", "at+jwt", iss.claims("read:meters"))
	benchMiddleware(b, v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})), bearerHeader(tok))
}

// BenchmarkMiddlewareDPoPCached is BenchmarkMiddlewareDPoP with the
// default verified-token cache: the token's signature is verified once,
// the proof on every request.
func BenchmarkMiddlewareDPoPCached(b *testing.B) {
	iss := newTestIssuer(b)
	iss.addKey("es", "ES256")
	v := iss.validator(func(c *rs.Config) { c.DPoP.Replay = alwaysFresh{} })
	_, signer := newDPoPKey(b, iss.clock.Now)
	tok := iss.token("es", "ES256", "at+jwt", boundClaims(iss, "read:meters", map[string]any{"jkt": signer.Thumbprint()}))
	proof := mustProof(b, signer, "GET", "http://api.example.com/meters", tok, "")
	benchMiddleware(b, v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})), dpopHeader(tok, proof))
}

// BenchmarkValidate is Validate, verified-token cache off, for each
// default algorithm, beside BenchmarkBareVerify for the same algorithm:
// the ratio of the two is the overhead around the signature.
func BenchmarkValidate(b *testing.B) {
	iss := newFullIssuer(b)
	v := iss.validator(func(c *rs.Config) { c.TokenCacheEntries = -1 })
	ctx := context.Background()
	for _, kid := range []string{"es", "ed", "rs"} {
		alg := iss.private[kid].Algorithm
		token := iss.token(kid, alg, "at+jwt", iss.claims("read:meters create:meters"))
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Validate(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBareVerify is the signature check alone, as a caller of
// crypto/* would write it for a JWS: hash the signing input, verify.
func BenchmarkBareVerify(b *testing.B) {
	iss := newFullIssuer(b)
	for _, kid := range []string{"es", "ed", "rs"} {
		alg := iss.private[kid].Algorithm
		token := iss.token(kid, alg, "at+jwt", iss.claims("read:meters create:meters"))
		dot := strings.LastIndexByte(token, '.')
		input := []byte(token[:dot])
		sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
		if err != nil {
			b.Fatal(err)
		}
		pub := iss.private[kid].Key.(crypto.Signer).Public()
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var ok bool
				switch k := pub.(type) {
				case *ecdsa.PublicKey:
					h := sha256.Sum256(input)
					ok = ecdsa.Verify(k, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
				case ed25519.PublicKey:
					ok = ed25519.Verify(k, input, sig)
				case *rsa.PublicKey:
					h := sha256.Sum256(input)
					ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil
				}
				if !ok {
					b.Fatal("signature does not verify")
				}
			}
		})
	}
}

// BenchmarkValidateCached is Validate on a repeated ES256 token with the
// default verified-token cache: a SHA-256 and a lookup, no signature.
func BenchmarkValidateCached(b *testing.B) {
	iss := newTestIssuer(b)
	iss.addKey("es", "ES256")
	v := iss.validator(nil)
	token := iss.token("es", "ES256", "at+jwt", iss.claims("read:meters create:meters"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}
