package oauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/limits"
)

// countingAuth is a ClientAuthenticator for the tests: the secret method
// it wraps, counting its calls, or refusing every request.
type countingAuth struct {
	inner  ClientAuthenticator
	calls  *int
	refuse bool
}

func (a countingAuth) Method() string { return a.inner.Method() }

func (a countingAuth) authenticate(ctx context.Context, c credentials) (authenticated, error) {
	*a.calls++
	if a.refuse {
		return authenticated{}, authFailure("refused by the test method")
	}
	return a.inner.authenticate(ctx, c)
}

// TestRegisteredMethodsOnly: every endpoint that authenticates clients uses
// the registered authenticators, and only them: a method not registered is
// invalid_client, whatever the credentials.
func TestRegisteredMethodsOnly(t *testing.T) {
	f := newFixture(t)
	tok, _ := f.issue(t, "read")
	calls := 0
	secrets := SecretAuthenticators(f.srv)
	f.srv.ClientAuth = []ClientAuthenticator{countingAuth{inner: secrets[1], calls: &calls}} // client_secret_post only
	if got := f.srv.AuthMethods(); !slices.Equal(got, []string{MethodSecretPost}) {
		t.Fatalf("AuthMethods = %q", got)
	}
	for _, ep := range endpoints(f, tok) {
		t.Run(ep.name, func(t *testing.T) {
			basicReq := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(ep.form.Encode()))
			basicReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			basicReq.Header.Set("Authorization", basic("owner", f.secrets["owner"]))
			w := httptest.NewRecorder()
			ep.handler(w, basicReq)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("client_secret_basic, not registered: %d %s", w.Code, w.Body)
			}
			calls0 := calls
			form := url.Values{"client_id": {"owner"}, "client_secret": {f.secrets["owner"]}}
			for k, v := range ep.form {
				form[k] = v
			}
			postReq := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
			postReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w = httptest.NewRecorder()
			ep.handler(w, postReq)
			if w.Code != http.StatusOK {
				t.Fatalf("client_secret_post: %d %s", w.Code, w.Body)
			}
			if calls != calls0+1 {
				t.Errorf("the registered authenticator ran %d times, want 1", calls-calls0)
			}
		})
	}
}

// TestLimiterAppliesToEveryMethod: failures of any method count towards
// the lockout, and past it the method is not even asked.
func TestLimiterAppliesToEveryMethod(t *testing.T) {
	f := newFixture(t)
	f.srv.Limiter = limits.New(limits.Config{MaxFailures: 3, Window: time.Minute, Now: f.clock.Now})
	calls := 0
	f.srv.ClientAuth = []ClientAuthenticator{countingAuth{inner: SecretAuthenticators(f.srv)[0], calls: &calls, refuse: true}}
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {testAudience}}
	send := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", basic("owner", f.secrets["owner"]))
		r.RemoteAddr = "192.0.2.66:1"
		w := httptest.NewRecorder()
		f.srv.HandleToken(w, r)
		return w
	}
	for range 3 {
		if w := send(); w.Code != http.StatusUnauthorized {
			t.Fatalf("refused by the method: %d", w.Code)
		}
	}
	if w := send(); w.Code != http.StatusTooManyRequests {
		t.Fatalf("past the limit: %d, want 429", w.Code)
	}
	if calls != 3 {
		t.Errorf("the method ran %d times, want 3 (not past the limit)", calls)
	}
}

// TestDiscoveryListsRegisteredMethods: the token, introspection and
// revocation endpoints' auth methods are the registered ones.
func TestDiscoveryListsRegisteredMethods(t *testing.T) {
	d := &Discovery{Issuer: "https://auth", APIs: &countingAPIs{scope: "read:a"}, Introspection: true, Revocation: true, AuthMethods: []string{MethodSecretPost, "private_key_jwt"}}
	m, err := d.metadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{MethodSecretPost, "private_key_jwt"}
	if !slices.Equal(m.TokenEndpointAuthMethodsSupported, want) || !slices.Equal(m.IntrospectionAuthMethods, want) || !slices.Equal(m.RevocationAuthMethods, want) {
		t.Errorf("auth methods: token %q, introspection %q, revocation %q; want %q each", m.TokenEndpointAuthMethodsSupported, m.IntrospectionAuthMethods, m.RevocationAuthMethods, want)
	}
	d = &Discovery{Issuer: "https://auth", APIs: &countingAPIs{scope: "read:a"}}
	if m, _ := d.metadata(t.Context()); !slices.Equal(m.TokenEndpointAuthMethodsSupported, []string{MethodSecretBasic, MethodSecretPost}) {
		t.Errorf("default auth methods %q", m.TokenEndpointAuthMethodsSupported)
	}
}
