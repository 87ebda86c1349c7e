package rs

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Defaults and bounds for Config fields.
const (
	// DefaultLeeway is the clock skew tolerated when none is configured: 30 s.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the largest Config.Leeway New accepts: 5 min.
	MaxLeeway = 5 * time.Minute
	// DefaultMinRefreshInterval is the least time between two JWKS fetches
	// when none is configured: 10 s.
	DefaultMinRefreshInterval = 10 * time.Second
	// DefaultHTTPTimeout bounds each request of the default HTTP client,
	// and every JWKS fetch Validate makes whatever the client: 10 s.
	DefaultHTTPTimeout = 10 * time.Second
)

// defaultAlgorithms are the algorithms m2mauth signs with (authz.SigningAlgs).
var defaultAlgorithms = []string{"ES256", "EdDSA", "RS256", "PS256"}

// asymmetric are the algorithms Config.Algorithms may name: signatures a
// public key verifies (RFC 7518 §3, RFC 8037 §3.1). HS* and "none" are
// absent on purpose: with them anyone holding the JWKS could forge tokens.
var asymmetric = map[string]bool{
	"ES256": true, "ES384": true, "ES512": true,
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"EdDSA": true,
}

// Config configures a Validator. Issuer and Audience are required; the zero
// value of every other field selects its default.
type Config struct {
	// Issuer is the authorization server's issuer identifier, e.g.
	// "https://auth.example.com" (m2mauth's has no trailing slash). Tokens'
	// "iss" and the discovery document's "issuer" must equal it exactly
	// (RFC 8414 §3.3, RFC 9068 §4). It must be an https URL without query
	// or fragment; plain http is accepted for loopback hosts only
	// (localhost, 127.0.0.0/8, ::1), for development, or with
	// AllowInsecureIssuer.
	Issuer string

	// AllowInsecureIssuer accepts a plain-http Issuer on any host, for a
	// private network where the issuer has no TLS (a compose file's
	// "http://m2mauth:8080"). Anyone on the path can then swap the keys the
	// API trusts: never use it across a network you do not control.
	AllowInsecureIssuer bool

	// Audience is this API's identifier as registered in m2mauth, e.g.
	// "https://api.example.com/". Tokens' "aud" must contain it exactly
	// (RFC 9068 §4). It is also the realm of WWW-Authenticate challenges.
	Audience string

	// Algorithms are the JWS "alg" values accepted (RFC 7518 §3). Default:
	// ES256, EdDSA, RS256, PS256. Only asymmetric algorithms (ES*, RS*, PS*,
	// EdDSA) are allowed; New refuses HS* and "none".
	Algorithms []string

	// Leeway is the clock skew tolerated when checking "exp", "nbf" and
	// "iat". Default DefaultLeeway (30 s); at most MaxLeeway (5 min).
	Leeway time.Duration

	// HTTPClient fetches the discovery document and the JWKS. Default: a
	// client with a DefaultHTTPTimeout (10 s) timeout. Whichever client,
	// a redirect from an https issuer to a URL that is not https is
	// refused, and an introspection request follows no redirect.
	HTTPClient *http.Client

	// MinRefreshInterval is the least time between two JWKS fetches. It
	// bounds the refetches that tokens with unknown key IDs can cause, and
	// the retries after a failed fetch. Default DefaultMinRefreshInterval
	// (10 s); at least 1 s.
	MinRefreshInterval time.Duration

	// Logger receives key-refresh events at Info and Warn level and token
	// rejections at Debug level. Default: discard.
	Logger *slog.Logger

	// Now returns the current time; tests inject a clock. Default time.Now.
	Now func() time.Time

	// Introspection, when set, turns on introspection mode: tokens that
	// pass local validation are also checked with the issuer (RFC 7662),
	// so that revocation takes effect within seconds. Default nil: local
	// validation only. See IntrospectionConfig.
	Introspection *IntrospectionConfig

	// Policy says which tokens Middleware accepts: BearerAllowed (the
	// default) or SenderConstrained. Validator.WithPolicy derives a
	// Validator with another policy, for routes that differ.
	Policy Policy

	// DPoP tunes the checking of DPoP proofs (RFC 9449 §4.3, §7), which is
	// always on: a token with cnf.jkt is accepted only under the DPoP
	// scheme with a proof by its key. See DPoPConfig.
	DPoP DPoPConfig

	// MTLS, when set, says that clients reach this API over mutual TLS
	// (RFC 8705): the protected resource metadata then says
	// tls_client_certificate_bound_access_tokens, and SenderConstrained
	// routes accept certificate-bound tokens under the Bearer scheme.
	// Certificate-bound tokens (cnf.x5t#S256) are checked against the
	// client certificate whether or not it is set. See MTLSConfig.
	MTLS *MTLSConfig

	// ExternalURL is the scheme, host and optional path prefix clients use
	// to reach this API when it is behind a proxy, e.g.
	// "https://api.example.com" or "https://example.com/usage" (a proxy
	// that strips "/usage" before forwarding). The htu a DPoP proof must
	// match is ExternalURL followed by the request's path. Default: the
	// URL the request reached this server at (https if it came over TLS,
	// the Host header, the path). Forwarded and X-Forwarded-* headers are
	// never read: anyone can send them. Set it in production: without it
	// the Host header, which the client chooses, is part of htu, and a
	// proof made for another host name of this API is accepted.
	ExternalURL string

	// ResourceMetadataURL is the URL of this API's protected resource
	// metadata (RFC 9728 §3), sent in every 401 challenge as
	// resource_metadata (§5.1) so that clients such as MCP's find the
	// authorization server. MetadataURL computes the well-known URL for a
	// resource identifier; MetadataHandler serves the document. Default
	// "": no resource_metadata attribute.
	ResourceMetadataURL string

	// TokenCacheEntries bounds the cache of verified tokens: a token
	// Validate has verified is remembered, by its SHA-256 and never
	// itself, and when presented again costs no parsing and no signature
	// verification. Default DefaultTokenCacheEntries (10000); a negative
	// value turns the cache off. Only the token's own checks are cached:
	// Middleware checks a DPoP proof or a client certificate on every
	// request, and in introspection mode every Validate still asks the
	// introspection cache (IntrospectionConfig.CacheTTL), so revocation
	// takes effect as fast as without this cache.
	TokenCacheEntries int

	// TokenCacheMaxAge is how long a verified token is reused, never past
	// its exp: the longest a token signed by a key the issuer has since
	// withdrawn from its JWKS stays accepted, once this API has fetched the
	// new JWKS (a cached token whose kid is no longer published is
	// verified again, and refused). Default DefaultTokenCacheMaxAge (60 s);
	// at most MaxTokenCacheMaxAge (10 min).
	TokenCacheMaxAge time.Duration
}

