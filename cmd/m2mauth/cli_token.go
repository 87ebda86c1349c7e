package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	// Confirmation is the cnf claim of a DPoP-bound token (--dpop-key),
	// read from the token: not a member of the server's response.
	Confirmation *tokenConfirmation `json:"cnf,omitempty"`
}

// tokenConfirmation is a DPoP-bound token's cnf claim (RFC 9449 §6.1).
type tokenConfirmation struct {
	JKT string `json:"jkt"`
}

// assertionTypes are the values of --assertion-type.
var assertionTypes = map[string]string{
	"jwt-bearer": m2mclient.AssertionTypeJWTBearer,
	"jwt-spiffe": m2mclient.AssertionTypeJWTSPIFFE,
}

func newTokenCmd(opts *clientOptions) *cobra.Command {
	var clientID, secret, audience, privateKey, keyID, assertionFile, assertionType, dpopKeyFile string
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
(that defines every --scope).

--dpop-key binds the token to a key (DPoP, RFC 9449): each token request
carries a proof signed by the key in the PEM file (PKCS#8, or SEC 1 EC, or
PKCS#1 RSA; EC P-256 or P-384, Ed25519 or RSA of 2048 bits or more), retried
once with the server's nonce if it asks for one, and the token must come back
with token_type DPoP. Create a key once with
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out dpop.pem
The token is then useless without the key: every API request must carry it as
"Authorization: DPoP <token>" with a fresh proof by the same key for that
request's method and URL (RFC 9449 §7), which no static command line can
hold. The command prints the token on standard output and its token_type and
cnf.jkt on standard error; in Go, m2mclient.DPoPTransport sends the proofs.`,
		Example: `  TOKEN=$(m2mauth token --client-id 3kq4... --client-secret - --audience https://usage.example.com < secret.txt)
  TOKEN=$(m2mauth token --client-id 3kq4... --private-key key.pem --audience https://usage.example.com)
  TOKEN=$(m2mauth token --assertion-file /var/run/secrets/tokens/m2mauth --audience https://usage.example.com)
  TOKEN=$(m2mauth token --client-id 3kq4... --private-key key.pem --dpop-key dpop.pem --audience https://usage.example.com)`,
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
			if dpopKeyFile != "" {
				if cfg.DPoP, err = loadDPoPKey(dpopKeyFile); err != nil {
					return err
				}
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
			var cnf *tokenConfirmation
			if cfg.DPoP != nil {
				if cnf, err = dpopConfirmation(tok.AccessToken, cfg.DPoP); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "token_type %s, cnf.jkt %s: send the token as \"Authorization: DPoP <token>\" with a fresh DPoP proof by the key in %s for each request (m2mclient.DPoPTransport in Go)\n",
					tok.TokenType, cnf.JKT, dpopKeyFile)
			}
			if !opts.wantJSON() {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), tok.AccessToken)
				return err
			}
			scope, _ := tok.Extra("scope").(string)
			return printJSON(cmd.OutOrStdout(), tokenResponse{
				AccessToken: tok.AccessToken, TokenType: tok.TokenType, ExpiresIn: tok.ExpiresIn, Scope: scope, Confirmation: cnf,
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
	f.StringVar(&dpopKeyFile, "dpop-key", "", "PEM private key `file` to bind the token to with DPoP (RFC 9449); create it with openssl genpkey")
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

// loadDPoPKey reads the PEM private key of --dpop-key
// (m2mclient.LoadPrivateKey). A missing file is an error: a DPoP key is
// the token's other half, and one made up on the spot would be lost with
// the process.
func loadDPoPKey(path string) (*m2mclient.DPoPKey, error) {
	key, err := m2mclient.LoadPrivateKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--dpop-key: %w (create a key with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s)", err, path)
	}
	if err != nil {
		return nil, fmt.Errorf("--dpop-key: %w", err)
	}
	k, err := m2mclient.NewDPoPKey(key, nil)
	if err != nil {
		return nil, fmt.Errorf("--dpop-key %s: %w", path, err)
	}
	return k, nil
}

// dpopConfirmation reads the cnf claim of a DPoP-bound access token,
// without verifying the token (its API does that), and checks that it
// names key: a token bound to another key would be refused by every API.
func dpopConfirmation(accessToken string, key *m2mclient.DPoPKey) (*tokenConfirmation, error) {
	parts := strings.Split(accessToken, ".")
	var claims struct {
		Cnf tokenConfirmation `json:"cnf"`
	}
	if len(parts) != 3 {
		return nil, errors.New("the DPoP-bound token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		return nil, errors.New("the DPoP-bound token's claims do not parse")
	}
	if claims.Cnf.JKT != key.Thumbprint() {
		return nil, fmt.Errorf("the token's cnf.jkt %q is not the thumbprint of the --dpop-key (%s)", claims.Cnf.JKT, key.Thumbprint())
	}
	return &claims.Cnf, nil
}
