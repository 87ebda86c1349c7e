package rs_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
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
// plain ES256 bearer token: the baseline of BenchmarkMiddlewareDPoP.
func BenchmarkMiddlewareBearer(b *testing.B) {
	iss := newTestIssuer(b)
	iss.addKey("es", "ES256")
	v := iss.validator(nil)
	tok := iss.token("es", "ES256", "at+jwt", iss.claims("read:meters"))
	benchMiddleware(b, v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})), bearerHeader(tok))
}

// BenchmarkMiddlewareDPoP is the cost of a protected request with a
// DPoP-bound ES256 token and an ES256 proof: token check, proof check
// (signature, htm/htu, iat, ath) and key binding. The replay store is a
// no-op here; BenchmarkReplayCache measures the default one.
func BenchmarkMiddlewareDPoP(b *testing.B) {
	iss := newTestIssuer(b)
	iss.addKey("es", "ES256")
	v := iss.validator(func(c *rs.Config) { c.DPoP.Replay = alwaysFresh{} })
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
