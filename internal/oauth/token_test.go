package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/fake"
)

// TestMalformedClientID: a client_id no application can have (NUL, invalid
// UTF-8, control characters, absurd length) is refused as invalid_client
// without a store lookup (PostgreSQL would fail it as a database error),
// and the audit event of the failure holds only printable UTF-8
// (PostgreSQL would refuse the event, and its whole batch, otherwise).
func TestMalformedClientID(t *testing.T) {
	for name, id := range map[string]string{
		"NUL":           "owner\x00",
		"invalid UTF-8": "caf\xe9",
		"line break":    "owner\r\nforged: entry",
		"too long":      strings.Repeat("a", 300),
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.Clients = sourceFunc(func(_ context.Context, got string) (*authz.Client, error) {
				t.Errorf("the store was asked for client_id %q", got)
				return nil, authz.ErrNotFound
			})
			ev := &fake.Events{}
			f.srv.Events = ev
			for _, viaBasic := range []bool{false, true} {
				body := url.Values{"grant_type": {"client_credentials"}, "audience": {testAudience}}
				if !viaBasic {
					body.Set("client_id", id)
					body.Set("client_secret", f.secrets["owner"])
				}
				r := httptest.NewRequest(http.MethodPost, PathToken, strings.NewReader(body.Encode()))
				r.Header.Set("Content-Type", form)
				if viaBasic {
					r.Header.Set("Authorization", basic(id, f.secrets["owner"]))
				}
				w := httptest.NewRecorder()
				f.srv.HandleToken(w, r)
				if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), ErrInvalidClient) {
					t.Fatalf("basic=%v: %d %s, want 401 invalid_client", viaBasic, w.Code, w.Body)
				}
			}
			failed := ev.AuthFailures()
			if len(failed) != 2 {
				t.Fatalf("%d failures reported, want 2", len(failed))
			}
			for _, failure := range failed {
				got := failure.ClientID
				if !utf8.ValidString(got) || strings.IndexFunc(got, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 || len(got) > maxLoggedClientID+len("…") {
					t.Errorf("audited client_id %q: want printable UTF-8 of at most %d bytes", got, maxLoggedClientID)
				}
			}
		})
	}
}

// TestErrorDescriptionCharset: every error_description stays within the
// characters RFC 6749 §5.2 allows, %x20-21 / %x23-5B / %x5D-7E, even one
// that echoes what the client sent.
func TestErrorDescriptionCharset(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, target string
		body         url.Values
	}{
		{"audience echoed", PathToken, url.Values{"audience": {"https://other/\"é\\\n"}}},
		{"audience choices quoted", PathToken, url.Values{"scope": {"nope"}}},
		{"secret in the URI", PathToken + "?client_secret=x", url.Values{"audience": {testAudience}}},
		{"scope with a forbidden character", PathToken, url.Values{"audience": {testAudience}, "scope": {`a"b`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.body.Set("grant_type", "client_credentials")
			r := httptest.NewRequest(http.MethodPost, tc.target, strings.NewReader(tc.body.Encode()))
			r.Header.Set("Content-Type", form)
			r.Header.Set("Authorization", basic("owner", f.secrets["owner"]))
			w := httptest.NewRecorder()
			f.srv.HandleToken(w, r)
			var out struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Error == "" || out.Description == "" {
				t.Fatalf("%d %s: want an error with a description", w.Code, w.Body)
			}
			for _, c := range []byte(out.Description) {
				if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
					t.Fatalf("error_description %q holds %q", out.Description, c)
				}
			}
		})
	}
}
