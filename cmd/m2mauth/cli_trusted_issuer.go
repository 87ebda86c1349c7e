package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/admin"
)

const pathTrustedIssuers = "/admin/v1/trusted-issuers"

func newTrustedIssuerCmd(opts *clientOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trusted-issuer",
		Short: "Add, list and remove trusted issuers (workload identity federation)",
		Long: `Add, list and remove trusted issuers: external issuers of workload
identity tokens (an OIDC provider such as GitHub Actions or GitLab, a
Kubernetes cluster, a SPIFFE trust domain) whose JWTs may authenticate
applications through their federated credentials (m2mauth app credential
add --type federated). Reading needs read:trusted-issuers; adding and
removing needs update:trusted-issuers.`,
	}
	cmd.AddCommand(newTrustedIssuerAddCmd(opts), newTrustedIssuerListCmd(opts), newTrustedIssuerRemoveCmd(opts))
	return cmd
}

func newTrustedIssuerAddCmd(opts *clientOptions) *cobra.Command {
	var req admin.CreateTrustedIssuerRequest
	var jwksFile string
	var singleUse bool
	cmd := &cobra.Command{
		Use:   "add --name NAME --kind oidc|kubernetes|spiffe [--issuer URL] [--jwks-uri URL] [--jwks-file FILE] [--trust-domain DOMAIN] [--bundle-url URL] [--single-use=true|false]",
		Short: "Trust an OIDC issuer, a Kubernetes cluster or a SPIFFE trust domain",
		Long: `Add a trusted issuer.

--kind oidc takes --issuer, the iss of its tokens (an https URL, compared
exactly); its keys are found by OpenID Connect discovery, or at
--jwks-uri.

--kind kubernetes takes the cluster's service-account issuer (--issuer)
and at most one of --jwks-uri and --jwks-file (a JWKS of public keys, for
a cluster whose issuer is not reachable: kubectl get --raw
/openid/v1/jwks).

--kind spiffe takes --trust-domain and one of --bundle-url (its https_web
bundle endpoint) and --jwks-file (a SPIFFE bundle); its issuer is
spiffe://DOMAIN.

--single-use makes each token's jti usable once (tokens without a jti
are refused); default true for oidc (GitHub Actions gives a fresh token
per job), false for kubernetes and spiffe, which reuse their tokens.
"-" as --jwks-file reads standard input.`,
		Example: `  m2mauth trusted-issuer add --name github --kind oidc --issuer https://token.actions.githubusercontent.com
  m2mauth trusted-issuer add --name prod-cluster --kind kubernetes --issuer https://kubernetes.default.svc --jwks-file jwks.json
  m2mauth trusted-issuer add --name mesh --kind spiffe --trust-domain prod.example.org --bundle-url https://spire.example.org/bundle`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if jwksFile != "" {
				var b []byte
				var err error
				if jwksFile == "-" {
					b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
				} else {
					b, err = os.ReadFile(jwksFile)
				}
				if err != nil {
					return fmt.Errorf("--jwks-file: %w", err)
				}
				if !json.Valid(b) {
					return fmt.Errorf("--jwks-file %s: not JSON", jwksFile)
				}
				req.JWKS = b
			}
			if cmd.Flags().Changed("single-use") {
				req.SingleUse = &singleUse
			}
			ti, err := send[admin.TrustedIssuerResource](cmd.Context(), opts, http.MethodPost, pathTrustedIssuers, req)
			if err != nil {
				return err
			}
			return show(cmd, opts, ti, func(w io.Writer, ti admin.TrustedIssuerResource) error {
				fmt.Fprintf(w, "Added trusted issuer %s.\n\n", strconv.Quote(cell(ti.Name)))
				return printTrustedIssuer(w, ti)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "display name (required)")
	f.StringVar(&req.Kind, "kind", "", "oidc, kubernetes or spiffe (required)")
	f.StringVar(&req.Issuer, "issuer", "", "the iss of its tokens, an https `URL` (oidc, kubernetes)")
	f.StringVar(&req.JWKSURI, "jwks-uri", "", "fetch its keys from this https `URL` instead of by discovery (oidc, kubernetes)")
	f.StringVar(&jwksFile, "jwks-file", "", "its public keys, or its SPIFFE bundle, from this JWKS `file` (kubernetes, spiffe)")
	f.StringVar(&jwksFile, "jwks", "", "the same as --jwks-file, as in m2mauth app credential add")
	f.StringVar(&req.TrustDomain, "trust-domain", "", "the SPIFFE trust `domain`, such as prod.example.org (spiffe)")
	f.StringVar(&req.BundleURL, "bundle-url", "", "the https `URL` of its SPIFFE bundle endpoint (spiffe)")
	f.BoolVar(&singleUse, "single-use", false, "accept each token's jti once (default: true for oidc, false otherwise)")
	cmd.MarkFlagsMutuallyExclusive("jwks-file", "jwks")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("kind")
	return cmd
}

func printTrustedIssuer(w io.Writer, ti admin.TrustedIssuerResource) error {
	tw := newTabWriter(w)
	row(tw, "ID", ti.ID)
	row(tw, "Kind", ti.Kind)
	row(tw, "Issuer", ti.Issuer)
	if ti.TrustDomain != "" {
		row(tw, "Trust domain", ti.TrustDomain)
	}
	row(tw, "Keys", trustedIssuerKeys(ti))
	row(tw, "Single use", yesNo(ti.SingleUse))
	return tw.Flush()
}

// trustedIssuerKeys says where a trusted issuer's keys come from.
func trustedIssuerKeys(ti admin.TrustedIssuerResource) string {
	switch {
	case ti.BundleURL != "":
		return ti.BundleURL
	case ti.JWKSURI != "":
		return ti.JWKSURI
	case len(ti.JWKS) > 0:
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		_ = json.Unmarshal(ti.JWKS, &set)
		return fmt.Sprintf("%d inline", len(set.Keys))
	}
	return "discovery"
}

func newTrustedIssuerListCmd(opts *clientOptions) *cobra.Command {
	var pages pageFlags
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the trusted issuers, oldest first",
		Example: "  m2mauth trusted-issuer list --all",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return showPages(cmd, opts, pathTrustedIssuers, pages.query(), pages.all, func(w io.Writer, l admin.List[admin.TrustedIssuerResource]) error {
				if len(l.Items) == 0 {
					_, err := fmt.Fprintln(w, "No trusted issuers.")
					return err
				}
				tw := newTabWriter(w)
				row(tw, "ID", "NAME", "KIND", "ISSUER", "KEYS", "SINGLE USE", "CREATED")
				for _, ti := range l.Items {
					row(tw, ti.ID, ti.Name, ti.Kind, ti.Issuer, trustedIssuerKeys(ti), yesNo(ti.SingleUse), formatTime(ti.CreatedAt))
				}
				return tw.Flush()
			})
		},
	}
	pages.register(cmd, "trusted issuers")
	return cmd
}

func newTrustedIssuerRemoveCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a trusted issuer; refused while a federated credential names it",
		Long: `Remove a trusted issuer. The server refuses (409) while a federated
credential of any application names it: remove those first with
m2mauth app credential remove.`,
		Example: "  m2mauth trusted-issuer remove tis_5f2c...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, pathTrustedIssuers+"/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			if !opts.wantJSON() {
				fmt.Fprintf(cmd.OutOrStdout(), "Removed trusted issuer %s.\n", cell(args[0]))
			}
			return nil
		},
	}
}
