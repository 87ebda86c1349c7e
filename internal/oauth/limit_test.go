package oauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/limits"
)

// TestLimiterRefusesBeforeAnyWork: past the failure limit of a client_id
// from one address, every endpoint that authenticates answers 429
// temporarily_unavailable with Retry-After, without a store read or a hash;
// the right secret from another address still authenticates.
func TestLimiterRefusesBeforeAnyWork(t *testing.T) {
	f := newFixture(t)
	reads := 0
	clients := f.srv.Clients
	f.srv.Clients = sourceFunc(func(ctx context.Context, id string) (*authz.Client, error) {
		reads++
		return clients.Client(ctx, id)
	})
	f.srv.Limiter = limits.New(limits.Config{MaxFailures: 3, Window: time.Minute, Now: f.clock.Now})
	tok, _ := f.issue(t, "read")
	wrong := f.secrets["owner"][:len(f.secrets["owner"])-1] + "!"
	post := func(h http.HandlerFunc, form url.Values, secret, remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", basic("owner", secret))
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h(w, r)
		return w
	}
	tokenForm := url.Values{"grant_type": {"client_credentials"}, "audience": {testAudience}}
	for range 3 {
		if w := post(f.srv.HandleToken, tokenForm, wrong, "192.0.2.66:1"); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %d", w.Code)
		}
	}
	for _, ep := range endpoints(f, tok) {
		t.Run(ep.name, func(t *testing.T) {
			reads0, hashes0 := reads, f.srv.HashesComputed()
			w := post(ep.handler, ep.form, f.secrets["owner"], "192.0.2.66:1")
			if reads != reads0 || f.srv.HashesComputed() != hashes0 {
				t.Errorf("a refused request cost %d store reads and %d hashes, want none", reads-reads0, f.srv.HashesComputed()-hashes0)
			}
			if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" {
				t.Fatalf("%d Retry-After %q, want 429 60", w.Code, w.Header().Get("Retry-After"))
			}
			if code, _ := oauthError(t, w); code != ErrTemporarilyUnavailable {
				t.Errorf("error %q", code)
			}
			if w.Header().Get("WWW-Authenticate") != "" {
				t.Error("a 429 carries a challenge")
			}
			if w := post(ep.handler, ep.form, f.secrets["owner"], "198.51.100.7:1"); w.Code == http.StatusTooManyRequests || w.Code == http.StatusUnauthorized {
				t.Errorf("from another address: %d %s", w.Code, w.Body)
			}
		})
	}
}

// TestUnknownClientIDHashesLikeAWrongSecret: an unknown client_id and an
// unknown secret id cost one HMAC each, as a wrong secret does.
func TestUnknownClientIDHashesLikeAWrongSecret(t *testing.T) {
	f := newFixture(t)
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {testAudience}}
	secret := f.secrets["owner"]
	otherID := f.secrets["other"][:len(clientsecret.Prefix)+20] // another secret's id, not the owner's
	for name, auth := range map[string]string{
		"unknown client_id": basic("nosuch", secret),
		"unknown secret id": basic("owner", otherID+secret[len(otherID):]),
		"wrong secret":      basic("owner", secret[:len(secret)-1]+"!"),
	} {
		before := f.srv.HashesComputed()
		if w := send(f.srv.HandleToken, form, auth); w.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d", name, w.Code)
		}
		if n := f.srv.HashesComputed() - before; n != 1 {
			t.Errorf("%s: %d hashes, want 1", name, n)
		}
	}
}
