package rs_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/m2mauth/m2mauth/rs"
)

// newFullIssuer returns an issuer with one key per default algorithm,
// kids "es", "ed", "rs" and "ps".
func newFullIssuer(t testing.TB) *testIssuer {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	iss.addKey("ed", "EdDSA")
	iss.addKey("rs", "RS256")
	iss.addKey("ps", "PS256")
	return iss
}

func TestValidateAcceptsEachAlgorithm(t *testing.T) {
	iss := newFullIssuer(t)
	v := iss.validator(nil)
	for _, tc := range []struct{ kid, alg string }{
		{"es", "ES256"}, {"ed", "EdDSA"}, {"rs", "RS256"}, {"ps", "PS256"},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			tok := iss.token(tc.kid, tc.alg, "at+jwt", iss.claims("read:meters create:meters"))
			c, err := v.Validate(context.Background(), tok)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			now := iss.clock.Now()
			want := &rs.Claims{
				Issuer:    iss.URL,
				Subject:   "app_123",
				ClientID:  "app_123",
				JTI:       "tok_1",
				Audience:  []string{audience},
				Scopes:    []string{"read:meters", "create:meters"},
				IssuedAt:  now,
				ExpiresAt: now.Add(time.Hour),
			}
			if !equalClaims(c, want) {
				t.Errorf("claims = %+v, want %+v", c, want)
			}
			if !c.HasScope("read:meters") || c.HasScope("read") {
				t.Errorf("HasScope wrong for %v", c.Scopes)
			}
		})
	}
}

