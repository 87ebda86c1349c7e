package main

import "github.com/spf13/cobra"

// addClientCommands adds the commands that drive a running server.
func addClientCommands(root *cobra.Command) {}
