package audit

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// SinkSchemaVersion is the version of the JSON lines a Sink writes
// (README "Audit export"). A field is only ever added within a version;
// renaming or removing one makes a new version.
const SinkSchemaVersion = 1

// Sink writes audit events, as they are stored, as JSON lines to stdout or
// a file, for a SIEM's collector (Vector, Fluent Bit) to ship. Events hold
// no secret and no token, so neither do the lines. A nil *Sink writes
// nothing. It is safe for concurrent use.
type Sink struct {
	mu  sync.Mutex
	w   io.Writer
	c   io.Closer // nil for stdout
	log *slog.Logger
}

// SinkRecord is one line of the export: schema version 1.
type SinkRecord struct {
	SchemaVersion int    `json:"schema_version"`
	ID            string `json:"id"`
	Time          string `json:"time"`   // RFC 3339 in UTC
	Action        string `json:"action"` // such as application.create, client.authentication_failed
	// Actor is the acting application's client_id ("" for the server
	// itself); for a failed authentication, the client_id presented, as
	// is Target.
	Actor   string `json:"actor"`
	Target  string `json:"target"`  // the object acted on: client_id, API id, kid, jti
	Outcome string `json:"outcome"` // success or failure
	// SourceAddress is the caller's address through the trusted-proxy
	// rule; "" for the server itself.
	SourceAddress string `json:"source_address"`
	// Details is the action's JSON object of non-secret detail; {} for
	// none.
	Details json.RawMessage `json:"details"`
}

// failureActions are the actions whose outcome is "failure": something
// refused, not something done.
var failureActions = map[string]bool{
	"client.authentication_failed": true,
	"client.lockout_started":       true,
	"token.revoke_limited":         true,
	"audit.events_dropped":         true,
}

// CheckSink reports what is wrong with a sink specification: "" (none),
// "stdout" or "file:PATH".
func CheckSink(spec string) error {
	switch {
	case spec == "", spec == "stdout":
		return nil
	case strings.HasPrefix(spec, "file:"):
		if strings.TrimPrefix(spec, "file:") == "" {
			return errors.New("needs a path after file:")
		}
		return nil
	}
	return errors.New("must be stdout or file:PATH")
}

// OpenSink opens the sink spec names (CheckSink): nil for "", stdout for
// "stdout", or PATH appended to (created mode 0600) for "file:PATH".
// Write failures are logged to log, never returned: the audit log in the
// database is the record, the export a copy.
func OpenSink(spec string, stdout io.Writer, log *slog.Logger) (*Sink, error) {
	if err := CheckSink(spec); err != nil {
		return nil, err
	}
	switch {
	case spec == "":
		return nil, nil
	case spec == "stdout":
		return &Sink{w: stdout, log: log}, nil
	}
	f, err := os.OpenFile(strings.TrimPrefix(spec, "file:"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &Sink{w: f, c: f, log: log}, nil
}

// Write writes each event as one JSON line.
func (s *Sink) Write(events []authz.AuditEvent) {
	if s == nil || len(events) == 0 {
		return
	}
	var buf []byte
	for _, e := range events {
		line, err := json.Marshal(Record(e))
		if err != nil {
			s.log.Error("audit export: event not written", "action", e.Action, "id", e.ID, "error", err)
			continue
		}
		buf = append(append(buf, line...), '\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(buf); err != nil {
		s.log.Error("audit export: events not written", "count", len(events), "error", err)
	}
}

// Record is the export's line for e.
func Record(e authz.AuditEvent) SinkRecord {
	outcome := "success"
	if failureActions[e.Action] {
		outcome = "failure"
	}
	details := json.RawMessage(e.Details)
	if e.Details == "" || !json.Valid(details) {
		details = json.RawMessage("{}")
	}
	return SinkRecord{
		SchemaVersion: SinkSchemaVersion, ID: e.ID, Time: e.Time.UTC().Format(time.RFC3339Nano),
		Action: e.Action, Actor: e.Actor, Target: e.Target, Outcome: outcome, SourceAddress: e.RemoteAddr, Details: details,
	}
}

// Close closes the sink's file.
func (s *Sink) Close() error {
	if s == nil || s.c == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.Close()
}
