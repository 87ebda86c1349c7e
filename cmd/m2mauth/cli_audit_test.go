package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/server"
)

func TestAudit(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	adminID := ts.adminClientID(t)
	ts.run(t, "api", "create", "--identifier", usageAPI, "--scope", "read:usage")
	app := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "audited", "--grant", usageAPI)
	secret := runJSON[admin.CreatedSecret](t, ts, "app", "secret", "add", app.ClientID, "--expire-others-in", "1h")

	audit := func(t *testing.T, args ...string) admin.List[admin.AuditEventResource] {
		t.Helper()
		return runJSON[admin.List[admin.AuditEventResource]](t, ts, append([]string{"audit"}, args...)...)
	}
	// find returns the events of action about the application.
	find := func(l admin.List[admin.AuditEventResource], action string) []admin.AuditEventResource {
		var out []admin.AuditEventResource
		for _, e := range l.Items {
			if e.Action == action && e.Target == app.ClientID {
				out = append(out, e)
			}
		}
		return out
	}
	every := audit(t, "--all")

	t.Run("management actions with the administrator as actor", func(t *testing.T) {
		for _, action := range []string{"application.create", "secret.create"} {
			events := find(every, action)
			if len(events) != 1 {
				t.Fatalf("%d %s events about %s, want 1: %+v", len(events), action, app.ClientID, every.Items)
			}
			if e := events[0]; e.Actor != adminID || e.RemoteAddr == "" || e.Time.IsZero() {
				t.Errorf("%s event = %+v, want actor %s", action, e, adminID)
			}
		}
		var details struct {
			SecretID       string    `json:"secret_id"`
			OthersExpireAt time.Time `json:"others_expire_at"`
		}
		if err := json.Unmarshal(find(every, "secret.create")[0].Details, &details); err != nil || details.SecretID != secret.ID || details.OthersExpireAt.IsZero() {
			t.Errorf("secret.create details: %+v, %v", details, err)
		}
		for i := 1; i < len(every.Items); i++ {
			if every.Items[i].Time.After(every.Items[i-1].Time) {
				t.Errorf("events not newest first: %v before %v", every.Items[i-1].Time, every.Items[i].Time)
			}
		}
	})

	t.Run("table", func(t *testing.T) {
		out := ts.run(t, "audit")
		mustContain(t, out, "TIME", "ACTION", "REMOTE ADDRESS", "DETAILS", "application.create", "secret.create",
			adminID+"  "+app.ClientID, `{"others_expire_at":"`, `"secret_id":"`+secret.ID+`"}`)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			if _, err := time.Parse(time.RFC3339, strings.Fields(line)[0]); err != nil {
				t.Errorf("row does not start with its time: %q", line)
			}
		}
	})

	tests := []struct {
		name  string
		args  []string
		check func(e admin.AuditEventResource) bool
		want  int // events, or -1 for at least one
	}{
		{"by action", []string{"--action", "secret.create"}, func(e admin.AuditEventResource) bool { return e.Action == "secret.create" }, 1},
		{"by target", []string{"--target", app.ClientID}, func(e admin.AuditEventResource) bool { return e.Target == app.ClientID }, 2},
		{"by actor", []string{"--actor", adminID}, func(e admin.AuditEventResource) bool { return e.Actor == adminID }, -1},
		{"by action and target", []string{"--action", "application.create", "--target", app.ClientID}, func(e admin.AuditEventResource) bool {
			return e.Action == "application.create" && e.Target == app.ClientID
		}, 1},
		{"by an unknown action", []string{"--action", "nothing.happened"}, nil, 0},
		{"since a duration ago", []string{"--since", "1h"}, nil, len(every.Items)},
		{"since an RFC 3339 time", []string{"--since", "2000-01-01T00:00:00Z"}, nil, len(every.Items)},
		{"since a time to come", []string{"--since", "2999-01-01T00:00:00Z"}, nil, 0},
		{"until a time past", []string{"--until", "2000-01-01T00:00:00Z"}, nil, 0},
		{"until a duration ago", []string{"--until", "1h"}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := audit(t, append(tt.args, "--all")...)
			if tt.want >= 0 && len(l.Items) != tt.want || tt.want < 0 && len(l.Items) == 0 {
				t.Errorf("%d events, want %d: %+v", len(l.Items), tt.want, l.Items)
			}
			for _, e := range l.Items {
				if tt.check != nil && !tt.check(e) {
					t.Errorf("filter let through %+v", e)
				}
			}
		})
	}

	t.Run("pages", func(t *testing.T) {
		first := audit(t, "--limit", "1")
		if len(first.Items) != 1 || first.NextCursor == "" || first.Items[0].ID != every.Items[0].ID {
			t.Errorf("--limit 1: %+v", first)
		}
		all := audit(t, "--limit", "1", "--all")
		if len(all.Items) != len(every.Items) || all.NextCursor != "" {
			t.Errorf("--limit 1 --all: %d events, want %d", len(all.Items), len(every.Items))
		}
		_, errOut, err := ts.try(t, "audit", "--limit", "1")
		if err != nil {
			t.Fatal(err)
		}
		mustContain(t, errOut, "use --all")
	})

	t.Run("failed client authentication", func(t *testing.T) {
		if _, _, err := runCLI(t, "", "token", "--server", ts.URL, "--client-id", app.ClientID, "--client-secret", "m2ms_00000000000000000000_x"); err == nil {
			t.Fatal("a wrong secret got a token")
		}
		// Failed authentications are written with the counts, every 2 s.
		var l admin.List[admin.AuditEventResource]
		for deadline := time.Now().Add(5 * time.Second); ; {
			l = audit(t, "--action", "client.authentication_failed", "--target", app.ClientID)
			if len(l.Items) > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(l.Items) != 1 || l.Items[0].Actor != app.ClientID {
			t.Errorf("failed authentications: %+v", l.Items)
		}
	})

	t.Run("errors", func(t *testing.T) {
		ts.fail(t, `--since "last week" must be an RFC 3339 time`, "audit", "--since", "last week")
		ts.fail(t, `--until "-1h" must be an RFC 3339 time`, "audit", "--until", "-1h")
		ts.fail(t, "400 Bad Request: limit must be a whole number", "audit", "--limit", "100000")
	})
}

// TestAuditNeedsReadAudit checks that the audit log is closed to a
// management client without the read:audit scope.
func TestAuditNeedsReadAudit(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	reader := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "reader",
		"--grant", authz.ManagementAudience+"="+authz.ScopeReadApplications)
	creds, err := json.Marshal(server.Credentials{Issuer: ts.URL, ClientID: reader.ClientID, ClientSecret: reader.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "reader.json")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "", "app", "list", "--credentials", path); err != nil {
		t.Fatalf("app list with read:applications: %v", err)
	}
	_, _, err = runCLI(t, "", "audit", "--credentials", path)
	if err == nil || !strings.Contains(err.Error(), "403 Forbidden: this action needs scope read:audit") {
		t.Errorf("audit without read:audit: err = %v", err)
	}
}

func TestParseTimeFlag(t *testing.T) {
	now := time.Date(2026, 3, 4, 15, 30, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"0s", now},
		{"2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{"2026-01-02T16:04:05.5+01:00", time.Date(2026, 1, 2, 15, 4, 5, 5e8, time.UTC)},
	}
	for _, tt := range tests {
		got, err := parseTimeFlag("--since", tt.in, now)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("parseTimeFlag(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "yesterday", "-1h", "2026-01-02", "86400"} {
		if _, err := parseTimeFlag("--since", in, now); err == nil {
			t.Errorf("parseTimeFlag(%q) took it", in)
		}
	}
}
