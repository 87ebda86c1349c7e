package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/server"
)

func newServeCmd() *cobra.Command {
	var cfg server.Config
	var settings *boundSettings[server.Config]
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the authorization server",
		Long: `Run the authorization server on an embedded SQLite database in --data-dir.

On an empty database it creates the management API and an administrator
application, and writes the administrator's credentials to
<data-dir>/admin-credentials.json (mode 0600).

Every flag may be given instead by the environment variable named after it;
a flag on the command line wins over its variable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := settings.load(os.LookupEnv, &cfg); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return settings.explain(err)
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
	settings = bindSettings(cmd, false, serveSettings)
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
