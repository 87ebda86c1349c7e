package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/connlimit"
	"github.com/m2mauth/m2mauth/internal/denylist"
	"github.com/m2mauth/m2mauth/internal/limits"
	"github.com/m2mauth/m2mauth/internal/manage"
	"github.com/m2mauth/m2mauth/internal/server"
)

// A setting is one configuration value of a command, defined once: its
// flag, its environment variable, its default, its help, whether it is a
// secret, and how its text is parsed into the command's configuration T.
//
// Values are read after flag parsing, never as flag defaults, so help shows
// no environment value and a bad variable breaks only a command that reads
// it. Precedence: a flag given on the command line, else a non-empty
// variable, else the config file's key (the flag's name; see config.go),
// else the default.
type setting[T any] struct {
	flag   string // flag name without "--"; "" for a value only the environment gives
	env    string // M2MAUTH_* variable; "" for none
	def    string // default, in the flag's syntax; "" for none (the zero value)
	usage  string // help; a `word` in backquotes names the value, as in pflag
	secret bool   // its value is never shown, in help or in errors
	parse  parser[T]
}

// parser turns a setting's text into a field of T.
type parser[T any] struct {
	typ string // the value's kind as help shows it: string, duration, bool
	// set stores v in c, or returns what is wrong with it ("must be ...").
	set func(c *T, v string) error
}

func stringField[T any](field func(*T) *string) parser[T] {
	return parser[T]{typ: "string", set: func(c *T, v string) error {
		*field(c) = v
		return nil
	}}
}

// durationField parses a positive Go duration; atLeast, the lower bound
// Validate enforces, is named in the error.
func durationField[T any](field func(*T) *time.Duration, atLeast time.Duration) parser[T] {
	return parser[T]{typ: "duration", set: func(c *T, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("must be a Go duration of at least %v", atLeast)
		}
		*field(c) = d
		return nil
	}}
}

func boolField[T any](field func(*T) *bool) parser[T] {
	return parser[T]{typ: "bool", set: func(c *T, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		*field(c) = b
		return nil
	}}
}

// optionalCountField is countField for a setting without a default: ""
// leaves it 0 (none).
func optionalCountField[T any](field func(*T) *int) parser[T] {
	count := countField(field)
	return parser[T]{typ: count.typ, set: func(c *T, v string) error {
		if v == "" {
			*field(c) = 0
			return nil
		}
		return count.set(c, v)
	}}
}

// countField parses a whole number of at least 1; Validate checks the
// upper bound.
func countField[T any](field func(*T) *int) parser[T] {
	return parser[T]{typ: "int", set: func(c *T, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errors.New("must be a whole number of at least 1")
		}
		*field(c) = n
		return nil
	}}
}

