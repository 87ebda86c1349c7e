package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/server"
)

func TestSecretCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.run(t, "api", "create", "--identifier", usageAPI, "--scope", "read:usage")
	app := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "rotating-worker", "--grant", usageAPI)
	id := app.ClientID
	token := func(t *testing.T, secret string) error {
		t.Helper()
		_, _, err := runCLI(t, "", "token", "--server", ts.URL, "--client-id", id, "--client-secret", secret, "--audience", usageAPI)
		return err
	}
	secrets := func(t *testing.T) []admin.SecretResource {
		t.Helper()
		return runJSON[admin.List[admin.SecretResource]](t, ts, "app", "secret", "list", id).Items
	}
	old := secrets(t)
	if len(old) != 1 {
		t.Fatalf("a new application holds %d secrets, want 1", len(old))
	}
	if err := token(t, app.ClientSecret); err != nil {
		t.Fatalf("token with the first secret: %v", err)
	}

	added := time.Now()
	out := ts.run(t, "app", "secret", "add", id, "--expire-others-in", "24h")
	mustContain(t, out, "Added a client secret to application "+id, "Expires        never",
		"other secrets expire in 24h0m0s", "shown only this once")
	var newSecret, newID string
	for _, line := range strings.Split(out, "\n") {
		switch f := strings.Fields(line); {
		case len(f) == 2 && f[0] == "client_secret":
			newSecret = f[1]
		case len(f) == 3 && f[0] == "Secret" && f[1] == "ID":
			newID = f[2]
		}
	}
	if !strings.HasPrefix(newSecret, "m2ms_") || newID == "" {
		t.Fatalf("secret add printed no client_secret or secret id:\n%s", out)
	}
	everySecret := []string{app.ClientSecret, newSecret}

	t.Run("list shows both, the old one expiring", func(t *testing.T) {
		l := secrets(t)
		if len(l) != 2 {
			t.Fatalf("%d secrets after rotation, want 2: %+v", len(l), l)
		}
		for _, s := range l {
			switch s.ID {
			case old[0].ID:
				want := added.Add(24 * time.Hour)
				if s.ExpiresAt == nil || s.ExpiresAt.Before(want.Add(-time.Minute)) || s.ExpiresAt.After(want.Add(time.Minute)) {
					t.Errorf("old secret expires at %v, want about %v", s.ExpiresAt, want)
				}
			case newID:
				if s.ExpiresAt != nil {
					t.Errorf("new secret expires at %v, want never", s.ExpiresAt)
				}
				if !strings.HasPrefix(newSecret, s.Prefix) {
					t.Errorf("prefix %q is not the start of the new secret", s.Prefix)
				}
			default:
				t.Errorf("unknown secret %+v", s)
			}
		}
		table := ts.run(t, "app", "secret", "list", id)
		mustContain(t, table, "SECRET ID", "LAST USED", old[0].ID, newID, "never")
		if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 3 {
			t.Errorf("table has %d lines, want a header and 2 secrets:\n%s", len(lines), table)
		}
	})

	t.Run("both secrets get tokens during the overlap", func(t *testing.T) {
		if err := token(t, newSecret); err != nil {
			t.Errorf("token with the new secret: %v", err)
		}
		if err := token(t, app.ClientSecret); err != nil {
			t.Errorf("token with the old secret: %v", err)
		}
	})

	t.Run("expiring secret as JSON keeps the warning off stdout", func(t *testing.T) {
		out, errOut, err := ts.try(t, "app", "secret", "add", id, "--expires-in", "3600", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var s admin.CreatedSecret
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
		}
		if !strings.HasPrefix(s.ClientSecret, "m2ms_") || s.ExpiresAt == nil || s.ExpiresAt.Sub(s.CreatedAt) != time.Hour {
			t.Errorf("created = %+v", s)
		}
		mustContain(t, errOut, "shown only this once")
		everySecret = append(everySecret, s.ClientSecret)
		ts.run(t, "app", "secret", "delete", id, s.ID)
	})

	t.Run("delete the old secret", func(t *testing.T) {
		mustContain(t, ts.run(t, "app", "secret", "delete", id, old[0].ID), "Deleted secret "+old[0].ID+" of application "+id)
		l := secrets(t)
		if len(l) != 1 || l[0].ID != newID {
			t.Errorf("secrets after delete: %+v", l)
		}
		if err := token(t, app.ClientSecret); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("token with the deleted secret: err = %v", err)
		}
		if err := token(t, newSecret); err != nil {
			t.Errorf("token with the new secret after the delete: %v", err)
		}
		ts.fail(t, "404 Not Found: secret not found", "app", "secret", "delete", id, old[0].ID)
	})

	t.Run("no other output shows a secret", func(t *testing.T) {
		var outs []string
		for _, args := range [][]string{
			{"app", "secret", "list", id},
			{"app", "secret", "list", id, "-o", "json"},
			{"app", "get", id, "-o", "json"},
			{"app", "usage", id, "-o", "json"},
			{"audit", "--all"},
			{"audit", "--all", "-o", "json"},
		} {
			out, errOut, err := ts.try(t, args...)
			if err != nil {
				t.Fatalf("m2mauth %s: %v", strings.Join(args, " "), err)
			}
			outs = append(outs, out, errOut)
		}
		for _, out := range outs {
			for _, s := range everySecret {
				if strings.Contains(out, s) {
					t.Errorf("output shows a client secret:\n%s", out)
				}
			}
		}
	})
}

