package audit

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func TestCheckSink(t *testing.T) {
	for _, c := range []struct {
		spec string
		ok   bool
	}{
		{"", true},
		{"stdout", true},
		{"file:/var/log/m2mauth/audit.jsonl", true},
		{"file:", false},
		{"stderr", false},
		{"syslog://x", false},
	} {
		if err := CheckSink(c.spec); (err == nil) != c.ok {
			t.Errorf("CheckSink(%q) = %v, want ok %v", c.spec, err, c.ok)
		}
	}
}

var sinkEvents = []authz.AuditEvent{
	{ID: "evt_1", Time: time.Date(2026, 12, 2, 6, 0, 0, 5, time.UTC), Actor: "app_admin", Action: "application.create", Target: "app_new", RemoteAddr: "192.0.2.1", Details: `{"name":"billing"}`},
	{ID: "evt_2", Time: time.Date(2026, 12, 2, 6, 0, 1, 0, time.FixedZone("CET", 3600)), Actor: "app_x", Action: "client.authentication_failed", Target: "app_x", RemoteAddr: "192.0.2.2", Details: `{"reason":"wrong client secret","count":3}`},
	{ID: "evt_3", Time: time.Date(2026, 12, 2, 6, 0, 2, 0, time.UTC), Action: "key.rotate", Target: "kid1"},
}

// readLines decodes JSON lines, each into a map, to see the fields as a
// consumer does.
func readLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func checkLines(t *testing.T, lines []map[string]any) {
	t.Helper()
	if len(lines) != len(sinkEvents) {
		t.Fatalf("%d lines, want %d", len(lines), len(sinkEvents))
	}
	want := []map[string]any{
		{"schema_version": 1.0, "id": "evt_1", "time": "2026-12-02T06:00:00.000000005Z", "action": "application.create", "actor": "app_admin", "target": "app_new", "outcome": "success", "source_address": "192.0.2.1", "details": map[string]any{"name": "billing"}},
		{"schema_version": 1.0, "id": "evt_2", "time": "2026-12-02T05:00:01Z", "action": "client.authentication_failed", "actor": "app_x", "target": "app_x", "outcome": "failure", "source_address": "192.0.2.2", "details": map[string]any{"reason": "wrong client secret", "count": 3.0}},
		{"schema_version": 1.0, "id": "evt_3", "time": "2026-12-02T06:00:02Z", "action": "key.rotate", "actor": "", "target": "kid1", "outcome": "success", "source_address": "", "details": map[string]any{}},
	}
	for i, w := range want {
		g, _ := json.Marshal(lines[i])
		wb, _ := json.Marshal(w)
		if !bytes.Equal(g, wb) {
			t.Errorf("line %d:\n got %s\nwant %s", i, g, wb)
		}
	}
}

func TestSinkStdout(t *testing.T) {
	var out bytes.Buffer
	s, err := OpenSink("stdout", &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.Write(sinkEvents[:1])
	s.Write(sinkEvents[1:])
	checkLines(t, readLines(t, out.Bytes()))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSinkFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := OpenSink("file:"+path, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(sinkEvents[:2])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened, it appends.
	if s, err = OpenSink("file:"+path, nil, log); err != nil {
		t.Fatal(err)
	}
	s.Write(sinkEvents[2:])
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, readLines(t, b))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestNilSinkWritesNothing(t *testing.T) {
	s, err := OpenSink("", nil, nil)
	if err != nil || s != nil {
		t.Fatalf("OpenSink(\"\") = %v, %v; want nil, nil", s, err)
	}
	s.Write(sinkEvents)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
