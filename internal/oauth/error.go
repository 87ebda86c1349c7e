// Package oauth implements m2mauth's OAuth 2.0 protocol endpoints: the
// token endpoint with the client credentials grant (RFC 6749 §4.4), client
// authentication (RFC 6749 §2.3) and the discovery documents (RFC 8414).
package oauth

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Error is an OAuth error response (RFC 6749 §5.2): the error code, a
// human-readable description safe to show the client, and the HTTP status.
// Handlers return it up their pipeline; writeError alone writes it.
type Error struct {
	Code        string
	Description string
	Status      int
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

// writeError writes e as the JSON error body of RFC 6749 §5.2. A 401
// carries a WWW-Authenticate challenge (RFC 9110 §15.5.2 requires one; RFC
// 6749 §5.2 requires Basic when the client used it).
func writeError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="`+Realm+`"`)
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
