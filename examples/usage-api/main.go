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
	"syscall"
	"time"

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

// config is the command line, after environment defaults.
type config struct {
	addr        string
	issuer      string
	audience    string
	externalURL string
}

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
	fs := flag.NewFlagSet("usage-api", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", envOr("USAGE_API_ADDR", "127.0.0.1:9090"), "listen address `host:port` (USAGE_API_ADDR)")
	fs.StringVar(&c.issuer, "issuer", envOr("USAGE_API_ISSUER", "http://127.0.0.1:8080"), "m2mauth issuer `URL` (USAGE_API_ISSUER)")
	fs.StringVar(&c.audience, "audience", envOr("USAGE_API_AUDIENCE", "http://127.0.0.1:9090"), "this API's identifier in m2mauth (USAGE_API_AUDIENCE)")
	fs.StringVar(&c.externalURL, "external-url", envOr("USAGE_API_EXTERNAL_URL", ""), "behind a proxy, the `URL` clients reach this API at, for DPoP proofs' htu (USAGE_API_EXTERNAL_URL)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c, nil
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

	// 401 challenges point clients at the RFC 9728 metadata, when the
	// audience is a URL it can be derived from.
	metadataURL, _ := rs.MetadataURL(cfg.audience)
	// New fails if m2mauth is not up yet: start it first.
	v, err := rs.New(ctx, rs.Config{
		Issuer:              cfg.issuer,
		Audience:            cfg.audience,
		Logger:              log,
		ExternalURL:         cfg.externalURL,
		ResourceMetadataURL: metadataURL,
	})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           logRequests(log, newServer(v)),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("usage-api listening", "addr", ln.Addr().String(), "issuer", cfg.issuer, "audience", cfg.audience)

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
