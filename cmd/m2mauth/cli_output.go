package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/admin"
)

// show writes v to the command's output: as JSON with -o json, else as
// printTable lays it out.
func show[T any](cmd *cobra.Command, o *clientOptions, v T, printTable func(io.Writer, T) error) error {
	if o.wantJSON() {
		return printJSON(cmd.OutOrStdout(), v)
	}
	return printTable(cmd.OutOrStdout(), v)
}

// printJSON writes v indented. The CLI decodes responses into the
// management API's own types, so this is the server's JSON, pretty.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func newTabWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes one line of tab-separated cells, each made safe by cell.
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// cell makes a value safe for a table on a terminal: names and
// descriptions are free text, and a tab, a newline or an escape sequence
// in one must not break the layout or drive the terminal. An empty value
// shows as "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r):
			return '?'
		}
		return r
	}, s)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// optTime formats a time the server may leave null, as none if it did.
func optTime(t *time.Time, none string) string {
	if t == nil || t.IsZero() {
		return none
	}
	return formatTime(*t)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func status(disabled bool) string {
	if disabled {
		return "disabled"
	}
	return "enabled"
}

func printAPI(w io.Writer, a admin.APIResource) error {
	tw := newTabWriter(w)
	row(tw, "ID", a.ID)
	row(tw, "Identifier", a.Identifier)
	row(tw, "Name", a.Name)
	row(tw, "Signing alg", a.SigningAlg)
	row(tw, "Token lifetime", strconv.FormatInt(a.TokenLifetime, 10)+" s")
	row(tw, "DPoP", a.DPoP)
	row(tw, "DPoP nonce", yesNo(a.DPoPNonce))
	row(tw, "mTLS bound", a.MTLSBound)
	row(tw, "Profile", a.Profile)
	row(tw, "System", yesNo(a.System))
	row(tw, "Created", formatTime(a.CreatedAt))
	row(tw, "Updated", formatTime(a.UpdatedAt))
	if len(a.Scopes) == 0 {
		row(tw, "Scopes", "")
	}
	for i, sc := range a.Scopes {
		label := ""
		if i == 0 {
			label = "Scopes"
		}
		// Not row: the label cell of the later lines stays empty, not "-".
		fmt.Fprintln(tw, label+"\t"+cell(sc.Value)+"\t"+cell(sc.Description))
	}
	return tw.Flush()
}

func printAPIs(w io.Writer, l admin.List[admin.APIResource]) error {
	if len(l.Items) == 0 {
		_, err := fmt.Fprintln(w, "No APIs.")
		return err
	}
	tw := newTabWriter(w)
	row(tw, "ID", "IDENTIFIER", "NAME", "ALG", "LIFETIME", "SCOPES")
	for _, a := range l.Items {
		values := make([]string, len(a.Scopes))
		for i, sc := range a.Scopes {
			values[i] = sc.Value
		}
		row(tw, a.ID, a.Identifier, a.Name, a.SigningAlg, strconv.FormatInt(a.TokenLifetime, 10)+" s", strings.Join(values, " "))
	}
	return tw.Flush()
}

// printApp writes an application and, when it was read with them, its
// grants.
func printApp(w io.Writer, a admin.ApplicationResource) error {
	tw := newTabWriter(w)
	row(tw, "Client ID", a.ClientID)
	row(tw, "Name", a.Name)
	row(tw, "Description", a.Description)
	row(tw, "Status", status(a.Disabled))
	row(tw, "Introspect", introspects(a.IntrospectAudiences))
	row(tw, "Policy", policyText(a.Policy))
	row(tw, "Created", formatTime(a.CreatedAt))
	row(tw, "Updated", formatTime(a.UpdatedAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	if a.Grants == nil {
		return nil
	}
	fmt.Fprintln(w)
	return printGrants(w, admin.List[admin.GrantResource]{Items: a.Grants})
}

func printApps(w io.Writer, l admin.List[admin.ApplicationResource]) error {
	if len(l.Items) == 0 {
		_, err := fmt.Fprintln(w, "No applications.")
		return err
	}
	tw := newTabWriter(w)
	row(tw, "CLIENT ID", "NAME", "STATUS", "CREATED")
	for _, a := range l.Items {
		row(tw, a.ClientID, a.Name, status(a.Disabled), formatTime(a.CreatedAt))
	}
	return tw.Flush()
}

// printCreatedApp writes a new application with its client secret, the
// one time the secret is ever shown.
func printCreatedApp(w io.Writer, a admin.CreatedApplication) error {
	fmt.Fprintf(w, "Created application %s.\n\n", strconv.Quote(cell(a.Name)))
	tw := newTabWriter(w)
	row(tw, "client_id", a.ClientID)
	if a.ClientSecret != "" {
		row(tw, "client_secret", a.ClientSecret)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if a.ClientSecret != "" {
		fmt.Fprintf(w, "\n%s\n\n", secretWarning)
	} else {
		fmt.Fprint(w, "\nNo client secret: add a credential with m2mauth app credential add.\n\n")
	}
	return printGrants(w, admin.List[admin.GrantResource]{Items: a.Grants})
}

// secretWarning follows every display of a new client secret.
const secretWarning = "Store the client secret now: it is shown only this once and cannot be retrieved again."

func printGrant(w io.Writer, g admin.GrantResource) error {
	tw := newTabWriter(w)
	row(tw, "Grant ID", g.ID)
	row(tw, "Audience", g.Audience)
	row(tw, "API ID", g.APIID)
	row(tw, "Scopes", strings.Join(g.Scopes, " "))
	row(tw, "Claims", claimsText(g.Claims))
	row(tw, "Lifetime", lifetimeText(g.TokenLifetime))
	row(tw, "Created", formatTime(g.CreatedAt))
	row(tw, "Updated", formatTime(g.UpdatedAt))
	return tw.Flush()
}

func printGrants(w io.Writer, l admin.List[admin.GrantResource]) error {
	if len(l.Items) == 0 {
		_, err := fmt.Fprintln(w, "No grants.")
		return err
	}
	tw := newTabWriter(w)
	row(tw, "GRANT ID", "AUDIENCE", "SCOPES")
	for _, g := range l.Items {
		row(tw, g.ID, g.Audience, strings.Join(g.Scopes, " "))
	}
	return tw.Flush()
}

// policyText is an application's policy on one line: "none (server
// default)" for none.
func policyText(p admin.Policy) string {
	var parts []string
	if p.Rate != nil {
		parts = append(parts, "rate "+strconv.FormatFloat(p.Rate.PerSecond, 'f', -1, 64)+"/s burst "+strconv.Itoa(p.Rate.Burst))
	}
	if p.Quota != nil {
		if p.Quota.PerHour > 0 {
			parts = append(parts, strconv.FormatInt(p.Quota.PerHour, 10)+"/hour")
		}
		if p.Quota.PerDay > 0 {
			parts = append(parts, strconv.FormatInt(p.Quota.PerDay, 10)+"/day")
		}
	}
	if p.Mode != "" {
		parts = append(parts, p.Mode)
	}
	if len(p.AllowedIPs) > 0 {
		parts = append(parts, "from "+strings.Join(p.AllowedIPs, " "))
	}
	if len(parts) == 0 {
		return "none (server default)"
	}
	return strings.Join(parts, ", ")
}

// claimsText is a grant's custom claims as one JSON object, "-" for none.
func claimsText(c map[string]json.RawMessage) string {
	if len(c) == 0 {
		return "-"
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "?"
	}
	return string(b)
}

// lifetimeText is a grant's token lifetime, "the API's" when unset.
func lifetimeText(secs int64) string {
	if secs == 0 {
		return "the API's"
	}
	return (time.Duration(secs) * time.Second).String()
}

// printQuotaUsage writes the quota lines of app usage, nothing when no
// limit applies.
func printQuotaUsage(w io.Writer, u admin.UsageResource) {
	if u.Policy.Rate == nil && u.Policy.Quota == nil {
		return
	}
	src := "its own"
	if u.PolicyIsDefault {
		src = "the server's default"
	}
	fmt.Fprintf(w, "Policy (%s): %s\n", src, policyText(u.Policy))
	if q := u.Policy.Quota; q != nil {
		if q.PerHour > 0 {
			fmt.Fprintf(w, "This hour (from %s): %d of %d\n", formatTime(u.Hour), u.HourUsed, q.PerHour)
		}
		if q.PerDay > 0 {
			fmt.Fprintf(w, "Today (from %s): %d of %d\n", formatTime(u.Day), u.DayUsed, q.PerDay)
		}
	}
	fmt.Fprintln(w)
}