// shortDuration formats d as people write it: 720h, not 720h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// serveSettings are the settings of `m2mauth serve`; `admin recover`
// shares the rows it needs (recoverSettings). Every row has a row in the
// README's Configuration table.
var serveSettings = []setting[server.Config]{
	{flag: "addr", env: "M2MAUTH_ADDR", def: server.DefaultAddr,
		usage: "listen address `host:port`",
		parse: stringField(func(c *server.Config) *string { return &c.Addr })},
	{flag: "issuer", env: "M2MAUTH_ISSUER",
		usage: "issuer `URL`, no trailing slash; default http://<addr>",
		parse: stringField(func(c *server.Config) *string { return &c.Issuer })},
	{flag: "data-dir", env: "M2MAUTH_DATA_DIR", def: server.DefaultDataDir,
		usage: "`directory` of the SQLite database and generated files",
		parse: stringField(func(c *server.Config) *string { return &c.DataDir })},
	{flag: "default-signing-alg", env: "M2MAUTH_DEFAULT_SIGNING_ALG", def: authz.ES256,
		usage: "signing algorithm of APIs created without one: " + strings.Join(authz.SigningAlgs, ", "),
		parse: stringField(func(c *server.Config) *string { return &c.DefaultSigningAlg })},
	{flag: "client-assertion-audience", env: "M2MAUTH_CLIENT_ASSERTION_AUDIENCE", def: "strict",
		usage: "aud of private_key_jwt assertions: strict (the issuer alone) or lenient (also the token endpoint URL, or an array containing the issuer)",
		parse: stringField(func(c *server.Config) *string { return &c.ClientAssertionAudience })},
	{flag: "client-assertion-algs", env: "M2MAUTH_CLIENT_ASSERTION_ALGS", def: "PS256,ES256,EdDSA",
		usage: "comma-separated JWS algorithms of private_key_jwt assertions, from PS256, ES256, EdDSA and RS256",
		parse: stringField(func(c *server.Config) *string { return &c.ClientAssertionAlgs })},
	{flag: "client-assertion-typ", env: "M2MAUTH_CLIENT_ASSERTION_TYP", def: "optional",
		usage: "typ header of private_key_jwt assertions: optional (absent or client-authentication+jwt) or required (client-authentication+jwt, RFC 7523bis)",
		parse: stringField(func(c *server.Config) *string { return &c.ClientAssertionTyp })},
	{flag: "allow-insecure-issuers", env: "M2MAUTH_ALLOW_INSECURE_ISSUERS", def: "false",
		usage: "allow http URLs on loopback hosts for trusted issuers, JWKS and SPIFFE bundles: tests and development only",
		parse: boolField(func(c *server.Config) *bool { return &c.AllowInsecureIssuers })},
	{flag: "federated-token-lifetime", env: "M2MAUTH_FEDERATED_TOKEN_LIFETIME", def: "assertion",
		usage: "lifetime of access tokens obtained with a trusted issuer's JWT: assertion (never past that JWT's exp) or api (the API's full lifetime)",
		parse: stringField(func(c *server.Config) *string { return &c.FederatedTokenLifetime })},
	{env: "M2MAUTH_MASTER_KEY", secret: true,
		usage: "the 32-byte master key in standard base64; or --master-key-file",
		parse: stringField(func(c *server.Config) *string { return &c.MasterKey })},
	{flag: "master-key-file", env: "M2MAUTH_MASTER_KEY_FILE",
		usage: "`file` with the 32-byte master key in base64; or set M2MAUTH_MASTER_KEY",
		parse: stringField(func(c *server.Config) *string { return &c.MasterKeyFile })},
	{env: "M2MAUTH_PREVIOUS_MASTER_KEY", secret: true,
		usage: "the master key being rotated out, in standard base64; or --previous-master-key-file",
		parse: stringField(func(c *server.Config) *string { return &c.PreviousMasterKey })},
	{flag: "previous-master-key-file", env: "M2MAUTH_PREVIOUS_MASTER_KEY_FILE",
		usage: "`file` with the master key being rotated out, in base64; or set M2MAUTH_PREVIOUS_MASTER_KEY",
		parse: stringField(func(c *server.Config) *string { return &c.PreviousMasterKeyFile })},
	{flag: "database-url", env: "M2MAUTH_DATABASE_URL", secret: true,
		usage: "postgres:// `URL` of a PostgreSQL database shared by every replica; default: SQLite in --data-dir",
		parse: stringField(func(c *server.Config) *string { return &c.DatabaseURL })},
	{flag: "cache-ttl", env: "M2MAUTH_CACHE_TTL", def: shortDuration(server.DefaultCacheTTL),
		usage: "PostgreSQL: longest a replica's cached application may lag another replica's change while the change feed's version check cannot run (while it runs, entries never expire; keep it above 0.5s); on SQLite, written only by this process, cached applications never expire",
		parse: durationField(func(c *server.Config) *time.Duration { return &c.CacheTTL }, server.MinCacheTTL)},
	{flag: "cache-max-stale", env: "M2MAUTH_CACHE_MAX_STALE", def: shortDuration(server.DefaultCacheMaxStale),
		usage: "how long cached applications keep getting tokens while the database is unreachable",
		parse: durationField(func(c *server.Config) *time.Duration { return &c.CacheMaxStale }, server.MinCacheTTL)},
	{flag: "cache-max-entries", env: "M2MAUTH_CACHE_MAX_ENTRIES", def: strconv.Itoa(server.DefaultCacheMaxEntries),
		usage: "applications each replica keeps in memory, a `count` from 1 (about 0.85 KB each with one secret, 1.8 KB with five); past it the least recently used is dropped and read again when next used",
		parse: countField(func(c *server.Config) *int { return &c.CacheMaxEntries })},
	{flag: "token-reuse-max-entries", env: "M2MAUTH_TOKEN_REUSE_MAX_ENTRIES", def: strconv.Itoa(server.DefaultTokenReuseMaxEntries),
		usage: "tokens each replica keeps for opt-in token reuse (docs/token-reuse.md), a `count` from 1 (about 0.75 KB each with ES256, 1 KB with RS256); past it the least recently used is dropped",
		parse: countField(func(c *server.Config) *int { return &c.TokenReuseMaxEntries })},
	{flag: "key-rotation-period", env: "M2MAUTH_KEY_ROTATION_PERIOD", def: shortDuration(server.DefaultKeyRotationPeriod),
		usage: "how long a signing key signs before the next one takes over, a Go `duration` of at least " + shortDuration(server.MinKeyRotationPeriod),
		parse: durationField(func(c *server.Config) *time.Duration { return &c.KeyRotationPeriod }, server.MinKeyRotationPeriod)},
	{flag: "admin-token-lifetime", env: "M2MAUTH_ADMIN_TOKEN_LIFETIME", def: shortDuration(manage.DefaultAdminTokenLifetime),
		usage: "lifetime of management API tokens, a Go `duration` from " + shortDuration(server.MinAdminTokenLifetime) + " to " + shortDuration(manage.MaxAdminTokenLifetime),
		parse: durationField(func(c *server.Config) *time.Duration { return &c.AdminTokenLifetime }, server.MinAdminTokenLifetime)},
	{flag: "trusted-proxies", env: "M2MAUTH_TRUSTED_PROXIES",
		usage: "comma-separated `CIDRs` of reverse proxies whose Forwarded or X-Forwarded-For header names the client; default none (the peer is the client)",
		parse: stringField(func(c *server.Config) *string { return &c.TrustedProxies })},
	{flag: "max-revocations-per-hour", env: "M2MAUTH_MAX_REVOCATIONS_PER_HOUR", def: strconv.Itoa(denylist.DefaultMaxRevocationsPerHour),
		usage: "tokens each client may revoke at /oauth/revoke per hour on this replica, a `count` from 1; over it: 429",
		parse: countField(func(c *server.Config) *int { return &c.MaxRevocationsPerHour })},
	{flag: "max-connections", env: "M2MAUTH_MAX_CONNECTIONS", def: strconv.Itoa(connlimit.DefaultMaxConnections),
		usage: "connections held open at once, a `count` from 1; more wait in the listen backlog",
		parse: countField(func(c *server.Config) *int { return &c.MaxConnections })},
	{flag: "max-idle-conns-per-address", env: "M2MAUTH_MAX_IDLE_CONNS_PER_ADDRESS", def: strconv.Itoa(connlimit.DefaultMaxIdlePerAddress),
		usage: "idle keep-alive connections kept per client IP, a `count` from 1 to --max-connections; the oldest idle ones are closed",
		parse: countField(func(c *server.Config) *int { return &c.MaxIdleConnsPerAddress })},
	{flag: "audit-retention", env: "M2MAUTH_AUDIT_RETENTION", def: shortDuration(server.DefaultAuditRetention),
		usage: "how long audit events are kept before the hourly purge removes them, a Go `duration` of at least " + shortDuration(server.MinAuditRetention),
		parse: durationField(func(c *server.Config) *time.Duration { return &c.AuditRetention }, server.MinAuditRetention)},
	{flag: "usage-interval", env: "M2MAUTH_USAGE_INTERVAL", def: shortDuration(server.DefaultUsageInterval),
		usage: "how long issuance counters of tokens not counted against a quota are summed in memory before they are written, a Go `duration` from " + shortDuration(server.MinUsageInterval) + " to " + shortDuration(server.MaxUsageInterval) + "; usage lags issuance by up to that much (tokens counted against a quota: 2s)",
		parse: durationField(func(c *server.Config) *time.Duration { return &c.UsageInterval }, server.MinUsageInterval)},
	{flag: "auth-max-failures", env: "M2MAUTH_AUTH_MAX_FAILURES", def: strconv.Itoa(limits.DefaultMaxFailures),
		usage: "consecutive failed client authentications of one client_id from one address that lock it out from there for --auth-lockout-window, a `count` from 1; then 429",
		parse: countField(func(c *server.Config) *int { return &c.AuthMaxFailures })},
	{flag: "auth-lockout-window", env: "M2MAUTH_AUTH_LOCKOUT_WINDOW", def: shortDuration(limits.DefaultWindow),
		usage: "the window failed client authentications are counted in, and the lockout's length, a Go `duration` from 1s to 1h",
		parse: durationField(func(c *server.Config) *time.Duration { return &c.AuthLockoutWindow }, server.MinAuthLockoutWindow)},
	{flag: "default-rate", env: "M2MAUTH_DEFAULT_RATE",
		usage: "token `rate` of applications without a rate or quota of their own: 5/s, 300/m or 1000/h; default none (docs/policy.md)",
		parse: stringField(func(c *server.Config) *string { return &c.DefaultRate })},
	{flag: "default-burst", env: "M2MAUTH_DEFAULT_BURST",
		usage: "tokens --default-rate lets through at once, a `count` from 1; default the rate per second, rounded up",
		parse: optionalCountField(func(c *server.Config) *int { return &c.DefaultBurst })},
	{flag: "default-quota-hour", env: "M2MAUTH_DEFAULT_QUOTA_HOUR",
		usage: "tokens per UTC hour of applications without a rate or quota of their own, a `count` from 1; default none",
		parse: optionalCountField(func(c *server.Config) *int { return &c.DefaultQuotaHour })},
	{flag: "default-quota-day", env: "M2MAUTH_DEFAULT_QUOTA_DAY",
		usage: "tokens per UTC day of applications without a rate or quota of their own, a `count` from 1; default none",
		parse: optionalCountField(func(c *server.Config) *int { return &c.DefaultQuotaDay })},
	{flag: "tls-cert-file", env: "M2MAUTH_TLS_CERT_FILE",
		usage: "PEM certificate chain `file` to serve TLS with (with --tls-key-file); reread when it changes; default plain HTTP",
		parse: stringField(func(c *server.Config) *string { return &c.TLSCertFile })},
	{flag: "tls-key-file", env: "M2MAUTH_TLS_KEY_FILE",
		usage: "PEM private key `file` of --tls-cert-file; reread when it changes",
		parse: stringField(func(c *server.Config) *string { return &c.TLSKeyFile })},
	{flag: "tls-client-ca-file", env: "M2MAUTH_TLS_CLIENT_CA_FILE",
		usage: "PEM `file` of the CAs tls_client_auth client certificates chain to (RFC 8705); with TLS, client certificates are then asked for, not required; default none asked",
		parse: stringField(func(c *server.Config) *string { return &c.TLSClientCAFile })},
	{flag: "client-cert-header", env: "M2MAUTH_CLIENT_CERT_HEADER",
		usage: "request header `name` a TLS-terminating proxy forwards the client certificate in (URL-escaped PEM or base64 DER), honoured only from --trusted-proxies; default none",
		parse: stringField(func(c *server.Config) *string { return &c.ClientCertHeader })},
	{flag: "shutdown-delay", env: "M2MAUTH_SHUTDOWN_DELAY", def: shortDuration(server.DefaultShutdownDelay),
		usage: "how long to keep serving after SIGTERM or SIGINT with /readyz failing, a Go `duration`; a second signal ends it",
		parse: durationField(func(c *server.Config) *time.Duration { return &c.ShutdownDelay }, time.Millisecond)},
	{flag: "cors-allowed-origins", env: "M2MAUTH_CORS_ALLOWED_ORIGINS",
		usage: "comma-separated `origins` (https://app.example.com) whose browser code may call the token endpoint; default none",
		parse: stringField(func(c *server.Config) *string { return &c.CORSAllowedOrigins })},
	{flag: "log-level", env: "M2MAUTH_LOG_LEVEL", def: "info",
		usage: "debug, info, warn or error",
		parse: stringField(func(c *server.Config) *string { return &c.LogLevel })},
	{flag: "log-format", env: "M2MAUTH_LOG_FORMAT", def: "text",
		usage: "text or json",
		parse: stringField(func(c *server.Config) *string { return &c.LogFormat })},
	{flag: "metrics-addr", env: "M2MAUTH_METRICS_ADDR",
		usage: "`host:port` of a separate listener serving Prometheus metrics at /metrics; default none (docs/metrics.md)",
		parse: stringField(func(c *server.Config) *string { return &c.MetricsAddr })},
	{flag: "metrics-per-client", env: "M2MAUTH_METRICS_PER_CLIENT", def: "false",
		usage: "add a client_id label to the token request counter, for deployments with few applications (at most 50 values, then \"other\")",
		parse: boolField(func(c *server.Config) *bool { return &c.MetricsPerClient })},
	{flag: "audit-sink", env: "M2MAUTH_AUDIT_SINK",
		usage: "also write every stored audit event as a JSON line to `stdout or file:PATH`; default none (README: Audit export)",
		parse: stringField(func(c *server.Config) *string { return &c.AuditSink })},
}

