// Package server wires m2mauth together: configuration, the store, keys,
// the protocol and management handlers, routes, middleware and lifecycle.
package server

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/internal/audit"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientip"
	"github.com/m2mauth/m2mauth/internal/connlimit"
	"github.com/m2mauth/m2mauth/internal/denylist"
	"github.com/m2mauth/m2mauth/internal/limits"
	"github.com/m2mauth/m2mauth/internal/manage"
	"github.com/m2mauth/m2mauth/internal/oauth"
	"github.com/m2mauth/m2mauth/internal/store/cache"
)

// Config is the configuration of `m2mauth serve` and `m2mauth admin
// recover`. Precedence is flag > environment (M2MAUTH_*) > default;
// cmd/m2mauth fills it in from its settings table (settings.go), whose
// flag names FieldError uses.
type Config struct {
	Addr              string // listen address, host:port
	Issuer            string // issuer identifier URL, no trailing slash; default http://<addr>
	DataDir           string // SQLite database, generated master key, admin-credentials.json
	DefaultSigningAlg string // signing_alg of APIs created without one
	// ClientAssertionAudience is "strict" (default: a private_key_jwt
	// assertion's aud is the issuer alone, RFC 7523bis) or "lenient" (also
	// the token endpoint URL, or an array containing the issuer).
	ClientAssertionAudience string
	// ClientAssertionAlgs are the JWS algorithms a private_key_jwt
	// assertion may use, comma-separated; default PS256,ES256,EdDSA. RS256
	// may be added. Never none or HMAC.
	ClientAssertionAlgs string
	// ClientAssertionTyp is "optional" (default: an assertion without a
	// typ header is accepted; with one, it must be
	// client-authentication+jwt) or "required" (RFC 7523bis typ only).
	ClientAssertionTyp string
	// AllowInsecureIssuers allows http URLs to loopback hosts for trusted
	// issuers, their discovery, JWKS and SPIFFE bundles, and jwks_uri
	// credentials: tests and development only. Default false: https only.
	AllowInsecureIssuers bool
	// FederatedTokenLifetime is "assertion" (default: an access token
	// obtained with a trusted issuer's JWT expires no later than that JWT)
	// or "api" (the API's full token lifetime).
	FederatedTokenLifetime string
	// FetchRootCAs, if set, are the CAs trusted instead of the system's
	// when fetching JWKS, OpenID discovery documents and SPIFFE bundles
	// (tests, private PKI). Not a setting: set by code only.
	FetchRootCAs  *x509.CertPool
	MasterKey     string // standard base64 of 32 bytes (M2MAUTH_MASTER_KEY); never logged
	MasterKeyFile string // file holding the master key in standard base64
	// PreviousMasterKey (M2MAUTH_PREVIOUS_MASTER_KEY, standard base64) or
	// PreviousMasterKeyFile is the master key being rotated out: values it
	// sealed still open, and are sealed again under the master key at start.
	PreviousMasterKey     string // never logged
	PreviousMasterKeyFile string
	// KeyRotationPeriod is how long a signing key signs before the next
	// one takes over; at least MinKeyRotationPeriod. Default 720h (30 days).
	KeyRotationPeriod time.Duration
	// DatabaseURL (M2MAUTH_DATABASE_URL), when set, is a postgres:// URL:
	// the store is that PostgreSQL database, shared by every replica,
	// instead of SQLite in DataDir. Replicas must then share Issuer and the
	// master key, which must be given (not generated).
	DatabaseURL string // never logged: it may hold a password
	// CacheTTL bounds how stale a replica's in-memory view of an
	// application may be while the change feed's version check cannot run
	// (PostgreSQL; a lost notification is otherwise found within 1.5 s and
	// entries never expire); changes normally arrive at once. Default 2 s.
	CacheTTL time.Duration
	// CacheMaxStale is how long an application already in memory keeps
	// getting tokens while the database cannot be read. Default 5 min.
	CacheMaxStale time.Duration
	// CacheMaxEntries bounds the applications each replica keeps in
	// memory (about 0.85 KB each with one secret); past it the least recently
	// used is dropped and read again when next used. Default 200 000.
	CacheMaxEntries int
	// TokenReuseMaxEntries bounds the tokens each replica keeps for
	// opt-in token reuse (docs/token-reuse.md); past it the least recently
	// used is dropped. Default oauth.DefaultReuseMaxEntries (100 000).
	TokenReuseMaxEntries int
	// AdminTokenLifetime is the lifetime of management API tokens, set by
	// operator configuration only: whole seconds from
	// MinAdminTokenLifetime to manage.MaxAdminTokenLifetime. Default
	// manage.DefaultAdminTokenLifetime (900 s).
	AdminTokenLifetime time.Duration
	LogLevel           string // debug, info, warn, error
	LogFormat          string // text or json
	// MetricsAddr, when set, is the host:port of a separate listener
	// serving Prometheus metrics at /metrics (docs/metrics.md). Default
	// none: no metrics are served.
	MetricsAddr string
	// MetricsPerClient adds a client_id label to the token request
	// counter, for deployments with few applications (bounded: past
	// metrics.DefaultMaxClients, "other").
	MetricsPerClient bool
	// AuditSink is where every stored audit event is also written as a
	// JSON line (audit.Sink): "" none, "stdout", or "file:PATH" (appended,
	// created 0600).
	AuditSink string
	// TrustedProxies is a comma-separated list of CIDR prefixes (or
	// addresses) of reverse proxies: only from them are Forwarded and
	// X-Forwarded-For honoured (clientip.Resolver). Default none.
	TrustedProxies string
	// AuditRetention is how long audit events are kept; older ones are
	// purged hourly, by one replica (the cluster lease). At least
	// MinAuditRetention; default DefaultAuditRetention (90 days).
	AuditRetention time.Duration
	// UsageInterval is how long each replica sums in memory the issuance
	// counters of tokens not counted against a quota before writing them
	// (audit.Recorder.UsageInterval; docs/policy.md, Usage); tokens
	// counted against a quota reach the database within 2 s whatever it
	// is. From MinUsageInterval to MaxUsageInterval; default
	// DefaultUsageInterval (30 s).
	UsageInterval time.Duration
	// AuthMaxFailures consecutive failed client authentications of one
	// client_id from one address lock it out from that address for
	// AuthLockoutWindow (429 with Retry-After); see docs/abuse.md. From 1
	// to MaxAuthMaxFailures; default limits.DefaultMaxFailures (10).
	AuthMaxFailures int
	// AuthLockoutWindow is the failure-counting window and the length of
	// a failed-authentication lockout. From 1s to 1h; default
	// limits.DefaultWindow (1 min).
	AuthLockoutWindow time.Duration
	// MaxRevocationsPerHour caps the tokens each client may revoke at
	// /oauth/revoke per hour, per replica (429 over it); the management
	// API's revocations are not capped. From 1 to
	// MaxMaxRevocationsPerHour; default denylist.DefaultMaxRevocationsPerHour.
	MaxRevocationsPerHour int
	// MaxConnections caps the connections the server holds open at once;
	// more wait in the listen backlog. Default
	// connlimit.DefaultMaxConnections (10 000), at least 1.
	MaxConnections int
	// MaxIdleConnsPerAddress caps the idle keep-alive connections of one
	// client address (the peer's IP); the ones idle longest are closed.
	// Default connlimit.DefaultMaxIdlePerAddress (64), from 1 to
	// MaxConnections.
	MaxIdleConnsPerAddress int
	// DefaultRate, DefaultBurst, DefaultQuotaHour and DefaultQuotaDay are
	// the token policy of applications whose own sets neither a rate nor
	// a quota (docs/policy.md): a rate as authz.ParseRate reads it ("5/s";
	// "" none) with its burst (0: the rate rounded up), and tokens per UTC
	// hour and day (0 none). Enforced; default none.
	DefaultRate      string
	DefaultBurst     int
	DefaultQuotaHour int
	DefaultQuotaDay  int
	// TLSCertFile and TLSKeyFile, given together, are the PEM certificate
	// chain and private key the server serves TLS with (TLS 1.2 at least),
	// reread when either file changes (docs/operations.md). The derived
	// issuer is then https://. TLSClientCAFile, PEM, makes the server ask
	// for client certificates without requiring one (RFC 8705), and holds
	// the CAs tls_client_auth certificates must chain to, whether they
	// arrive over TLS or in ClientCertHeader.
	TLSCertFile     string
	TLSKeyFile      string
	TLSClientCAFile string
	// ClientCertHeader names the request header a TLS-terminating proxy
	// forwards the client certificate in (URL-escaped PEM, as nginx's
	// $ssl_client_escaped_cert, or base64 DER), honoured only on requests
	// from TrustedProxies (clientcert.Source). Default none.
	ClientCertHeader string
	// ShutdownDelay is how long `m2mauth serve` keeps serving after
	// SIGTERM or SIGINT, with /readyz failing (Server.Drain), so that load
	// balancers stop routing to it first. Default DefaultShutdownDelay.
	ShutdownDelay time.Duration
	// CORSAllowedOrigins is a comma-separated list of origins
	// (https://app.example.com) whose browser code may call the token
	// endpoint; default none. Discovery and JWKS allow every origin.
	CORSAllowedOrigins string
}

