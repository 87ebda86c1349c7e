package jwks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
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

// Fetcher fetches JWKS documents (RFC 7517 §5), SPIFFE trust bundles
// (SPIFFE Trust Domain and Bundle §4) and OpenID Provider configurations
// (OpenID Connect Discovery 1.0 §4) by URL and caches each per URL for its
// Cache-Control max-age (a bundle: its spiffe_refresh_hint), bounded by
// MinTTL and MaxTTL. A lookup of an unknown kid fetches again, at most once
// per RefetchInterval per URL, so a stream of made-up kids costs one fetch
// per interval. Only https (see CheckURL), no redirects, bodies of at most
// MaxBytes, each fetch bounded by Timeout; a failed fetch keeps the last
// good document in use. Safe for concurrent use.
type Fetcher struct {
	cfg    FetcherConfig
	client *http.Client

	mu      sync.Mutex
	entries map[entryKey]*entry
}

// docKind is the kind of document an entry caches.
type docKind int

const (
	kindJWKS      docKind = iota // a JWKS at its URL
	kindBundle                   // a SPIFFE bundle at its URL
	kindDiscovery                // an issuer's OpenID configuration; url is the issuer
)

// entryKey names a cache entry: the same URL read as a JWKS and as a
// bundle are two documents.
type entryKey struct {
	kind docKind
	url  string
}

// entry is the cache of one document.
type entry struct {
	fetchMu sync.Mutex // held for the whole of a fetch

	mu          sync.RWMutex        // guards the fields below
	set         Set                 // kindJWKS, kindBundle
	authorities []*x509.Certificate // kindBundle: the x509-svid CA certificates
	jwksURI     string              // kindDiscovery: the document's jwks_uri
	ok          bool                // the fields above hold a successful fetch
	expires     time.Time           // when its max-age runs out
	lastAttempt time.Time           // start of the latest fetch, successful or not
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
	return &Fetcher{cfg: cfg, client: client, entries: map[entryKey]*entry{}}
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
	return f.keys(ctx, entryKey{kindJWKS, rawURL}, kid)
}

// LookupBundle is Lookup for the SPIFFE bundle at rawURL (a bundle
// endpoint of the https_web profile, SPIFFE Trust Domain and Bundle §5):
// only its jwt-svid keys are returned (its X.509 authorities:
// LookupBundleAuthorities), and it is cached for its spiffe_refresh_hint,
// bounded by MinTTL and MaxTTL.
func (f *Fetcher) LookupBundle(ctx context.Context, rawURL, kid string) ([]jose.JSONWebKey, error) {
	if err := CheckURL(rawURL, f.cfg.AllowInsecure); err != nil {
		return nil, err
	}
	return f.keys(ctx, entryKey{kindBundle, rawURL}, kid)
}

// LookupBundleAuthorities returns the X.509 authorities of the SPIFFE
// bundle at rawURL (its x509-svid keys' CA certificates, SPIFFE X509-SVID
// §6.2), the roots of its trust domain's X.509-SVIDs. It reads the same
// cached document as LookupBundle: fetched if not cached, refreshed once
// its spiffe_refresh_hint (bounded by MinTTL and MaxTTL) ran out, the
// last good authorities served meanwhile and kept if a refresh fails.
// Returns an error if rawURL is refused by CheckURL or if no fetch ever
// succeeded (wrapping the cause); a bundle without x509-svid keys has no
// authorities, and no error.
func (f *Fetcher) LookupBundleAuthorities(ctx context.Context, rawURL string) ([]*x509.Certificate, error) {
	if err := CheckURL(rawURL, f.cfg.AllowInsecure); err != nil {
		return nil, err
	}
	k := entryKey{kindBundle, rawURL}
	e := f.entry(k)
	if e.fetched() {
		// Stale: refresh unless another goroutine is, and answer with the
		// last good authorities meanwhile.
		if e.stale(f.cfg.Now()) && e.fetchMu.TryLock() {
			_ = f.refreshIfDue(ctx, k, e)
			e.fetchMu.Unlock()
		}
		return e.bundleAuthorities(), nil
	}
	e.fetchMu.Lock()
	defer e.fetchMu.Unlock()
	if e.fetched() {
		return e.bundleAuthorities(), nil // another goroutine fetched while this one waited
	}
	err := f.refreshIfDue(ctx, k, e)
	if !e.fetched() {
		if err == nil {
			err = errors.New("fetch rate-limited after a failure")
		}
		return nil, fmt.Errorf("jwks: %s: %w", k.url, err)
	}
	return e.bundleAuthorities(), nil
}

