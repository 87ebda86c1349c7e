package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/admin"
)

const pathAudit = "/admin/v1/audit"

func newAuditCmd(opts *clientOptions) *cobra.Command {
	var since, until, actor, target, action string
	var pages pageFlags
	cmd := &cobra.Command{
		Use:   "audit [--since TIME|DURATION] [--until TIME|DURATION] [--actor ID] [--target ID] [--action ACTION]",
		Short: "Show the audit log, newest first",
		Long: `Show the audit log, newest first: the management API's changes and the
failed client authentications, each with who made it (the actor's
client_id), what it was about (the target's id) and where it came from.

--since and --until are RFC 3339 times (2026-01-02T15:04:05Z) or durations
back from now (24h); --since is inclusive, --until exclusive. --action is
an action such as application.create, secret.create or
client.authentication_failed.`,
		Example: "  m2mauth audit --since 24h --action secret.create",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := pages.query()
			now := time.Now()
			for _, tf := range []struct{ flag, param, value string }{
				{"--since", "since", since},
				{"--until", "until", until},
			} {
				if tf.value == "" {
					continue
				}
				t, err := parseTimeFlag(tf.flag, tf.value, now)
				if err != nil {
					return err
				}
				q.Set(tf.param, t.Format(time.RFC3339Nano))
			}
			for param, v := range map[string]string{"actor": actor, "target": target, "action": action} {
				if v != "" {
					q.Set(param, v)
				}
			}
			return showPages(cmd, opts, pathAudit, q, pages.all, printAudit)
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "only events at or after this RFC 3339 `time`, or this duration ago")
	f.StringVar(&until, "until", "", "only events before this RFC 3339 `time`, or this duration ago")
	f.StringVar(&actor, "actor", "", "only events by the application with this `client_id`")
	f.StringVar(&target, "target", "", "only events about this `id` (client_id, API id, ...)")
	f.StringVar(&action, "action", "", "only events of this `action`, such as secret.create")
	pages.register(cmd, "events")
	return cmd
}

// parseTimeFlag reads a time flag: an RFC 3339 time, or a duration such as
// 24h meaning that long before now.
func parseTimeFlag(flag, v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%s %q must be an RFC 3339 time such as 2026-01-02T15:04:05Z, or a duration back from now such as 24h", flag, v)
	}
	return now.Add(-d).UTC(), nil
}

func printAudit(w io.Writer, l admin.List[admin.AuditEventResource]) error {
	if len(l.Items) == 0 {
		_, err := fmt.Fprintln(w, "No audit events.")
		return err
	}
	tw := newTabWriter(w)
	row(tw, "TIME", "ACTION", "ACTOR", "TARGET", "REMOTE ADDRESS", "DETAILS")
	for _, e := range l.Items {
		row(tw, formatTime(e.Time), e.Action, e.Actor, e.Target, e.RemoteAddr, compactJSON(e.Details))
	}
	return tw.Flush()
}

// compactJSON writes an event's details on one line; none ({} or null) is
// "", which the table shows as "-".
func compactJSON(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		// Not JSON after all: show it quoted rather than lose it.
		return strconv.Quote(string(raw))
	}
	if s := b.String(); s != "{}" && s != "null" {
		return s
	}
	return ""
}
