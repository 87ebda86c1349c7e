package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/oauth"
	"github.com/m2mauth/m2mauth/internal/server"
)

// tokenResponse is the token endpoint's answer (RFC 6749 §5.1) as -o json
// prints it.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

func newTokenCmd(opts *clientOptions) *cobra.Command {
	var clientID, secret, audience string
	var scopes []string
	cmd := &cobra.Command{
		Use:   "token [--client-id ID --client-secret SECRET] [--audience AUDIENCE] [--scope S]...",
		Short: "Get an access token with the client credentials grant",
		Long: `Get an access token with the client credentials grant (RFC 6749 §4.4)
for any application, and print it: the access token alone, so that
TOKEN=$(m2mauth token ...) works, or with -o json the whole response.

Without --client-id it uses the administrator's credentials file and asks
for a management API token. --client-secret - reads the secret from the
first line of standard input; prefer it or M2MAUTH_CLIENT_SECRET to the
flag, which other users of the machine may see in the process list.

Without --audience the server picks the one API the application is granted
(that defines every --scope).`,
		Example: `  TOKEN=$(m2mauth token --client-id 3kq4... --client-secret - --audience https://usage.example.com < secret.txt)`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Read here, not as the flags' defaults: --help shows defaults.
			if !cmd.Flags().Changed("client-id") {
				clientID = os.Getenv("M2MAUTH_CLIENT_ID")
			}
			if !cmd.Flags().Changed("client-secret") {
				secret = os.Getenv("M2MAUTH_CLIENT_SECRET")
			}
			var creds server.Credentials
			var err error
			switch {
			case clientID == "" && secret != "":
				return errors.New("--client-secret needs --client-id")
			case clientID == "":
				if creds, err = opts.loadCredentials(); err != nil {
					return err
				}
				clientID, secret = creds.ClientID, creds.ClientSecret
				if !cmd.Flags().Changed("audience") {
					audience = authz.ManagementAudience
				}
			case secret == "":
				return errors.New("--client-secret is required with --client-id: give it, - to read it from standard input, or set M2MAUTH_CLIENT_SECRET")
			case opts.server == "":
				// Only the issuer is needed from the credentials file.
				if creds, err = opts.loadCredentials(); err != nil {
					return fmt.Errorf("no server: give --server or set M2MAUTH_SERVER (%w)", err)
				}
			}
			if secret == "-" {
				if secret, err = readSecret(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			base, err := opts.serverURL(creds)
			if err != nil {
				return err
			}
			cc := &clientcredentials.Config{
				ClientID:     clientID,
				ClientSecret: secret,
				TokenURL:     base + oauth.PathToken,
				Scopes:       splitScopes(scopes),
				AuthStyle:    oauth2.AuthStyleInHeader,
			}
			if audience != "" {
				cc.EndpointParams = url.Values{"audience": {audience}}
			}
			tok, err := cc.Token(withHTTPClient(cmd.Context()))
			if err != nil {
				var re *oauth2.RetrieveError
				if errors.As(err, &re) {
					return fmt.Errorf("token request: %w", retrieveError(re))
				}
				return unreachable(base, err)
			}
			if !opts.wantJSON() {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), tok.AccessToken)
				return err
			}
			// clientcredentials keeps expires_in and scope only among the
			// response's raw members, where JSON numbers are float64.
			expiresIn, _ := tok.Extra("expires_in").(float64)
			scope, _ := tok.Extra("scope").(string)
			return printJSON(cmd.OutOrStdout(), tokenResponse{
				AccessToken: tok.AccessToken, TokenType: tok.TokenType, ExpiresIn: int64(expiresIn), Scope: scope,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&clientID, "client-id", "", "the application's client_id (M2MAUTH_CLIENT_ID); default the credentials file's")
	f.StringVar(&secret, "client-secret", "", "the application's client secret, or - to read it from standard input (M2MAUTH_CLIENT_SECRET)")
	f.StringVar(&audience, "audience", "", "identifier of the API the token is for")
	f.StringArrayVar(&scopes, "scope", nil, "a `scope` to ask for; repeat for each (default: every granted scope)")
	cmd.AddCommand(newTokenRevokeCmd(opts))
	return cmd
}

// readSecret reads a client secret from the first line of r.
func readSecret(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the client secret from standard input: %w", err)
	}
	s := strings.TrimSpace(line)
	if s == "" {
		return "", errors.New("no client secret on standard input")
	}
	return s, nil
}