// LookupDiscovered is Lookup for the JWKS of issuer, found by OpenID
// Connect discovery (Discover). Returns Discover's errors, then Lookup's.
func (f *Fetcher) LookupDiscovered(ctx context.Context, issuer, kid string) ([]jose.JSONWebKey, error) {
	jwksURI, err := f.Discover(ctx, issuer)
	if err != nil {
		return nil, err
	}
	return f.Lookup(ctx, jwksURI, kid)
}

// Discover returns the jwks_uri of issuer's OpenID Provider configuration,
// fetched from issuer + "/.well-known/openid-configuration" (OpenID
// Connect Discovery 1.0 §4.1; a trailing "/" of issuer is dropped first)
// and cached like a JWKS. The document's "issuer" must equal issuer exactly
// (§4.3) and its jwks_uri must pass CheckURL. Returns an error if issuer is
// refused by CheckURL, or if no fetch ever succeeded (wrapping the cause);
// after one did, a failed refresh keeps its jwks_uri in use.
func (f *Fetcher) Discover(ctx context.Context, issuer string) (string, error) {
	if err := checkIssuer(issuer, f.cfg.AllowInsecure); err != nil {
		return "", err
	}
	k := entryKey{kindDiscovery, issuer}
	e := f.entry(k)
	if uri, fresh := e.discovered(f.cfg.Now()); uri != "" {
		// Stale: refresh unless another goroutine is, and answer with the
		// last good value meanwhile.
		if !fresh && e.fetchMu.TryLock() {
			_ = f.refreshIfDue(ctx, k, e)
			e.fetchMu.Unlock()
			uri, _ = e.discovered(f.cfg.Now())
		}
		return uri, nil
	}
	e.fetchMu.Lock()
	defer e.fetchMu.Unlock()
	if uri, _ := e.discovered(f.cfg.Now()); uri != "" {
		return uri, nil // another goroutine fetched while this one waited
	}
	err := f.refreshIfDue(ctx, k, e)
	uri, _ := e.discovered(f.cfg.Now())
	if uri == "" {
		if err == nil {
			err = errors.New("fetch rate-limited after a failure")
		}
		return "", fmt.Errorf("jwks: discovery of %s: %w", issuer, err)
	}
	return uri, nil
}

// checkIssuer is CheckURL for an issuer identifier, which also has no
// query (OpenID Connect Discovery 1.0 §3, RFC 8414 §2).
func checkIssuer(issuer string, allowInsecure bool) error {
	if err := CheckURL(issuer, allowInsecure); err != nil {
		return err
	}
	if strings.Contains(issuer, "?") {
		return fmt.Errorf("jwks: issuer %q: an issuer has no query", issuer)
	}
	return nil
}

// discoveryURL is where the OpenID configuration of issuer is (OpenID
// Connect Discovery 1.0 §4.1).
func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

func (f *Fetcher) entry(k entryKey) *entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.entries[k]
	if e == nil {
		e = &entry{}
		f.entries[k] = e
	}
	return e
}

