// Package admin serves the management API (/admin/v1): JSON resources for
// APIs, applications, grants, secrets, keys and the audit log, protected
// by bearer tokens this server issued for the management API's audience,
// with errors as RFC 9457 problem details. It is a thin adapter: every
// management rule lives in internal/manage.
package admin

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

// Problem is an RFC 9457 problem details object. Code is an extension
// member with a stable machine-readable reason; MissingScopes, on a 403,
// names the management scopes the actor lacks; Instance, on a 500, is the
// problem id that the server's log line carries too.
type Problem struct {
	Type          string   `json:"type"`
	Title         string   `json:"title"`
	Status        int      `json:"status"`
	Detail        string   `json:"detail,omitempty"`
	Code          string   `json:"code"`
	MissingScopes []string `json:"missing_scopes,omitempty"`
	Instance      string   `json:"instance,omitempty"`
	// header holds response headers the problem needs (WWW-Authenticate,
	// Retry-After).
	header map[string]string
}

func (p *Problem) Error() string { return p.Code + ": " + p.Detail }

// Problem codes.
const (
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
	CodeValidation        = "validation_failed"
	CodeNotFound          = "not_found"
	CodeConflict          = "conflict"
	CodeLastAdministrator = "last_administrator"
	CodeLimitReached      = "limit_reached"
	CodeTooLarge          = "request_too_large"
	CodeUnavailable       = "unavailable"
	CodeServerError       = "server_error"
)

// Problem types that are not about:blank. Each ends in the name of its
// rule, so that scripts can match the suffix.
const (
	TypeLastAdministrator = "urn:m2mauth:problem:last-administrator"
	TypeInsufficientScope = "urn:m2mauth:problem:insufficient-scope"
)

func problem(status int, code, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: code, Detail: detail}
}

func invalid(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, CodeValidation, fmt.Sprintf(format, args...))
}

// writeError writes err as application/problem+json: the one place the
// management API writes errors. A *manage.Error maps by its kind; a store
// failure (anything else) is logged with its cause and answered 503 with
// Retry-After if the store cannot be reached, else 500 with a problem id
// that the log line carries too; neither answer holds internal detail.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, h.problemFor(r, err))
}

func (h *Handler) problemFor(r *http.Request, err error) *Problem {
	var given *Problem
	if errors.As(err, &given) {
		return given
	}
	var me *manage.Error
	if !errors.As(err, &me) {
		me = &manage.Error{Kind: manage.Internal, Detail: "the server failed; nothing was changed", Err: err}
		if errors.Is(err, authz.ErrUnavailable) {
			me = &manage.Error{Kind: manage.Unavailable, Detail: "the database is unavailable; nothing was changed", Err: err}
		}
	}
	switch me.Kind {
	case manage.Invalid:
		return problem(http.StatusBadRequest, CodeValidation, me.Detail)
	case manage.NotFound:
		return problem(http.StatusNotFound, CodeNotFound, me.Detail)
	case manage.Conflict:
		return problem(http.StatusConflict, CodeConflict, me.Detail)
	case manage.TooMany:
		return problem(http.StatusConflict, CodeLimitReached, me.Detail)
	case manage.LastAdministrator:
		p := problem(http.StatusConflict, CodeLastAdministrator, me.Detail)
		p.Type = TypeLastAdministrator
		return p
	case manage.Forbidden:
		p := bearerProblem(http.StatusForbidden, CodeInsufficientScope, me.Detail, strings.Join(me.MissingScopes, " "))
		p.Type = TypeInsufficientScope
		p.MissingScopes = me.MissingScopes
		return p
	case manage.Unavailable:
		h.Log.Error("management request failed: the database is unavailable", "method", r.Method, "path", r.URL.Path, "error", me.Err)
		p := problem(http.StatusServiceUnavailable, CodeUnavailable, me.Detail)
		p.header = map[string]string{"Retry-After": "5"}
		return p
	}
	id := problemID()
	h.Log.Error("management request failed", "method", r.Method, "path", r.URL.Path, "problem_id", id, "error", me.Err)
	p := problem(http.StatusInternalServerError, CodeServerError, "the server failed; nothing was changed; quote problem id "+id+" to the operator")
	p.Instance = "urn:m2mauth:problem-id:" + id
	return p
}

// problemID returns a random id for a 500 answer and its log line.
func problemID() string {
	var b [8]byte
	_, _ = io.ReadFull(rand.Reader, b[:])
	return hex.EncodeToString(b[:])
}

// writeProblem writes p as application/problem+json.
func writeProblem(w http.ResponseWriter, p *Problem) {
	for k, v := range p.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// MaxBodyBytes bounds a management API request body: 1 MiB.
const MaxBodyBytes = 1 << 20

// decode reads a JSON object into v, refusing unknown fields (a typo in a
// field name must not silently do nothing) and bodies over MaxBodyBytes.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body exceeds 1 MiB")
		}
		if errors.Is(err, io.EOF) {
			return invalid("the request body must be a JSON object")
		}
		return invalid("invalid JSON body: %v", err)
	}
	if dec.More() {
		return invalid("the request body holds more than one JSON value")
	}
	return nil
}
