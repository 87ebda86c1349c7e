package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
)

const pathAPIs = "/admin/v1/apis"

func newAPICmd(opts *clientOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Manage the APIs (resource servers) tokens are issued for",
		Long: `Manage the APIs (resource servers) tokens are issued for.

An API's identifier is the audience its access tokens carry. Commands that
take ID_OR_IDENTIFIER accept the API's id (api_...) or its identifier.`,
	}
	cmd.AddCommand(newAPICreateCmd(opts), newAPIListCmd(opts), newAPIGetCmd(opts), newAPIUpdateCmd(opts), newAPIDeleteCmd(opts))
	return cmd
}

func newAPICreateCmd(opts *clientOptions) *cobra.Command {
	var req admin.CreateAPIRequest
	var scopes []string
	var reuse tokenReuseFlag
	cmd := &cobra.Command{
		Use: "create --identifier ID [--name NAME] [--scope value[=description]]... [--token-lifetime SECONDS] [--signing-alg ALG]" +
			" [--dpop optional|required] [--dpop-nonce] [--mtls-bound optional|required] [--profile none|fapi2]",
		Short: "Register an API",
		Long: `Register an API.

--dpop required refuses token requests without a DPoP proof (RFC 9449),
--dpop-nonce makes those proofs carry a server nonce (RFC 9449 §8), and
--mtls-bound required refuses token requests made without a client
certificate (RFC 8705). --profile fapi2 applies the FAPI 2.0 Security
Profile to client credentials; its tokens are signed with PS256, ES256 or
EdDSA.`,
		Example: `  m2mauth api create --identifier https://usage.example.com --name "Usage API" \
    --scope read:usage="Read usage records" --scope write:usage
  m2mauth api create --identifier https://payments.example.com --signing-alg PS256 \
    --profile fapi2 --dpop required --dpop-nonce`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if req.Scopes, err = parseScopeDefs(scopes); err != nil {
				return err
			}
			req.TokenReuse = reuse.create(cmd)
			a, err := send[admin.APIResource](cmd.Context(), opts, http.MethodPost, pathAPIs, req)
			if err != nil {
				return err
			}
			return show(cmd, opts, a, printAPI)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Identifier, "identifier", "", "the API's identifier: the audience its tokens carry, e.g. https://api.example.com (required)")
	f.StringVar(&req.Name, "name", "", "display name (default: the identifier)")
	f.StringArrayVar(&scopes, "scope", nil, "a scope the API defines, as `value[=description]`; repeat for each")
	f.Int64Var(&req.TokenLifetime, "token-lifetime", 0, "access-token lifetime in `seconds` (default 3600)")
	f.StringVar(&req.SigningAlg, "signing-alg", "", "token signing algorithm: "+strings.Join(authz.SigningAlgs, ", ")+" (default: the server's)")
	f.StringVar(&req.DPoP, "dpop", "", "DPoP policy: optional or required (default optional)")
	f.BoolVar(&req.DPoPNonce, "dpop-nonce", false, "require a server nonce in DPoP proofs")
	f.StringVar(&req.MTLSBound, "mtls-bound", "", "certificate-bound token policy: optional or required (default optional)")
	f.StringVar(&req.Profile, "profile", "", "security profile: none or fapi2 (default none)")
	reuse.register(cmd, "the API's")
	_ = cmd.MarkFlagRequired("identifier")
	return cmd
}

// parseScopeDefs reads --scope value[=description] flags. Empty values are
// skipped, so --scope "" stands for no scopes at all.
func parseScopeDefs(defs []string) ([]authz.Scope, error) {
	out := []authz.Scope{}
	for _, d := range defs {
		value, desc, _ := strings.Cut(d, "=")
		value = strings.TrimSpace(value)
		if value == "" {
			if desc != "" {
				return nil, fmt.Errorf("--scope %q has a description but no value", d)
			}
			continue
		}
		out = append(out, authz.Scope{Value: value, Description: strings.TrimSpace(desc)})
	}
	return out, nil
}

func newAPIListCmd(opts *clientOptions) *cobra.Command {
	var identifier string
	var pages pageFlags
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List APIs",
		Example: "  m2mauth api list --all",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := pages.query()
			if identifier != "" {
				q.Set("identifier", identifier)
			}
			return showPages(cmd, opts, pathAPIs, q, pages.all, printAPIs)
		},
	}
	cmd.Flags().StringVar(&identifier, "identifier", "", "only the API with this identifier")
	pages.register(cmd, "APIs")
	return cmd
}

// resolveAPI reads the API arg names: by id if it starts with api_, else
// by identifier.
func resolveAPI(ctx context.Context, c *mgmtClient, arg string) (admin.APIResource, error) {
	var a admin.APIResource
	if strings.HasPrefix(arg, "api_") {
		err := c.do(ctx, http.MethodGet, pathAPIs+"/"+url.PathEscape(arg), nil, &a)
		return a, err
	}
	l, err := list[admin.APIResource](ctx, c, pathAPIs, url.Values{"identifier": {arg}}, false)
	if err != nil {
		return a, err
	}
	for _, a := range l.Items {
		if a.Identifier == arg {
			return a, nil
		}
	}
	return a, fmt.Errorf("no API has identifier %q", arg)
}

// apiID returns the id of the API arg names, looking it up only if arg is
// an identifier.
func apiID(ctx context.Context, c *mgmtClient, arg string) (string, error) {
	if strings.HasPrefix(arg, "api_") {
		return arg, nil
	}
	a, err := resolveAPI(ctx, c, arg)
	return a.ID, err
}

func newAPIGetCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "get ID_OR_IDENTIFIER",
		Short:   "Show an API",
		Example: "  m2mauth api get https://usage.example.com",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			a, err := resolveAPI(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			return show(cmd, opts, a, printAPI)
		},
	}
}

func newAPIUpdateCmd(opts *clientOptions) *cobra.Command {
	var name, alg, dpop, mtlsBound, profile string
	var scopes []string
	var lifetime int64
	var dpopNonce bool
	var reuse tokenReuseFlag
	cmd := &cobra.Command{
		Use: "update ID_OR_IDENTIFIER [--name NAME] [--scope value[=description]]... [--token-lifetime SECONDS] [--signing-alg ALG]" +
			" [--dpop optional|required] [--dpop-nonce[=false]] [--mtls-bound optional|required] [--profile none|fapi2]",
		Short: "Change an API",
		Long: `Change an API. Only the flags given change.

--scope replaces every scope of the API; scopes it no longer lists are
removed from every grant for it. --scope "" removes them all.
--dpop-nonce=false stops requiring DPoP nonces.`,
		Example: `  m2mauth api update https://usage.example.com --scope read:usage --scope export:usage
  m2mauth api update https://usage.example.com --dpop required --mtls-bound optional`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req admin.UpdateAPIRequest
			f := cmd.Flags()
			if f.Changed("name") {
				req.Name = &name
			}
			if f.Changed("scope") {
				defs, err := parseScopeDefs(scopes)
				if err != nil {
					return err
				}
				req.Scopes = &defs
			}
			if f.Changed("token-lifetime") {
				req.TokenLifetime = &lifetime
			}
			if f.Changed("signing-alg") {
				req.SigningAlg = &alg
			}
			if f.Changed("dpop") {
				req.DPoP = &dpop
			}
			if f.Changed("dpop-nonce") {
				req.DPoPNonce = &dpopNonce
			}
			if f.Changed("mtls-bound") {
				req.MTLSBound = &mtlsBound
			}
			if f.Changed("profile") {
				req.Profile = &profile
			}
			req.TokenReuse = reuse.patch(cmd)
			if req == (admin.UpdateAPIRequest{}) {
				return fmt.Errorf("nothing to change: give --name, --scope, --token-lifetime, --signing-alg, --dpop, --dpop-nonce, --mtls-bound, --profile or --token-reuse-min-remaining")
			}
			c, err := opts.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			id, err := apiID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			var a admin.APIResource
			if err := c.do(cmd.Context(), http.MethodPatch, pathAPIs+"/"+url.PathEscape(id), req, &a); err != nil {
				return err
			}
			return show(cmd, opts, a, printAPI)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new display name")
	f.StringArrayVar(&scopes, "scope", nil, "a scope, as `value[=description]`; repeat for each: the list replaces all the API's scopes")
	f.Int64Var(&lifetime, "token-lifetime", 0, "access-token lifetime in `seconds`")
	f.StringVar(&alg, "signing-alg", "", "token signing algorithm: "+strings.Join(authz.SigningAlgs, ", "))
	f.StringVar(&dpop, "dpop", "", "DPoP policy: optional or required")
	f.BoolVar(&dpopNonce, "dpop-nonce", false, "require a server nonce in DPoP proofs (--dpop-nonce=false: stop)")
	f.StringVar(&mtlsBound, "mtls-bound", "", "certificate-bound token policy: optional or required")
	f.StringVar(&profile, "profile", "", "security profile: none or fapi2")
	reuse.register(cmd, "the API's")
	return cmd
}

func newAPIDeleteCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "delete ID_OR_IDENTIFIER",
		Short:   "Delete an API and every grant for it",
		Example: "  m2mauth api delete https://usage.example.com",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			id, err := apiID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, pathAPIs+"/"+url.PathEscape(id), nil, nil); err != nil {
				return err
			}
			if !opts.wantJSON() {
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted API %s.\n", cell(args[0]))
			}
			return nil
		},
	}
}

// tokenReuseFlag is --token-reuse-min-remaining of api and app create and
// update: opt-in token reuse (docs/token-reuse.md), the JSON
// {"token_reuse": {"min_remaining": SECONDS}}; on update 0 removes it.
type tokenReuseFlag struct{ seconds int64 }

func (r *tokenReuseFlag) register(cmd *cobra.Command, whose string) {
	cmd.Flags().Int64Var(&r.seconds, "token-reuse-min-remaining", 0,
		"opt in to token reuse for "+whose+" tokens: a client asking again gets its cached token while it has at least `SECONDS` left (docs/token-reuse.md); on update 0 turns it off")
}

// create is the token_reuse of a create request: nil unless the flag was given.
func (r *tokenReuseFlag) create(cmd *cobra.Command) *admin.TokenReuse {
	if !cmd.Flags().Changed("token-reuse-min-remaining") {
		return nil
	}
	return &admin.TokenReuse{MinRemaining: r.seconds}
}

// patch is the token_reuse of an update: absent unless the flag was
// given, null for 0.
func (r *tokenReuseFlag) patch(cmd *cobra.Command) admin.TokenReusePatch {
	if !cmd.Flags().Changed("token-reuse-min-remaining") {
		return admin.TokenReusePatch{}
	}
	if r.seconds == 0 {
		return admin.SetTokenReuse(nil)
	}
	return admin.SetTokenReuse(&admin.TokenReuse{MinRemaining: r.seconds})
}
