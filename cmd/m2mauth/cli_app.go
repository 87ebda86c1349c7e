package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
)

const pathApplications = "/admin/v1/applications"

func appPath(clientID string) string { return pathApplications + "/" + url.PathEscape(clientID) }

func newAppCmd(opts *clientOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Manage applications (OAuth clients) and their client secrets",
	}
	cmd.AddCommand(newAppCreateCmd(opts), newAppListCmd(opts), newAppGetCmd(opts), newAppUpdateCmd(opts), newAppDeleteCmd(opts), newAppSecretCmd(opts), newAppCredentialCmd(opts), newAppUsageCmd(opts), newAppRevokeTokensCmd(opts))
	return cmd
}

func newAppCreateCmd(opts *clientOptions) *cobra.Command {
	var req admin.CreateApplicationRequest
	var grants, introspect []string
	var pf policyFlags
	var noSecret bool
	var reuse tokenReuseFlag
	cmd := &cobra.Command{
		Use:   "create --name NAME [--description TEXT] [--grant AUDIENCE[=scope1,scope2]]... [--introspect-audience AUDIENCE]...",
		Short: "Create an application and show its client secret, once",
		Long: `Create an application and show its client_id and client secret.

The client secret is shown only this once: m2mauth keeps only a hash of it.

--grant AUDIENCE grants every scope the API defines now; AUDIENCE=s1,s2
grants those scopes; AUDIENCE= grants none (add them later with
m2mauth grant update). On the management API (urn:m2mauth:admin) a grant
may hold only scopes you hold yourself, and AUDIENCE alone means yours.

--introspect-audience lets a resource server introspect other
applications' tokens for that audience (RFC 7662); it needs the scope
update:introspection.

` + policyHelp,
		Example: `  m2mauth app create --name billing-worker --grant https://usage.example.com=read:usage --rate 5/s --quota-hour 1000`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.Grants = parseGrants(grants)
			if pf.given(cmd) {
				p, err := pf.apply(cmd, admin.Policy{})
				if err != nil {
					return err
				}
				req.Policy = &p
			}
			if cmd.Flags().Changed("introspect-audience") {
				aud := nonEmpty(introspect)
				req.IntrospectAudiences = &aud
			}
			if noSecret {
				no := false
				req.ClientSecret = &no
			}
			req.TokenReuse = reuse.create(cmd)
			a, err := send[admin.CreatedApplication](cmd.Context(), opts, http.MethodPost, pathApplications, req)
			if err != nil {
				return err
			}
			if opts.wantJSON() && !noSecret {
				// stdout stays one JSON document; the warning is for the person.
				fmt.Fprintln(cmd.ErrOrStderr(), secretWarning)
			}
			return show(cmd, opts, a, printCreatedApp)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "display name (required)")
	f.StringVar(&req.Description, "description", "", "what the application is")
	f.StringArrayVar(&grants, "grant", nil, "grant an API, as `AUDIENCE[=scope1,scope2]`; repeat for each API")
	f.StringArrayVar(&introspect, "introspect-audience", nil, "let the application introspect tokens for `AUDIENCE` (RFC 7662); repeat for each")
	f.BoolVar(&noSecret, "no-secret", false, "create it without a client secret, for one that authenticates with a credential (m2mauth app credential add)")
	pf.register(cmd)
	reuse.register(cmd, "the application's")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// policyHelp explains the policy flags of app create and app update.
const policyHelp = `A policy limits the application's tokens (docs/policy.md): --rate 5/s
(or 300/m, 1000/h) with --burst, --quota-hour and --quota-day, each
optional; --mode observe records crossings and never refuses (default
enforce: 429 over a limit). --allow-ip CIDR (repeat) lets its token,
introspection and revocation requests come only from those networks.
Without a rate or a quota of its own the server's default applies
(--default-rate ...). On update, the flags given change those parts and
keep the others; --rate none, --quota-hour 0, --quota-day 0 and
--allow-ip "" remove a part, --clear-policy all of it. Needs
update:applications.`

// policyFlags are the policy flags of app create and app update.
type policyFlags struct {
	rate, mode          string
	burst               int
	quotaHour, quotaDay int64
	allowIPs            []string
	clear               bool
}

var policyFlagNames = []string{"rate", "burst", "quota-hour", "quota-day", "mode", "allow-ip", "clear-policy"}

func (pf *policyFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&pf.rate, "rate", "", "token `rate` of the application: 5/s, 300/m or 1000/h; none to remove")
	f.IntVar(&pf.burst, "burst", 0, "tokens the rate lets through at once (default: the rate per second, rounded up)")
	f.Int64Var(&pf.quotaHour, "quota-hour", 0, "tokens per UTC hour; 0 to remove")
	f.Int64Var(&pf.quotaDay, "quota-day", 0, "tokens per UTC day; 0 to remove")
	f.StringVar(&pf.mode, "mode", "", "enforce (429 over a limit) or observe (record only)")
	f.StringArrayVar(&pf.allowIPs, "allow-ip", nil, "a `CIDR` (or address) the application's requests may come from; repeat for each; \"\" for anywhere")
	if cmd.Name() == "update" {
		f.BoolVar(&pf.clear, "clear-policy", false, "remove the application's policy: the server's default applies")
	}
}