// clientSettings are the settings every client command shares (the
// api, app, grant, token, audit and key commands).
var clientSettings = []setting[clientOptions]{
	{flag: "server", env: "M2MAUTH_SERVER",
		usage: "base `URL` of the server; default the issuer in the credentials file",
		parse: stringField(func(o *clientOptions) *string { return &o.server })},
	{flag: "credentials", env: "M2MAUTH_CREDENTIALS",
		usage: "administrator credentials `file`; default <data-dir>/" + server.CredentialsFile + ", else the one the last serve of this user recorded in ~/.config/m2mauth/credentials-path",
		parse: stringField(func(o *clientOptions) *string { return &o.credentials })},
	{flag: "data-dir", env: "M2MAUTH_DATA_DIR", def: server.DefaultDataDir,
		usage: "data `directory` of the server, where it wrote the credentials file",
		parse: stringField(func(o *clientOptions) *string { return &o.dataDir })},
}

// pick returns the rows of table named (by flag, or by variable for a
// row without a flag), in the table's order. It panics on a name the table
// lacks: that is a mistake in this file, which the tests catch.
func pick[T any](table []setting[T], names ...string) []setting[T] {
	var out []setting[T]
	for _, s := range table {
		if slices.Contains(names, s.flag) || (s.flag == "" && slices.Contains(names, s.env)) {
			out = append(out, s)
		}
	}
	if len(out) != len(names) {
		panic(fmt.Sprintf("pick %v: %d of them are settings", names, len(out)))
	}
	return out
}