func equalClaims(a, b *rs.Claims) bool {
	return a.Issuer == b.Issuer && a.Subject == b.Subject && a.ClientID == b.ClientID &&
		a.JTI == b.JTI && slices.Equal(a.Audience, b.Audience) && slices.Equal(a.Scopes, b.Scopes) &&
		a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func TestValidateAccepts(t *testing.T) {
	iss := newFullIssuer(t)
	v := iss.validator(nil)
	now := iss.clock.Now()
	with := func(edit func(map[string]any)) map[string]any {
		c := iss.claims("read:meters")
		edit(c)
		return c
	}
	for _, tc := range []struct {
		name string
		typ  string
		c    map[string]any
	}{
		{"typ in capitals", "AT+JWT", iss.claims("")},
		{"typ as media type", "application/at+jwt", iss.claims("")},
		{"no scope", "at+jwt", iss.claims("")},
		{"audience in a list", "at+jwt", with(func(c map[string]any) { c["aud"] = []string{"other", audience} })},
		{"expired within leeway", "at+jwt", with(func(c map[string]any) { c["exp"] = now.Add(-20 * time.Second).Unix() })},
		{"issued in the future within leeway", "at+jwt", with(func(c map[string]any) { c["iat"] = now.Add(20 * time.Second).Unix() })},
		{"nbf passed", "at+jwt", with(func(c map[string]any) { c["nbf"] = now.Add(-time.Minute).Unix() })},
		{"fractional dates", "at+jwt", with(func(c map[string]any) { c["exp"] = float64(now.Add(time.Hour).Unix()) + 0.5 })},
		{"unknown claims", "at+jwt", with(func(c map[string]any) { c["org_id"] = "org_1" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := v.Validate(context.Background(), iss.token("es", "ES256", tc.typ, tc.c)); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	iss := newFullIssuer(t)
	// A key the issuer never published.
	iss.addKey("stray", "ES256")
	iss.unpublish("stray")
	v := iss.validator(nil)
	now := iss.clock.Now()

	valid := iss.token("es", "ES256", "at+jwt", iss.claims("read:meters"))
	parts := strings.Split(valid, ".")
	b64 := base64.RawURLEncoding.EncodeToString

	with := func(edit func(map[string]any)) map[string]any {
		c := iss.claims("read:meters")
		edit(c)
		return c
	}
	without := func(name string) map[string]any {
		return with(func(c map[string]any) { delete(c, name) })
	}
	escalated := with(func(c map[string]any) { c["scope"] = "read:meters admin" })
	escalatedJSON, _ := json.Marshal(escalated)

	// The classic confusion attack: HS256 keyed with the public key, in
	// both the forms a careless verifier might use as an HMAC secret.
	rsaPub := iss.private["rs"].Key.(crypto.Signer).Public()
	der, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwkJSON, _ := json.Marshal(jose.JSONWebKey{Key: rsaPub, KeyID: "rs", Algorithm: "RS256", Use: "sig"})
	hmacWith := func(secret []byte) string {
		return iss.sign(jose.SigningKey{
			Algorithm: jose.HS256,
			Key:       jose.JSONWebKey{Key: secret, KeyID: "rs"},
		}, "at+jwt", iss.claims("read:meters"))
	}

	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"empty", "", rs.ErrMalformed},
		{"garbage", "not a token", rs.ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], rs.ErrMalformed},
		{"JSON serialization", `{"payload":"e30","signatures":[]}`, rs.ErrMalformed},
		{"too long", strings.Repeat("a", 17<<10), rs.ErrMalformed},
		{"payload not JSON", iss.signRaw(t, "es", "ES256", []byte("hello")), rs.ErrMalformed},
		{"wrong typ JWT", iss.token("es", "ES256", "JWT", iss.claims("")), rs.ErrTokenType},
		{"no typ", iss.token("es", "ES256", "", iss.claims("")), rs.ErrTokenType},
		{"alg none", b64([]byte(`{"alg":"none","typ":"at+jwt","kid":"es"}`)) + "." + parts[1] + ".", rs.ErrAlgorithm},
		{"HS256 keyed with PEM public key", hmacWith(pemKey), rs.ErrAlgorithm},
		{"HS256 keyed with JWK public key", hmacWith(jwkJSON), rs.ErrAlgorithm},
		{"ES384 not in the allow-list", b64([]byte(`{"alg":"ES384","typ":"at+jwt","kid":"es"}`)) + "." + parts[1] + "." + parts[2], rs.ErrAlgorithm},
		{"alg missing", b64([]byte(`{"typ":"at+jwt","kid":"es"}`)) + "." + parts[1] + "." + parts[2], rs.ErrAlgorithm},
		{"RSA key signs PS256 under RS256 kid", iss.token("rs", "PS256", "at+jwt", iss.claims("")), rs.ErrAlgorithm},
		{"ES256 under EdDSA kid", iss.tokenWithKid(t, "es", "ed"), rs.ErrAlgorithm},
		{"no kid", iss.sign(jose.SigningKey{Algorithm: jose.ES256, Key: iss.private["es"].Key}, "at+jwt", iss.claims("")), rs.ErrUnknownKey},
		{"unknown kid", iss.token("stray", "ES256", "at+jwt", iss.claims("")), rs.ErrUnknownKey},
		{"tampered payload", parts[0] + "." + b64(escalatedJSON) + "." + parts[2], rs.ErrSignature},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flip(parts[2]), rs.ErrSignature},
		{"unused bits set in the signature's last character", parts[0] + "." + parts[1] + "." + setLowBit(parts[2]), rs.ErrMalformed},
		{"line break in the payload", parts[0] + "." + parts[1][:10] + "\n" + parts[1][10:] + "." + parts[2], rs.ErrMalformed},
		{"padded signature", valid + "==", rs.ErrMalformed},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(iss.token("es", "ES256", "at+jwt", iss.claims("")), ".")[2], rs.ErrSignature},
		{"wrong issuer", iss.token("es", "ES256", "at+jwt", with(func(c map[string]any) { c["iss"] = iss.URL + "/" })), rs.ErrIssuer},
		{"wrong audience", iss.token("es", "ES256", "at+jwt", with(func(c map[string]any) { c["aud"] = "https://other.example.com/" })), rs.ErrAudience},
		{"audience prefix", iss.token("es", "ES256", "at+jwt", with(func(c map[string]any) { c["aud"] = "https://api.example.com" })), rs.ErrAudience},
		{"expired", iss.token("es", "ES256", "at+jwt", with(func(c map[string]any) { c["exp"] = now.Add(-31 * time.Second).Unix() })), rs.ErrExpired},
		{"expires now minus leeway", iss.token("es", "ES256", "at+jwt", with(func(c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() })), rs.ErrExpired},
		{"nbf in future", iss.token("es", "ES256", "at+jwt", with(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), rs.ErrNotYetValid},
		{"iat in future", iss.token("es", "ES256", "at+jwt", with(func(c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() })), rs.ErrNotYetValid},
		{"missing exp", iss.token("es", "ES256", "at+jwt", without("exp")), rs.ErrMissingClaim},
		{"null exp", iss.token("es", "ES256", "at+jwt", with(func(c map[string]any) { c["exp"] = nil })), rs.ErrMissingClaim},
		{"missing iat", iss.token("es", "ES256", "at+jwt", without("iat")), rs.ErrMissingClaim},
		{"missing sub", iss.token("es", "ES256", "at+jwt", without("sub")), rs.ErrMissingClaim},
		{"missing client_id", iss.token("es", "ES256", "at+jwt", without("client_id")), rs.ErrMissingClaim},
		{"missing jti", iss.token("es", "ES256", "at+jwt", without("jti")), rs.ErrMissingClaim},
		{"missing iss", iss.token("es", "ES256", "at+jwt", without("iss")), rs.ErrIssuer},
		{"missing aud", iss.token("es", "ES256", "at+jwt", without("aud")), rs.ErrAudience},
		{"exp as string", iss.token("es", "ES256", "at+jwt", with(func(c map[string]any) { c["exp"] = "tomorrow" })), rs.ErrMalformed},
		{"scope as list", iss.token("es", "ES256", "at+jwt", with(func(c map[string]any) { c["scope"] = []string{"admin"} })), rs.ErrMalformed},
		{"claim names in capitals", iss.token("es", "ES256", "at+jwt", with(func(c map[string]any) { c["ISS"] = c["iss"]; delete(c, "iss") })), rs.ErrIssuer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Validate(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("Validate accepted the token: %+v", c)
			}
			if !errors.Is(err, rs.ErrInvalidToken) || !errors.Is(err, tc.want) {
				t.Fatalf("Validate error = %v, want %v", err, tc.want)
			}
			if len(tc.token) > 8 && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error message contains the token")
			}
		})
	}
}

