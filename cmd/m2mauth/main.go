// Command m2mauth is an OAuth 2.0 authorization server for machine-to-machine
// APIs: `m2mauth serve` runs it; the other commands drive its management API.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

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
	root.AddCommand(newServeCmd(), newAdminCmd(), newHealthcheckCmd(), newConfigCmd())
	root.AddCommand(newVersionCmd())
	setVersion(root)
	addClientCommands(root)
	return root
}