// flagValue is a setting's flag: it keeps the text given, which load
// parses, so that parsing has one place and one error format.
type flagValue struct {
	typ   string
	text  string
	given bool
}

func (v *flagValue) String() string { return v.text }
func (v *flagValue) Type() string   { return v.typ }
func (v *flagValue) Set(s string) error {
	v.text, v.given = s, true
	return nil
}

// boundSettings are a table's rows registered as one command's flags.
type boundSettings[T any] struct {
	rows  []setting[T]
	flags []*flagValue // per row; nil for a row without a flag
	// from names, per flag name, where load took its value: "--flag",
	// the variable or "FILE: key"; absent for a default.
	from map[string]string
	// file is the --config flag of a command that reads a config file;
	// nil for one that reads none.
	file *configFile
	// loaded holds, per row, the text load used and where it came from
	// ("" for the default), for `config print`.
	loaded []loadedValue
}

// loadedValue is the text a row was loaded from and where it came from.
type loadedValue struct {
	text, from string
}

// bindSettings registers rows as flags of cmd (its persistent flags if
// persistent, for a command whose subcommands share them), and lists the
// environment-only rows in its long help.
func bindSettings[T any](cmd *cobra.Command, persistent bool, rows []setting[T]) *boundSettings[T] {
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	b := &boundSettings[T]{rows: rows, flags: make([]*flagValue, len(rows))}
	var envOnly strings.Builder
	for i, s := range rows {
		if s.flag == "" {
			fmt.Fprintf(&envOnly, "\n  %-28s %s", s.env, s.usage)
			continue
		}
		v := &flagValue{typ: s.parse.typ, text: s.def}
		usage := s.usage
		if s.env != "" {
			usage += " (" + s.env + ")"
		}
		fs.Var(v, s.flag, usage)
		if s.parse.typ == "bool" {
			fs.Lookup(s.flag).NoOptDefVal = "true"
		}
		b.flags[i] = v
	}
	if envOnly.Len() > 0 {
		cmd.Long += "\n\nSecrets read from the environment only:" + envOnly.String()
	}
	return b
}

