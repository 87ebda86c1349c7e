package rs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Bounds and defaults of IntrospectionConfig.
const (
	// DefaultIntrospectionCacheTTL is how long an introspection answer is
	// reused when none is configured: 10 s.
	DefaultIntrospectionCacheTTL = 10 * time.Second
	// MaxIntrospectionCacheTTL is the largest CacheTTL New accepts: 60 s.
	MaxIntrospectionCacheTTL = 60 * time.Second
	// DefaultIntrospectionCacheEntries bounds the cache when no
	// MaxCacheEntries is configured: 10000 tokens.
	DefaultIntrospectionCacheEntries = 10000
	// maxIntrospectionBytes bounds an introspection response body: 64 KiB.
	maxIntrospectionBytes = 64 << 10
)

// ErrIntrospectionUnavailable is returned by Validate in introspection mode
// when the issuer's introspection endpoint gives no usable answer:
// unreachable, slower than DefaultHTTPTimeout, refusing this API's
// credentials, or answering something other than an RFC 7662 §2.2 JSON
// object. It does not match ErrInvalidToken: the token may be fine, but
// introspection fails closed, so it is not accepted. Middleware answers
// 503 with Retry-After.
var ErrIntrospectionUnavailable = errors.New("rs: token introspection unavailable")

// ErrInactive: in introspection mode, the issuer answered that the token is
// not active (RFC 7662 §2.2): revoked, or its application disabled,
// deleted or no longer granted what the token carries.
var ErrInactive = errors.New("token is not active")

// IntrospectionConfig turns on introspection mode (Config.Introspection):
// every token that passes local validation is also sent to the issuer's
// introspection endpoint (RFC 7662), found in its metadata
// ("introspection_endpoint"), and accepted only if the answer is
// "active": true. Revoking a token, or disabling its application, then
// takes effect on this API within CacheTTL instead of at the token's
// expiry. It costs one request to the issuer per token per CacheTTL, made
// in the calling request: bounded by DefaultHTTPTimeout and cancelled with
// Validate's ctx. The request follows no redirect.
type IntrospectionConfig struct {
	// ClientID and ClientSecret authenticate this API to the endpoint
	// with HTTP Basic (client_secret_basic, RFC 6749 §2.3.1). In m2mauth
	// the application needs this API's identifier in its
	// introspect_audiences to see other applications' tokens for it;
	// without it every such token is answered inactive. Required.
	ClientID     string
	ClientSecret string

	// CacheTTL is how long an answer about a token (by its jti) is reused,
	// never past the token's exp: the longest a revoked token is still
	// accepted. Default DefaultIntrospectionCacheTTL (10 s); at most
	// MaxIntrospectionCacheTTL (60 s).
	CacheTTL time.Duration

	// MaxCacheEntries bounds the answers kept; past it, expired answers
	// are dropped and then arbitrary ones. Default
	// DefaultIntrospectionCacheEntries (10000).
	MaxCacheEntries int
}

// introspector asks the introspection endpoint about tokens and caches the
// answers by jti. It is safe for concurrent use.
type introspector struct {
	endpoint   string // set from the issuer's metadata
	authHeader string // "Basic …"
	client     *http.Client
	ttl        time.Duration
	maxEntries int
	now        func() time.Time
	log        *slog.Logger

	mu      sync.Mutex
	answers map[string]answer // by jti
}

// answer is a cached verdict, usable until until.
type answer struct {
	active bool
	until  time.Time
}

// newIntrospector checks c and returns an introspector without its
// endpoint; nil if c is nil (introspection mode off).
func newIntrospector(c *IntrospectionConfig, s settings) (*introspector, error) {
	if c == nil {
		return nil, nil
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return nil, errors.New("rs: Config.Introspection needs ClientID and ClientSecret")
	}
	// The request carries this API's secret and the token: it follows no
	// redirect, which could take both to another scheme, host or path
	// (net/http resends them on a 307 to the same host over plain http).
	client := *s.client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	in := &introspector{client: &client, ttl: c.CacheTTL, maxEntries: c.MaxCacheEntries, now: s.now, log: s.log, answers: map[string]answer{}}
	switch {
	case in.ttl == 0:
		in.ttl = DefaultIntrospectionCacheTTL
	case in.ttl < 0 || in.ttl > MaxIntrospectionCacheTTL:
		return nil, fmt.Errorf("rs: Config.Introspection.CacheTTL %v outside (0, %v]", c.CacheTTL, MaxIntrospectionCacheTTL)
	}
	switch {
	case in.maxEntries == 0:
		in.maxEntries = DefaultIntrospectionCacheEntries
	case in.maxEntries < 0:
		return nil, fmt.Errorf("rs: Config.Introspection.MaxCacheEntries %d is negative", c.MaxCacheEntries)
	}
	// RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
	req := &http.Request{Header: http.Header{}}
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	in.authHeader = req.Header.Get("Authorization")
	return in, nil
}