// keys is Lookup of the JWKS or bundle k.
func (f *Fetcher) keys(ctx context.Context, k entryKey, kid string) ([]jose.JSONWebKey, error) {
	e := f.entry(k)
	if keys, done := f.cached(e, kid); done {
		return keys, nil
	}
	if _, err := e.lookup(kid); err == nil && e.stale(f.cfg.Now()) {
		// Known kid, max-age over: refresh unless another goroutine is,
		// and serve the cached keys meanwhile.
		if !e.fetchMu.TryLock() {
			return e.lookup(kid)
		}
		_ = f.refreshIfDue(ctx, k, e)
		e.fetchMu.Unlock()
		return e.lookup(kid)
	}
	// Never fetched, or an unknown kid: wait for the fetch.
	e.fetchMu.Lock()
	defer e.fetchMu.Unlock()
	if keys, done := f.cached(e, kid); done {
		return keys, nil // another goroutine fetched while this one waited
	}
	err := f.refreshIfDue(ctx, k, e)
	if !e.fetched() {
		if err == nil {
			err = errors.New("fetch rate-limited after a failure")
		}
		return nil, fmt.Errorf("jwks: %s: %w", k.url, err)
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

// discovered returns the jwks_uri of a discovery entry ("" if never
// fetched) and whether its max-age still runs.
func (e *entry) discovered(now time.Time) (jwksURI string, fresh bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.ok {
		return "", false
	}
	return e.jwksURI, now.Before(e.expires)
}

// bundleAuthorities returns a copy of e's X.509 authorities.
func (e *entry) bundleAuthorities() []*x509.Certificate {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Clone(e.authorities)
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

// refreshIfDue fetches document k into e unless a fetch started less than
// RefetchInterval ago. The caller holds e.fetchMu. A failed fetch is
// logged and returned; e keeps its last good document.
func (f *Fetcher) refreshIfDue(ctx context.Context, k entryKey, e *entry) error {
	now := f.cfg.Now()
	e.mu.Lock()
	last := e.lastAttempt
	if !last.IsZero() && now.Sub(last) < f.cfg.RefetchInterval {
		e.mu.Unlock()
		f.cfg.Log.Debug("jwks: refetch rate-limited", "url", k.url)
		return nil
	}
	e.lastAttempt = now
	e.mu.Unlock()

	// The fetch outlives an impatient caller: its result serves everyone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.cfg.Timeout)
	defer cancel()
	d, ttl, err := f.fetch(ctx, k)
	if err != nil {
		f.cfg.Log.Warn("jwks: fetch failed; keeping the last good document", "url", k.url, "error", err)
		return err
	}
	e.mu.Lock()
	e.set, e.authorities, e.jwksURI, e.ok, e.expires = d.set, d.authorities, d.jwksURI, true, now.Add(ttl)
	e.mu.Unlock()
	f.cfg.Log.Debug("jwks: fetched", "url", k.url, "keys", len(d.set.Keys), "authorities", len(d.authorities), "ttl", ttl)
	return nil
}

// document is what a fetch read: keys (and a bundle's X.509
// authorities), or a discovered jwks_uri.
type document struct {
	set         Set
	authorities []*x509.Certificate
	jwksURI     string
}

// fetch GETs document k and returns it with how long it may be cached.
func (f *Fetcher) fetch(ctx context.Context, k entryKey) (document, time.Duration, error) {
	rawURL, accept := k.url, "application/jwk-set+json, application/json"
	if k.kind == kindDiscovery {
		rawURL, accept = discoveryURL(k.url), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return document{}, 0, err
	}
	req.Header.Set("Accept", accept)
	resp, err := f.client.Do(req)
	if err != nil {
		return document{}, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return document{}, 0, fmt.Errorf("status %d (redirects are not followed)", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return document{}, 0, err
	}
	if int64(len(body)) > f.cfg.MaxBytes {
		return document{}, 0, fmt.Errorf("body larger than %d bytes", f.cfg.MaxBytes)
	}
	ttl := f.ttl(resp.Header)
	switch k.kind {
	case kindBundle:
		b, err := parseBundle(body, false)
		if err != nil {
			return document{}, 0, err
		}
		if b.RefreshHint > 0 {
			ttl = min(max(b.RefreshHint, f.cfg.MinTTL), f.cfg.MaxTTL)
		}
		return document{set: b.Set, authorities: b.Authorities}, ttl, nil
	case kindDiscovery:
		uri, err := parseDiscovery(body, k.url, f.cfg.AllowInsecure)
		if err != nil {
			return document{}, 0, err
		}
		return document{jwksURI: uri}, ttl, nil
	}
	set, err := parse(body, false)
	if err != nil {
		return document{}, 0, err
	}
	return document{set: set}, ttl, nil
}

// parseDiscovery reads an OpenID Provider configuration of issuer and
// returns its jwks_uri (OpenID Connect Discovery 1.0 §3, §4.3).
func parseDiscovery(body []byte, issuer string, allowInsecure bool) (string, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("not an OpenID configuration: %w", err)
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("the configuration names issuer %q, not %q (OpenID Connect Discovery 1.0 section 4.3)", doc.Issuer, issuer)
	}
	if doc.JWKSURI == "" {
		return "", errors.New("the configuration has no jwks_uri")
	}
	if err := CheckURL(doc.JWKSURI, allowInsecure); err != nil {
		return "", err
	}
	return doc.JWKSURI, nil
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