// load sets c from every row: the flag if it was given, else the variable
// if lookup finds it non-empty, else the default. lookup is os.LookupEnv
// outside tests. It reports every bad value, each named by where it came
// from, and shows no secret's value.
func (b *boundSettings[T]) load(lookup func(string) (string, bool), c *T) error {
	b.from = map[string]string{}
	b.loaded = make([]loadedValue, len(b.rows))
	var file fileValues
	if b.file != nil {
		var err error
		if file, err = b.file.read(lookup); err != nil {
			return err
		}
	}
	var errs []error
	for i, s := range b.rows {
		text, from := s.def, ""
		if f := b.flags[i]; f != nil && f.given {
			text, from = f.text, "--"+s.flag
		} else if v, ok := lookup(s.env); s.env != "" && ok && v != "" {
			// An empty variable counts as unset, as M2MAUTH_X= in a
			// compose file usually means.
			text, from = v, s.env
		} else if v, ok := file.values[s.flag]; s.flag != "" && ok {
			text, from = v, file.path+": "+s.flag
		}
		b.loaded[i] = loadedValue{text: text, from: from}
		if from != "" && s.flag != "" {
			b.from[s.flag] = from
		}
		if err := s.parse.set(c, text); err != nil {
			if from == "" {
				from = "default of --" + s.flag
			}
			if s.secret {
				errs = append(errs, fmt.Errorf("%s %v", from, err))
			} else {
				errs = append(errs, fmt.Errorf("%s %q %v", from, text, err))
			}
		}
	}
	return errors.Join(errs...)
}

// explain renames, in the errors of server.Config.Validate, each setting
// after where its value came from: M2MAUTH_CACHE_TTL 1ms must be between
// 100ms and 5m. It needs load to have run.
func (b *boundSettings[T]) explain(err error) error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
		var fe *server.FieldError
		if errors.As(e, &fe) {
			if from, ok := b.from[fe.Setting]; ok {
				renamed := *fe
				renamed.Setting = from
				out[i] = &renamed
			}
		}
	}
	return errors.Join(out...)
}
