package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/server"
)

func newServeCmd() *cobra.Command {
	var cfg server.Config
	var rotationPeriod string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the authorization server",
		Long: `Run the authorization server on an embedded SQLite database in --data-dir.

On an empty database it creates the management API and an administrator
application, and writes the administrator's credentials to
<data-dir>/admin-credentials.json (mode 0600).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.MasterKey = os.Getenv("M2MAUTH_MASTER_KEY")
			cfg.PreviousMasterKey = os.Getenv("M2MAUTH_PREVIOUS_MASTER_KEY")
			d, err := time.ParseDuration(rotationPeriod)
			if err != nil || d <= 0 {
				return fmt.Errorf("key-rotation-period %q must be a Go duration of at least %v, such as 720h", rotationPeriod, server.MinKeyRotationPeriod)
			}
			cfg.KeyRotationPeriod = d
			if err := cfg.Validate(); err != nil {
				return err
			}
			log := newLogger(cfg)
			srv, err := server.New(cmd.Context(), cfg, server.Deps{Log: log})
			if err != nil {
				return err
			}
			defer srv.Close()
			ln, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			return srv.Serve(cmd.Context(), ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", envOr("M2MAUTH_ADDR", server.DefaultAddr), "listen address `host:port` (M2MAUTH_ADDR)")
	f.StringVar(&cfg.Issuer, "issuer", envOr("M2MAUTH_ISSUER", ""), "issuer URL, no trailing slash; default http://<addr> (M2MAUTH_ISSUER)")
	f.StringVar(&cfg.DataDir, "data-dir", envOr("M2MAUTH_DATA_DIR", server.DefaultDataDir), "directory of the SQLite database and generated files (M2MAUTH_DATA_DIR)")
	f.StringVar(&cfg.DefaultSigningAlg, "default-signing-alg", envOr("M2MAUTH_DEFAULT_SIGNING_ALG", "ES256"), "signing algorithm of APIs created without one: ES256, EdDSA, RS256, PS256 (M2MAUTH_DEFAULT_SIGNING_ALG)")
	f.StringVar(&cfg.MasterKeyFile, "master-key-file", envOr("M2MAUTH_MASTER_KEY_FILE", ""), "file with the 32-byte master key in base64; or set M2MAUTH_MASTER_KEY (M2MAUTH_MASTER_KEY_FILE)")
	f.StringVar(&cfg.PreviousMasterKeyFile, "previous-master-key-file", envOr("M2MAUTH_PREVIOUS_MASTER_KEY_FILE", ""), "file with the master key being rotated out, in base64; or set M2MAUTH_PREVIOUS_MASTER_KEY (M2MAUTH_PREVIOUS_MASTER_KEY_FILE)")
	f.StringVar(&cfg.DatabaseURL, "database-url", envOr("M2MAUTH_DATABASE_URL", ""), "postgres:// URL of a PostgreSQL database shared by every replica; default: SQLite in --data-dir (M2MAUTH_DATABASE_URL)")
	f.DurationVar(&cfg.CacheTTL, "cache-ttl", envDuration("M2MAUTH_CACHE_TTL", server.DefaultCacheTTL), "longest a replica's cached application may lag a change whose notification was lost (M2MAUTH_CACHE_TTL)")
	f.DurationVar(&cfg.CacheMaxStale, "cache-max-stale", envDuration("M2MAUTH_CACHE_MAX_STALE", server.DefaultCacheMaxStale), "how long cached applications keep getting tokens while the database is unreachable (M2MAUTH_CACHE_MAX_STALE)")
	f.StringVar(&rotationPeriod, "key-rotation-period", envOr("M2MAUTH_KEY_ROTATION_PERIOD", "720h"), "how long a signing key signs before the next one takes over, a Go `duration` of at least 1h (M2MAUTH_KEY_ROTATION_PERIOD)")
	f.StringVar(&cfg.LogLevel, "log-level", envOr("M2MAUTH_LOG_LEVEL", "info"), "debug, info, warn or error (M2MAUTH_LOG_LEVEL)")
	f.StringVar(&cfg.LogFormat, "log-format", envOr("M2MAUTH_LOG_FORMAT", "text"), "text or json (M2MAUTH_LOG_FORMAT)")
	return cmd
}

func newLogger(cfg server.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