// signRaw signs an arbitrary payload with kid.
func (iss *testIssuer) signRaw(t *testing.T, kid, alg string, payload []byte) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: iss.private[kid]},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tokenWithKid signs with key signKid's own alg but names headerKid.
func (iss *testIssuer) tokenWithKid(t *testing.T, signKid, headerKid string) string {
	t.Helper()
	k := iss.private[signKid]
	return iss.sign(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: jose.JSONWebKey{Key: k.Key, KeyID: headerKid}},
		"at+jwt", iss.claims(""))
}

// setLowBit sets the lowest bit of a base64url string's last character. In
// an 86-character ES256 signature that bit encodes no data, so a lax decoder
// yields the same signature bytes.
func setLowBit(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[i|1])
}

// flip changes one character in the middle of a base64url string.
func flip(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestKeyRotation(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("k1", "ES256")
	v := iss.validator(nil)
	ctx := context.Background()

	// The issuer publishes k2 and signs with it at once; the validator
	// fetched the JWKS a moment ago, so the refetch waits for the interval.
	iss.addKey("k2", "ES256")
	tok := iss.token("k2", "ES256", "at+jwt", iss.claims(""))
	if _, err := v.Validate(ctx, tok); !errors.Is(err, rs.ErrUnknownKey) {
		t.Fatalf("within the refresh interval: err = %v, want ErrUnknownKey", err)
	}
	if got := iss.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", got)
	}

	iss.clock.Advance(rs.DefaultMinRefreshInterval)
	tok = iss.token("k2", "ES256", "at+jwt", iss.claims(""))
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatalf("after the refresh interval: %v", err)
	}
	if got := iss.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", got)
	}
	// k1 is still published, so its tokens still verify, without a fetch.
	if _, err := v.Validate(ctx, iss.token("k1", "ES256", "at+jwt", iss.claims(""))); err != nil {
		t.Fatalf("old key: %v", err)
	}
	if got := iss.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", got)
	}
}

