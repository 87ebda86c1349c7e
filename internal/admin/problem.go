// Package admin serves the management API (/admin/v1): JSON resources for
// APIs, applications, grants and secrets, protected by bearer tokens this
// server issued for the management API's audience, with errors as RFC 9457
// problem details.
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Problem is an RFC 9457 problem details object. Code is an extension
// member with a stable machine-readable reason.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
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
	CodeTooLarge          = "request_too_large"
	CodeUnavailable       = "unavailable"
)

func problem(status int, code, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: code, Detail: detail}
}

func invalid(format string, args ...any) *Problem {
	return problem(http.StatusBadRequest, CodeValidation, fmt.Sprintf(format, args...))
}

func notFound(what string) *Problem {
	return problem(http.StatusNotFound, CodeNotFound, what+" not found")
}

// storeProblem maps a store error to a problem: ErrNotFound 404,
// ErrConflict 409, ErrInvalid 400, anything else 503 (the database is
// unreachable or failing; the write did not happen).
func storeProblem(err error, what string) *Problem {
	switch {
	case errors.Is(err, authz.ErrNotFound):
		return notFound(what)
	case errors.Is(err, authz.ErrConflict):
		return problem(http.StatusConflict, CodeConflict, what+" conflicts with an existing one")
	case errors.Is(err, authz.ErrInvalid):
		return invalid("%s", strings.TrimPrefix(err.Error(), "invalid: "))
	}
	p := problem(http.StatusServiceUnavailable, CodeUnavailable, "the database is unavailable; nothing was changed")
	p.header = map[string]string{"Retry-After": "5"}
	return p
}

// writeProblem writes p as application/problem+json: the one place the
// management API writes errors.
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
func decode(w http.ResponseWriter, r *http.Request, v any) *Problem {
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