// setEndpoint takes the introspection endpoint from the issuer's metadata.
func (in *introspector) setEndpoint(meta metadata, issuer *url.URL) error {
	if err := checkEndpoint("introspection_endpoint", meta.IntrospectionEndpoint, issuer); err != nil {
		return fmt.Errorf("rs: introspection mode: the issuer's metadata: %w", err)
	}
	in.endpoint = meta.IntrospectionEndpoint
	return nil
}

// check accepts a locally valid token only if the issuer says it is
// active, from the cache when it answered within the cache TTL. It returns
// an error matching ErrInactive (and ErrInvalidToken), or
// ErrIntrospectionUnavailable.
func (in *introspector) check(ctx context.Context, token string, c *Claims) error {
	now := in.now()
	active, ok := in.cached(c.JTI, now)
	if !ok {
		var err error
		if active, err = in.ask(ctx, token, c.JTI); err != nil {
			in.log.WarnContext(ctx, "rs: token introspection failed; refusing the token", "jti", c.JTI, "error", err)
			return fmt.Errorf("%w: %v", ErrIntrospectionUnavailable, err)
		}
		until := now.Add(in.ttl)
		if c.ExpiresAt.Before(until) {
			until = c.ExpiresAt
		}
		in.remember(c.JTI, answer{active: active, until: until}, now)
	}
	if !active {
		return &tokenError{reason: ErrInactive, detail: "revoked or no longer authorized"}
	}
	return nil
}

func (in *introspector) cached(jti string, now time.Time) (active, ok bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	a, ok := in.answers[jti]
	if !ok || !now.Before(a.until) {
		return false, false
	}
	return a.active, true
}

// remember caches a, first making room if the cache is full: expired
// answers go, then arbitrary ones.
func (in *introspector) remember(jti string, a answer, now time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.answers[jti]; !ok && len(in.answers) >= in.maxEntries {
		for k, old := range in.answers {
			if !now.Before(old.until) {
				delete(in.answers, k)
			}
		}
		for k := range in.answers {
			if len(in.answers) < in.maxEntries {
				break
			}
			delete(in.answers, k)
		}
	}
	in.answers[jti] = a
}

// introspectionResponse is the part of an RFC 7662 §2.2 answer read here.
type introspectionResponse struct {
	Active *bool  `json:"active"`
	JTI    string `json:"jti"`
}

// ask POSTs the token to the introspection endpoint (RFC 7662 §2.1) and
// returns its "active". An error says why there is no usable answer; it
// never holds the token or the secret.
func (in *introspector) ask(ctx context.Context, token, jti string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", in.authHeader)
	resp, err := in.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the "Post <url>:" prefix
		}
		return false, fmt.Errorf("POST %s: %w", in.endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionBytes+1))
	if err != nil {
		return false, fmt.Errorf("POST %s: reading the answer: %w", in.endpoint, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return false, fmt.Errorf("POST %s: status %d: redirects are not followed", in.endpoint, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		// 401 here means this API's own credentials were refused.
		return false, fmt.Errorf("POST %s: status %d", in.endpoint, resp.StatusCode)
	}
	if len(body) > maxIntrospectionBytes {
		return false, fmt.Errorf("POST %s: answer larger than %d bytes", in.endpoint, maxIntrospectionBytes)
	}
	var out introspectionResponse
	if err := json.Unmarshal(body, &out); err != nil || out.Active == nil {
		return false, fmt.Errorf("POST %s: the answer is not a JSON object with a boolean \"active\"", in.endpoint)
	}
	if *out.Active && out.JTI != "" && out.JTI != jti {
		return false, fmt.Errorf("POST %s: the answer is about another token", in.endpoint)
	}
	return *out.Active, nil
}

// writeUnavailable answers a request whose token could not be checked (not
// introspected, or its DPoP proof's jti not recorded): 503 with
// Retry-After, and a JSON body like the other refusals. It carries no
// WWW-Authenticate challenge: the client's token is not known to be bad.
func writeUnavailable(w http.ResponseWriter, description string) {
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{"temporarily_unavailable", description})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write(append(body, '\n'))
}
