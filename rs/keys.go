package rs

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// maxDocumentBytes bounds discovery and JWKS response bodies.
	maxDocumentBytes = 1 << 20
	// defaultKeysTTL is how long keys are kept when the JWKS response has
	// no Cache-Control max-age.
	defaultKeysTTL = 5 * time.Minute
	// maxKeysTTL caps a JWKS max-age, so removed keys are dropped within a day.
	maxKeysTTL = 24 * time.Hour
	// minRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3).
	minRSABits = 2048
)

// discoveryURLs lists where the metadata of issuer may be, in the order
// tried: RFC 8414 §3.1 (well-known suffix inserted before the issuer's path),
// the same suffix appended to the issuer, and OpenID Connect Discovery 1.0
// §4 (openid-configuration appended). For an issuer without a path the first
// two are the same URL.
func discoveryURLs(issuer *url.URL) []string {
	base := issuer.Scheme + "://" + issuer.Host
	path := strings.TrimSuffix(issuer.EscapedPath(), "/")
	urls := []string{base + "/.well-known/oauth-authorization-server" + path}
	if path != "" {
		urls = append(urls, base+path+"/.well-known/oauth-authorization-server")
	}
	return append(urls, base+path+"/.well-known/openid-configuration")
}

// metadata is what the Validator reads of the issuer's metadata (RFC 8414 §2).
type metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// discover fetches the metadata of issuer (want, parsed). It tries each of
// discoveryURLs until one answers 200, and fails if the document's issuer
// differs from want (RFC 8414 §3.3) or its jwks_uri is not acceptable.
func discover(ctx context.Context, client *http.Client, want string, issuer *url.URL) (metadata, error) {
	var errs []error
	for _, u := range discoveryURLs(issuer) {
		var meta metadata
		if _, err := getJSON(ctx, client, u, &meta); err != nil {
			errs = append(errs, err)
			continue
		}
		if meta.Issuer != want {
			return metadata{}, fmt.Errorf("rs: discovery document %s names issuer %q, want %q (RFC 8414 §3.3)", u, meta.Issuer, want)
		}
		if err := checkEndpoint("jwks_uri", meta.JWKSURI, issuer); err != nil {
			return metadata{}, fmt.Errorf("rs: discovery document %s: %w", u, err)
		}
		return meta, nil
	}
	return metadata{}, fmt.Errorf("rs: discovery failed: %w", errors.Join(errs...))
}

// checkEndpoint accepts an absolute https URL, or http when the issuer
// itself is a loopback http URL, as the metadata member name.
func checkEndpoint(name, raw string, issuer *url.URL) error {
	if raw == "" {
		return errors.New("no " + name)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q is not an absolute URL", name, raw)
	}
	if u.Scheme != "https" && (u.Scheme != "http" || issuer.Scheme != "http") {
		return fmt.Errorf("%s %q must use https", name, raw)
	}
	return nil
}

// getJSON GETs u and decodes a JSON body of at most maxDocumentBytes into
// dst. It returns the response header.
func getJSON(ctx context.Context, client *http.Client, u string, dst any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("GET %s: body larger than %d bytes", u, maxDocumentBytes)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return resp.Header, nil
}

// keyCache holds the issuer's public signing keys by key ID. It is safe for
// concurrent use. Fetches are serialised by fetchMu and spaced at least
// minInterval apart, whatever the tokens presented.
type keyCache struct {
	jwksURL     string
	client      *http.Client
	now         func() time.Time
	minInterval time.Duration
	log         *slog.Logger

	fetchMu sync.Mutex // held for the whole of a fetch

	mu          sync.RWMutex // guards the fields below
	keys        map[string][]jose.JSONWebKey
	expires     time.Time // when the JWKS max-age runs out
	lastAttempt time.Time // start of the latest fetch, successful or not
}

// lookup returns the keys with key ID kid. Stale keys trigger a refresh in
// the calling goroutine unless another one is refreshing; an unknown kid
// triggers a refetch unless one started less than minInterval ago. Fetch
// errors are logged, and the previous keys stay in use.
func (c *keyCache) lookup(ctx context.Context, kid string) []jose.JSONWebKey {
	c.mu.RLock()
	keys, known := c.keys[kid]
	stale := !c.now().Before(c.expires)
	c.mu.RUnlock()

	if known {
		if stale && c.fetchMu.TryLock() {
			c.refreshIfDue(ctx, "max-age expired")
			c.fetchMu.Unlock()
			c.mu.RLock()
			keys = c.keys[kid]
			c.mu.RUnlock()
		}
		return keys
	}

	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	// Another goroutine may have fetched while this one waited.
	c.mu.RLock()
	keys, known = c.keys[kid]
	c.mu.RUnlock()
	if known {
		return keys
	}
	c.refreshIfDue(ctx, "unknown kid")
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.keys[kid]
}