// Defaults of Config.
const (
	DefaultAddr    = "127.0.0.1:8080"
	DefaultDataDir = "./m2mauth-data"
	// DefaultKeyRotationPeriod is 30 days.
	DefaultKeyRotationPeriod = 720 * time.Hour
	// MinKeyRotationPeriod is 1 hour: a next key must be published long
	// enough before it signs for resource servers to fetch it (the JWKS
	// max-age is 300 s).
	MinKeyRotationPeriod = time.Hour
	// DefaultCacheTTL and DefaultCacheMaxStale are CacheTTL's and
	// CacheMaxStale's defaults.
	DefaultCacheTTL      = 2 * time.Second
	DefaultCacheMaxStale = 5 * time.Minute
	// DefaultCacheMaxEntries is CacheMaxEntries' default, and
	// MaxCacheMaxEntries its bound.
	DefaultCacheMaxEntries = cache.DefaultMaxEntries
	MaxCacheMaxEntries     = 100_000_000
	// DefaultTokenReuseMaxEntries is TokenReuseMaxEntries' default, and
	// MaxTokenReuseMaxEntries its bound.
	DefaultTokenReuseMaxEntries = oauth.DefaultReuseMaxEntries
	MaxTokenReuseMaxEntries     = 10_000_000
	// MinCacheTTL and MaxCacheTTL bound CacheTTL; CacheMaxStale is at
	// least CacheTTL and at most MaxCacheMaxStale.
	MinCacheTTL      = 100 * time.Millisecond
	MaxCacheTTL      = 5 * time.Minute
	MaxCacheMaxStale = 24 * time.Hour
	// MinAdminTokenLifetime is AdminTokenLifetime's lower bound, 60 s,
	// the shortest token lifetime of any API.
	MinAdminTokenLifetime = time.Minute
	// DefaultAuditRetention is AuditRetention's default, 90 days;
	// MinAuditRetention its lower bound.
	DefaultAuditRetention = 2160 * time.Hour
	MinAuditRetention     = time.Hour
	// DefaultUsageInterval is UsageInterval's default, 30 s;
	// MinUsageInterval (the audit recorder's flush interval, 2 s) and
	// MaxUsageInterval (5 min, what a crash may lose) its bounds.
	DefaultUsageInterval = audit.DefaultUsageInterval
	MinUsageInterval     = 2 * time.Second
	MaxUsageInterval     = 5 * time.Minute
	// MaxAuthMaxFailures bounds AuthMaxFailures; MinAuthLockoutWindow and
	// MaxAuthLockoutWindow bound AuthLockoutWindow.
	MaxAuthMaxFailures   = 1000
	MinAuthLockoutWindow = time.Second
	MaxAuthLockoutWindow = time.Hour
	// MaxMaxRevocationsPerHour bounds MaxRevocationsPerHour: 1 000 000.
	MaxMaxRevocationsPerHour = 1_000_000
	// DefaultShutdownDelay is ShutdownDelay's default, 5 s.
	DefaultShutdownDelay = 5 * time.Second
)

