package server

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sinkLine is a line of the audit export as a SIEM reads it.
type sinkLine struct {
	SchemaVersion *int            `json:"schema_version"`
	ID            string          `json:"id"`
	Time          string          `json:"time"`
	Action        string          `json:"action"`
	Actor         *string         `json:"actor"`
	Target        *string         `json:"target"`
	Outcome       string          `json:"outcome"`
	SourceAddress *string         `json:"source_address"`
	Details       json.RawMessage `json:"details"`
}

func TestAuditSink(t *testing.T) {
	for _, c := range []struct {
		name string
		// sink returns the --audit-sink value and a reader of what it got.
		sink func(t *testing.T) (envOption, func() string)
	}{
		{"stdout", func(t *testing.T) (envOption, func() string) {
			out := &syncBuffer{}
			return func(c *Config, d *Deps) { c.AuditSink = "stdout"; d.Stdout = out }, out.String
		}},
		{"file", func(t *testing.T) (envOption, func() string) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			return func(c *Config, _ *Deps) { c.AuditSink = "file:" + path }, func() string {
				b, _ := os.ReadFile(path)
				return string(b)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt, read := c.sink(t)
			e := newTestEnv(t, opt)
			admin := e.adminToken()
			const api = "https://usage.example"
			created := e.createAPI(admin, api, "ES256", "read:meters")
			app := e.createApp(admin, "exported", map[string][]string{api: nil})
			tok := e.tokenFor(app.ClientID, app.ClientSecret, api)
			wrong := "m2ms_" + strings.Repeat("0", 20) + "_" + strings.Repeat("A", 43)
			if status, _ := e.tokenRequest(app.ClientID, wrong, api, "", false); status != http.StatusUnauthorized {
				t.Fatalf("wrong secret: status %d", status)
			}

			// Failed authentications are written with the recorder's
			// next flush (every 2 s).
			var lines []sinkLine
			var text string
			deadline := time.Now().Add(10 * time.Second)
			for {
				text = read()
				lines = parseSink(t, text)
				if findSink(lines, "client.authentication_failed") != nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			for i, l := range lines {
				if l.SchemaVersion == nil || *l.SchemaVersion != 1 || l.ID == "" || l.Action == "" || l.Actor == nil || l.Target == nil || l.SourceAddress == nil || len(l.Details) == 0 || (l.Outcome != "success" && l.Outcome != "failure") {
					t.Errorf("line %d lacks a documented field: %+v", i, l)
				}
				if _, err := time.Parse(time.RFC3339Nano, l.Time); err != nil {
					t.Errorf("line %d: time %q: %v", i, l.Time, err)
				}
			}
			boot := findSink(lines, "administrator.bootstrap")
			if boot == nil {
				t.Error("no administrator.bootstrap line")
			}
			apiLine := findSink(lines, "api.create")
			if apiLine == nil || *apiLine.Actor != e.admin.ClientID || *apiLine.Target != created.ID || apiLine.Outcome != "success" || *apiLine.SourceAddress != "127.0.0.1" {
				t.Errorf("api.create line: %+v", apiLine)
			}
			appLine := findSink(lines, "application.create")
			if appLine == nil || *appLine.Target != app.ClientID {
				t.Errorf("application.create line: %+v", appLine)
			}
			failed := findSink(lines, "client.authentication_failed")
			if failed == nil {
				t.Fatalf("no client.authentication_failed line in:\n%s", text)
			}
			if *failed.Target != app.ClientID || failed.Outcome != "failure" || *failed.SourceAddress != "127.0.0.1" || !strings.Contains(string(failed.Details), "unknown secret id") {
				t.Errorf("client.authentication_failed line: %+v %s", failed, failed.Details)
			}

			// Never a secret or a token.
			if regexp.MustCompile(`m2ms_[0-9a-f]{20}_`).MatchString(text) {
				t.Error("the export holds something shaped like a client secret")
			}
			for _, s := range []string{app.ClientSecret, e.admin.ClientSecret, wrong, tok, admin} {
				if strings.Contains(text, s) {
					t.Error("the export holds a client secret or a token")
				}
			}
		})
	}
}

func parseSink(t *testing.T, text string) []sinkLine {
	t.Helper()
	var out []sinkLine
	for line := range strings.SplitSeq(text, "\n") {
		if line == "" {
			continue
		}
		var l sinkLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, l)
	}
	return out
}

func findSink(lines []sinkLine, action string) *sinkLine {
	for i := range lines {
		if lines[i].Action == action {
			return &lines[i]
		}
	}
	return nil
}
