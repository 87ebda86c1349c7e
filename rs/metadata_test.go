package rs_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/rs"
)

func TestMetadataURL(t *testing.T) {
	for _, tc := range []struct{ resource, want string }{
		{"https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://example.com/usage", "https://example.com/.well-known/oauth-protected-resource/usage"},
		{"https://example.com/usage/", "https://example.com/.well-known/oauth-protected-resource/usage/"},
		{"http://127.0.0.1:9090", "http://127.0.0.1:9090/.well-known/oauth-protected-resource"},
		{"https://example.com/a?tenant=1", "https://example.com/.well-known/oauth-protected-resource/a?tenant=1"},
	} {
		got, err := rs.MetadataURL(tc.resource)
		if err != nil || got != tc.want {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", tc.resource, got, err, tc.want)
		}
	}
	for _, bad := range []string{"urn:example:api", "api.example.com", "https://example.com/#x", "ftp://example.com/"} {
		if got, err := rs.MetadataURL(bad); err == nil {
			t.Errorf("MetadataURL(%q) = %q, want an error", bad, got)
		}
	}
	if p, err := rs.MetadataPath("https://example.com/usage?x=1"); err != nil || p != "/.well-known/oauth-protected-resource/usage" {
		t.Errorf("MetadataPath = %q, %v", p, err)
	}
}

func TestMetadataHandler(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	metaURL, _ := rs.MetadataURL(audience)
	v := iss.validator(func(c *rs.Config) { c.Policy = rs.SenderConstrained; c.ResourceMetadataURL = metaURL })
	m := v.Metadata()
	m.ScopesSupported = []string{"read:meters"}
	path, _ := rs.MetadataPath(audience)
	mux := http.NewServeMux()
	mux.Handle(path, rs.MetadataHandler(m))
	mux.Handle("GET /meters", v.Middleware(http.HandlerFunc(echoClaims)))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/.well-known/oauth-protected-resource")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET metadata: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"resource":                                   audience,
		"authorization_servers":                      []any{iss.URL},
		"scopes_supported":                           []any{"read:meters"},
		"bearer_methods_supported":                   []any{"header"},
		"dpop_signing_alg_values_supported":          []any{"ES256", "PS256", "EdDSA", "RS256"},
		"dpop_bound_access_tokens_required":          true,
		"tls_client_certificate_bound_access_tokens": false,
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("metadata = %s\nwant %s", gotJSON, wantJSON)
	}

	post, err := http.Post(srv.URL+"/.well-known/oauth-protected-resource", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != 405 {
		t.Errorf("POST metadata: %d", post.StatusCode)
	}

	// 401 challenges point at the metadata (RFC 9728 §5.1).
	r := send(t, srv.Client(), "GET", srv.URL+"/meters", nil)
	if r.status != 401 || len(r.auth) != 1 || !strings.Contains(r.auth[0], `resource_metadata="`+metaURL+`"`) {
		t.Errorf("challenge %q lacks resource_metadata", r.auth)
	}
	if strings.HasPrefix(r.auth[0], "DPoP ") && !strings.Contains(r.auth[0], dpopAlgs) {
		t.Errorf("challenge %q", r.auth)
	}
}

func TestResourceMetadataOnBearerChallenge(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	v := iss.validator(func(c *rs.Config) {
		c.ResourceMetadataURL = "https://api.example.com/.well-known/oauth-protected-resource"
	})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/meters", nil)
	r.Header.Set("Authorization", "Bearer abc.def.ghi")
	v.Middleware(http.HandlerFunc(echoClaims)).ServeHTTP(w, r)
	got := w.Header().Values("WWW-Authenticate")
	want := []string{
		`Bearer realm="` + audience + `", error="invalid_token", error_description="malformed token", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`,
		`DPoP realm="` + audience + `", ` + dpopAlgs + `, resource_metadata="https://api.example.com/.well-known/oauth-protected-resource"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("WWW-Authenticate =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestConfigChecksSenderConstraints(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	for _, tc := range []struct {
		name string
		edit func(*rs.Config)
	}{
		{"unknown policy", func(c *rs.Config) { c.Policy = 7 }},
		{"HS256 proofs", func(c *rs.Config) { c.DPoP.Algorithms = []string{"HS256"} }},
		{"proof max age too long", func(c *rs.Config) { c.DPoP.MaxAge = time.Hour }},
		{"negative proof leeway", func(c *rs.Config) { c.DPoP.Leeway = -time.Second }},
		{"external URL with query", func(c *rs.Config) { c.ExternalURL = "https://api.example.com/?x=1" }},
		{"external URL not absolute", func(c *rs.Config) { c.ExternalURL = "/usage" }},
		{"metadata URL not absolute", func(c *rs.Config) { c.ResourceMetadataURL = "/.well-known/oauth-protected-resource" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := rs.Config{Issuer: iss.URL, Audience: audience}
			tc.edit(&cfg)
			if _, err := rs.New(context.Background(), cfg); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

func TestReplayCache(t *testing.T) {
	clk := newClock()
	c := rs.NewReplayCache(32, clk.Now)
	ctx := context.Background()
	exp := clk.Now().Add(time.Minute)

	if fresh, err := c.UseJTI(ctx, "dpop:k:1", exp); !fresh || err != nil {
		t.Fatalf("first use: %v %v", fresh, err)
	}
	if fresh, err := c.UseJTI(ctx, "dpop:k:1", exp); fresh || err != nil {
		t.Fatalf("second use: %v %v", fresh, err)
	}
	if fresh, _ := c.UseJTI(ctx, "dpop:k:past", clk.Now().Add(-time.Second)); !fresh || c.Len() != 1 {
		t.Errorf("an expired key is fresh and not stored: %v, %d entries", fresh, c.Len())
	}
	// Fill it: it refuses to evict live entries.
	full := false
	for i := range 1000 {
		if _, err := c.UseJTI(ctx, "dpop:k:fill"+string(rune('a'+i%26))+strings.Repeat("x", i), exp); errors.Is(err, rs.ErrReplayCacheFull) {
			full = true
			break
		}
	}
	if !full || c.Len() > 32 {
		t.Fatalf("cache never full (%v) or over its bound: %d entries", full, c.Len())
	}
	// After expiry (and a sweep interval), space is made and old keys are fresh again.
	clk.Advance(2 * time.Minute)
	if fresh, err := c.UseJTI(ctx, "dpop:k:1", clk.Now().Add(time.Minute)); !fresh || err != nil {
		t.Fatalf("after expiry: %v %v", fresh, err)
	}
	for i := range 31 { // 31 and dpop:k:1 fill it again
		if _, err := c.UseJTI(ctx, "dpop:k:new"+strings.Repeat("y", i), clk.Now().Add(time.Minute)); err != nil {
			t.Fatalf("after expiry, insert %d: %v", i, err)
		}
	}

	// Concurrent use: each key is fresh exactly once.
	c = rs.NewReplayCache(10000, clk.Now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	freshCount := 0
	for range 8 {
		wg.Go(func() {
			for i := range 500 {
				fresh, err := c.UseJTI(ctx, "dpop:k:"+strings.Repeat("z", i%100)+string(rune('0'+i/100)), clk.Now().Add(time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				if fresh {
					mu.Lock()
					freshCount++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if freshCount != 500 {
		t.Errorf("%d fresh answers for 500 keys", freshCount)
	}
}
