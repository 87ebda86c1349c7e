package main

import (
	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/buildinfo"
	"github.com/m2mauth/m2mauth/internal/token"
)

// newVersionCmd is `m2mauth version`: the build's module version, commit,
// commit time, whether the tree was modified, and Go version, as the Go
// toolchain stamped them (`go version -m m2mauth` shows the same), and
// the crypto that signs tokens (token.Backend: OpenSSL in a fastcrypto
// build).
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write([]byte(versionText()))
			return err
		},
	}
}

// setVersion makes `m2mauth --version` print what `m2mauth version` does.
func setVersion(root *cobra.Command) {
	root.Version = buildinfo.Read().Version
	root.SetVersionTemplate(versionText())
}

// versionText is buildinfo's lines and the signing backend's.
func versionText() string {
	return buildinfo.Read().String() + "crypto:     " + token.Backend() + "\n"
}
