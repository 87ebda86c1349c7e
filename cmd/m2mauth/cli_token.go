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

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/oauth"
	"github.com/m2mauth/m2mauth/internal/server"
	"github.com/m2mauth/m2mauth/m2mclient"
)

// tokenResponse is the token endpoint's answer (RFC 6749 §5.1) as -o json
// prints it.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// assertionTypes are the values of --assertion-type.
var assertionTypes = map[string]string{
	"jwt-bearer": m2mclient.AssertionTypeJWTBearer,
	"jwt-spiffe": m2mclient.AssertionTypeJWTSPIFFE,
}

func newTokenCmd(opts *clientOptions) *cobra.Command {
	var clientID, secret, audience, privateKey, keyID, assertionFile, assertionType string
	var scopes []string
	cmd := &cobra.Command{
		Use:   "token [--client-id ID (--client-secret SECRET | --private-key FILE) | --assertion-file FILE] [--audience AUDIENCE] [--scope S]...",
		Short: "Get an access token with the client credentials grant",
		Long: `Get an access token with the client credentials grant (RFC 6749 §4.4)
for any application, and print it: the access token alone, so that
TOKEN=$(m2mauth token ...) works, or with -o json the whole response.

The application authenticates with one of:
  --client-secret   its client secret (client_secret_basic). - reads it from
                    the first line of standard input; prefer it or
                    M2MAUTH_CLIENT_SECRET to the flag, which other users of
                    the machine may see in the process list.
  --private-key     a PEM private key (PKCS#8; EC P-256, Ed25519 or RSA):
                    private_key_jwt (RFC 7523 §2.2), a fresh assertion signed
                    for the server's URL as audience, with --key-id as kid.
  --assertion-file  a token its platform gave it (a Kubernetes projected
                    service-account token, a SPIFFE JWT-SVID), presented as
                    the client assertion of --assertion-type jwt-bearer
                    (default) or jwt-spiffe; --client-id is then optional.

Without --client-id or --assertion-file it uses the administrator's
credentials file and asks for a management API token.

Without --audience the server picks the one API the application is granted
(that defines every --scope).`,
		Example: `  TOKEN=$(m2mauth token --client-id 3kq4... --client-secret - --audience https://usage.example.com < secret.txt)
  TOKEN=$(m2mauth token --client-id 3kq4... --private-key key.pem --audience https://usage.example.com)
  TOKEN=$(m2mauth token --assertion-file /var/run/secrets/tokens/m2mauth --audience https://usage.example.com)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Read here, not as the flags' defaults: --help shows defaults.
			if !cmd.Flags().Changed("client-id") {
				clientID = os.Getenv("M2MAUTH_CLIENT_ID")
			}
			secretless := privateKey != "" || assertionFile != ""
			switch {
			case privateKey != "" && assertionFile != "":
				return errors.New("give --private-key or --assertion-file, not both")
			case secretless && cmd.Flags().Changed("client-secret"):
				return errors.New("--client-secret cannot be given with --private-key or --assertion-file")
			case keyID != "" && privateKey == "":
				return errors.New("--key-id needs --private-key")
			case cmd.Flags().Changed("assertion-type") && assertionFile == "":
				return errors.New("--assertion-type needs --assertion-file")
			case privateKey != "" && clientID == "":
				return errors.New("--private-key needs --client-id")
			}
			if !secretless && !cmd.Flags().Changed("client-secret") {
				secret = os.Getenv("M2MAUTH_CLIENT_SECRET")
			}
			typ, ok := assertionTypes[assertionType]
			if !ok {
				return fmt.Errorf("--assertion-type %q must be jwt-bearer or jwt-spiffe", assertionType)
			}
			var creds server.Credentials
			var err error
			switch {
			case secretless:
				if opts.server == "" {
					if creds, err = opts.loadCredentials(); err != nil {
						return fmt.Errorf("no server: give --server or set M2MAUTH_SERVER (%w)", err)
					}
				}
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
				return errors.New("--client-secret is required with --client-id: give it, - to read it from standard input, or set M2MAUTH_CLIENT_SECRET; or give --private-key")
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
			// The package's HTTP client: requestTimeout, and no redirect,
			// which would resend the credentials elsewhere.
			cfg := m2mclient.Config{
				Issuer:   base,
				TokenURL: base + oauth.PathToken,
				ClientID: clientID,
				Audience: audience,
				Scopes:   splitScopes(scopes),
			}
			ctx := cmd.Context()
			var ts oauth2.TokenSource
			switch {
			case privateKey != "":
				signer, err := m2mclient.LoadSigner(privateKey, keyID)
				if err != nil {
					return err
				}
				ts, err = cfg.PrivateKeyJWT(ctx, signer)
			case assertionFile != "":
				ts, err = cfg.AssertionFile(ctx, assertionFile, typ)
			default:
				ts, err = cfg.ClientSecret(ctx, secret)
			}
			if err != nil {
				return err
			}
			tok, err := ts.Token()
			if err != nil {
				var re *oauth2.RetrieveError
				var ue *url.Error
				switch {
				case errors.As(err, &re):
					return fmt.Errorf("token request: %w", retrieveError(re))
				case errors.As(err, &ue):
					return unreachable(base, err)
				}
				return err
			}
			if !opts.wantJSON() {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), tok.AccessToken)
				return err
			}
			scope, _ := tok.Extra("scope").(string)
			return printJSON(cmd.OutOrStdout(), tokenResponse{
				AccessToken: tok.AccessToken, TokenType: tok.TokenType, ExpiresIn: tok.ExpiresIn, Scope: scope,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&clientID, "client-id", "", "the application's client_id (M2MAUTH_CLIENT_ID); default the credentials file's")
	f.StringVar(&secret, "client-secret", "", "the application's client secret, or - to read it from standard input (M2MAUTH_CLIENT_SECRET)")
	f.StringVar(&privateKey, "private-key", "", "PEM private key `file` to authenticate with private_key_jwt instead of a secret")
	f.StringVar(&keyID, "key-id", "", "kid header of the --private-key assertions")
	f.StringVar(&assertionFile, "assertion-file", "", "`file` holding the client assertion (Kubernetes service-account token, SPIFFE JWT-SVID), read when the command runs")
	f.StringVar(&assertionType, "assertion-type", "jwt-bearer", "type of the --assertion-file assertion: jwt-bearer or jwt-spiffe")
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