// settings is a Config with its defaults applied and its values checked.
type settings struct {
	issuer      string   // exactly as configured
	issuerURL   *url.URL // issuer, parsed
	algs        []jose.SignatureAlgorithm
	leeway      time.Duration
	client      *http.Client
	minInterval time.Duration
	log         *slog.Logger
	now         func() time.Time

	policy      Policy
	dpop        dpopSettings
	mtls        *mtlsSettings // nil without Config.MTLS
	externalURL string        // without a trailing slash; "" for none
	metadataURL string

	cacheEntries int // 0: no verified-token cache
	cacheMaxAge  time.Duration
}

// check validates c and fills in defaults.
func (c Config) check() (settings, error) {
	var s settings
	if c.Issuer == "" {
		return s, errors.New("rs: Config.Issuer is required")
	}
	u, err := parseIssuer(c.Issuer, c.AllowInsecureIssuer)
	if err != nil {
		return s, err
	}
	s.issuer, s.issuerURL = c.Issuer, u
	if c.Audience == "" {
		return s, errors.New("rs: Config.Audience is required")
	}

	names := c.Algorithms
	if len(names) == 0 {
		names = defaultAlgorithms
	}
	for _, a := range names {
		if !asymmetric[a] {
			return s, fmt.Errorf("rs: algorithm %q not allowed: use ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384, PS512 or EdDSA", a)
		}
		s.algs = append(s.algs, jose.SignatureAlgorithm(a))
	}

	switch {
	case c.Leeway == 0:
		s.leeway = DefaultLeeway
	case c.Leeway < 0 || c.Leeway > MaxLeeway:
		return s, fmt.Errorf("rs: Config.Leeway %v outside (0, %v]", c.Leeway, MaxLeeway)
	default:
		s.leeway = c.Leeway
	}

	switch {
	case c.MinRefreshInterval == 0:
		s.minInterval = DefaultMinRefreshInterval
	case c.MinRefreshInterval < time.Second:
		return s, fmt.Errorf("rs: Config.MinRefreshInterval %v is below 1s", c.MinRefreshInterval)
	default:
		s.minInterval = c.MinRefreshInterval
	}

	s.client = c.HTTPClient
	if s.client == nil {
		s.client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	s.client = keepHTTPS(s.client, u)
	s.log = c.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.now = c.Now
	if s.now == nil {
		s.now = time.Now
	}

	switch c.Policy {
	case BearerAllowed, SenderConstrained:
		s.policy = c.Policy
	default:
		return s, fmt.Errorf("rs: Config.Policy %d is neither BearerAllowed nor SenderConstrained", c.Policy)
	}
	if s.dpop, err = c.DPoP.check(s.now); err != nil {
		return s, err
	}
	if c.MTLS != nil {
		if s.mtls, err = c.MTLS.check(); err != nil {
			return s, err
		}
	}
	if c.ExternalURL != "" {
		if err := checkExternalURL(c.ExternalURL); err != nil {
			return s, err
		}
		s.externalURL = strings.TrimSuffix(c.ExternalURL, "/")
	}
	if c.ResourceMetadataURL != "" {
		if u, err := url.Parse(c.ResourceMetadataURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return s, fmt.Errorf("rs: Config.ResourceMetadataURL %q is not an absolute http(s) URL", c.ResourceMetadataURL)
		}
		s.metadataURL = c.ResourceMetadataURL
	}

	switch {
	case c.TokenCacheEntries == 0:
		s.cacheEntries = DefaultTokenCacheEntries
	case c.TokenCacheEntries > 0:
		s.cacheEntries = c.TokenCacheEntries
	}
	switch {
	case c.TokenCacheMaxAge == 0:
		s.cacheMaxAge = DefaultTokenCacheMaxAge
	case c.TokenCacheMaxAge < 0 || c.TokenCacheMaxAge > MaxTokenCacheMaxAge:
		return s, fmt.Errorf("rs: Config.TokenCacheMaxAge %v outside (0, %v]", c.TokenCacheMaxAge, MaxTokenCacheMaxAge)
	default:
		s.cacheMaxAge = c.TokenCacheMaxAge
	}
	return s, nil
}

// checkExternalURL accepts an absolute http(s) URL without user
// information, query or fragment.
func checkExternalURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("rs: Config.ExternalURL: %w", err)
	case u.Host == "" || u.User != nil || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("rs: Config.ExternalURL %q is not an absolute http(s) URL with a host", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("rs: Config.ExternalURL %q has a query or fragment", raw)
	}
	return nil
}

