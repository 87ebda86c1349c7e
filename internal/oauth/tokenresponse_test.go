package oauth

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// TestWriteTokenResponse: the token response written by hand is, byte for
// byte and header for header, what writeJSON writes for a tokenResponse
// (RFC 6749 §5.1: no-store, no-cache), scope omitted when empty and any
// string that needs it escaped.
func TestWriteTokenResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp tokenResponse
	}{
		{"bearer", tokenResponse{AccessToken: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", TokenType: TokenTypeBearer, ExpiresIn: 900, Scope: "read:meters create:meters"}},
		{"DPoP without scope", tokenResponse{AccessToken: "a.b.c", TokenType: TokenTypeDPoP, ExpiresIn: 1}},
		{"strings to escape", tokenResponse{AccessToken: "a\"b", TokenType: "x<y>&", ExpiresIn: 86400, Scope: "é \\ \x01 \u2028"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := httptest.NewRecorder()
			writeJSON(want, http.StatusOK, tc.resp)
			got := httptest.NewRecorder()
			writeTokenResponse(got, tc.resp.AccessToken, tc.resp.TokenType, tc.resp.ExpiresIn, tc.resp.Scope)
			if got.Code != want.Code || got.Body.String() != want.Body.String() {
				t.Errorf("%d %q, want %d %q", got.Code, got.Body, want.Code, want.Body)
			}
			if !reflect.DeepEqual(got.Result().Header, want.Result().Header) {
				t.Errorf("headers %v, want %v", got.Result().Header, want.Result().Header)
			}
		})
	}
}

// TestTokenResponseHeadersNotShared: changing the headers of one response
// after the token response is written leaves the next one's alone.
func TestTokenResponseHeadersNotShared(t *testing.T) {
	first := httptest.NewRecorder()
	writeTokenResponse(first, "a.b.c", TokenTypeBearer, 60, "")
	first.Header().Add("Cache-Control", "private")
	first.Header().Set("Pragma", "x")
	next := httptest.NewRecorder()
	writeTokenResponse(next, "a.b.c", TokenTypeBearer, 60, "")
	if h := next.Result().Header; h.Get("Cache-Control") != "no-store" || len(h["Cache-Control"]) != 1 || h.Get("Pragma") != "no-cache" {
		t.Errorf("headers %v", h)
	}
}
