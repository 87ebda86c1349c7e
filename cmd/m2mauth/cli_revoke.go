package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/admin"
)

const pathRevokeToken = "/admin/v1/tokens/revoke"

// maxTokenInput bounds a token read from standard input: 16 KiB, far above
// any access token m2mauth issues.
const maxTokenInput = 16 << 10

func newTokenRevokeCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke TOKEN|-",
		Short: "Revoke an access token until it expires",
		Long: `Revoke one access token this server issued, whichever application holds
it, through the management API (scope revoke:tokens). From then on it
introspects inactive and the management API refuses it; resource servers
that validate tokens locally accept it until it expires.

With - as TOKEN the token is read from the first line of standard input;
prefer it to the argument, which other users of the machine may see in the
process list.`,
		Example: `  m2mauth token revoke - < token.txt`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tok := args[0]
			if tok == "-" {
				var err error
				if tok, err = readToken(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			out, err := send[admin.RevokedToken](cmd.Context(), opts, http.MethodPost, pathRevokeToken, admin.RevokeTokenRequest{Token: tok})
			if err != nil {
				return err
			}
			return show(cmd, opts, out, printRevokedToken)
		},
	}
}

// readToken reads an access token from the first line of r.
func readToken(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxTokenInput)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the token from standard input: %w", err)
	}
	s := strings.TrimSpace(line)
	if s == "" {
		return "", errors.New("no token on standard input")
	}
	return s, nil
}

func printRevokedToken(w io.Writer, t admin.RevokedToken) error {
	_, err := fmt.Fprintf(w, "Revoked token %s of application %s until it expires at %s.\n",
		cell(t.JTI), cell(t.ClientID), formatTime(t.ExpiresAt))
	return err
}

func newAppRevokeTokensCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-tokens CLIENT_ID",
		Short: "Revoke every access token issued to an application so far",
		Long: `Revoke every access token issued to an application so far, through the
management API (scope revoke:tokens). The application keeps its secrets and
grants and can get new tokens at once; its old tokens introspect inactive
and the management API refuses them. Resource servers that validate tokens
locally accept the old tokens until they expire.

Tokens carry their issue time in whole seconds, so the cutoff is the next
whole second: the command returns once it has passed (at most a second).`,
		Example: "  m2mauth app revoke-tokens 3kq4...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := send[admin.RevokedTokens](cmd.Context(), opts, http.MethodPost, appPath(args[0])+"/revoke-tokens", nil)
			if err != nil {
				return err
			}
			return show(cmd, opts, out, printRevokedTokens)
		},
	}
}

func printRevokedTokens(w io.Writer, r admin.RevokedTokens) error {
	_, err := fmt.Fprintf(w, "Revoked every token issued to application %s before %s.\n",
		cell(r.ClientID), formatTime(r.TokensNotBefore))
	return err
}

// introspects describes what an application may introspect (RFC 7662
// §4): its own tokens, and those of the audiences it is allowed.
func introspects(audiences []string) string {
	if len(audiences) == 0 {
		return "its own tokens"
	}
	return "its own tokens and those for " + strings.Join(audiences, ", ")
}
