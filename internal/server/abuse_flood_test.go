package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/oauth"
)

// Documented bounds (docs/abuse.md) of a flood of 100 000 failed
// authentications with random client_ids.
const (
	floodRequests    = 100_000
	floodMaxDBGrowth = 8 << 20  // bytes of database, WAL included
	floodMaxHeap     = 48 << 20 // bytes of heap growth, after GC
)

// quietLogs makes the server log at info level into buf (instead of the
// test's debug-level buffer): a flood's debug lines would fill the heap
// being measured.
func quietLogs(buf *syncBuffer) envOption {
	return func(_ *Config, d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
}

// postInProcess serves one form POST to path from remoteAddr through h.
func postInProcess(h http.Handler, path string, form url.Values, remoteAddr string) int {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = remoteAddr
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code
}

func randomClientID() string {
	var b [13]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// dbBytes is the size of the SQLite database in dir, WAL included.
func dbBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, name := range []string{"m2mauth.db", "m2mauth.db-wal", "m2mauth.db-shm"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// rssBytes is the process's resident set size, 0 if unknown.
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			for _, c := range strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")) {
				kb = kb*10 + int64(c-'0')
			}
			return kb << 10
		}
	}
	return 0
}

// TestAbuseFloodOfRandomClientIDs: 100 000 failed authentications with
// random client_ids, from one address and then each from a new address
// (the worst case: the limiter lets each through), leave the database and
// the heap within the documented bounds, and the log sampled.
func TestAbuseFloodOfRandomClientIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("200 000 requests")
	}
	logs := &syncBuffer{}
	e := newTestEnv(t, quietLogs(logs))
	h := e.srv.Handler()
	_, secret, err := clientsecret.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	flush := func() {
		if err := e.srv.recorder.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	phases := []struct {
		name string
		addr func(i int) string
	}{
		{"one address", func(int) string { return "192.0.2.1:40000" }},
		{"a new address each", func(i int) string {
			return "10." + itoa(i>>16) + "." + itoa((i>>8)&255) + "." + itoa(i&255) + ":40000"
		}},
	}
	requests := floodRequests // under the race detector too: about 40 s
	for _, ph := range phases {
		flush()
		db0, heap0, lines0 := dbBytes(t, e.dataDir), heapAfterGC(), strings.Count(logs.String(), "client authentication failed")
		start := time.Now()
		codes := map[int]int{}
		for i := range requests {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {randomClientID()}, "client_secret": {secret}}
			codes[postInProcess(h, oauth.PathToken, form, ph.addr(i))]++
		}
		elapsed := time.Since(start)
		flush()
		grew, heap := dbBytes(t, e.dataDir)-db0, int64(heapAfterGC())-int64(heap0)
		lines := strings.Count(logs.String(), "client authentication failed") - lines0
		t.Logf("%s: %d requests in %v (%v each): statuses %v; database +%d KiB, heap %+d KiB, RSS %d MiB, %d log lines; limiter %+v, negative cache %d",
			ph.name, requests, elapsed.Round(time.Millisecond), elapsed/floodRequests, codes, grew>>10, heap>>10, rssBytes()>>20, lines,
			e.srv.limiter.Stats(), e.srv.cache.NegativeLen())
		if codes[401]+codes[429] != requests {
			t.Errorf("%s: statuses %v, want only 401 and 429", ph.name, codes)
		}
		if grew > floodMaxDBGrowth {
			t.Errorf("%s: the database grew by %d bytes, more than %d", ph.name, grew, floodMaxDBGrowth)
		}
		if heap > floodMaxHeap {
			t.Errorf("%s: the heap grew by %d bytes, more than %d", ph.name, heap, floodMaxHeap)
		}
		// At most 20 sampled lines and one summary per 2 s flush interval.
		if max := int(elapsed/(2*time.Second)+2) * 21; lines > max {
			t.Errorf("%s: %d log lines for %d failures in %v, want at most %d", ph.name, lines, requests, elapsed, max)
		}
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

// TestAbuseUnknownClientIDTakesAsLongAsAWrongSecret: an unknown client_id
// (remembered by the negative cache: no store read) costs the same HMAC as
// a wrong secret of a known one, and about the same time. Each request
// comes from a new address, and the per-client_id limit is raised, so that
// the limiter lets every one through.
func TestAbuseUnknownClientIDTakesAsLongAsAWrongSecret(t *testing.T) {
	e := newTestEnv(t, quietLogs(&syncBuffer{}), behindProxy(), func(c *Config, _ *Deps) { c.AuthMaxFailures = MaxAuthMaxFailures })
	adm := e.adminToken()
	e.createAPI(adm, usageAPI, "", usageScopes...)
	app := e.createApp(adm, "timed", map[string][]string{usageAPI: nil})
	e.addSecret(app.ClientSecret)
	h := e.srv.Handler()
	wrong := formOf(app.ClientID, wrongSecret(app.ClientSecret), usageAPI)
	unknown := formOf(strings.ToUpper(randomClientID()), wrongSecret(app.ClientSecret), usageAPI)
	const n = 3000
	var tw, tu []time.Duration
	hashes := e.srv.oauth.HashesComputed()
	for i := range n + 100 {
		for _, f := range []struct {
			form url.Values
			into *[]time.Duration
		}{{wrong, &tw}, {unknown, &tu}} {
			start := time.Now()
			if code := postInProcess(h, oauth.PathToken, f.form, "10."+itoa(i>>8)+"."+itoa(i&255)+".1:40000"); code != 401 {
				t.Fatalf("status %d", code)
			}
			if i >= 100 { // warm-up: the first unknown lookup reads the store
				*f.into = append(*f.into, time.Since(start))
			}
		}
	}
	if got := e.srv.oauth.HashesComputed() - hashes; got != 2*(n+100) {
		t.Errorf("%d hashes for %d failed authentications, want one each", got, 2*(n+100))
	}
	slices.Sort(tw)
	slices.Sort(tu)
	pw, pu := tw[n/2], tu[n/2]
	t.Logf("p50: unknown client_id %v, known client_id with a wrong secret %v (p90 %v and %v)", pu, pw, tu[n*9/10], tw[n*9/10])
	if ratio := float64(pu) / float64(pw); ratio < 0.5 || ratio > 2 {
		t.Errorf("unknown client_id p50 %v vs wrong secret %v: ratio %.2f", pu, pw, ratio)
	}

	// The same over loopback HTTP, as an attacker measures it.
	const m = 1000
	tw, tu = tw[:0], tu[:0]
	for i := range m + 50 {
		for _, f := range []struct {
			form url.Values
			into *[]time.Duration
		}{{wrong, &tw}, {unknown, &tu}} {
			start := time.Now()
			if status, _ := e.postForm(oauth.PathToken, f.form, from("10.200."+itoa(i>>8)+"."+itoa(i&255))); status != 401 {
				t.Fatalf("status %d", status)
			}
			if i >= 50 {
				*f.into = append(*f.into, time.Since(start))
			}
		}
	}
	slices.Sort(tw)
	slices.Sort(tu)
	t.Logf("loopback p50: unknown client_id %v, known client_id with a wrong secret %v", tu[m/2], tw[m/2])
}

// BenchmarkAbuseLimiterOnTheHotPath measures a successful ES256 token
// request with the failed-authentication limiter and without it, in one
// run: the difference is the limiter's cost for a well-behaved client.
func BenchmarkAbuseLimiterOnTheHotPath(b *testing.B) {
	e := newTestEnv(b, quietLogs(&syncBuffer{}))
	adm := e.adminToken()
	aud := "https://bench-limiter/"
	e.createAPI(adm, aud, "ES256", "read:meters")
	app := e.createApp(adm, "bench limiter", map[string][]string{aud: nil})
	body := formOf(app.ClientID, app.ClientSecret, aud).Encode()
	h := e.srv.Handler()
	limiter := e.srv.oauth.Limiter
	for _, on := range []bool{true, false, true, false} {
		name := "limiter"
		if !on {
			name = "no limiter"
		}
		b.Run(name, func(b *testing.B) {
			if on {
				e.srv.oauth.Limiter = limiter
			} else {
				e.srv.oauth.Limiter = nil
			}
			benchTokenRequests(b, h, body)
		})
	}
	e.srv.oauth.Limiter = limiter
}
