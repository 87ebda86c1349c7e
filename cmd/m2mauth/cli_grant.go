package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/admin"
)

func grantsPath(clientID string) string { return appPath(clientID) + "/grants" }

func newGrantCmd(opts *clientOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grant",
		Short: "Manage which APIs and scopes an application may get tokens for",
		Long: `Manage which APIs and scopes an application may get tokens for.

Commands that take GRANT accept the grant's id (grt_...) or the audience
(identifier) of the API it is for.`,
	}
	cmd.AddCommand(newGrantAddCmd(opts), newGrantUpdateCmd(opts), newGrantRemoveCmd(opts), newGrantListCmd(opts))
	return cmd
}

// tokenPolicyHelp explains --claim and --token-lifetime.
const tokenPolicyHelp = `--claim NAME=VALUE adds a static claim to every token of the grant; VALUE
is read as JSON when it is valid JSON (42, true, ["a","b"], {"k":"v"}, "42"),
else as a string. Registered and protocol claims (iss, sub, aud, exp, scope,
client_id, ...) are refused. --token-lifetime (e.g. 10m) shortens the
API's token lifetime for this grant, from 1m up to the API's.`

func newGrantAddCmd(opts *clientOptions) *cobra.Command {
	var audience string
	var scopes, claims []string
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:   "add CLIENT_ID --audience AUDIENCE [--scope S]... [--claim NAME=VALUE]... [--token-lifetime D]",
		Short: "Grant an application an API's scopes",
		Long: "Grant an application an API's scopes. Without --scope, every scope the API defines now.\n\n" +
			tokenPolicyHelp,
		Example: "  m2mauth grant add 3kq4... --audience https://usage.example.com --scope read:usage --claim tenant_id=t-42 --token-lifetime 10m",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := admin.GrantRequest{Audience: audience}
			if cmd.Flags().Changed("scope") {
				s := splitScopes(scopes)
				req.Scopes = &s
			}
			var err error
			if req.Claims, err = parseClaims(claims); err != nil {
				return err
			}
			if req.TokenLifetime, err = lifetimeSeconds(lifetime); err != nil {
				return err
			}
			g, err := send[admin.GrantResource](cmd.Context(), opts, http.MethodPost, grantsPath(args[0]), req)
			if err != nil {
				return err
			}
			return show(cmd, opts, g, printGrant)
		},
	}
	f := cmd.Flags()
	f.StringVar(&audience, "audience", "", "identifier of the API to grant (required)")
	f.StringArrayVar(&scopes, "scope", nil, "a `scope` to grant; repeat for each (default: all the API's scopes)")
	f.StringArrayVar(&claims, "claim", nil, "a static claim of the grant's tokens, as `NAME=VALUE`; repeat for each")
	f.DurationVar(&lifetime, "token-lifetime", 0, "the grant's token lifetime, 1m up to the API's (default: the API's)")
	_ = cmd.MarkFlagRequired("audience")
	return cmd
}

// parseClaims reads --claim NAME=VALUE flags: VALUE as JSON when it is
// valid JSON, else as a string. Nil for no flags.
func parseClaims(flags []string) (map[string]json.RawMessage, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := make(map[string]json.RawMessage, len(flags))
	for _, f := range flags {
		name, v, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--claim %q: give NAME=VALUE", f)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--claim %q is given twice", name)
		}
		if json.Valid([]byte(v)) && v != "" {
			out[name] = json.RawMessage(v)
		} else {
			b, _ := json.Marshal(v)
			out[name] = b
		}
	}
	return out, nil
}

// lifetimeSeconds converts --token-lifetime to whole seconds.
func lifetimeSeconds(d time.Duration) (int64, error) {
	if d%time.Second != 0 || d < 0 {
		return 0, fmt.Errorf("--token-lifetime %v must be whole seconds", d)
	}
	return int64(d / time.Second), nil
}