// FieldError is Validate's complaint about one field, which it names by its
// setting (the flag of `m2mauth serve`, such as "cache-ttl") so that the
// command can say where the value came from.
type FieldError struct {
	Setting string // such as "cache-ttl"
	Value   string // the value as the message shows it; "" for a secret
	Problem string // such as "must be between 100ms and 5m"
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return e.Setting + " " + e.Problem
	}
	return e.Setting + " " + e.Value + " " + e.Problem
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110
// §5.1: a token).
func validHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func fieldError(setting, value, format string, args ...any) error {
	return &FieldError{Setting: setting, Value: value, Problem: fmt.Sprintf(format, args...)}
}

// Validate fills defaults, derived ones too (the issuer from the address),
// and checks every field. It returns every problem joined, a *FieldError
// for each that is about one field.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		errs = append(errs, fieldError("addr", strconv.Quote(c.Addr), "is not host:port: %v", err))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("give tls-cert-file and tls-key-file together"))
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" && c.ClientCertHeader == "" {
		errs = append(errs, fieldError("tls-client-ca-file", strconv.Quote(c.TLSClientCAFile), "needs tls-cert-file and tls-key-file, or client-cert-header"))
	}
	if c.ClientCertHeader != "" {
		if !validHeaderName(c.ClientCertHeader) {
			errs = append(errs, fieldError("client-cert-header", strconv.Quote(c.ClientCertHeader), "is not an HTTP header name"))
		}
		if strings.TrimSpace(strings.ReplaceAll(c.TrustedProxies, ",", "")) == "" {
			errs = append(errs, fieldError("client-cert-header", strconv.Quote(c.ClientCertHeader), "needs trusted-proxies: the header is honoured only from them"))
		}
	}
	if c.Issuer == "" && err == nil {
		if host == "" || host == "0.0.0.0" || host == "::" {
			// Which of the host's names or addresses clients use cannot
			// be guessed, and a wrong issuer breaks every token check.
			errs = append(errs, fieldError("issuer", "", "is required when addr %s listens on every interface: set it to the URL clients use", strconv.Quote(c.Addr)))
		} else {
			scheme := "http://"
			if c.TLSCertFile != "" {
				scheme = "https://"
			}
			c.Issuer = scheme + net.JoinHostPort(host, port)
		}
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	if u, err := url.Parse(c.Issuer); c.Issuer != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "") {
		// RFC 8414 §2: an https URL with no query or fragment (http is
		// allowed for loopback development and behind a TLS terminator).
		errs = append(errs, fieldError("issuer", strconv.Quote(c.Issuer), "must be an http(s) URL with a host and no query or fragment"))
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.DefaultSigningAlg == "" {
		c.DefaultSigningAlg = authz.ES256
	}
	if !authz.ValidSigningAlg(c.DefaultSigningAlg) {
		errs = append(errs, fieldError("default-signing-alg", strconv.Quote(c.DefaultSigningAlg), "must be one of %s", strings.Join(authz.SigningAlgs, ", ")))
	}
	if c.ClientAssertionAudience == "" {
		c.ClientAssertionAudience = oauth.AudienceStrict
	}
	if c.ClientAssertionAudience != oauth.AudienceStrict && c.ClientAssertionAudience != oauth.AudienceLenient {
		errs = append(errs, fieldError("client-assertion-audience", strconv.Quote(c.ClientAssertionAudience), "must be strict or lenient"))
	}
	if c.ClientAssertionAlgs == "" {
		c.ClientAssertionAlgs = strings.Join(oauth.AssertionSigningAlgs, ",")
	}
	for _, alg := range strings.Split(c.ClientAssertionAlgs, ",") {
		if !slices.Contains([]string{"PS256", "ES256", "EdDSA", "RS256"}, strings.TrimSpace(alg)) {
			errs = append(errs, fieldError("client-assertion-algs", strconv.Quote(c.ClientAssertionAlgs), "must list algorithms from PS256, ES256, EdDSA and RS256"))
			break
		}
	}
	if c.ClientAssertionTyp == "" {
		c.ClientAssertionTyp = "optional"
	}
	if c.ClientAssertionTyp != "optional" && c.ClientAssertionTyp != "required" {
		errs = append(errs, fieldError("client-assertion-typ", strconv.Quote(c.ClientAssertionTyp), "must be optional or required"))
	}
	if c.FederatedTokenLifetime == "" {
		c.FederatedTokenLifetime = "assertion"
	}
	if c.FederatedTokenLifetime != "assertion" && c.FederatedTokenLifetime != "api" {
		errs = append(errs, fieldError("federated-token-lifetime", strconv.Quote(c.FederatedTokenLifetime), "must be assertion or api"))
	}
	if c.MasterKey != "" && c.MasterKeyFile != "" {
		errs = append(errs, errors.New("give the master key either in M2MAUTH_MASTER_KEY or with --master-key-file, not both"))
	}
	if c.PreviousMasterKey != "" && c.PreviousMasterKeyFile != "" {
		errs = append(errs, errors.New("give the previous master key either in M2MAUTH_PREVIOUS_MASTER_KEY or with --previous-master-key-file, not both"))
	}
	if (c.PreviousMasterKey != "" || c.PreviousMasterKeyFile != "") && c.MasterKey == "" && c.MasterKeyFile == "" {
		errs = append(errs, errors.New("a previous master key needs the new one in M2MAUTH_MASTER_KEY or --master-key-file"))
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.CacheMaxStale == 0 {
		c.CacheMaxStale = DefaultCacheMaxStale
	}
	if c.CacheMaxEntries == 0 {
		c.CacheMaxEntries = DefaultCacheMaxEntries
	}
	if c.CacheMaxEntries < 1 || c.CacheMaxEntries > MaxCacheMaxEntries {
		errs = append(errs, fieldError("cache-max-entries", strconv.Itoa(c.CacheMaxEntries), "must be between 1 and 100000000"))
	}
	if c.TokenReuseMaxEntries == 0 {
		c.TokenReuseMaxEntries = DefaultTokenReuseMaxEntries
	}
	if c.TokenReuseMaxEntries < 1 || c.TokenReuseMaxEntries > MaxTokenReuseMaxEntries {
		errs = append(errs, fieldError("token-reuse-max-entries", strconv.Itoa(c.TokenReuseMaxEntries), "must be between 1 and 10000000"))
	}
	if c.CacheTTL < MinCacheTTL || c.CacheTTL > MaxCacheTTL {
		errs = append(errs, fieldError("cache-ttl", c.CacheTTL.String(), "must be between 100ms and 5m"))
	}
	if c.CacheMaxStale < c.CacheTTL || c.CacheMaxStale > MaxCacheMaxStale {
		errs = append(errs, fieldError("cache-max-stale", c.CacheMaxStale.String(), "must be between cache-ttl and 24h"))
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			// Never the value: it may hold a password.
			errs = append(errs, fieldError("database-url", "", "must be a postgres:// URL"))
		}
		if c.MasterKey == "" && c.MasterKeyFile == "" {
			errs = append(errs, errors.New("with database-url every replica must share one master key: set M2MAUTH_MASTER_KEY or --master-key-file (generate one with: head -c32 /dev/urandom | base64)"))
		}
	}
	if c.KeyRotationPeriod == 0 {
		c.KeyRotationPeriod = DefaultKeyRotationPeriod
	}
	if c.KeyRotationPeriod < MinKeyRotationPeriod {
		errs = append(errs, fieldError("key-rotation-period", c.KeyRotationPeriod.String(), "must be at least %v", MinKeyRotationPeriod))
	}
	if c.AdminTokenLifetime == 0 {
		c.AdminTokenLifetime = manage.DefaultAdminTokenLifetime
	}
	// Whole seconds: the management API stores its token lifetime in
	// seconds, and a fraction would make every start see a change.
	if c.AdminTokenLifetime < MinAdminTokenLifetime || c.AdminTokenLifetime > manage.MaxAdminTokenLifetime || c.AdminTokenLifetime%time.Second != 0 {
		errs = append(errs, fieldError("admin-token-lifetime", c.AdminTokenLifetime.String(), "must be between 1m and 1h, in whole seconds"))
	}
	if c.MaxRevocationsPerHour == 0 {
		c.MaxRevocationsPerHour = denylist.DefaultMaxRevocationsPerHour
	}
	if c.MaxRevocationsPerHour < 1 || c.MaxRevocationsPerHour > MaxMaxRevocationsPerHour {
		errs = append(errs, fieldError("max-revocations-per-hour", strconv.Itoa(c.MaxRevocationsPerHour), "must be between 1 and %d", MaxMaxRevocationsPerHour))
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = connlimit.DefaultMaxConnections
	}
	if c.MaxIdleConnsPerAddress == 0 {
		c.MaxIdleConnsPerAddress = min(connlimit.DefaultMaxIdlePerAddress, max(c.MaxConnections, 1))
	}
	if c.MaxConnections < 1 {
		errs = append(errs, fieldError("max-connections", strconv.Itoa(c.MaxConnections), "must be at least 1"))
	}
	if c.MaxIdleConnsPerAddress < 1 || c.MaxIdleConnsPerAddress > max(c.MaxConnections, 1) {
		errs = append(errs, fieldError("max-idle-conns-per-address", strconv.Itoa(c.MaxIdleConnsPerAddress), "must be between 1 and max-connections"))
	}
	if _, err := c.defaultPolicy(); err != nil {
		errs = append(errs, err)
	}
	if c.AuditRetention == 0 {
		c.AuditRetention = DefaultAuditRetention
	}
	if c.AuditRetention < MinAuditRetention {
		errs = append(errs, fieldError("audit-retention", c.AuditRetention.String(), "must be at least %v", MinAuditRetention))
	}
	if c.UsageInterval == 0 {
		c.UsageInterval = DefaultUsageInterval
	}
	if c.UsageInterval < MinUsageInterval || c.UsageInterval > MaxUsageInterval {
		errs = append(errs, fieldError("usage-interval", c.UsageInterval.String(), "must be between %v and %v", MinUsageInterval, MaxUsageInterval))
	}
	if c.AuthMaxFailures == 0 {
		c.AuthMaxFailures = limits.DefaultMaxFailures
	}
	if c.AuthMaxFailures < 1 || c.AuthMaxFailures > MaxAuthMaxFailures {
		errs = append(errs, fieldError("auth-max-failures", strconv.Itoa(c.AuthMaxFailures), "must be between 1 and %d", MaxAuthMaxFailures))
	}
	if c.AuthLockoutWindow == 0 {
		c.AuthLockoutWindow = limits.DefaultWindow
	}
	if c.AuthLockoutWindow < MinAuthLockoutWindow || c.AuthLockoutWindow > MaxAuthLockoutWindow {
		errs = append(errs, fieldError("auth-lockout-window", c.AuthLockoutWindow.String(), "must be between 1s and 1h"))
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fieldError("metrics-addr", strconv.Quote(c.MetricsAddr), "is not host:port: %v", err))
		}
	}
	if c.MetricsPerClient && c.MetricsAddr == "" {
		errs = append(errs, fieldError("metrics-per-client", "true", "needs metrics-addr"))
	}
	if err := audit.CheckSink(c.AuditSink); err != nil {
		errs = append(errs, fieldError("audit-sink", strconv.Quote(c.AuditSink), "%v", err))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fieldError("log-level", strconv.Quote(c.LogLevel), "must be debug, info, warn or error"))
	}
	if _, err := clientip.New(strings.Split(c.TrustedProxies, ",")); err != nil {
		errs = append(errs, fieldError("trusted-proxies", strconv.Quote(c.TrustedProxies), "must be comma-separated CIDR prefixes or addresses: %v", err))
	}
	if c.ShutdownDelay == 0 {
		c.ShutdownDelay = DefaultShutdownDelay
	}
	if c.ShutdownDelay < 0 {
		errs = append(errs, fieldError("shutdown-delay", c.ShutdownDelay.String(), "must be positive"))
	}
	if _, err := parseOrigins(c.CORSAllowedOrigins); err != nil {
		errs = append(errs, fieldError("cors-allowed-origins", strconv.Quote(c.CORSAllowedOrigins), "%v", err))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fieldError("log-format", strconv.Quote(c.LogFormat), "must be text or json"))
	}
	return errors.Join(errs...)
}
