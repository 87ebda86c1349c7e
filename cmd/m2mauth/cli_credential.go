package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/admin"
)

func credentialsPath(clientID string) string { return appPath(clientID) + "/credentials" }

func newAppCredentialCmd(opts *clientOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credential",
		Short: "Add, list and remove an application's secretless credentials (private_key_jwt keys)",
		Long: `Add, list and remove an application's secretless credentials: the public
keys that verify its private_key_jwt client assertions (RFC 7523), given
inline as a JWKS file (--jwks) or as an https URL the server fetches them
from (--jwks-uri). An application may hold several at once, so keys
rotate with overlap: add the new one, deploy it, remove the old one.`,
	}
	cmd.AddCommand(newAppCredentialAddCmd(opts), newAppCredentialListCmd(opts), newAppCredentialRemoveCmd(opts))
	return cmd
}

func newAppCredentialAddCmd(opts *clientOptions) *cobra.Command {
	var jwksFile, jwksURI, expiresIn string
	cmd := &cobra.Command{
		Use:   "add CLIENT_ID (--jwks FILE | --jwks-uri URL) [--expires-in DURATION]",
		Short: "Add public keys (a JWKS file or an https JWKS URL) to an application",
		Long: `Add a secretless credential to an application.

--jwks FILE reads a JWKS ({"keys": [...]}) of public keys only: RSA of at
least 2048 bits, EC P-256 or Ed25519, for PS256, ES256, EdDSA or RS256
("-" reads standard input). --jwks-uri URL names an https URL that serves
such a JWKS. DURATION is a Go duration such as 720h, or a number of
seconds; without --expires-in the credential never expires.`,
		Example: "  m2mauth app credential add 3kq4... --jwks-uri https://keys.example.com/billing/jwks.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req admin.CreateCredentialRequest
			switch {
			case (jwksFile == "") == (jwksURI == ""):
				return fmt.Errorf("give one of --jwks and --jwks-uri")
			case jwksURI != "":
				req.Type, req.JWKSURI = "jwks_uri", jwksURI
			default:
				var b []byte
				var err error
				if jwksFile == "-" {
					b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
				} else {
					b, err = os.ReadFile(jwksFile)
				}
				if err != nil {
					return fmt.Errorf("--jwks: %w", err)
				}
				if !json.Valid(b) {
					return fmt.Errorf("--jwks %s: not JSON", jwksFile)
				}
				req.Type, req.JWKS = "jwks", b
			}
			if cmd.Flags().Changed("expires-in") {
				s, err := parseSeconds("--expires-in", expiresIn)
				if err != nil {
					return err
				}
				req.ExpiresIn = &s
			}
			c, err := send[admin.CredentialResource](cmd.Context(), opts, http.MethodPost, credentialsPath(args[0]), req)
			if err != nil {
				return err
			}
			return show(cmd, opts, c, func(w io.Writer, c admin.CredentialResource) error {
				fmt.Fprintf(w, "Added a %s credential to application %s.\n\n", c.Type, cell(args[0]))
				tw := newTabWriter(w)
				row(tw, "Credential ID", c.ID)
				if c.JWKSURI != "" {
					row(tw, "JWKS URI", c.JWKSURI)
				}
				row(tw, "Expires", optTime(c.ExpiresAt, "never"))
				return tw.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&jwksFile, "jwks", "", "read the public keys from this JWKS `file` (- for standard input)")
	f.StringVar(&jwksURI, "jwks-uri", "", "fetch the public keys from this https `URL`")
	f.StringVar(&expiresIn, "expires-in", "", "the credential expires after this `duration` (default: never)")
	return cmd
}

func newAppCredentialListCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "list CLIENT_ID",
		Short:   "List an application's secretless credentials",
		Example: "  m2mauth app credential list 3kq4...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := send[admin.List[admin.CredentialResource]](cmd.Context(), opts, http.MethodGet, credentialsPath(args[0]), nil)
			if err != nil {
				return err
			}
			now := time.Now()
			return show(cmd, opts, l, func(w io.Writer, l admin.List[admin.CredentialResource]) error {
				if len(l.Items) == 0 {
					_, err := fmt.Fprintln(w, "No credentials.")
					return err
				}
				tw := newTabWriter(w)
				row(tw, "CREDENTIAL ID", "TYPE", "KEYS", "CREATED", "EXPIRES", "LAST USED")
				for _, c := range l.Items {
					keys := c.JWKSURI
					if c.JWKSURI == "" {
						var set struct {
							Keys []json.RawMessage `json:"keys"`
						}
						_ = json.Unmarshal(c.JWKS, &set)
						keys = fmt.Sprintf("%d inline", len(set.Keys))
					}
					expires := optTime(c.ExpiresAt, "never")
					if c.ExpiresAt != nil && !c.ExpiresAt.After(now) {
						expires += " (expired)"
					}
					row(tw, c.ID, c.Type, keys, formatTime(c.CreatedAt), expires, optTime(c.LastUsedAt, "-"))
				}
				return tw.Flush()
			})
		},
	}
}

func newAppCredentialRemoveCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "remove CLIENT_ID CREDENTIAL_ID",
		Short:   "Remove a secretless credential; it stops working at once",
		Example: "  m2mauth app credential remove 3kq4... cred_5f2c...",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, credentialsPath(args[0])+"/"+url.PathEscape(args[1]), nil, nil); err != nil {
				return err
			}
			if !opts.wantJSON() {
				fmt.Fprintf(cmd.OutOrStdout(), "Removed credential %s of application %s.\n", cell(args[1]), cell(args[0]))
			}
			return nil
		},
	}
}
