package oauth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/fake"
	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/token"
)

func TestParseTokenParams(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		header      map[string]string
		want        tokenParams
		wantErr     string
	}{
		{name: "form with credentials in the body", contentType: form,
			body: "token=t1&client_id=c1&client_secret=s1",
			want: tokenParams{creds: credentials{clientID: "c1", secret: "s1", method: MethodSecretPost}, token: "t1"}},
		{name: "form with basic", contentType: form, body: "token=t1&token_type_hint=access_token",
			header: map[string]string{"Authorization": basic("c1", "s:1")},
			want:   tokenParams{creds: credentials{clientID: "c1", secret: "s:1", basic: true, method: MethodSecretBasic}, token: "t1", hint: "access_token"}},
		{name: "json body", contentType: "application/json",
			body: `{"token":"t1","token_type_hint":"refresh_token","client_id":"c1","client_secret":"s1","other":1}`,
			want: tokenParams{creds: credentials{clientID: "c1", secret: "s1", method: MethodSecretPost}, token: "t1", hint: "refresh_token"}},
		{name: "an unknown hint is accepted", contentType: form, body: "token=t1&token_type_hint=id_token&client_id=c&client_secret=s",
			want: tokenParams{creds: credentials{clientID: "c", secret: "s", method: MethodSecretPost}, token: "t1", hint: "id_token"}},

		{name: "no token", contentType: form, body: "client_id=c&client_secret=s", wantErr: ErrInvalidRequest},
		{name: "empty token", contentType: form, body: "token=&client_id=c&client_secret=s", wantErr: ErrInvalidRequest},
		{name: "token repeated", contentType: form, body: "token=a&token=b&client_id=c&client_secret=s", wantErr: ErrInvalidRequest},
		{name: "hint repeated", contentType: form, body: "token=a&token_type_hint=x&token_type_hint=y&client_id=c&client_secret=s", wantErr: ErrInvalidRequest},
		{name: "token not a string in JSON", contentType: "application/json", body: `{"token":42,"client_id":"c","client_secret":"s"}`, wantErr: ErrInvalidRequest},
		{name: "token null in JSON", contentType: "application/json", body: `{"token":null,"client_id":"c","client_secret":"s"}`, wantErr: ErrInvalidRequest},
		{name: "hint null in JSON", contentType: "application/json", body: `{"token":"t","token_type_hint":null,"client_id":"c","client_secret":"s"}`, wantErr: ErrInvalidRequest},
		{name: "no client authentication", contentType: form, body: "token=t", wantErr: ErrInvalidClient},
		{name: "basic and different credentials in the body", contentType: form, body: "token=t&client_id=c2",
			header: map[string]string{"Authorization": basic("c1", "s1")}, wantErr: ErrInvalidRequest},
		{name: "no content type", body: "token=t&client_id=c&client_secret=s", wantErr: ErrInvalidRequest},
		{name: "text body", contentType: "text/plain", body: "token=t", wantErr: ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, r := newRequest(tc.contentType, tc.body, tc.header)
			got, e := parseTokenParams(w, r)
			if tc.wantErr != "" {
				if e == nil || e.Code != tc.wantErr {
					t.Fatalf("error = %v, want %s", e, tc.wantErr)
				}
				return
			}
			if e != nil {
				t.Fatal(e)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

const (
	testAudience  = "https://usage/"
	testAudienceB = "https://billing/"
)

// fixture is an oauth.Server with applications, each with one client
// secret: "owner", granted testAudience, testAudienceB and the management
// API; "other", granted nothing; "rs", a resource server that may
// introspect testAudience's tokens; and "all", which names every audience,
// the management API's included, among those it may introspect.
type fixture struct {
	srv     *Server
	clients *fake.Clients
	deny    *fake.DenyList
	secrets map[string]string // client_id → secret
	clock   *fake.Clock
	// keyStore and keys are the signing keys' store and manager.
	keyStore *fake.Keys
	keys     *token.Keys
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		clients: &fake.Clients{ByID: map[string]*authz.Client{}},
		deny:    fake.NewDenyList(),
		secrets: map[string]string{},
		clock:   fake.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)),
	}
	clock := f.clock.Now
	log := slog.New(slog.DiscardHandler)
	sealer, err := masterkey.NewSealer(rand.Reader, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	f.keyStore = fake.NewKeys()
	keys := token.NewKeys(f.keyStore, sealer, clock, rand.Reader, log)
	if err := keys.Ensure(t.Context(), authz.ES256); err != nil {
		t.Fatal(err)
	}
	f.keys = keys
	hasher, err := clientsecret.NewHasher(make([]byte, clientsecret.PepperLen))
	if err != nil {
		t.Fatal(err)
	}
	api := authz.API{Identifier: testAudience, Scopes: []authz.Scope{{Value: "read"}, {Value: "write"}}, TokenLifetime: time.Hour, SigningAlg: authz.ES256}
	billing := authz.API{Identifier: testAudienceB, Scopes: []authz.Scope{{Value: "read"}}, TokenLifetime: time.Hour, SigningAlg: authz.ES256}
	admin := authz.API{Identifier: authz.ManagementAudience, Scopes: authz.ManagementScopes, TokenLifetime: time.Hour, SigningAlg: authz.ES256, System: true}
	for _, app := range []authz.Application{
		{ClientID: "owner"},
		{ClientID: "other"},
		{ClientID: "rs", IntrospectAudiences: []string{testAudience}},
		{ClientID: "all", IntrospectAudiences: []string{testAudience, testAudienceB, authz.ManagementAudience}},
	} {
		id, plain, err := clientsecret.Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		c := &authz.Client{Application: app, Secrets: []authz.Secret{{ID: id, ClientID: app.ClientID, Hash: hasher.Hash(plain)}}}
		if app.ClientID == "owner" {
			c.Grants = []authz.ClientGrant{
				{Grant: authz.Grant{Scopes: []string{"read", "write"}}, API: &api},
				{Grant: authz.Grant{Scopes: []string{"read"}}, API: &billing},
				{Grant: authz.Grant{Scopes: []string{authz.ScopeReadAPIs}}, API: &admin},
			}
		}
		f.clients.ByID[app.ClientID] = c
		f.secrets[app.ClientID] = plain
	}
	f.srv = &Server{
		Clients: f.clients, Hasher: hasher, Issuer: token.NewIssuer("https://issuer", keys, clock, rand.Reader),
		Now: clock, Log: log, DenyList: f.deny,
	}
	return f
}

// issueFor mints a token for owner for audience with scopes.
func (f *fixture) issueFor(t testing.TB, audience string, scopes ...string) (string, token.Claims) {
	t.Helper()
	tok, c, err := f.srv.Issuer.Issue(token.Request{ClientID: "owner", Audience: audience, Scopes: scopes, Lifetime: time.Hour, Alg: authz.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

// issue mints a token for owner for testAudience with scopes.
func (f *fixture) issue(t testing.TB, scopes ...string) (string, token.Claims) {
	t.Helper()
	return f.issueFor(t, testAudience, scopes...)
}

// post sends form to handler as clientID with client_secret_basic.
func (f *fixture) post(handler http.HandlerFunc, clientID string, form url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", basic(clientID, f.secrets[clientID]))
	w := httptest.NewRecorder()
	handler(w, r)
	return w
}

func (f *fixture) introspect(t testing.TB, clientID, tok string) Introspection {
	t.Helper()
	w := f.post(f.srv.HandleIntrospect, clientID, url.Values{"token": {tok}})
	if w.Code != http.StatusOK {
		t.Fatalf("introspection: %d %s", w.Code, w.Body)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	var out Introspection
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIntrospect: what makes a token active or inactive, and for whom.
func TestIntrospect(t *testing.T) {
	tests := []struct {
		name   string
		caller string
		// change alters the fixture after the token is issued; nil for none.
		change func(f *fixture, c token.Claims)
		// tamper alters the token; nil for none.
		tamper     func(tok string) string
		wantActive bool
	}{
		{name: "the owner sees its token", caller: "owner", wantActive: true},
		{name: "a resource server that may introspect the audience sees it", caller: "rs", wantActive: true},
		{name: "another application sees it inactive", caller: "other"},
		{name: "revoked", caller: "rs", change: func(f *fixture, c token.Claims) { f.deny.JTI[c.JTI] = time.Unix(c.Expiry, 0) }},
		{name: "expired", caller: "rs", change: func(f *fixture, _ token.Claims) { f.clock.Add(time.Hour) }},
		{name: "a second before expiry", caller: "rs", change: func(f *fixture, _ token.Claims) { f.clock.Add(time.Hour - time.Second) }, wantActive: true},
		{name: "owner disabled", caller: "rs", change: func(f *fixture, _ token.Claims) { f.clients.ByID["owner"].Application.Disabled = true }},
		{name: "owner deleted", caller: "rs", change: func(f *fixture, _ token.Claims) { delete(f.clients.ByID, "owner") }},
		{name: "grant removed", caller: "rs", change: func(f *fixture, _ token.Claims) { f.clients.ByID["owner"].Grants = nil }},
		{name: "a scope of the token no longer granted", caller: "rs", change: func(f *fixture, _ token.Claims) {
			f.clients.ByID["owner"].Grants[0].Grant.Scopes = []string{"read"}
		}},
		{name: "tokens revoked after issue", caller: "rs", change: func(f *fixture, _ token.Claims) {
			f.clients.ByID["owner"].Application.TokensNotBefore = authz.NotBeforeCutoff(f.clock.Now().Add(time.Millisecond))
		}},
		{name: "tokens revoked before issue", caller: "rs", change: func(f *fixture, _ token.Claims) {
			f.clients.ByID["owner"].Application.TokensNotBefore = f.clock.Now().Add(-time.Second)
		}, wantActive: true},
		{name: "tampered signature", caller: "rs", tamper: func(tok string) string { return tok[:len(tok)-4] + "AAAA" }},
		{name: "not a JWT", caller: "rs", tamper: func(string) string { return "opaque" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tok, claims := f.issue(t, "read", "write")
			if tc.change != nil {
				tc.change(f, claims)
			}
			if tc.tamper != nil {
				tok = tc.tamper(tok)
			}
			got := f.introspect(t, tc.caller, tok)
			if !tc.wantActive {
				if got != (Introspection{}) {
					t.Fatalf("got %+v, want only active:false", got)
				}
				return
			}
			want := Introspection{
				Active: true, Scope: "read write", ClientID: "owner", Subject: "owner", Audience: testAudience,
				Issuer: "https://issuer", Expiry: claims.Expiry, IssuedAt: claims.IssuedAt, JTI: claims.JTI, TokenType: "Bearer",
			}
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

// TestIntrospectInactiveBody: an inactive answer is exactly {"active":false}.
func TestIntrospectInactiveBody(t *testing.T) {
	f := newFixture(t)
	w := f.post(f.srv.HandleIntrospect, "rs", url.Values{"token": {"x.y.z"}})
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"active":false}` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// TestIntrospectErrors: requests that get an error instead of an answer.
func TestIntrospectErrors(t *testing.T) {
	f := newFixture(t)
	tok, _ := f.issue(t, "read")
	tests := []struct {
		name       string
		setup      func(r *http.Request)
		body       string
		wantStatus int
		wantCode   string
	}{
		{"wrong secret", func(r *http.Request) { r.Header.Set("Authorization", basic("rs", f.secrets["other"])) }, "token=" + tok, 401, ErrInvalidClient},
		{"unknown client", func(r *http.Request) { r.Header.Set("Authorization", basic("nobody", f.secrets["rs"])) }, "token=" + tok, 401, ErrInvalidClient},
		{"no client authentication", func(*http.Request) {}, "token=" + tok, 401, ErrInvalidClient},
		{"no token", func(r *http.Request) { r.Header.Set("Authorization", basic("rs", f.secrets["rs"])) }, "", 400, ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", form)
			tc.setup(r)
			w := httptest.NewRecorder()
			f.srv.HandleIntrospect(w, r)
			var body struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tc.wantStatus || body.Error != tc.wantCode {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body, tc.wantStatus, tc.wantCode)
			}
		})
	}

	t.Run("an unreachable store is 503, not a guess", func(t *testing.T) {
		f := newFixture(t)
		tok, _ := f.issue(t, "read")
		// The caller authenticates; the token owner's lookup fails.
		rs := f.clients.ByID["rs"]
		f.srv.Clients = sourceFunc(func(_ context.Context, id string) (*authz.Client, error) {
			if id == "rs" {
				return rs, nil
			}
			return nil, fmt.Errorf("database is down: %w", authz.ErrUnavailable)
		})
		w := f.post(f.srv.HandleIntrospect, "rs", url.Values{"token": {tok}})
		if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "database") {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}

type sourceFunc func(ctx context.Context, id string) (*authz.Client, error)

func (f sourceFunc) Client(ctx context.Context, id string) (*authz.Client, error) { return f(ctx, id) }

// TestIntrospectDoesNotLogTheToken: neither the token nor the secret
// reaches the log, whatever the answer.
func TestIntrospectDoesNotLogTheToken(t *testing.T) {
	f := newFixture(t)
	var logs strings.Builder
	f.srv.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tok, _ := f.issue(t, "read")
	f.introspect(t, "other", tok)
	f.introspect(t, "rs", tok)
	f.introspect(t, "rs", tok+"x")
	f.post(f.srv.HandleRevoke, "owner", url.Values{"token": {tok}})
	f.introspect(t, "rs", tok)
	for _, s := range []string{tok, f.secrets["rs"], f.secrets["owner"]} {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("the log holds a token or secret:\n%s", logs.String())
		}
	}
}

// TestIntrospectVisibility: who sees which token active (RFC 7662 §4). A
// token the caller may not see is inactive without the store being asked,
// so that neither the answer's timing nor a failing store tells the
// caller anything about it.
func TestIntrospectVisibility(t *testing.T) {
	tests := []struct {
		name       string
		caller     string
		audience   string
		scopes     []string
		wantActive bool
	}{
		{"introspect audiences [A]: a token for A", "rs", testAudience, []string{"read"}, true},
		{"introspect audiences [A]: a token for B", "rs", testAudienceB, []string{"read"}, false},
		{"every audience: a token for B", "all", testAudienceB, []string{"read"}, true},
		{"every audience: a management token", "all", authz.ManagementAudience, []string{authz.ScopeReadAPIs}, false},
		{"its holder: its own management token", "owner", authz.ManagementAudience, []string{authz.ScopeReadAPIs}, false},
		{"its holder: its own token for B", "owner", testAudienceB, []string{"read"}, true},
		{"no introspect audiences: another's token", "other", testAudience, []string{"read"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tok, claims := f.issueFor(t, tc.audience, tc.scopes...)
			got := f.introspect(t, tc.caller, tok)
			if got.Active != tc.wantActive {
				t.Fatalf("got %+v, want active %v", got, tc.wantActive)
			}
			if !tc.wantActive {
				if got != (Introspection{}) {
					t.Fatalf("got %+v, want only active:false", got)
				}
				// Not even a failing store changes the answer: the store
				// is not asked about a token the caller may not see.
				caller := f.clients.ByID[tc.caller]
				f.srv.Clients = sourceFunc(func(_ context.Context, id string) (*authz.Client, error) {
					if id == tc.caller {
						return caller, nil
					}
					t.Errorf("the store was asked about %s's token", id)
					return nil, fmt.Errorf("database is down: %w", authz.ErrUnavailable)
				})
				if got := f.introspect(t, tc.caller, tok); got != (Introspection{}) {
					t.Fatalf("with the store down: %+v", got)
				}
				return
			}
			if got.Audience != tc.audience || got.JTI != claims.JTI || got.ClientID != "owner" {
				t.Fatalf("got %+v", got)
			}
		})
	}
}
