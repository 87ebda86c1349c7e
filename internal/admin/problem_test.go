package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

// TestStoreFailures: a store that cannot be reached is 503 with
// Retry-After; any other failure is 500 with a problem id that the log
// line carries too; both are logged with their cause and neither answer
// holds it.
func TestStoreFailures(t *testing.T) {
	cause := errors.New("disk I/O error: database or disk is full at /var/lib/secret-path")
	for _, tc := range []struct {
		name       string
		err        error
		wantStatus int
	}{
		{"unreachable", fmt.Errorf("sqlite: create application: %w: %w", authz.ErrUnavailable, cause), 503},
		{"unreachable, through manage", &manage.Error{Kind: manage.Unavailable, Detail: "the database is unavailable; nothing was changed", Err: cause}, 503},
		{"disk full", fmt.Errorf("sqlite: create application: %w", cause), 500},
		{"internal, through manage", &manage.Error{Kind: manage.Internal, Detail: "the server failed; nothing was changed", Err: cause}, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := &Handler{Log: slog.New(slog.NewTextHandler(&logs, nil))}
			w := httptest.NewRecorder()
			h.writeError(w, httptest.NewRequest(http.MethodPost, "/admin/v1/applications", nil), tc.err)
			var p Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if w.Code != tc.wantStatus || p.Status != tc.wantStatus {
				t.Fatalf("status %d, problem %+v", w.Code, p)
			}
			if strings.Contains(w.Body.String(), "disk") || strings.Contains(w.Body.String(), "secret-path") {
				t.Fatalf("the answer holds the cause: %s", w.Body)
			}
			if !strings.Contains(logs.String(), "secret-path") || !strings.Contains(logs.String(), "level=ERROR") {
				t.Fatalf("the cause is not logged: %s", logs.String())
			}
			switch tc.wantStatus {
			case 503:
				if w.Header().Get("Retry-After") == "" || p.Code != CodeUnavailable {
					t.Fatalf("503 without Retry-After or code: %v %+v", w.Header(), p)
				}
			case 500:
				id := strings.TrimPrefix(p.Instance, "urn:m2mauth:problem-id:")
				if id == "" || id == p.Instance || !strings.Contains(p.Detail, id) || !strings.Contains(logs.String(), "problem_id="+id) {
					t.Fatalf("problem id %q not in the detail %q and the log %s", id, p.Detail, logs.String())
				}
			}
		})
	}
}

// TestManageErrorsMapToProblems: each manage.Error kind has its status,
// code and, where the rules give one, type.
func TestManageErrorsMapToProblems(t *testing.T) {
	h := &Handler{Log: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		kind     manage.Kind
		status   int
		code     string
		typeTail string
	}{
		{manage.Invalid, 400, CodeValidation, "about:blank"},
		{manage.NotFound, 404, CodeNotFound, "about:blank"},
		{manage.Conflict, 409, CodeConflict, "about:blank"},
		{manage.TooMany, 409, CodeLimitReached, "about:blank"},
		{manage.LastAdministrator, 409, CodeLastAdministrator, "last-administrator"},
		{manage.Forbidden, 403, CodeInsufficientScope, "insufficient-scope"},
	} {
		w := httptest.NewRecorder()
		h.writeError(w, httptest.NewRequest(http.MethodPost, "/x", nil), &manage.Error{Kind: tc.kind, Detail: "d", MissingScopes: []string{"read:audit"}})
		var p Problem
		_ = json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != tc.status || p.Code != tc.code || !strings.HasSuffix(p.Type, tc.typeTail) {
			t.Errorf("kind %d: %d %+v, want %d %s …%s", tc.kind, w.Code, p, tc.status, tc.code, tc.typeTail)
		}
		if tc.kind == manage.Forbidden {
			if ch := w.Header().Get("WWW-Authenticate"); !strings.Contains(ch, `scope="read:audit"`) || len(p.MissingScopes) != 1 {
				t.Errorf("forbidden: challenge %q, problem %+v", ch, p)
			}
		}
	}
}