func TestUsage(t *testing.T) {
	t.Parallel()
	// The shortest --usage-interval: the counters are written within 4 s.
	ts := startServerWith(t, func(c *server.Config) { c.UsageInterval = server.MinUsageInterval })
	ts.run(t, "api", "create", "--identifier", usageAPI, "--scope", "read:usage")
	app := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "counted", "--grant", usageAPI)
	mustContain(t, ts.run(t, "app", "usage", app.ClientID), "No tokens issued.")

	const issued = 3
	for range issued {
		if _, _, err := runCLI(t, "", "token", "--server", ts.URL, "--client-id", app.ClientID, "--client-secret", app.ClientSecret); err != nil {
			t.Fatal(err)
		}
	}
	// The server writes them at the first flush (every 2 s) at least 2 s
	// after the first token: ask until they are there.
	var l admin.List[admin.IssuanceResource]
	for deadline := time.Now().Add(8 * time.Second); ; {
		l = runJSON[admin.List[admin.IssuanceResource]](t, ts, "app", "usage", app.ClientID)
		if len(l.Items) > 0 && l.Items[0].Count == issued || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(l.Items) != 1 || l.Items[0].Audience != usageAPI || l.Items[0].Count != issued || l.Items[0].ClientID != app.ClientID {
		t.Fatalf("usage = %+v, want %d tokens for %s", l.Items, issued, usageAPI)
	}
	u := l.Items[0]

	tests := []struct {
		name      string
		since     string
		wantItems int
	}{
		{"the last hour, as a duration", "1h", 1},
		{"from an RFC 3339 time", "2000-01-01T00:00:00Z", 1},
		{"a time within the hour counts the whole hour", u.LastIssuedAt.Format(time.RFC3339Nano), 1},
		{"from an hour later", u.Hour.Add(time.Hour).Format(time.RFC3339), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runJSON[admin.List[admin.IssuanceResource]](t, ts, "app", "usage", app.ClientID, "--since", tt.since)
			if len(got.Items) != tt.wantItems {
				t.Errorf("--since %s: %+v, want %d rows", tt.since, got.Items, tt.wantItems)
			}
		})
	}

	t.Run("table", func(t *testing.T) {
		out := ts.run(t, "app", "usage", app.ClientID, "--since", "24h")
		mustContain(t, out, "HOUR", "LAST ISSUED", formatTime(u.Hour), usageAPI+"  3 ")
	})
	t.Run("errors", func(t *testing.T) {
		ts.fail(t, `--since "yesterday" must be an RFC 3339 time`, "app", "usage", app.ClientID, "--since", "yesterday")
		ts.fail(t, "404 Not Found: application not found", "app", "usage", "nosuchclient")
	})
}

func TestSecretErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	app := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "worker")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"expiry not a duration", []string{"app", "secret", "add", app.ClientID, "--expires-in", "7d"}, `--expires-in "7d" must be a duration such as 24h`},
		{"expiry too long", []string{"app", "secret", "add", app.ClientID, "--expires-in", "876000h"}, "400 Bad Request: expires_in must be from 1 to"},
		{"expiry of zero", []string{"app", "secret", "add", app.ClientID, "--expires-in", "0"}, "400 Bad Request: expires_in must be from 1 to"},
		{"negative expiry of the others", []string{"app", "secret", "add", app.ClientID, "--expire-others-in", "-1h"}, `--expire-others-in "-1h" must not be negative`},
		{"secret for an unknown application", []string{"app", "secret", "add", "nosuchclient"}, "404 Not Found: application not found"},
		{"secrets of an unknown application", []string{"app", "secret", "list", "nosuchclient"}, "404 Not Found: application not found"},
		{"unknown secret", []string{"app", "secret", "delete", app.ClientID, "00000000000000000000"}, "404 Not Found: secret not found"},
		{"delete without a secret id", []string{"app", "secret", "delete", app.ClientID}, "accepts 2 arg(s), received 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.fail(t, tt.want, tt.args...)
		})
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"24h", 86400, ""},
		{"1h30m", 5400, ""},
		{"86400", 86400, ""},
		{"0", 0, ""},
		{"0s", 0, ""},
		{"1500ms", 0, "whole number of seconds"},
		{"-5", 0, "must not be negative"},
		{"-1h", 0, "must not be negative"},
		{"7d", 0, "must be a duration"},
		{"", 0, "must be a duration"},
	}
	for _, tt := range tests {
		got, err := parseSeconds("--expires-in", tt.in)
		if tt.wantErr == "" && (err != nil || got != tt.want) {
			t.Errorf("parseSeconds(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
		if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("parseSeconds(%q) error %v, want one containing %q", tt.in, err, tt.wantErr)
		}
	}
}
