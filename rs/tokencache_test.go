package rs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/rs"
)

// cachingValidator returns a Validator for iss, one ES256 key "es", that
// counts its full verifications in n.
func cachingValidator(t *testing.T, iss *testIssuer, n *atomic.Int64, edit func(*rs.Config)) *rs.Validator {
	t.Helper()
	v := iss.validator(edit)
	rs.CountVerifications(v, n)
	return v
}

// tokenWith signs an ES256 token with jti that expires in lifetime.
func tokenWith(iss *testIssuer, jti string, lifetime time.Duration) string {
	c := iss.claims("read:meters")
	c["jti"] = jti
	c["exp"] = iss.clock.Now().Add(lifetime).Unix()
	return iss.token("es", "ES256", "at+jwt", c)
}

// mustValidate validates tok and checks the verification count is then want.
func mustValidate(t *testing.T, v *rs.Validator, tok string, n *atomic.Int64, want int64) *rs.Claims {
	t.Helper()
	c, err := v.Validate(context.Background(), tok)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := n.Load(); got != want {
		t.Fatalf("%d verifications, want %d", got, want)
	}
	return c
}

func TestTokenCache(t *testing.T) {
	t.Run("a repeated token is verified once", func(t *testing.T) {
		iss := newTestIssuer(t)
		iss.addKey("es", "ES256")
		var n atomic.Int64
		v := cachingValidator(t, iss, &n, nil)
		tok := tokenWith(iss, "a", time.Hour)
		first := mustValidate(t, v, tok, &n, 1)
		for range 5 {
			c := mustValidate(t, v, tok, &n, 1)
			if !equalClaims(c, first) {
				t.Fatalf("cached claims %+v, want %+v", c, first)
			}
		}
		if ok, err := first.Claim("client_id", new(string)); !ok || err != nil {
			t.Fatalf("Claim on cached claims: %v %v", ok, err)
		}
	})

	t.Run("entries end at exp", func(t *testing.T) {
		iss := newTestIssuer(t)
		iss.addKey("es", "ES256")
		var n atomic.Int64
		v := cachingValidator(t, iss, &n, nil)
		tok := tokenWith(iss, "a", 20*time.Second) // before the 60 s max age
		mustValidate(t, v, tok, &n, 1)
		iss.clock.Advance(19 * time.Second)
		mustValidate(t, v, tok, &n, 1)
		iss.clock.Advance(time.Second) // at exp: verified again, within leeway
		mustValidate(t, v, tok, &n, 2)
		iss.clock.Advance(rs.DefaultLeeway)
		if _, err := v.Validate(context.Background(), tok); !errors.Is(err, rs.ErrExpired) {
			t.Fatalf("past exp and leeway: %v", err)
		}
	})

	t.Run("entries end at the max age", func(t *testing.T) {
		iss := newTestIssuer(t)
		iss.addKey("es", "ES256")
		var n atomic.Int64
		v := cachingValidator(t, iss, &n, func(c *rs.Config) { c.TokenCacheMaxAge = 5 * time.Second })
		tok := tokenWith(iss, "a", time.Hour)
		mustValidate(t, v, tok, &n, 1)
		iss.clock.Advance(4 * time.Second)
		mustValidate(t, v, tok, &n, 1)
		iss.clock.Advance(time.Second)
		mustValidate(t, v, tok, &n, 2)
		mustValidate(t, v, tok, &n, 2)
	})

	t.Run("the default max age is 60 s", func(t *testing.T) {
		iss := newTestIssuer(t)
		iss.addKey("es", "ES256")
		var n atomic.Int64
		v := cachingValidator(t, iss, &n, nil)
		tok := tokenWith(iss, "a", time.Hour)
		mustValidate(t, v, tok, &n, 1)
		iss.clock.Advance(rs.DefaultTokenCacheMaxAge - time.Second)
		mustValidate(t, v, tok, &n, 1)
		iss.clock.Advance(time.Second)
		mustValidate(t, v, tok, &n, 2)
	})

	t.Run("a full cache evicts a token not used since", func(t *testing.T) {
		iss := newTestIssuer(t)
		iss.addKey("es", "ES256")
		var n atomic.Int64
		v := cachingValidator(t, iss, &n, func(c *rs.Config) { c.TokenCacheEntries = 2 })
		a, b, c := tokenWith(iss, "a", time.Hour), tokenWith(iss, "b", time.Hour), tokenWith(iss, "c", time.Hour)
		mustValidate(t, v, a, &n, 1)
		mustValidate(t, v, b, &n, 2)
		mustValidate(t, v, a, &n, 2) // a is used again: b goes first
		mustValidate(t, v, c, &n, 3)
		if got := rs.CachedTokens(v); got != 2 {
			t.Fatalf("%d entries, want 2", got)
		}
		mustValidate(t, v, a, &n, 3)
		mustValidate(t, v, c, &n, 3)
		mustValidate(t, v, b, &n, 4)
	})

	t.Run("a token one byte off is no hit", func(t *testing.T) {
		iss := newTestIssuer(t)
		iss.addKey("es", "ES256")
		var n atomic.Int64
		v := cachingValidator(t, iss, &n, nil)
		tok := tokenWith(iss, "a", time.Hour)
		mustValidate(t, v, tok, &n, 1)
		for _, i := range []int{0, len(tok) / 2, len(tok) - 2} {
			b := []byte(tok)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			if _, err := v.Validate(context.Background(), string(b)); !errors.Is(err, rs.ErrInvalidToken) {
				t.Fatalf("byte %d changed: %v", i, err)
			}
		}
		if got := rs.CachedTokens(v); got != 1 {
			t.Fatalf("%d entries, want 1", got)
		}
	})

	t.Run("a negative size turns the cache off", func(t *testing.T) {
		iss := newTestIssuer(t)
		iss.addKey("es", "ES256")
		var n atomic.Int64
		v := cachingValidator(t, iss, &n, func(c *rs.Config) { c.TokenCacheEntries = -1 })
		tok := tokenWith(iss, "a", time.Hour)
		mustValidate(t, v, tok, &n, 1)
		mustValidate(t, v, tok, &n, 2)
		if got := rs.CachedTokens(v); got != 0 {
			t.Fatalf("%d entries", got)
		}
	})

	t.Run("changing returned claims changes no cached ones", func(t *testing.T) {
		iss := newTestIssuer(t)
		iss.addKey("es", "ES256")
		var n atomic.Int64
		v := cachingValidator(t, iss, &n, nil)
		tok := tokenWith(iss, "a", time.Hour)
		for range 2 {
			c := mustValidate(t, v, tok, &n, 1)
			if c.Scopes[0] != "read:meters" || c.Audience[0] != audience || c.Subject != "app_123" {
				t.Fatalf("cached claims were changed: %+v", c)
			}
			c.Scopes[0], c.Audience[0], c.Subject = "admin", "other", "someone"
		}
	})

	t.Run("a withdrawn key ends its tokens' entries before the max age", func(t *testing.T) {
		iss := newTestIssuer(t)
		iss.addKey("es", "ES256")
		iss.addKey("es2", "ES256")
		iss.maxAge = 10 // JWKS max-age, s
		var n atomic.Int64
		v := cachingValidator(t, iss, &n, nil)
		tok := tokenWith(iss, "a", time.Hour)
		mustValidate(t, v, tok, &n, 1)
		iss.unpublish("es")
		iss.clock.Advance(11 * time.Second) // within the cache's 60 s
		if _, err := v.Validate(context.Background(), tok); !errors.Is(err, rs.ErrUnknownKey) {
			t.Fatalf("after the key was withdrawn: %v", err)
		}
	})

	t.Run("concurrent use", func(t *testing.T) {
		iss := newTestIssuer(t)
		iss.addKey("es", "ES256")
		var n atomic.Int64
		v := cachingValidator(t, iss, &n, func(c *rs.Config) { c.TokenCacheEntries = 3 })
		var toks []string
		for i := range 6 {
			toks = append(toks, tokenWith(iss, fmt.Sprint("t", i), time.Hour))
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 100 {
					tok := toks[(g+i)%len(toks)]
					c, err := v.Validate(context.Background(), tok)
					if err != nil {
						t.Error(err)
						return
					}
					if want := fmt.Sprint("t", (g+i)%len(toks)); c.JTI != want {
						t.Errorf("jti %s, want %s", c.JTI, want)
						return
					}
					c.Scopes[0] = "changed"
				}
			})
		}
		wg.Wait()
		if got := rs.CachedTokens(v); got > 3 {
			t.Fatalf("%d entries above the bound of 3", got)
		}
		if n.Load() >= 800 {
			t.Fatalf("%d verifications: the cache never hit", n.Load())
		}
	})
}

