package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/internal/token"
)

// checkerFunc is a TokenChecker from a function.
type checkerFunc func(string) (token.Result, error)

func (f checkerFunc) Check(_ context.Context, tok string) (token.Result, error) { return f(tok) }

// parseChallenge parses a "Bearer" challenge's auth-params (RFC 9110
// §11.2: token "=" quoted-string, comma-separated), failing t unless the
// whole header parses.
func parseChallenge(t *testing.T, h string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		t.Fatalf("challenge %q: not Bearer", h)
	}
	params := map[string]string{}
	for rest != "" {
		name, after, ok := strings.Cut(rest, "=")
		if !ok || !strings.HasPrefix(after, `"`) {
			t.Fatalf("challenge %q: want name=\"value\" at %q", h, rest)
		}
		var v strings.Builder
		i, closed := 1, false
		for ; i < len(after); i++ {
			c := after[i]
			if c == '\\' && i+1 < len(after) {
				i++
				v.WriteByte(after[i])
				continue
			}
			if c == '"' {
				closed = true
				break
			}
			v.WriteByte(c)
		}
		if !closed {
			t.Fatalf("challenge %q: unterminated quoted-string", h)
		}
		params[name] = v.String()
		rest = after[i+1:]
		if rest != "" {
			if rest, ok = strings.CutPrefix(rest, ", "); !ok {
				t.Fatalf("challenge %q: want \", \" at %q", h, after[i+1:])
			}
		}
	}
	return params
}

// TestBearerChallengeQuoting: a verification error holding quotes and
// backslashes (go-jose quotes what the token held) neither breaks the
// WWW-Authenticate header nor leaves it, and error_description keeps to the
// characters RFC 6750 §3 allows.
func TestBearerChallengeQuoting(t *testing.T) {
	for _, msg := range []string{
		`malformed token: unexpected signature algorithm "x\"; expected ["ES256"]`,
		`ends in a backslash \`,
		"é and a line\r\nbreak",
	} {
		t.Run(msg, func(t *testing.T) {
			h := &Handler{Log: slog.New(slog.DiscardHandler), Checker: checkerFunc(func(string) (token.Result, error) {
				return token.Result{Inactive: errors.New(msg).Error()}, nil
			})}
			r := httptest.NewRequest(http.MethodGet, "/admin/v1/apis", nil)
			r.Header.Set("Authorization", "Bearer abc")
			w := httptest.NewRecorder()
			h.Protect("read:apis", func(http.ResponseWriter, *http.Request, *Actor) error {
				t.Fatal("the endpoint ran")
				return nil
			}).ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d", w.Code)
			}
			p := parseChallenge(t, w.Header().Get("WWW-Authenticate"))
			if p["realm"] != Realm || p["error"] != CodeInvalidToken {
				t.Fatalf("challenge %v", p)
			}
			d := p["error_description"]
			if d == "" || strings.ContainsFunc(d, func(r rune) bool { return r < 0x20 || r > 0x7e || r == '"' || r == '\\' }) {
				t.Fatalf("error_description %q: want only %%x20-21 / %%x23-5B / %%x5D-7E", d)
			}
		})
	}
}

// TestBearerChallengeScope: a 403 names the scope needed in the challenge.
func TestBearerChallengeScope(t *testing.T) {
	p := bearerProblem(http.StatusForbidden, CodeInsufficientScope, "this action needs scope read:apis", "read:apis")
	got := parseChallenge(t, p.header["WWW-Authenticate"])
	if got["error"] != CodeInsufficientScope || got["scope"] != "read:apis" {
		t.Fatalf("challenge %v", got)
	}
}

// TestBearerChallengeWithoutToken: a request without a bearer token, or
// with another scheme, gets a challenge without error information (RFC
// 6750 §3.1); an empty bearer token is invalid_token.
func TestBearerChallengeWithoutToken(t *testing.T) {
	tests := []struct {
		name, auth string
		wantError  string
	}{
		{"no Authorization header", "", ""},
		{"basic", "Basic YTpi", ""},
		{"another scheme without credentials", "Negotiate", ""},
		{"empty bearer token", "Bearer ", CodeInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{Log: slog.New(slog.DiscardHandler), Checker: checkerFunc(func(string) (token.Result, error) {
				t.Fatal("Check called")
				return token.Result{}, nil
			})}
			r := httptest.NewRequest(http.MethodGet, "/admin/v1/apis", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.Protect("read:apis", func(http.ResponseWriter, *http.Request, *Actor) error {
				t.Fatal("the endpoint ran")
				return nil
			}).ServeHTTP(w, r)
			p := parseChallenge(t, w.Header().Get("WWW-Authenticate"))
			if w.Code != http.StatusUnauthorized || p["realm"] != Realm || p["error"] != tc.wantError {
				t.Fatalf("%d, challenge %v; want 401 with error %q", w.Code, p, tc.wantError)
			}
			if tc.wantError == "" && (p["error_description"] != "" || len(p) != 1) {
				t.Fatalf("challenge %v: want the realm alone", p)
			}
		})
	}
}
