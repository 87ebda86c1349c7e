package oauth

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// TestRevoke: a well-formed request is 200 with an empty body whatever the
// token; only the owner's valid token lands in the deny-list, until its exp.
func TestRevoke(t *testing.T) {
	tests := []struct {
		name        string
		caller      string
		params      func(tok string) url.Values
		wantRevoked bool
	}{
		{"the owner revokes its token", "owner", func(tok string) url.Values { return url.Values{"token": {tok}} }, true},
		{"with an access_token hint", "owner", func(tok string) url.Values {
			return url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
		}, true},
		{"with a refresh_token hint it is still tried", "owner", func(tok string) url.Values {
			return url.Values{"token": {tok}, "token_type_hint": {"refresh_token"}}
		}, true},
		{"another application's token is left alone", "other", func(tok string) url.Values { return url.Values{"token": {tok}} }, false},
		{"even by a resource server that may introspect it", "rs", func(tok string) url.Values { return url.Values{"token": {tok}} }, false},
		{"a tampered token is a no-op", "owner", func(tok string) url.Values { return url.Values{"token": {tok[:len(tok)-4] + "AAAA"}} }, false},
		{"garbage is a no-op", "owner", func(string) url.Values { return url.Values{"token": {"garbage"}} }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tok, claims := f.issue(t, "read")
			w := f.post(f.srv.HandleRevoke, tc.caller, tc.params(tok))
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Fatalf("%d %q, want 200 and an empty body", w.Code, w.Body)
			}
			exp, revoked := f.deny.JTI[claims.JTI]
			if revoked != tc.wantRevoked {
				t.Fatalf("revoked = %v, want %v", revoked, tc.wantRevoked)
			}
			if revoked && !exp.Equal(time.Unix(claims.Expiry, 0)) {
				t.Fatalf("kept until %v, want the token's exp %v", exp, time.Unix(claims.Expiry, 0))
			}
			if len(f.deny.JTI) > 1 || (!revoked && len(f.deny.JTI) > 0) {
				t.Fatalf("deny-list %v", f.deny.JTI)
			}
		})
	}

	t.Run("an expired token is a no-op", func(t *testing.T) {
		f := newFixture(t)
		tok, _ := f.issue(t, "read")
		f.clock.Add(2 * time.Hour)
		if w := f.post(f.srv.HandleRevoke, "owner", url.Values{"token": {tok}}); w.Code != 200 || len(f.deny.JTI) != 0 {
			t.Fatalf("%d, deny-list %v", w.Code, f.deny.JTI)
		}
	})

	t.Run("revoking twice is fine", func(t *testing.T) {
		f := newFixture(t)
		tok, _ := f.issue(t, "read")
		for range 2 {
			if w := f.post(f.srv.HandleRevoke, "owner", url.Values{"token": {tok}}); w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})

	t.Run("a deny-list that cannot be written is 503 (RFC 7009 §2.2.1)", func(t *testing.T) {
		f := newFixture(t)
		tok, _ := f.issue(t, "read")
		f.deny.Err = fmt.Errorf("database is down: %w", authz.ErrUnavailable)
		w := f.post(f.srv.HandleRevoke, "owner", url.Values{"token": {tok}})
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), ErrServerError) || strings.Contains(w.Body.String(), "database") {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})

	t.Run("a wrong secret is 401 invalid_client", func(t *testing.T) {
		f := newFixture(t)
		tok, _ := f.issue(t, "read")
		f.secrets["owner"] = f.secrets["other"]
		w := f.post(f.srv.HandleRevoke, "owner", url.Values{"token": {tok}})
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), ErrInvalidClient) || w.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if len(f.deny.JTI) != 0 {
			t.Fatal("revoked without authentication")
		}
	})

	t.Run("no token is 400 invalid_request", func(t *testing.T) {
		f := newFixture(t)
		w := f.post(f.srv.HandleRevoke, "owner", url.Values{})
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), ErrInvalidRequest) {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}