// grantID returns the id of the grant arg names: arg itself if it is a
// grant id (grt_...), else the id of the application's grant for audience
// arg.
func grantID(ctx context.Context, c *mgmtClient, clientID, arg string) (string, error) {
	if strings.HasPrefix(arg, "grt_") {
		return arg, nil
	}
	var l admin.List[admin.GrantResource]
	if err := c.do(ctx, http.MethodGet, grantsPath(clientID), nil, &l); err != nil {
		return "", err
	}
	for _, g := range l.Items {
		if g.Audience == arg {
			return g.ID, nil
		}
	}
	return "", fmt.Errorf("application %s has no grant for audience %q", clientID, arg)
}

func newGrantUpdateCmd(opts *clientOptions) *cobra.Command {
	var scopes, claims []string
	var noClaims bool
	var lifetime time.Duration
	cmd := &cobra.Command{
		Use:   "update CLIENT_ID GRANT [--scope S]... [--claim NAME=VALUE]... [--no-claims] [--token-lifetime D]",
		Short: "Replace the scopes, claims or token lifetime of a grant",
		Long: `Replace the scopes, claims or token lifetime of a grant; only those given
change. --scope "" leaves it no scopes: the application keeps the grant but
can get no scopes for the API. --claim replaces every claim of the grant
with those given; --no-claims removes them. --token-lifetime 0 returns to
the API's.

` + tokenPolicyHelp,
		Example: "  m2mauth grant update 3kq4... https://usage.example.com --scope read:usage --scope export:usage\n" +
			"  m2mauth grant update 3kq4... https://usage.example.com --claim tenant_id=t-42 --token-lifetime 10m",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			var req admin.UpdateGrantRequest
			if f.Changed("scope") {
				s := splitScopes(scopes)
				req.Scopes = &s
			}
			var err error
			if req.Claims, err = parseClaims(claims); err != nil {
				return err
			}
			if noClaims {
				if req.Claims != nil {
					return fmt.Errorf("give --claim or --no-claims, not both")
				}
				req.Claims = map[string]json.RawMessage{}
			}
			if f.Changed("token-lifetime") {
				n, err := lifetimeSeconds(lifetime)
				if err != nil {
					return err
				}
				req.TokenLifetime = &n
			}
			if req.Scopes == nil && req.Claims == nil && req.TokenLifetime == nil {
				return fmt.Errorf("nothing to change: give --scope, --claim, --no-claims or --token-lifetime")
			}
			c, err := opts.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			id, err := grantID(cmd.Context(), c, args[0], args[1])
			if err != nil {
				return err
			}
			var g admin.GrantResource
			if err := c.do(cmd.Context(), http.MethodPatch, grantsPath(args[0])+"/"+url.PathEscape(id), req, &g); err != nil {
				return err
			}
			return show(cmd, opts, g, printGrant)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&scopes, "scope", nil, "a `scope` to grant; repeat for each: the list replaces the grant's scopes")
	f.StringArrayVar(&claims, "claim", nil, "a static claim of the grant's tokens, as `NAME=VALUE`; repeat for each: the list replaces the grant's claims")
	f.BoolVar(&noClaims, "no-claims", false, "remove every claim of the grant")
	f.DurationVar(&lifetime, "token-lifetime", 0, "the grant's token lifetime, 1m up to the API's; 0: the API's")
	return cmd
}

func newGrantRemoveCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "remove CLIENT_ID GRANT",
		Short:   "Take a grant away from an application",
		Example: "  m2mauth grant remove 3kq4... https://usage.example.com",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			id, err := grantID(cmd.Context(), c, args[0], args[1])
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, grantsPath(args[0])+"/"+url.PathEscape(id), nil, nil); err != nil {
				return err
			}
			if !opts.wantJSON() {
				fmt.Fprintf(cmd.OutOrStdout(), "Removed grant %s from application %s.\n", cell(args[1]), cell(args[0]))
			}
			return nil
		},
	}
}

func newGrantListCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "list CLIENT_ID",
		Short:   "List an application's grants",
		Example: "  m2mauth grant list 3kq4...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := send[admin.List[admin.GrantResource]](cmd.Context(), opts, http.MethodGet, grantsPath(args[0]), nil)
			if err != nil {
				return err
			}
			return show(cmd, opts, l, printGrants)
		},
	}
}