func TestMaxAgeRefresh(t *testing.T) {
	iss := newTestIssuer(t)
	iss.maxAge = 60
	iss.addKey("k1", "ES256")
	iss.addKey("k2", "ES256")
	v := iss.validator(nil)
	ctx := context.Background()

	// The issuer retires k1; the cached JWKS is fresh for 60 s.
	iss.unpublish("k1")
	iss.clock.Advance(59 * time.Second)
	if _, err := v.Validate(ctx, iss.token("k1", "ES256", "at+jwt", iss.claims(""))); err != nil {
		t.Fatalf("before max-age: %v", err)
	}
	if got := iss.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetched %d times before max-age, want 1", got)
	}

	iss.clock.Advance(time.Second)
	if _, err := v.Validate(ctx, iss.token("k1", "ES256", "at+jwt", iss.claims(""))); !errors.Is(err, rs.ErrUnknownKey) {
		t.Fatalf("after max-age: err = %v, want ErrUnknownKey", err)
	}
	if got := iss.jwksHits.Load(); got != 2 {
		t.Fatalf("JWKS fetched %d times after max-age, want 2", got)
	}
	if _, err := v.Validate(ctx, iss.token("k2", "ES256", "at+jwt", iss.claims(""))); err != nil {
		t.Fatalf("k2 after refresh: %v", err)
	}
}

func TestRefreshFailureKeepsKeys(t *testing.T) {
	iss := newTestIssuer(t)
	iss.maxAge = 60
	iss.addKey("k1", "ES256")
	v := iss.validator(nil)
	ctx := context.Background()

	iss.srv.Close() // the issuer goes away
	iss.clock.Advance(2 * time.Minute)
	if _, err := v.Validate(ctx, iss.token("k1", "ES256", "at+jwt", iss.claims(""))); err != nil {
		t.Fatalf("with the issuer down, a cached key must still verify: %v", err)
	}
}

// TestRefetchRateLimit floods the validator with tokens naming unknown keys
// and counts the JWKS requests they cause.
func TestRefetchRateLimit(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("k1", "ES256")
	iss.addKey("stray", "ES256")
	iss.unpublish("stray")
	v := iss.validator(nil)
	ctx := context.Background()

	stray := iss.private["stray"].Key
	bogus := func(i int) string {
		key := jose.JSONWebKey{Key: stray, KeyID: fmt.Sprintf("kid-%d", i)}
		return iss.sign(jose.SigningKey{Algorithm: jose.ES256, Key: key}, "at+jwt", iss.claims(""))
	}

	t.Run("concurrent flood", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 25 {
					if _, err := v.Validate(ctx, bogus(g*25+i)); !errors.Is(err, rs.ErrUnknownKey) {
						t.Errorf("err = %v, want ErrUnknownKey", err)
						return
					}
				}
			})
		}
		wg.Wait()
		// The clock stands still, and the start-up fetch was just now.
		if got := iss.jwksHits.Load(); got != 1 {
			t.Errorf("JWKS fetched %d times, want 1", got)
		}
	})

	t.Run("flood over time", func(t *testing.T) {
		start := iss.jwksHits.Load()
		// 1000 tokens over 100 simulated seconds.
		for i := range 1000 {
			iss.clock.Advance(100 * time.Millisecond)
			if _, err := v.Validate(ctx, bogus(i)); !errors.Is(err, rs.ErrUnknownKey) {
				t.Fatalf("err = %v, want ErrUnknownKey", err)
			}
		}
		limit := int64(100*time.Second/rs.DefaultMinRefreshInterval) + 1
		if got := iss.jwksHits.Load() - start; got > limit {
			t.Errorf("JWKS fetched %d times in 100 s, want at most %d", got, limit)
		}
	})

	// Valid tokens still verify during and after the flood.
	if _, err := v.Validate(ctx, iss.token("k1", "ES256", "at+jwt", iss.claims(""))); err != nil {
		t.Fatalf("valid token after flood: %v", err)
	}
}

