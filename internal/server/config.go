// Package server wires m2mauth together: configuration, the store, keys,
// the protocol and management handlers, routes, middleware and lifecycle.
package server

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Config is the configuration of `m2mauth serve`. Precedence is flag >
// environment (M2MAUTH_*) > default; cmd/m2mauth fills it in.
type Config struct {
	Addr              string // listen address, host:port
	Issuer            string // issuer identifier URL, no trailing slash; default http://<addr>
	DataDir           string // SQLite database, generated master key, admin-credentials.json
	DefaultSigningAlg string // signing_alg of APIs created without one
	MasterKey         string // standard base64 of 32 bytes (M2MAUTH_MASTER_KEY); never logged
	MasterKeyFile     string // file holding the master key in standard base64
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
	// application may be when a change notification was missed; changes
	// normally arrive at once. Default 2 s.
	CacheTTL time.Duration
	// CacheMaxStale is how long an application already in memory keeps
	// getting tokens while the database cannot be read. Default 5 min.
	CacheMaxStale time.Duration
	LogLevel      string // debug, info, warn, error
	LogFormat     string // text or json
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
)

// Validate fills derived defaults (the issuer from the address) and checks
// every field, returning an error that names the field.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		errs = append(errs, fmt.Errorf("addr %q: %v", c.Addr, err))
	}
	if c.Issuer == "" && err == nil {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.Issuer = "http://" + net.JoinHostPort(host, port)
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		// RFC 8414 §2: an https URL with no query or fragment (http is
		// allowed for loopback development and behind a TLS terminator).
		errs = append(errs, fmt.Errorf("issuer %q must be an http(s) URL with a host and no query or fragment", c.Issuer))
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.DefaultSigningAlg == "" {
		c.DefaultSigningAlg = authz.ES256
	}
	if !authz.ValidSigningAlg(c.DefaultSigningAlg) {
		errs = append(errs, fmt.Errorf("default-signing-alg %q must be one of %s", c.DefaultSigningAlg, strings.Join(authz.SigningAlgs, ", ")))
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
	if c.CacheTTL < 100*time.Millisecond || c.CacheTTL > 5*time.Minute {
		errs = append(errs, fmt.Errorf("cache-ttl %v must be between 100ms and 5m", c.CacheTTL))
	}
	if c.CacheMaxStale < c.CacheTTL || c.CacheMaxStale > 24*time.Hour {
		errs = append(errs, fmt.Errorf("cache-max-stale %v must be between cache-ttl and 24h", c.CacheMaxStale))
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, errors.New("database-url must be a postgres:// URL"))
		}
		if c.MasterKey == "" && c.MasterKeyFile == "" {
			errs = append(errs, errors.New("with database-url every replica must share one master key: set M2MAUTH_MASTER_KEY or --master-key-file (generate one with: head -c32 /dev/urandom | base64)"))
		}
	}
	if c.KeyRotationPeriod == 0 {
		c.KeyRotationPeriod = DefaultKeyRotationPeriod
	}
	if c.KeyRotationPeriod < MinKeyRotationPeriod {
		errs = append(errs, fmt.Errorf("key-rotation-period %v must be at least %v", c.KeyRotationPeriod, MinKeyRotationPeriod))
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level %q must be debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log-format %q must be text or json", c.LogFormat))
	}
	return errors.Join(errs...)
}