// refreshIfDue fetches the JWKS unless a fetch started less than
// minInterval ago. The caller holds fetchMu.
func (c *keyCache) refreshIfDue(ctx context.Context, reason string) {
	c.mu.RLock()
	last := c.lastAttempt
	c.mu.RUnlock()
	if c.now().Sub(last) < c.minInterval {
		c.log.Debug("rs: JWKS refetch rate-limited", "reason", reason)
		return
	}
	// The fetch outlives an impatient client: its result serves everyone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultHTTPTimeout)
	defer cancel()
	if err := c.refresh(ctx); err != nil {
		c.log.Warn("rs: JWKS refresh failed; keeping previous keys", "reason", reason, "error", err)
		return
	}
	c.log.Info("rs: JWKS refreshed", "reason", reason)
}

// refresh fetches the JWKS and replaces the cached keys. The caller holds
// fetchMu (or is New, before the cache is shared).
func (c *keyCache) refresh(ctx context.Context) error {
	now := c.now()
	c.mu.Lock()
	c.lastAttempt = now
	c.mu.Unlock()

	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	header, err := getJSON(ctx, c.client, c.jwksURL, &set)
	if err != nil {
		return fmt.Errorf("rs: JWKS: %w", err)
	}
	keys := make(map[string][]jose.JSONWebKey, len(set.Keys))
	for i, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			c.log.Warn("rs: skipping unreadable JWKS key", "index", i, "error", err)
			continue
		}
		if reason := unusable(&k); reason != "" {
			c.log.Warn("rs: skipping JWKS key", "kid", k.KeyID, "reason", reason)
			continue
		}
		keys[k.KeyID] = append(keys[k.KeyID], k)
	}

	c.mu.Lock()
	c.keys = keys
	c.expires = now.Add(keysTTL(header, c.minInterval))
	c.mu.Unlock()
	return nil
}

// hasKeyFor reports whether some cached key verifies one of algs.
func (c *keyCache) hasKeyFor(algs []jose.SignatureAlgorithm) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, ks := range c.keys {
		for i := range ks {
			for _, a := range algs {
				if keyFits(&ks[i], string(a)) {
					return true
				}
			}
		}
	}
	return false
}

// unusable says why a JWKS key can never verify a token, or "" if it can.
func unusable(k *jose.JSONWebKey) string {
	switch {
	case k.KeyID == "":
		return "no kid"
	case !k.IsPublic():
		// A symmetric or private key in a JWKS is the issuer's mistake;
		// trusting it would let anyone who reads the JWKS sign tokens.
		return "not a public key"
	case k.Use != "" && k.Use != "sig":
		return "use is not sig"
	}
	if pub, ok := k.Key.(*rsa.PublicKey); ok && pub.N.BitLen() < minRSABits {
		return "RSA key shorter than 2048 bits"
	}
	return ""
}

// keyFits reports whether k may verify a JWS with header alg: the JWK's
// "alg", when present, must equal it (RFC 7517 §4.4), and the key's type and
// curve must be the ones alg is defined for (RFC 7518 §3, RFC 8037 §3.1).
func keyFits(k *jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pub := k.Key.(type) {
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// keysTTL is how long a JWKS response may be used: its Cache-Control
// max-age (RFC 9111 §5.2.2.1), defaultKeysTTL without one, clamped to
// [minInterval, maxKeysTTL]. no-cache and no-store mean minInterval.
func keysTTL(h http.Header, minInterval time.Duration) time.Duration {
	ttl := defaultKeysTTL
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-cache", "no-store":
				return minInterval
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err != nil || n < 0 {
					continue
				}
				if n > int64(maxKeysTTL/time.Second) {
					n = int64(maxKeysTTL / time.Second)
				}
				ttl = time.Duration(n) * time.Second
			}
		}
	}
	return max(ttl, minInterval)
}