// TestTokenCacheIntrospection shows that a cached token is still
// introspected: revocation bites within IntrospectionConfig.CacheTTL
// although the token's signature was verified only once.
func TestTokenCacheIntrospection(t *testing.T) {
	ii := newIntrospectingIssuer(t)
	ii.set("a", true)
	v := ii.validator(t, func(c *rs.IntrospectionConfig) { c.CacheTTL = 5 * time.Second })
	var n atomic.Int64
	rs.CountVerifications(v, &n)
	tok := ii.tokenFor("a", time.Hour)
	ctx := context.Background()
	for range 3 {
		if _, err := v.Validate(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	ii.set("a", false)
	ii.clock.Advance(5 * time.Second)
	if _, err := v.Validate(ctx, tok); !errors.Is(err, rs.ErrInactive) {
		t.Fatalf("revoked, after the introspection TTL: %v", err)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("%d verifications, want 1", got)
	}
	if got := ii.callCount(t); got != 2 {
		t.Fatalf("%d introspection calls, want 2", got)
	}
}

func TestTokenCacheConfig(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	for _, d := range []time.Duration{-time.Second, rs.MaxTokenCacheMaxAge + time.Second} {
		_, err := rs.New(context.Background(), rs.Config{Issuer: iss.URL, Audience: audience, TokenCacheMaxAge: d})
		if err == nil {
			t.Errorf("TokenCacheMaxAge %v accepted", d)
		}
	}
}
