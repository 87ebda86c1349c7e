package jwks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults of FetcherConfig.
const (
	DefaultMaxBytes        = 256 << 10
	DefaultTimeout         = 10 * time.Second
	DefaultTTL             = 5 * time.Minute  // without Cache-Control max-age
	DefaultMinTTL          = 1 * time.Minute  // lower bound of max-age
	DefaultMaxTTL          = 24 * time.Hour   // upper bound of max-age
	DefaultRefetchInterval = 10 * time.Second // at most one fetch per URL this often
)

// ErrUnknownKey is returned by Fetcher.Lookup when the JWKS, fetched again
// if the rate limit allowed, has no key with the kid asked for.
var ErrUnknownKey = errors.New("jwks: no key with this kid")

// FetcherConfig configures a Fetcher. Zero fields take the defaults above.
type FetcherConfig struct {
	// RootCAs, if set, are the CAs trusted for https instead of the
	// system's (tests, private PKI).
	RootCAs *x509.CertPool
	// AllowInsecure allows http URLs to loopback hosts (tests and
	// development only; see CheckURL).
	AllowInsecure bool
	// Transport, if set, replaces the TLS transport built from RootCAs
	// (tests). Redirects are refused whatever it is.
	Transport       http.RoundTripper
	MaxBytes        int64
	Timeout         time.Duration
	DefaultTTL      time.Duration
	MinTTL, MaxTTL  time.Duration
	RefetchInterval time.Duration
	Now             func() time.Time
	Log             *slog.Logger
}

