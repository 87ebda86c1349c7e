package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

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

func newGrantAddCmd(opts *clientOptions) *cobra.Command {
	var audience string
	var scopes []string
	cmd := &cobra.Command{
		Use:     "add CLIENT_ID --audience AUDIENCE [--scope S]...",
		Short:   "Grant an application an API's scopes",
		Long:    "Grant an application an API's scopes. Without --scope, every scope the API defines now.",
		Example: "  m2mauth grant add 3kq4... --audience https://usage.example.com --scope read:usage",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := admin.GrantRequest{Audience: audience}
			if cmd.Flags().Changed("scope") {
				s := splitScopes(scopes)
				req.Scopes = &s
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
	_ = cmd.MarkFlagRequired("audience")
	return cmd
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
	var scopes []string
	cmd := &cobra.Command{
		Use:   "update CLIENT_ID GRANT --scope S...",
		Short: "Replace the scopes of a grant",
		Long: `Replace the scopes of a grant with those given. --scope "" leaves it none:
the application keeps the grant but can get no scopes for the API.`,
		Example: "  m2mauth grant update 3kq4... https://usage.example.com --scope read:usage --scope export:usage",
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
			var g admin.GrantResource
			req := admin.UpdateGrantRequest{Scopes: splitScopes(scopes)}
			if err := c.do(cmd.Context(), http.MethodPatch, grantsPath(args[0])+"/"+url.PathEscape(id), req, &g); err != nil {
				return err
			}
			return show(cmd, opts, g, printGrant)
		},
	}
	cmd.Flags().StringArrayVar(&scopes, "scope", nil, "a `scope` to grant; repeat for each (required): the list replaces the grant's scopes")
	_ = cmd.MarkFlagRequired("scope")
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
