package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
)

const (
	pathKeys       = "/admin/v1/keys"
	pathKeysRotate = "/admin/v1/keys/rotate"
)

func newKeyCmd(opts *clientOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "List and rotate the signing keys",
		Long: `List and rotate the keys that sign access tokens.

Each algorithm in use has an active key, which signs, and a next key,
published in the JWKS before it signs. The server rotates them on its own
every --key-rotation-period; a retired key stays published until every
token it signed has expired (its "remove after" time). Private keys are
never shown.`,
	}
	cmd.AddCommand(newKeyListCmd(opts), newKeyRotateCmd(opts))
	return cmd
}

func newKeyListCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the signing keys, oldest first",
		Example: "  m2mauth key list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := send[admin.List[admin.KeyResource]](cmd.Context(), opts, http.MethodGet, pathKeys, nil)
			if err != nil {
				return err
			}
			return show(cmd, opts, l, printKeys)
		},
	}
}

func newKeyRotateCmd(opts *clientOptions) *cobra.Command {
	var alg string
	var force bool
	cmd := &cobra.Command{
		Use:   "rotate [--alg ALG] [--force]",
		Short: "Rotate the signing keys now",
		Long: `Rotate the signing keys now: for each algorithm in use, or only --alg,
the next key becomes active at once, the active key retires and a new next
key is made.

The new active key has been published for less than a rotation period:
resource servers that cached the JWKS before it was published fetch it
again when they see its kid. Tokens of the retired key stay valid until
they expire.

The server refuses (409) to rotate an algorithm whose next key was
published less than the JWKS max-age (300 s) ago, or that already has 32
retired keys of which the oldest may still have valid tokens. --force
rotates anyway, as for a suspected key compromise, and removes the oldest
retired keys over 32 at once: tokens they signed stop verifying. A forced
rotation is audited as such.`,
		Example: "  m2mauth key rotate --alg ES256\n  m2mauth key rotate --alg ES256 --force   # the active key is compromised",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if alg != "" && !authz.ValidSigningAlg(alg) {
				return fmt.Errorf("--alg %q must be one of %s", alg, strings.Join(authz.SigningAlgs, ", "))
			}
			var body any
			if alg != "" || force {
				body = admin.RotateKeysRequest{Alg: alg, Force: force}
			}
			l, err := send[admin.List[admin.KeyResource]](cmd.Context(), opts, http.MethodPost, pathKeysRotate, body)
			if err != nil {
				return err
			}
			return show(cmd, opts, l, printKeys)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "rotate even if the next key is younger than the JWKS max-age, removing the oldest retired keys over the cap early")
	cmd.Flags().StringVar(&alg, "alg", "", "rotate only this algorithm's keys: "+strings.Join(authz.SigningAlgs, ", ")+" (default: every algorithm in use)")
	return cmd
}

func printKeys(w io.Writer, l admin.List[admin.KeyResource]) error {
	if len(l.Items) == 0 {
		_, err := fmt.Fprintln(w, "No signing keys.")
		return err
	}
	tw := newTabWriter(w)
	row(tw, "KID", "ALG", "STATE", "CREATED", "ACTIVATED", "RETIRED", "REMOVE AFTER")
	for _, k := range l.Items {
		row(tw, k.KID, k.Alg, k.State, formatTime(k.CreatedAt), optTime(k.ActivatedAt, "-"), optTime(k.RetiredAt, "-"), optTime(k.RemoveAfter, "-"))
	}
	return tw.Flush()
}
