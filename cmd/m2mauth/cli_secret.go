package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/admin"
)

func secretsPath(clientID string) string { return appPath(clientID) + "/secrets" }

func newAppSecretCmd(opts *clientOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Add, list and delete an application's client secrets",
		Long: `Add, list and delete an application's client secrets.

An application may hold several secrets at once, each of which works until
it expires or is deleted. To replace a secret without downtime, add a new
one with --expire-others-in, deploy it, and let the old one expire.`,
	}
	cmd.AddCommand(newAppSecretAddCmd(opts), newAppSecretListCmd(opts), newAppSecretDeleteCmd(opts))
	return cmd
}

func newAppSecretAddCmd(opts *clientOptions) *cobra.Command {
	var expiresIn, expireOthersIn string
	cmd := &cobra.Command{
		Use:   "add CLIENT_ID [--expires-in DURATION] [--expire-others-in DURATION]",
		Short: "Add a client secret to an application and show it, once",
		Long: `Add a client secret to an application and show it.

The client secret is shown only this once: m2mauth keeps only a hash of it.

DURATION is a Go duration such as 90m or 720h, or a number of seconds.
--expires-in makes the new secret expire after it; without it the secret
never expires. --expire-others-in makes the application's other secrets
expire after it (0: now); an earlier expiry already set is kept.`,
		Example: "  m2mauth app secret add 3kq4... --expire-others-in 24h",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req admin.CreateSecretRequest
			f := cmd.Flags()
			if f.Changed("expires-in") {
				s, err := parseSeconds("--expires-in", expiresIn)
				if err != nil {
					return err
				}
				req.ExpiresIn = &s
			}
			if f.Changed("expire-others-in") {
				s, err := parseSeconds("--expire-others-in", expireOthersIn)
				if err != nil {
					return err
				}
				req.ExpireOthersIn = &s
			}
			s, err := send[admin.CreatedSecret](cmd.Context(), opts, http.MethodPost, secretsPath(args[0]), req)
			if err != nil {
				return err
			}
			if opts.wantJSON() {
				// stdout stays one JSON document; the warning is for the person.
				fmt.Fprintln(cmd.ErrOrStderr(), secretWarning)
			}
			return show(cmd, opts, s, func(w io.Writer, s admin.CreatedSecret) error {
				return printCreatedSecret(w, args[0], s, req.ExpireOthersIn)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&expiresIn, "expires-in", "", "the new secret expires after this `duration` (default: never)")
	f.StringVar(&expireOthersIn, "expire-others-in", "", "the application's other secrets expire after this `duration` (0: now)")
	return cmd
}

// parseSeconds reads a duration flag as whole seconds: a Go duration
// ("24h", "90m") or a plain number of seconds ("86400").
func parseSeconds(flag, v string) (int64, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%s %q must not be negative", flag, v)
		}
		return n, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s %q must be a duration such as 24h or 90m, or a number of seconds", flag, v)
	}
	if d < 0 {
		return 0, fmt.Errorf("%s %q must not be negative", flag, v)
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("%s %q must be a whole number of seconds", flag, v)
	}
	return int64(d / time.Second), nil
}

// printCreatedSecret writes a new client secret, the one time it is ever
// shown. expireOthersIn is the --expire-others-in the request carried, in
// seconds, or nil.
func printCreatedSecret(w io.Writer, clientID string, s admin.CreatedSecret, expireOthersIn *int64) error {
	fmt.Fprintf(w, "Added a client secret to application %s.\n\n", cell(clientID))
	tw := newTabWriter(w)
	row(tw, "client_secret", s.ClientSecret)
	row(tw, "Secret ID", s.ID)
	row(tw, "Expires", optTime(s.ExpiresAt, "never"))
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case expireOthersIn == nil:
	case *expireOthersIn == 0:
		fmt.Fprintln(w, "\nThe application's other secrets have expired.")
	default:
		fmt.Fprintf(w, "\nThe application's other secrets expire in %s, or earlier if they were set to.\n",
			time.Duration(*expireOthersIn)*time.Second)
	}
	_, err := fmt.Fprintf(w, "\n%s\n", secretWarning)
	return err
}

func newAppSecretListCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "list CLIENT_ID",
		Short:   "List an application's client secrets: ids, prefixes and dates, never the secrets",
		Example: "  m2mauth app secret list 3kq4...",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := send[admin.List[admin.SecretResource]](cmd.Context(), opts, http.MethodGet, secretsPath(args[0]), nil)
			if err != nil {
				return err
			}
			now := time.Now()
			return show(cmd, opts, l, func(w io.Writer, l admin.List[admin.SecretResource]) error {
				return printSecrets(w, l, now)
			})
		},
	}
}

// printSecrets writes the secrets as a table, marking those expired at
// now.
func printSecrets(w io.Writer, l admin.List[admin.SecretResource], now time.Time) error {
	if len(l.Items) == 0 {
		_, err := fmt.Fprintln(w, "No client secrets.")
		return err
	}
	tw := newTabWriter(w)
	row(tw, "SECRET ID", "PREFIX", "CREATED", "EXPIRES", "LAST USED")
	for _, s := range l.Items {
		expires := optTime(s.ExpiresAt, "never")
		if s.ExpiresAt != nil && !s.ExpiresAt.After(now) {
			expires += " (expired)"
		}
		row(tw, s.ID, s.Prefix, formatTime(s.CreatedAt), expires, optTime(s.LastUsedAt, "-"))
	}
	return tw.Flush()
}

func newAppSecretDeleteCmd(opts *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "delete CLIENT_ID SECRET_ID",
		Short: "Delete a client secret",
		Long: `Delete a client secret: it stops working at once. Tokens already issued
with it stay valid until they expire.`,
		Example: "  m2mauth app secret delete 3kq4... c767...",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.mgmt(cmd.Context())
			if err != nil {
				return err
			}
			path := secretsPath(args[0]) + "/" + url.PathEscape(args[1])
			if err := c.do(cmd.Context(), http.MethodDelete, path, nil, nil); err != nil {
				return err
			}
			if !opts.wantJSON() {
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted secret %s of application %s.\n", cell(args[1]), cell(args[0]))
			}
			return nil
		},
	}
}

func newAppUsageCmd(opts *clientOptions) *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "usage CLIENT_ID [--since TIME|DURATION]",
		Short: "Show how many tokens an application was issued, per API and hour",
		Long: `Show how many access tokens an application was issued, per audience and
UTC hour, from the hour that contains --since on.

--since is an RFC 3339 time (2026-01-02T15:04:05Z) or a duration back
from now (24h); the default is the last 24 hours. Counts reach the server's
database a few seconds after the tokens are issued.`,
		Example: "  m2mauth app usage 3kq4... --since 168h",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if since != "" {
				t, err := parseTimeFlag("--since", since, time.Now())
				if err != nil {
					return err
				}
				// Counts are per hour, keyed by the hour's start: the hour
				// --since falls in counts too.
				q.Set("since", t.Truncate(time.Hour).Format(time.RFC3339))
			}
			path := appPath(args[0]) + "/usage"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			l, err := send[admin.UsageResource](cmd.Context(), opts, http.MethodGet, path, nil)
			if err != nil {
				return err
			}
			return show(cmd, opts, l, printUsage)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "from this RFC 3339 `time`, or this duration ago (default: 24h)")
	return cmd
}

func printUsage(w io.Writer, l admin.UsageResource) error {
	printQuotaUsage(w, l)
	if len(l.Items) == 0 {
		_, err := fmt.Fprintln(w, "No tokens issued.")
		return err
	}
	tw := newTabWriter(w)
	row(tw, "HOUR", "AUDIENCE", "COUNT", "LAST ISSUED")
	for _, u := range l.Items {
		row(tw, formatTime(u.Hour), u.Audience, strconv.FormatInt(u.Count, 10), formatTime(u.LastIssuedAt))
	}
	return tw.Flush()
}