func TestNew(t *testing.T) {
	iss := newFullIssuer(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  rs.Config
		want string // substring of the error
	}{
		{"no issuer", rs.Config{Audience: audience}, "Issuer is required"},
		{"no audience", rs.Config{Issuer: iss.URL}, "Audience is required"},
		{"http issuer not on loopback", rs.Config{Issuer: "http://auth.example.com", Audience: audience}, "must use https"},
		{"issuer with query", rs.Config{Issuer: "https://auth.example.com?x=1", Audience: audience}, "query or fragment"},
		{"relative issuer", rs.Config{Issuer: "auth.example.com", Audience: audience}, "absolute URL"},
		{"HS256", rs.Config{Issuer: iss.URL, Audience: audience, Algorithms: []string{"HS256"}}, `"HS256" not allowed`},
		{"none", rs.Config{Issuer: iss.URL, Audience: audience, Algorithms: []string{"ES256", "none"}}, `"none" not allowed`},
		{"leeway too large", rs.Config{Issuer: iss.URL, Audience: audience, Leeway: 6 * time.Minute}, "Leeway"},
		{"negative leeway", rs.Config{Issuer: iss.URL, Audience: audience, Leeway: -time.Second}, "Leeway"},
		{"refresh interval too small", rs.Config{Issuer: iss.URL, Audience: audience, MinRefreshInterval: time.Millisecond}, "MinRefreshInterval"},
		{"issuer mismatch by trailing slash", rs.Config{Issuer: iss.URL + "/", Audience: audience}, "RFC 8414 §3.3"},
		{"no key for the algorithms", rs.Config{Issuer: iss.URL, Audience: audience, Algorithms: []string{"ES384"}}, "no usable key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := rs.New(ctx, tc.cfg)
			if err == nil {
				t.Fatalf("New succeeded: %v", v)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestNewUnreachableIssuer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	if _, err := rs.New(context.Background(), rs.Config{Issuer: srv.URL, Audience: audience}); err == nil {
		t.Fatal("New succeeded with the issuer down")
	}
}

// TestDiscoveryFallback serves only OpenID Connect discovery.
func TestDiscoveryFallback(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("k1", "ES256")
	var issuer string // known once the server listens
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": iss.URL + "/jwks.json"})
	})
	oidc := httptest.NewServer(mux)
	defer oidc.Close()
	issuer = oidc.URL

	v, err := rs.New(context.Background(), rs.Config{Issuer: oidc.URL, Audience: audience, Now: iss.clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c := iss.claims("")
	c["iss"] = oidc.URL
	if _, err := v.Validate(context.Background(), iss.token("k1", "ES256", "at+jwt", c)); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

// TestIssuerWithPath checks the RFC 8414 §3.1 well-known URL for an issuer
// with a path component.
func TestIssuerWithPath(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("k1", "ES256")
	var issuer string // known once the server listens
	var mu sync.Mutex
	var asked []string
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Path)
		mu.Unlock()
		if r.URL.Path != "/.well-known/oauth-authorization-server/tenant1" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": iss.URL + "/jwks.json"})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	issuer = srv.URL + "/tenant1"

	if _, err := rs.New(context.Background(), rs.Config{Issuer: issuer, Audience: audience}); err != nil {
		t.Fatalf("New: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 1 {
		t.Errorf("discovery asked %v, want only the RFC 8414 URL", asked)
	}
}

// TestAllowInsecureIssuer: a plain-http issuer off loopback passes the
// configuration check only when allowed (the fetch then fails here: the
// client dials nothing).
func TestAllowInsecureIssuer(t *testing.T) {
	noDial := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("tests dial nothing")
	}}}
	cfg := rs.Config{Issuer: "http://m2mauth:8080", Audience: audience, HTTPClient: noDial}
	if _, err := rs.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "must use https") {
		t.Fatalf("without AllowInsecureIssuer: %v", err)
	}
	cfg.AllowInsecureIssuer = true
	_, err := rs.New(context.Background(), cfg)
	if err == nil || strings.Contains(err.Error(), "must use https") || !strings.Contains(err.Error(), "tests dial nothing") {
		t.Fatalf("with AllowInsecureIssuer: %v", err)
	}
}
