// Package oauth implements m2mauth's OAuth 2.0 protocol endpoints: the
// token endpoint with the client credentials grant (RFC 6749 §4.4), client
// authentication (RFC 6749 §2.3), introspection (RFC 7662), revocation
// (RFC 7009) and the discovery documents (RFC 8414).
package oauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Error is an OAuth error response (RFC 6749 §5.2): the error code, a
// human-readable description safe to show the client, and the HTTP status.
// The endpoints' steps return it up their pipeline; writeFailure alone
// writes it. A server-side failure is not an Error but any other error.
type Error struct {
	Code        string
	Description string
	Status      int
	// RetryAfter, if positive, is sent as Retry-After in whole seconds
	// (RFC 9110 §10.2.3), as with a 429.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// Error codes (RFC 6749 §5.2, RFC 8707 §2).
const (
	ErrInvalidRequest       = "invalid_request"
	ErrInvalidClient        = "invalid_client"
	ErrInvalidGrant         = "invalid_grant"
	ErrUnauthorizedClient   = "unauthorized_client"
	ErrUnsupportedGrantType = "unsupported_grant_type"
	ErrInvalidScope         = "invalid_scope"
	ErrInvalidTarget        = "invalid_target"
	ErrServerError          = "server_error"
)

func invalidRequest(desc string) *Error {
	return &Error{Code: ErrInvalidRequest, Description: desc, Status: http.StatusBadRequest}
}

// Realm is the realm named in WWW-Authenticate challenges.
const Realm = "m2mauth"

// RetryAfter is the Retry-After of every 503 the endpoints answer, in
// seconds (RFC 9110 §10.2.3).
const RetryAfter = "5"

// writeFailure is the one writer of a failed token, introspection or
// revocation request, whatever step failed; c are the credentials the
// request presented (zero if it failed before they were read).
//
// An *Error (anywhere in err's chain) is the protocol's answer and is
// written as it is. Any other error is the server's: logged with its cause
// and the client_id, and answered server_error without detail, 503 with
// Retry-After if it wraps authz.ErrUnavailable (the store could not be
// reached; the same request may succeed later, RFC 7009 §2.2.1 for
// revocation), else 500. what completes "the server could not ...".
func (s *Server) writeFailure(w http.ResponseWriter, err error, c credentials, what string) {
	e, ok := errors.AsType[*Error](err)
	if ok && e.Status < 500 {
		writeError(w, e, c.basic)
		return
	}
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, authz.ErrUnavailable):
		status = http.StatusServiceUnavailable
	case ok: // a 5xx *Error keeps its status, not its detail
		status = e.Status
	}
	desc := "the server could not " + what
	if status == http.StatusServiceUnavailable {
		desc += "; try again later"
	}
	attrs := []any{"error", err}
	if c.clientID != "" {
		attrs = append(attrs, "client_id", loggableClientID(c.clientID))
	}
	s.Log.Error("could not "+what, attrs...)
	writeError(w, &Error{Code: ErrServerError, Description: desc, Status: status}, false)
}

// writeError writes e as the JSON error body of RFC 6749 §5.2; a 503
// carries Retry-After. basic says whether the client authenticated with
// HTTP Basic: a 401 then carries a Basic challenge, as RFC 6749 §5.2
// requires. A 401 for credentials sent in the body (client_secret_post)
// or for none carries no challenge: a challenge answers an Authorization
// header, and widely used clients (openid-client v6) take a 401 with one
// for an HTTP authentication error and hide the invalid_client in the
// body. (RFC 9110 §15.5.2 wants a challenge on every 401; RFC 6749 §5.2
// asks it only of Basic, and client libraries follow that.)
func writeError(w http.ResponseWriter, e *Error, basic bool) {
	h := w.Header()
	if basic && e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="`+Realm+`"`)
	}
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", RetryAfter)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	writeJSON(w, e.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, descriptionText(e.Description)})
}

// descriptionText returns s within the characters RFC 6749 §5.2 allows in
// error_description (%x20-21 / %x23-5B / %x5D-7E): a double quote becomes a
// single one, any other character outside the set a question mark. A
// description may echo what the client sent (an audience), and strict
// clients refuse an error response that breaks the rule.
func descriptionText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r < 0x20 || r > 0x7e || r == '\\':
			return '?'
		}
		return r
	}, s)
}

// writeJSON writes v as the JSON body of a response that must never be
// cached (RFC 6749 §5.1).
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	writeBody(w, v)
}

func writeBody(w http.ResponseWriter, v any) {
	_ = json.NewEncoder(w).Encode(v)
}