// given reports whether any policy flag was given.
func (pf *policyFlags) given(cmd *cobra.Command) bool {
	for _, n := range policyFlagNames {
		if f := cmd.Flags().Lookup(n); f != nil && f.Changed {
			return true
		}
	}
	return false
}

// apply returns p changed by the flags given.
func (pf *policyFlags) apply(cmd *cobra.Command, p admin.Policy) (admin.Policy, error) {
	f := cmd.Flags()
	if pf.clear {
		for _, n := range policyFlagNames[:len(policyFlagNames)-1] {
			if f.Changed(n) {
				return p, fmt.Errorf("--clear-policy removes the whole policy; give it alone")
			}
		}
		return admin.Policy{}, nil
	}
	if f.Changed("rate") {
		if pf.rate == "none" || pf.rate == "" {
			p.Rate = nil
		} else {
			r, err := authz.ParseRate(pf.rate)
			if err != nil {
				return p, fmt.Errorf("--rate: %w", err)
			}
			p.Rate = &admin.RatePolicy{PerSecond: r}
		}
	}
	if f.Changed("burst") {
		if p.Rate == nil {
			return p, fmt.Errorf("--burst needs a rate (--rate)")
		}
		p.Rate.Burst = pf.burst
	} else if f.Changed("rate") && p.Rate != nil {
		p.Rate.Burst = 0 // the server's default for the new rate
	}
	if f.Changed("quota-hour") || f.Changed("quota-day") {
		q := admin.QuotaPolicy{}
		if p.Quota != nil {
			q = *p.Quota
		}
		if f.Changed("quota-hour") {
			q.PerHour = pf.quotaHour
		}
		if f.Changed("quota-day") {
			q.PerDay = pf.quotaDay
		}
		p.Quota = &q
		if q.PerHour == 0 && q.PerDay == 0 {
			p.Quota = nil
		}
	}
	if f.Changed("mode") {
		p.Mode = pf.mode
	}
	if p.Rate == nil && p.Quota == nil {
		p.Mode = ""
	}
	if f.Changed("allow-ip") {
		p.AllowedIPs = nonEmpty(pf.allowIPs)
		if len(p.AllowedIPs) == 0 {
			p.AllowedIPs = nil
		}
	}
	return p, nil
}

// nonEmpty returns the non-empty values of flags, never nil.
func nonEmpty(flags []string) []string {
	out := []string{}
	for _, v := range flags {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseGrants reads --grant AUDIENCE[=scope1,scope2] flags. Without "="
// the grant asks for every scope of the API.
func parseGrants(flags []string) []admin.GrantRequest {
	out := make([]admin.GrantRequest, 0, len(flags))
	for _, g := range flags {
		aud, scopeList, hasScopes := strings.Cut(g, "=")
		gr := admin.GrantRequest{Audience: aud}
		if hasScopes {
			scopes := splitScopes(strings.Split(scopeList, ","))
			gr.Scopes = &scopes
		}
		out = append(out, gr)
	}
	return out
}

// splitScopes reads scope flags, each one scope or several separated by
// spaces as in an OAuth scope parameter (RFC 6749 §3.3).
func splitScopes(flags []string) []string {
	out := []string{}
	for _, f := range flags {
		out = append(out, strings.Fields(f)...)
	}
	return out
}

func newAppListCmd(opts *clientOptions) *cobra.Command {
	var prefix, disabled string
	var pages pageFlags
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List applications",
		Example: "  m2mauth app list --disabled false --all",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := pages.query()
			if prefix != "" {
				q.Set("name_prefix", prefix)
			}
			if disabled != "" {
				b, err := strconv.ParseBool(disabled)
				if err != nil {
					return fmt.Errorf("--disabled %q must be true or false", disabled)
				}
				q.Set("disabled", strconv.FormatBool(b))
			}
			return showPages(cmd, opts, pathApplications, q, pages.all, printApps)
		},
	}
	f := cmd.Flags()
	f.StringVar(&prefix, "name-prefix", "", "only applications whose name starts with this")
	f.StringVar(&disabled, "disabled", "", "only disabled (true) or enabled (false) applications")
	pages.register(cmd, "applications")
	return cmd
}

func newAppGetCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "get CLIENT_ID",
		Short:   "Show an application and its grants",
		Example: "  m2mauth app get 3kq4...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := send[admin.ApplicationResource](cmd.Context(), opts, http.MethodGet, appPath(args[0]), nil)
			if err != nil {
				return err
			}
			return show(cmd, opts, withGrants(a), printApp)
		},
	}
}

// withGrants marks a read of one application as carrying its grants:
// the server omits an empty grants list (omitempty), which would otherwise
// read as a list view, where grants are not shown.
func withGrants(a admin.ApplicationResource) admin.ApplicationResource {
	if a.Grants == nil {
		a.Grants = []admin.GrantResource{}
	}
	return a
}

func newAppUpdateCmd(opts *clientOptions) *cobra.Command {
	var name, desc string
	var disable, enable, canIntrospect bool
	var introspect []string
	var pf policyFlags
	var reuse tokenReuseFlag
	cmd := &cobra.Command{
		Use:   "update CLIENT_ID [--name NAME] [--description TEXT] [--disable | --enable] [--introspect-audience AUDIENCE]...",
		Short: "Change, disable or enable an application",
		Long: `Change, disable or enable an application. Only the flags given change.

A disabled application gets no more tokens; tokens it already holds stay
valid until they expire.

` + policyHelp,
		Example: "  m2mauth app update 3kq4... --disable\n" +
			"  m2mauth app update 3kq4... --rate 5/s --burst 5 --quota-hour 100 --quota-day 2000 --mode observe --allow-ip 10.0.0.0/8",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req admin.UpdateApplicationRequest
			f := cmd.Flags()
			if f.Changed("name") {
				req.Name = &name
			}
			if f.Changed("description") {
				req.Description = &desc
			}
			if disable || enable {
				req.Disabled = &disable
			}
			if f.Changed("can-introspect") {
				req.CanIntrospect = &canIntrospect
			}
			if f.Changed("introspect-audience") {
				aud := nonEmpty(introspect)
				req.IntrospectAudiences = &aud
			}
			if pf.given(cmd) {
				// PATCH replaces the whole policy: start from the stored one
				// so that the parts not named are kept.
				cur := admin.Policy{}
				if !pf.clear {
					a, err := send[admin.ApplicationResource](cmd.Context(), opts, http.MethodGet, appPath(args[0]), nil)
					if err != nil {
						return err
					}
					cur = a.Policy
				}
				p, err := pf.apply(cmd, cur)
				if err != nil {
					return err
				}
				req.Policy = &p
			}
			req.TokenReuse = reuse.patch(cmd)
			if req == (admin.UpdateApplicationRequest{}) {
				return fmt.Errorf("nothing to change: give --name, --description, --disable, --enable, --introspect-audience, --token-reuse-min-remaining or a policy flag")
			}
			a, err := send[admin.ApplicationResource](cmd.Context(), opts, http.MethodPatch, appPath(args[0]), req)
			if err != nil {
				return err
			}
			return show(cmd, opts, withGrants(a), printApp)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new display name")
	f.StringVar(&desc, "description", "", "new description")
	f.BoolVar(&disable, "disable", false, "refuse the application tokens from now on")
	f.BoolVar(&enable, "enable", false, "let a disabled application get tokens again")
	f.StringArrayVar(&introspect, "introspect-audience", nil, "the audiences whose tokens the application may introspect (RFC 7662), replacing the list; repeat for each; --introspect-audience= for none")
	f.BoolVar(&canIntrospect, "can-introspect", false, "deprecated: true lets the application introspect tokens of every audience but the management API's, false only its own")
	pf.register(cmd)
	reuse.register(cmd, "the application's")
	cmd.MarkFlagsMutuallyExclusive("disable", "enable")
	return cmd
}

func newAppDeleteCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "delete CLIENT_ID",
		Short:   "Delete an application with its secrets and grants",
		Example: "  m2mauth app delete 3kq4...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, appPath(args[0]), nil, nil); err != nil {
				return err
			}
			if !opts.wantJSON() {
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted application %s.\n", cell(args[0]))
			}
			return nil
		},
	}
}