// parseIssuer checks an issuer identifier against RFC 8414 §2: an https URL
// with no query or fragment. Plain http is allowed for loopback hosts, and
// anywhere with allowHTTP.
func parseIssuer(issuer string, allowHTTP bool) (*url.URL, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("rs: Config.Issuer: %w", err)
	}
	switch {
	case u.Host == "" || u.User != nil:
		return nil, fmt.Errorf("rs: Config.Issuer %q is not an absolute URL with a host", issuer)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#"):
		return nil, fmt.Errorf("rs: Config.Issuer %q has a query or fragment (RFC 8414 §2)", issuer)
	case u.Scheme == "https":
	case u.Scheme == "http" && (allowHTTP || isLoopback(u.Hostname())):
	default:
		return nil, fmt.Errorf("rs: Config.Issuer %q must use https (http only for loopback hosts, or with AllowInsecureIssuer)", issuer)
	}
	return u, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// maxRedirects is how many redirects keepHTTPS follows when the client has
// no CheckRedirect of its own: net/http's default.
const maxRedirects = 10

// keepHTTPS returns a copy of client that, for an https issuer, refuses to
// follow a redirect to a URL that is not https: the metadata and the JWKS
// must come over TLS, as their URLs must be https (net/http alone follows
// https to http). client's own CheckRedirect still rules the rest.
func keepHTTPS(client *http.Client, issuer *url.URL) *http.Client {
	if issuer.Scheme != "https" {
		return client
	}
	c := *client
	next := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to %s refused: not https", req.URL.Redacted())
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}
	return &c
}