// Fetcher fetches JWKS documents by URL and caches them per URL for their
// Cache-Control max-age (bounded by MinTTL and MaxTTL). A lookup of an
// unknown kid fetches again, at most once per RefetchInterval per URL, so
// a stream of made-up kids costs one fetch per interval. Only https (see
// CheckURL), no redirects, bodies of at most MaxBytes, each fetch bounded
// by Timeout. Safe for concurrent use.
type Fetcher struct {
	cfg    FetcherConfig
	client *http.Client

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is the cache of one URL.
type entry struct {
	fetchMu sync.Mutex // held for the whole of a fetch

	mu          sync.RWMutex // guards the fields below
	set         Set
	ok          bool      // set holds a successful fetch
	expires     time.Time // when its max-age runs out
	lastAttempt time.Time // start of the latest fetch, successful or not
}

// NewFetcher returns a Fetcher with cfg.
func NewFetcher(cfg FetcherConfig) *Fetcher {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = DefaultTTL
	}
	if cfg.MinTTL <= 0 {
		cfg.MinTTL = DefaultMinTTL
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = DefaultMaxTTL
	}
	if cfg.RefetchInterval <= 0 {
		cfg.RefetchInterval = DefaultRefetchInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	rt := cfg.Transport
	if rt == nil {
		rt = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: cfg.Timeout,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	client := &http.Client{
		Transport: rt,
		Timeout:   cfg.Timeout,
		// No redirects at all: a JWKS URL is configured exactly, and a
		// redirect could lead to http or to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Fetcher{cfg: cfg, client: client, entries: map[string]*entry{}}
}

// Lookup returns the keys with key ID kid (every key if kid is "") of the
// JWKS at rawURL, fetching it if it is not cached or its max-age ran out,
// or again if kid is unknown and the rate limit allows. If a fetch fails,
// the keys of the last successful one stay in use. Returns an error if
// rawURL is refused by CheckURL, if no fetch ever succeeded (wrapping the
// cause), or ErrUnknownKey if no key has kid.
func (f *Fetcher) Lookup(ctx context.Context, rawURL, kid string) ([]jose.JSONWebKey, error) {
	if err := CheckURL(rawURL, f.cfg.AllowInsecure); err != nil {
		return nil, err
	}
	f.mu.Lock()
	e := f.entries[rawURL]
	if e == nil {
		e = &entry{}
		f.entries[rawURL] = e
	}
	f.mu.Unlock()

	if keys, done := f.cached(e, kid); done {
		return keys, nil
	}
	if _, err := e.lookup(kid); err == nil && e.stale(f.cfg.Now()) {
		// Known kid, max-age over: refresh unless another goroutine is,
		// and serve the cached keys meanwhile.
		if !e.fetchMu.TryLock() {
			return e.lookup(kid)
		}
		_ = f.refreshIfDue(ctx, rawURL, e)
		e.fetchMu.Unlock()
		return e.lookup(kid)
	}
	// Never fetched, or an unknown kid: wait for the fetch.
	e.fetchMu.Lock()
	defer e.fetchMu.Unlock()
	if keys, done := f.cached(e, kid); done {
		return keys, nil // another goroutine fetched while this one waited
	}
	err := f.refreshIfDue(ctx, rawURL, e)
	if !e.fetched() {
		if err == nil {
			err = errors.New("fetch rate-limited after a failure")
		}
		return nil, fmt.Errorf("jwks: %s: %w", rawURL, err)
	}
	return e.lookup(kid)
}

// cached returns the keys with kid if e holds a fetch that is not stale
// and has them.
func (f *Fetcher) cached(e *entry, kid string) ([]jose.JSONWebKey, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.ok || !f.cfg.Now().Before(e.expires) {
		return nil, false
	}
	keys := e.set.Lookup(kid)
	return keys, len(keys) > 0
}

func (e *entry) stale(now time.Time) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return !now.Before(e.expires)
}

func (e *entry) fetched() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.ok
}

// lookup returns the keys with kid in e, or ErrUnknownKey.
func (e *entry) lookup(kid string) ([]jose.JSONWebKey, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if keys := e.set.Lookup(kid); len(keys) > 0 {
		return keys, nil
	}
	return nil, ErrUnknownKey
}

// refreshIfDue fetches the JWKS at rawURL into e unless a fetch started
// less than RefetchInterval ago. The caller holds e.fetchMu. A failed
// fetch is logged and returned; e keeps its keys.
func (f *Fetcher) refreshIfDue(ctx context.Context, rawURL string, e *entry) error {
	now := f.cfg.Now()
	e.mu.Lock()
	last := e.lastAttempt
	if !last.IsZero() && now.Sub(last) < f.cfg.RefetchInterval {
		e.mu.Unlock()
		f.cfg.Log.Debug("jwks: refetch rate-limited", "url", rawURL)
		return nil
	}
	e.lastAttempt = now
	e.mu.Unlock()

	// The fetch outlives an impatient caller: its result serves everyone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Timeout)
	defer cancel()
	set, ttl, err := f.fetch(ctx, rawURL)
	if err != nil {
		f.cfg.Log.Warn("jwks: fetch failed; keeping the keys of the last successful one", "url", rawURL, "error", err)
		return err
	}
	e.mu.Lock()
	e.set, e.ok, e.expires = set, true, now.Add(ttl)
	e.mu.Unlock()
	f.cfg.Log.Debug("jwks: fetched", "url", rawURL, "keys", len(set.Keys), "ttl", ttl)
	return nil
}

// fetch GETs the JWKS at rawURL and returns it with how long it may be
// cached.
func (f *Fetcher) fetch(ctx context.Context, rawURL string) (Set, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return Set{}, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return Set{}, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return Set{}, 0, fmt.Errorf("status %d (redirects are not followed)", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return Set{}, 0, err
	}
	if int64(len(body)) > f.cfg.MaxBytes {
		return Set{}, 0, fmt.Errorf("body larger than %d bytes", f.cfg.MaxBytes)
	}
	set, err := parse(body, false)
	if err != nil {
		return Set{}, 0, err
	}
	return set, f.ttl(resp.Header), nil
}

// ttl is how long a response may be used: its Cache-Control max-age (RFC
// 9111 §5.2.2.1), DefaultTTL without one, clamped to [MinTTL, MaxTTL];
// no-cache and no-store mean MinTTL.
func (f *Fetcher) ttl(h http.Header) time.Duration {
	ttl := f.cfg.DefaultTTL
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-cache", "no-store":
				return f.cfg.MinTTL
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err != nil || n < 0 {
					continue
				}
				if n > int64(f.cfg.MaxTTL/time.Second) {
					n = int64(f.cfg.MaxTTL / time.Second)
				}
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	return min(max(ttl, f.cfg.MinTTL), f.cfg.MaxTTL)
}
