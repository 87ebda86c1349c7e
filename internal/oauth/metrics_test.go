package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func TestTokenResult(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"issued", nil, "issued"},
		{"failed authentication", clientAuthFailed(), ErrInvalidClient},
		{"scope not granted", &Error{Code: ErrInvalidScope, Status: http.StatusBadRequest}, ErrInvalidScope},
		{"locked out", tooManyFailures(0), ErrTemporarilyUnavailable},
		{"database down", fmt.Errorf("looking up client: %w", authz.ErrUnavailable), "store_unavailable"},
		{"a 503 error value", &Error{Code: ErrServerError, Status: http.StatusServiceUnavailable}, "store_unavailable"},
		{"anything else", errors.New("boom"), ErrServerError},
	} {
		if got := tokenResult(c.err); got != c.want {
			t.Errorf("%s: tokenResult = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestAuthMethod(t *testing.T) {
	for _, c := range []struct {
		creds credentials
		want  string
	}{
		{credentials{clientID: "c", basic: true}, "client_secret_basic"},
		{credentials{clientID: "c"}, "client_secret_post"},
		{credentials{}, "none"},
	} {
		if got := authMethod(c.creds); got != c.want {
			t.Errorf("authMethod(%+v) = %q, want %q", c.creds, got, c.want)
		}
	}
}
