package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/logbuf"
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

Every flag may be given instead by the environment variable named after it,
or as a key of the YAML file --config names (cache-ttl: 2s). Precedence:
flag > environment > config file > default; m2mauth config print shows
what it comes to.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := settings.load(os.LookupEnv, &cfg); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return settings.explain(err)
			}
			log, logs := newLogger(cfg, os.Stderr)
			defer logs.Close() // after srv.Close: the last lines are written out
			srv, err := server.New(cmd.Context(), cfg, server.Deps{Log: log})
			if err != nil {
				return err
			}
			defer srv.Close()
			recordCredentialsPath(cfg.DataDir, log)
			ln, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			ctx, stop := notifyShutdown(cmd.Context(), log, srv)
			defer stop()
			return srv.Serve(ctx, ln)
		},
	}
	settings = bindSettings(cmd, false, serveSettings)
	readConfigFile(cmd, settings, serveSettings)
	return cmd
}

// newLogger returns the server's logger onto out, at --log-level in
// --log-format, and the buffer it writes through (logbuf): access lines
// reach out within logbuf.DefaultInterval (100 ms) in batches, warnings
// and errors at once. The caller closes the buffer last, which writes out
// what it holds.
func newLogger(cfg server.Config, out io.Writer) (*slog.Logger, *logbuf.Writer) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	w := logbuf.New(out, 0, 0)
	var h slog.Handler
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(logbuf.Handler(h, w, slog.LevelWarn)), w
}

// notifyShutdown returns a context that is cancelled after SIGTERM or
// SIGINT, which it logs: srv drains for --shutdown-delay (Server.Drain),
// then the context is done and Serve stops. A second signal ends the
// delay at once. stop releases the signals.
func notifyShutdown(parent context.Context, log *slog.Logger, srv *server.Server) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		var endDelay context.CancelFunc
		for {
			select {
			case sig := <-sigs:
				if endDelay != nil {
					log.Info("received a second signal: ending the shutdown delay", "signal", sig.String())
					endDelay()
					continue
				}
				log.Info("received a signal: shutting down", "signal", sig.String())
				var delayCtx context.Context
				delayCtx, endDelay = context.WithCancel(context.Background())
				go func() {
					srv.Drain(delayCtx)
					cancel()
				}()
			case <-parent.Done():
				parent = context.Background() // done once
				if endDelay != nil {
					continue
				}
				// main cancels parent on the signals sigs gets too; only
				// a cancellation without one (in-process) stops at once.
				select {
				case sig := <-sigs:
					sigs <- sig
				case <-time.After(100 * time.Millisecond):
					cancel()
					return
				}
			case <-done:
				if endDelay != nil {
					endDelay()
				}
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
