// Command usage-api is a small usage-metering API protected by m2mauth
// access tokens through the rs package: a worked example of a resource
// server. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/rs"
)

// shutdownTimeout is how long in-flight requests get to finish on SIGINT or
// SIGTERM.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stderr, log); err != nil {
		log.Error("usage-api stopped", "error", err)
		os.Exit(1)
	}
}

// config is the command line, after environment defaults. It stays
// comparable: lists are kept as the comma-separated text given.
type config struct {
	addr         string
	issuer       string
	audience     string
	externalURL  string
	issuerCAFile string

	// DPoP resource-server nonces (RFC 9449 §9); off without a key file.
	dpopNonceKeyFile string
	dpopNonceWindow  time.Duration

	// TLS and mutual TLS (RFC 8705); plain HTTP without tlsCert.
	tlsCert          string
	tlsKey           string
	clientCAFile     string
	clientCertHeader string
	trustedProxies   string // comma-separated CIDR prefixes or addresses
}

// Bounds of --dpop-nonce-window: a nonce lives one to two windows.
const (
	minNonceWindow = time.Second
	maxNonceWindow = 24 * time.Hour
)

// parseConfig reads flags, taking each default from its environment
// variable when set: precedence is flag > environment > built-in default.
func parseConfig(args []string, lookupEnv func(string) (string, bool), out io.Writer) (config, error) {
	envOr := func(name, def string) string {
		if v, ok := lookupEnv(name); ok {
			return v
		}
		return def
	}
	var c config
	window := dpop.DefaultNonceWindow
	if v, ok := lookupEnv("USAGE_API_DPOP_NONCE_WINDOW"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("USAGE_API_DPOP_NONCE_WINDOW: %v", err)
		}
		window = d
	}
	fs := flag.NewFlagSet("usage-api", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", envOr("USAGE_API_ADDR", "127.0.0.1:9090"), "listen address `host:port` (USAGE_API_ADDR)")
	fs.StringVar(&c.issuer, "issuer", envOr("USAGE_API_ISSUER", "http://127.0.0.1:8080"), "m2mauth issuer `URL` (USAGE_API_ISSUER)")
	fs.StringVar(&c.audience, "audience", envOr("USAGE_API_AUDIENCE", "http://127.0.0.1:9090"), "this API's identifier in m2mauth (USAGE_API_AUDIENCE)")
	fs.StringVar(&c.externalURL, "external-url", envOr("USAGE_API_EXTERNAL_URL", ""), "behind a proxy, the `URL` clients reach this API at, for DPoP proofs' htu (USAGE_API_EXTERNAL_URL)")
	fs.StringVar(&c.issuerCAFile, "issuer-ca-file", envOr("USAGE_API_ISSUER_CA_FILE", ""), "PEM `file` of CA certificates trusted for the issuer's https, besides the system's (USAGE_API_ISSUER_CA_FILE)")
	fs.StringVar(&c.dpopNonceKeyFile, "dpop-nonce-key-file", envOr("USAGE_API_DPOP_NONCE_KEY_FILE", ""), "`file` holding at least 32 random bytes, base64: require DPoP nonces keyed with it; replicas sharing it accept each other's (USAGE_API_DPOP_NONCE_KEY_FILE)")
	fs.DurationVar(&c.dpopNonceWindow, "dpop-nonce-window", window, "how often the DPoP nonce changes; a nonce is good for one to two windows (USAGE_API_DPOP_NONCE_WINDOW)")
	fs.StringVar(&c.tlsCert, "tls-cert", envOr("USAGE_API_TLS_CERT", ""), "PEM certificate chain `file`: serve HTTPS (USAGE_API_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", envOr("USAGE_API_TLS_KEY", ""), "PEM private key `file` of --tls-cert (USAGE_API_TLS_KEY)")
	fs.StringVar(&c.clientCAFile, "client-ca-file", envOr("USAGE_API_CLIENT_CA_FILE", ""), "PEM `file` of CA certificates: ask clients for a certificate, verified against them, for certificate-bound tokens (USAGE_API_CLIENT_CA_FILE)")
	fs.StringVar(&c.clientCertHeader, "client-cert-header", envOr("USAGE_API_CLIENT_CERT_HEADER", ""), "`header` in which a TLS-terminating proxy forwards the client certificate, read from --trusted-proxies only (USAGE_API_CLIENT_CERT_HEADER)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", envOr("USAGE_API_TRUSTED_PROXIES", ""), "comma-separated `CIDRs` or addresses of the proxies allowed to set --client-cert-header (USAGE_API_TRUSTED_PROXIES)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c, c.validate()
}

// validate checks the combinations of settings; the files are read by run.
func (c config) validate() error {
	var errs []error
	if (c.tlsCert == "") != (c.tlsKey == "") {
		errs = append(errs, errors.New("give --tls-cert and --tls-key together"))
	}
	if c.clientCAFile != "" && c.tlsCert == "" {
		errs = append(errs, errors.New("--client-ca-file needs --tls-cert and --tls-key: client certificates come over TLS"))
	}
	if (c.clientCertHeader == "") != (strings.TrimSpace(strings.ReplaceAll(c.trustedProxies, ",", "")) == "") {
		errs = append(errs, errors.New("give --client-cert-header and --trusted-proxies together: the header is honoured only from those proxies"))
	}
	if c.dpopNonceWindow < minNonceWindow || c.dpopNonceWindow > maxNonceWindow {
		errs = append(errs, fmt.Errorf("--dpop-nonce-window %v outside [%v, %v]", c.dpopNonceWindow, minNonceWindow, maxNonceWindow))
	}
	return errors.Join(errs...)
}

// run serves the API until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), out io.Writer, log *slog.Logger) error {
	cfg, err := parseConfig(args, lookupEnv, out)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	vcfg, err := validatorConfig(cfg, log)
	if err != nil {
		return err
	}
	tlsCfg, err := serverTLS(cfg)
	if err != nil {
		return err
	}
	// New fails if m2mauth is not up yet: start it first.
	v, err := rs.New(ctx, vcfg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           logRequests(log, newServer(v)),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			served <- srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		served <- srv.Serve(ln)
	}()
	log.Info("usage-api listening", "addr", ln.Addr().String(), "tls", tlsCfg != nil,
		"issuer", cfg.issuer, "audience", cfg.audience,
		"dpop_nonces", cfg.dpopNonceKeyFile != "", "mtls", vcfg.MTLS != nil)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("usage-api shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// logRequests logs each request's method, path, status and duration.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.InfoContext(r.Context(), "request",
			"method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration_ms", time.Since(start).Milliseconds())
	})
}
