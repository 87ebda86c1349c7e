package oauth

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/token"
)

// cached reports whether f's introspection cache holds tok, usable now.
func (f *fixture) cached(tok string) bool {
	_, _, _, ok := f.srv.verifiedTokenCache().get(sha256.Sum256([]byte(tok)), f.clock.Now())
	return ok
}

// TestIntrospectCacheRepeated: a repeated introspection is answered from
// the cache with the answer the first one gave, custom claims included,
// and the cache holds the token's hash, never the token.
func TestIntrospectCacheRepeated(t *testing.T) {
	f := newFixture(t)
	tok, _, err := f.srv.Issuer.Issue(token.Request{ClientID: "owner", Audience: testAudience, Scopes: []string{"read"}, Lifetime: time.Hour, Alg: authz.ES256,
		Claims: json.RawMessage(`{"tenant_id":"t-1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	first := f.post(f.srv.HandleIntrospect, "rs", url.Values{"token": {tok}})
	if !f.cached(tok) {
		t.Fatal("the token was not cached after its first introspection")
	}
	for range 3 {
		again := f.post(f.srv.HandleIntrospect, "rs", url.Values{"token": {tok}})
		if again.Code != http.StatusOK || again.Body.String() != first.Body.String() {
			t.Fatalf("repeated introspection: %d %s, first %d %s", again.Code, again.Body, first.Code, first.Body)
		}
	}
	if !strings.Contains(first.Body.String(), `"active":true`) || !strings.Contains(first.Body.String(), `"tenant_id":"t-1"`) {
		t.Fatalf("first answer %s", first.Body)
	}
	c := f.srv.verifiedTokenCache()
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.ring {
		if e.kid == tok || e.extra == tok || string(e.key[:]) == tok {
			t.Fatal("the cache holds the token")
		}
	}
}

// TestIntrospectCacheInvalidation: every change that ends a token ends
// it at once for a cached token too, and the caller is still
// authenticated on a hit.
func TestIntrospectCacheInvalidation(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, f *fixture, c token.Claims)
		active bool
	}{
		{name: "nothing changed", change: func(*testing.T, *fixture, token.Claims) {}, active: true},
		{name: "jti revoked", change: func(_ *testing.T, f *fixture, c token.Claims) {
			f.deny.Add(c.JTI, time.Unix(c.Expiry, 0))
		}},
		{name: "application's tokens revoked", change: func(_ *testing.T, f *fixture, _ token.Claims) {
			f.clients.ByID["owner"].Application.TokensNotBefore = authz.NotBeforeCutoff(f.clock.Now().Add(time.Millisecond))
		}},
		{name: "application disabled", change: func(_ *testing.T, f *fixture, _ token.Claims) {
			f.clients.ByID["owner"].Application.Disabled = true
		}},
		{name: "application deleted", change: func(_ *testing.T, f *fixture, _ token.Claims) {
			delete(f.clients.ByID, "owner")
		}},
		{name: "scope no longer granted", change: func(_ *testing.T, f *fixture, _ token.Claims) {
			f.clients.ByID["owner"].Grants[0].Grant.Scopes = []string{"write"}
		}},
		{name: "caller may no longer introspect the audience", change: func(_ *testing.T, f *fixture, _ token.Claims) {
			f.clients.ByID["rs"].Application.IntrospectAudiences = nil
		}},
		{name: "expired", change: func(_ *testing.T, f *fixture, _ token.Claims) {
			f.clock.Add(time.Hour)
		}},
		{name: "signing key removed", change: func(t *testing.T, f *fixture, _ token.Claims) {
			for _, k := range f.keys.List() {
				if err := f.keyStore.DeleteKey(t.Context(), k.KID); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := f.keys.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tok, claims := f.issue(t, "read")
			if !f.introspect(t, "rs", tok).Active {
				t.Fatal("inactive before the change")
			}
			if !f.cached(tok) {
				t.Fatal("not cached")
			}
			tc.change(t, f, claims)
			if got := f.introspect(t, "rs", tok).Active; got != tc.active {
				t.Fatalf("active %v after the change, want %v", got, tc.active)
			}
		})
	}
	t.Run("caller's authentication runs on a hit", func(t *testing.T) {
		f := newFixture(t)
		tok, _ := f.issue(t, "read")
		if !f.introspect(t, "rs", tok).Active || !f.cached(tok) {
			t.Fatal("not active and cached")
		}
		f.secrets["rs"] = "wrong"
		if w := f.post(f.srv.HandleIntrospect, "rs", url.Values{"token": {tok}}); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong secret on a hit: %d %s", w.Code, w.Body)
		}
	})
}

// TestIntrospectCacheExpiry: an entry lasts until the token's exp, or
// introspectCacheMaxAge after it was verified, at the injected clock.
func TestIntrospectCacheExpiry(t *testing.T) {
	f := newFixture(t)
	tok, c := f.issue(t, "read")
	f.introspect(t, "rs", tok)
	f.clock.Add(introspectCacheMaxAge - time.Second)
	if !f.cached(tok) {
		t.Fatal("entry gone before its bound")
	}
	f.clock.Add(time.Second)
	if f.cached(tok) {
		t.Fatal("entry usable past introspectCacheMaxAge")
	}
	// Verified again two minutes before exp, and cached until exp.
	f.clock.Set(time.Unix(c.Expiry, 0).Add(-2 * time.Minute))
	if !f.introspect(t, "rs", tok).Active {
		t.Fatal("inactive before exp")
	}
	f.clock.Set(time.Unix(c.Expiry, 0).Add(-time.Second))
	if !f.cached(tok) || !f.introspect(t, "rs", tok).Active {
		t.Fatal("not active from the cache a second before exp")
	}
	f.clock.Set(time.Unix(c.Expiry, 0))
	if f.cached(tok) || f.introspect(t, "rs", tok).Active {
		t.Fatal("usable at exp")
	}
}

// TestIntrospectCacheBounded: the cache never holds more than its bound,
// and evicts tokens not hit before hit ones.
func TestIntrospectCacheBounded(t *testing.T) {
	f := newFixture(t)
	f.srv.verified.Store(newVerifiedTokens(4, introspectCacheMaxAge))
	hot, _ := f.issue(t, "read")
	f.introspect(t, "rs", hot)
	for range 10 {
		tok, _ := f.issue(t, "read")
		f.introspect(t, "rs", tok)
		f.introspect(t, "rs", hot) // hit: keeps it
		if n := f.srv.verifiedTokenCache().len(); n > 4 {
			t.Fatalf("%d entries, bound 4", n)
		}
	}
	if !f.cached(hot) {
		t.Fatal("the token hit every round was evicted")
	}
}

// TestIntrospectCacheConcurrentRevocation: introspections of one cached
// token run while its jti is revoked; once the revocation has returned,
// every introspection that starts after it is inactive, and no goroutine
// sees the token active after it saw it inactive.
func TestIntrospectCacheConcurrentRevocation(t *testing.T) {
	f := newFixture(t)
	tok, claims := f.issue(t, "read")
	if !f.introspect(t, "rs", tok).Active {
		t.Fatal("inactive at the start")
	}
	const workers, rounds = 4, 100
	var revoked sync.WaitGroup
	revoked.Add(1)
	errs := make(chan string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			seenInactive := false
			for i := range rounds {
				if w == 0 && i == rounds/2 {
					f.deny.Add(claims.JTI, time.Unix(claims.Expiry, 0))
					revoked.Done()
				}
				active := introspectActive(f, tok)
				if active && seenInactive {
					errs <- "active again after inactive"
					return
				}
				seenInactive = seenInactive || !active
			}
		})
	}
	revoked.Wait()
	if introspectActive(f, tok) {
		t.Error("active after the revocation returned")
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// introspectActive introspects tok as "rs", safe from any goroutine.
func introspectActive(f *fixture, tok string) bool {
	w := f.post(f.srv.HandleIntrospect, "rs", url.Values{"token": {tok}})
	return w.Code == http.StatusOK && strings.Contains(w.Body.String(), `"active":true`)
}

// BenchmarkIntrospectRepeated is HandleIntrospect, in process with a real
// client_secret_basic caller, for an ES256 token: "first" verifies it
// (the cache is emptied before each request), "repeated" finds it in the
// cache. Both authenticate the caller and check liveness.
func BenchmarkIntrospectRepeated(b *testing.B) {
	f := newFixture(b)
	tok, _ := f.issue(b, "read")
	body := url.Values{"token": {tok}}.Encode()
	auth := basic("rs", f.secrets["rs"])
	for _, bc := range []struct {
		name  string
		empty bool
	}{{"first", true}, {"repeated", false}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bc.empty {
					f.srv.verified.Store(newVerifiedTokens(introspectCacheEntries, introspectCacheMaxAge))
				}
				r := httptest.NewRequest(http.MethodPost, PathIntrospect, strings.NewReader(body))
				r.Header.Set("Content-Type", form)
				r.Header.Set("Authorization", auth)
				w := httptest.NewRecorder()
				f.srv.HandleIntrospect(w, r)
				if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"active":true`) {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
