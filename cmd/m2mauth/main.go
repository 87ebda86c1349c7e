// Command m2mauth is an OAuth 2.0 authorization server for machine-to-machine
// APIs: `m2mauth serve` runs it; the other commands drive its management API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "m2mauth:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "m2mauth",
		Short:         "OAuth 2.0 authorization server for machine-to-machine APIs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd())
	addClientCommands(root)
	return root
}

// envOr returns the environment variable name's value, or def if unset:
// flag defaults come from it, so precedence is flag > environment > default.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// envDuration is envOr for durations: an unparsable value gives def (and
// Validate reports nothing wrong with def), so it is parsed strictly here.
func envDuration(name string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "m2mauth: %s=%q is not a Go duration such as 2s\n", name, v)
		os.Exit(2)
	}
	return d
}
