package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
)

func credentialsPath(clientID string) string { return appPath(clientID) + "/credentials" }

func newAppCredentialCmd(opts *clientOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credential",
		Short: "Add, list and remove an application's secretless credentials (private_key_jwt keys, federated identities, client certificates)",
		Long: `Add, list and remove an application's secretless credentials: the public
keys that verify its private_key_jwt client assertions (RFC 7523), given
inline as a JWKS file (--jwks) or as an https URL the server fetches them
from (--jwks-uri); or a federated credential, which lets the JWTs a
trusted issuer gives a workload (a Kubernetes service-account token, a
GitHub Actions OIDC token, a SPIFFE JWT-SVID) authenticate the
application (--type federated; see m2mauth trusted-issuer); or a client
certificate for mutual TLS (RFC 8705): one issued by a CA the server
trusts, matched by its subject DN or a SAN (tls_client_auth), or one
registered itself (self_signed_tls_client_auth). An
application may hold several at once, so keys rotate with overlap: add
the new one, deploy it, remove the old one.`,
	}
	cmd.AddCommand(newAppCredentialAddCmd(opts), newAppCredentialListCmd(opts), newAppCredentialRemoveCmd(opts))
	return cmd
}

func newAppCredentialAddCmd(opts *clientOptions) *cobra.Command {
	var typ, jwksFile, jwksURI, expiresIn, trustedIssuer, subject, audience string
	var certFile, subjectDN, sanDNS, sanURI, sanIP, sanEmail string
	var claims []string
	cmd := &cobra.Command{
		Use:   "add CLIENT_ID (--jwks FILE | --jwks-uri URL | --type federated --trusted-issuer ID --subject S | --subject-dn DN | --san-dns|--san-uri|--san-ip|--san-email V | --cert FILE) [--expires-in DURATION]",
		Short: "Add public keys (a JWKS file or an https JWKS URL), a federated identity or a client certificate to an application",
		Long: `Add a secretless credential to an application.

--jwks FILE reads a JWKS ({"keys": [...]}) of public keys only: RSA of at
least 2048 bits, EC P-256 or Ed25519, for PS256, ES256, EdDSA or RS256
("-" reads standard input). --jwks-uri URL names an https URL that serves
such a JWKS.

--type federated --trusted-issuer ID --subject S accepts the JWTs of that
trusted issuer whose sub is S: exact, or with * matching any run of
characters other than ":" (repo:acme/billing:ref:refs/heads/*). Their aud
must be --audience (default: this server's issuer identifier), and each
--claim name=value must hold: a claim named twice or more may have any of
the values given (--claim environment=staging --claim environment=prod).
Dots reach into nested claims (kubernetes.io.namespace=billing).

tls_client_auth (RFC 8705 §2.1) accepts a client certificate that chains
to a CA of the server's --tls-client-ca-file and whose subject is
--subject-dn (an RFC 4514 string: "CN=billing,O=Example,C=DE"), or that
holds the SAN --san-dns, --san-uri, --san-ip or --san-email: exactly one.
A --san-uri that is a SPIFFE ID also accepts the X.509-SVIDs its trust
domain's spiffe trusted issuer (inline bundle) vouches for.

self_signed_tls_client_auth (RFC 8705 §2.2) accepts the certificates of
--cert FILE (PEM; each becomes a JWK with x5c), or of a --jwks FILE whose
keys carry x5c or x5t#S256.

--type is jwks, jwks_uri, federated, tls_client_auth or
self_signed_tls_client_auth; without it the other flags tell.
DURATION is a Go duration such as 720h, or a number of seconds; without
--expires-in the credential never expires.`,
		Example: `  m2mauth app credential add 3kq4... --jwks-uri https://keys.example.com/billing/jwks.json
  m2mauth app credential add 3kq4... --type federated --trusted-issuer tis_5f2c... \
      --subject repo:acme/billing:environment:prod --claim repository_owner=acme
  m2mauth app credential add 3kq4... --subject-dn 'CN=billing,O=Example,C=DE'
  m2mauth app credential add 3kq4... --san-uri spiffe://example.org/ns/billing/sa/worker
  m2mauth app credential add 3kq4... --cert billing.crt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req admin.CreateCredentialRequest
			federated := trustedIssuer != "" || subject != "" || cmd.Flags().Changed("audience") || len(claims) > 0
			tlsMatch := subjectDN != "" || sanDNS != "" || sanURI != "" || sanIP != "" || sanEmail != ""
			if typ == "" {
				switch {
				case federated:
					typ = "federated"
				case tlsMatch:
					typ = authz.CredentialTLSClientAuth
				case certFile != "":
					typ = authz.CredentialSelfSignedTLSClientAuth
				case jwksURI != "":
					typ = "jwks_uri"
				case jwksFile != "":
					typ = "jwks"
				}
			}
			if typ != "federated" && federated {
				return fmt.Errorf("--trusted-issuer, --subject, --audience and --claim are for --type federated")
			}
			if typ != authz.CredentialTLSClientAuth && tlsMatch {
				return fmt.Errorf("--subject-dn, --san-dns, --san-uri, --san-ip and --san-email are for --type %s", authz.CredentialTLSClientAuth)
			}
			if typ != authz.CredentialSelfSignedTLSClientAuth && certFile != "" {
				return fmt.Errorf("--cert is for --type %s", authz.CredentialSelfSignedTLSClientAuth)
			}
			switch {
			case typ == authz.CredentialTLSClientAuth:
				if jwksFile != "" || jwksURI != "" {
					return fmt.Errorf("--type %s takes one of --subject-dn, --san-dns, --san-uri, --san-ip and --san-email, not --jwks or --jwks-uri", typ)
				}
				req.Type, req.SubjectDN, req.SANDNS, req.SANURI, req.SANIP, req.SANEmail = typ, subjectDN, sanDNS, sanURI, sanIP, sanEmail
			case typ == authz.CredentialSelfSignedTLSClientAuth:
				switch {
				case jwksURI != "":
					return fmt.Errorf("--type %s takes --cert FILE or --jwks FILE, not --jwks-uri", typ)
				case (certFile == "") == (jwksFile == ""):
					return fmt.Errorf("--type %s takes one of --cert FILE and --jwks FILE", typ)
				}
				var b []byte
				var err error
				if certFile != "" {
					b, err = certificateJWKS(cmd.InOrStdin(), certFile)
				} else {
					b, err = readJWKSFile(cmd.InOrStdin(), jwksFile)
				}
				if err != nil {
					return err
				}
				req.Type, req.JWKS = typ, b
			case typ == "federated":
				if jwksFile != "" || jwksURI != "" {
					return fmt.Errorf("--type federated takes --trusted-issuer and --subject, not --jwks or --jwks-uri")
				}
				if trustedIssuer == "" || subject == "" {
					return fmt.Errorf("--type federated needs --trusted-issuer and --subject")
				}
				cond, err := parseClaimConditions(claims)
				if err != nil {
					return err
				}
				req.Type, req.TrustedIssuer, req.Subject, req.Audience, req.Claims = typ, trustedIssuer, subject, audience, cond
			case typ != "jwks" && typ != "jwks_uri" && typ != "":
				return fmt.Errorf("--type %q must be jwks, jwks_uri, federated, %s or %s", typ, authz.CredentialTLSClientAuth, authz.CredentialSelfSignedTLSClientAuth)
			case (jwksFile == "") == (jwksURI == ""):
				return fmt.Errorf("give one of --jwks, --jwks-uri and --type federated")
			case jwksURI != "":
				if typ == "jwks" {
					return fmt.Errorf("--type jwks takes --jwks FILE, not --jwks-uri")
				}
				req.Type, req.JWKSURI = "jwks_uri", jwksURI
			default:
				if typ == "jwks_uri" {
					return fmt.Errorf("--type jwks_uri takes --jwks-uri URL, not --jwks")
				}
				b, err := readJWKSFile(cmd.InOrStdin(), jwksFile)
				if err != nil {
					return err
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
				if c.Type == "federated" {
					row(tw, "Trusted issuer", c.TrustedIssuer)
					row(tw, "Subject", c.Subject)
					aud := c.Audience
					if aud == "" {
						aud = "this server's issuer identifier"
					}
					row(tw, "Audience", aud)
					if len(c.Claims) > 0 {
						row(tw, "Claims", claimConditionsText(c.Claims))
					}
				}
				if c.Type == authz.CredentialTLSClientAuth {
					row(tw, "Certificate", certificateMatchText(c))
				}
				row(tw, "Expires", optTime(c.ExpiresAt, "never"))
				return tw.Flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&typ, "type", "", "credential `type`: jwks, jwks_uri or federated (default: what the other flags give)")
	f.StringVar(&jwksFile, "jwks", "", "read the public keys from this JWKS `file` (- for standard input)")
	f.StringVar(&jwksURI, "jwks-uri", "", "fetch the public keys from this https `URL`")
	f.StringVar(&trustedIssuer, "trusted-issuer", "", "federated: the `ID` of the trusted issuer (m2mauth trusted-issuer list)")
	f.StringVar(&subject, "subject", "", "federated: the sub `pattern` its JWTs must match (* matches any run of characters but \":\")")
	f.StringVar(&audience, "audience", "", "federated: the aud its JWTs must have (default: this server's issuer identifier)")
	f.StringArrayVar(&claims, "claim", nil, "federated: a claim its JWTs must have, as `name=value`; repeat a name for a one-of list")
	f.StringVar(&subjectDN, "subject-dn", "", "tls_client_auth: the client certificate's subject, an RFC 4514 `DN`")
	f.StringVar(&sanDNS, "san-dns", "", "tls_client_auth: a dNSName SAN the client certificate holds (`name`)")
	f.StringVar(&sanURI, "san-uri", "", "tls_client_auth: a URI SAN the client certificate holds (`URI`, such as a SPIFFE ID)")
	f.StringVar(&sanIP, "san-ip", "", "tls_client_auth: an iPAddress SAN the client certificate holds (`address`)")
	f.StringVar(&sanEmail, "san-email", "", "tls_client_auth: an rfc822Name SAN the client certificate holds (`address`)")
	f.StringVar(&certFile, "cert", "", "self_signed_tls_client_auth: the PEM client certificate `file` to register (- for standard input)")
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
				row(tw, "CREDENTIAL ID", "TYPE", "KEYS OR SUBJECT", "CREATED", "EXPIRES", "LAST USED")
				for _, c := range l.Items {
					keys := c.JWKSURI
					switch {
					case c.Type == "federated":
						keys = c.Subject + " (" + c.TrustedIssuer + ")"
					case c.Type == authz.CredentialTLSClientAuth:
						keys = certificateMatchText(c)
					case c.JWKSURI == "":
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

// readJWKSFile reads a JWKS file, "-" for in.
func readJWKSFile(in io.Reader, file string) ([]byte, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(in, 1<<20))
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("--jwks: %w", err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("--jwks %s: not JSON", file)
	}
	return b, nil
}

// certificateJWKS reads the PEM certificates of file ("-" for in) into a
// JWKS of one key per certificate, with x5c (RFC 8705 §2.2).
func certificateJWKS(in io.Reader, file string) ([]byte, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(in, 1<<20))
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("--cert: %w", err)
	}
	var keys []jose.JSONWebKey
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--cert %s: %w", file, err)
		}
		keys = append(keys, jose.JSONWebKey{Key: cert.PublicKey, Certificates: []*x509.Certificate{cert}})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("--cert %s: no PEM CERTIFICATE", file)
	}
	return json.Marshal(jose.JSONWebKeySet{Keys: keys})
}

// certificateMatchText shows what a tls_client_auth credential matches.
func certificateMatchText(c admin.CredentialResource) string {
	switch {
	case c.SubjectDN != "":
		return "subject " + c.SubjectDN
	case c.SANDNS != "":
		return "DNS " + c.SANDNS
	case c.SANURI != "":
		return "URI " + c.SANURI
	case c.SANIP != "":
		return "IP " + c.SANIP
	}
	return "email " + c.SANEmail
}

// parseClaimConditions reads --claim name=value flags: a name given once
// is one value, a name given again makes a list of which the claim must
// equal one.
func parseClaimConditions(flags []string) (map[string]authz.ClaimCondition, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := map[string]authz.ClaimCondition{}
	for _, f := range flags {
		name, value, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--claim %q: want name=value", f)
		}
		c := out[name]
		c.Values = append(c.Values, value)
		c.List = len(c.Values) > 1
		out[name] = c
	}
	return out, nil
}

// claimConditionsText shows claim conditions as name=value and
// name=v1|v2, sorted by name.
func claimConditionsText(claims map[string]authz.ClaimCondition) string {
	names := make([]string, 0, len(claims))
	for n := range claims {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + strings.Join(claims[n].Values, "|")
	}
	return strings.Join(parts, " ")
}
