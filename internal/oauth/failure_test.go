package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// endpoints are the three protocol endpoints that authenticate their
// client, each with the body parameters of a well-formed request.
func endpoints(f *fixture, tok string) []struct {
	name    string
	handler http.HandlerFunc
	form    url.Values
} {
	return []struct {
		name    string
		handler http.HandlerFunc
		form    url.Values
	}{
		{"token", f.srv.HandleToken, url.Values{"grant_type": {"client_credentials"}, "audience": {testAudience}}},
		{"introspect", f.srv.HandleIntrospect, url.Values{"token": {tok}}},
		{"revoke", f.srv.HandleRevoke, url.Values{"token": {tok}}},
	}
}

// send posts params to handler as a form, with the Authorization header
// auth ("" for none).
func send(handler http.HandlerFunc, params url.Values, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(params.Encode()))
	r.Header.Set("Content-Type", form)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	handler(w, r)
	return w
}

// oauthError decodes an RFC 6749 §5.2 error body.
func oauthError(t *testing.T, w *httptest.ResponseRecorder) (code, desc string) {
	t.Helper()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%d %q: not a JSON error body", w.Code, w.Body)
	}
	return body.Error, body.Description
}

// TestChallenge: a 401 carries WWW-Authenticate: Basic when, and only
// when, the client used (or tried) HTTP Basic (RFC 6749 §5.2); a failed
// client_secret_post is 401 invalid_client without a challenge, on every
// endpoint.
func TestChallenge(t *testing.T) {
	const challenge = `Basic realm="` + Realm + `"`
	tests := []struct {
		name string
		// creds adds credentials to the form and returns the Authorization
		// header to send.
		creds         func(f *fixture, form url.Values) string
		wantChallenge bool
	}{
		{"Basic, wrong secret", func(f *fixture, _ url.Values) string { return basic("owner", f.secrets["other"]) }, true},
		{"Basic, unknown client", func(f *fixture, _ url.Values) string { return basic("nobody", f.secrets["owner"]) }, true},
		{"Basic, empty secret", func(*fixture, url.Values) string { return basic("owner", "") }, true},
		{"Basic, undecodable", func(*fixture, url.Values) string { return "Basic !!!" }, true},
		{"another scheme in Authorization", func(*fixture, url.Values) string { return "Bearer abc" }, true},
		{"Basic, application disabled", func(f *fixture, _ url.Values) string {
			f.clients.ByID["owner"].Application.Disabled = true
			return basic("owner", f.secrets["owner"])
		}, true},
		{"post, wrong secret", func(f *fixture, form url.Values) string {
			form.Set("client_id", "owner")
			form.Set("client_secret", f.secrets["other"])
			return ""
		}, false},
		{"post, unknown client", func(f *fixture, form url.Values) string {
			form.Set("client_id", "nobody")
			form.Set("client_secret", f.secrets["owner"])
			return ""
		}, false},
		{"post, no secret", func(_ *fixture, form url.Values) string {
			form.Set("client_id", "owner")
			return ""
		}, false},
		{"post, application disabled", func(f *fixture, form url.Values) string {
			f.clients.ByID["owner"].Application.Disabled = true
			form.Set("client_id", "owner")
			form.Set("client_secret", f.secrets["owner"])
			return ""
		}, false},
		{"no client authentication", func(*fixture, url.Values) string { return "" }, false},
	}
	for _, tc := range tests {
		for i := range 3 { // each of endpoints

			f := newFixture(t)
			tok, _ := f.issue(t, "read")
			ep := endpoints(f, tok)[i]
			t.Run(ep.name+": "+tc.name, func(t *testing.T) {
				auth := tc.creds(f, ep.form)
				w := send(ep.handler, ep.form, auth)
				if code, _ := oauthError(t, w); w.Code != http.StatusUnauthorized || code != ErrInvalidClient {
					t.Fatalf("%d %s, want 401 invalid_client", w.Code, w.Body)
				}
				got := w.Header().Values("WWW-Authenticate")
				switch {
				case tc.wantChallenge && (len(got) != 1 || got[0] != challenge):
					t.Fatalf("WWW-Authenticate %q, want %q", got, challenge)
				case !tc.wantChallenge && len(got) != 0:
					t.Fatalf("WWW-Authenticate %q, want none", got)
				}
				if w.Header().Get("Cache-Control") != "no-store" {
					t.Fatalf("Cache-Control %q", w.Header().Get("Cache-Control"))
				}
			})
		}
	}
}

// TestServerFailure: a store that cannot be reached (an error wrapping
// authz.ErrUnavailable) is 503 with Retry-After, any other failure 500;
// both are server_error without detail in the body, and logged with their
// cause and the client_id.
func TestServerFailure(t *testing.T) {
	unavailable := fmt.Errorf("dial tcp 10.0.0.7:5432: connection refused: %w", authz.ErrUnavailable)
	broken := errors.New("disk I/O error on /var/lib/m2mauth.db")
	// failLookups fails every client lookup but those of the applications
	// in spare.
	failLookups := func(f *fixture, err error, spare ...string) {
		clients := f.clients.ByID
		f.srv.Clients = sourceFunc(func(_ context.Context, id string) (*authz.Client, error) {
			if c, ok := clients[id]; ok && slices.Contains(spare, id) {
				return c, nil
			}
			return nil, err
		})
	}
	tests := []struct {
		name    string
		handler func(f *fixture) http.HandlerFunc
		caller  string
		// fail makes the store fail with err.
		fail func(f *fixture, err error)
	}{
		{"token: client lookup", func(f *fixture) http.HandlerFunc { return f.srv.HandleToken }, "owner",
			func(f *fixture, err error) { failLookups(f, err) }},
		{"introspect: caller lookup", func(f *fixture) http.HandlerFunc { return f.srv.HandleIntrospect }, "rs",
			func(f *fixture, err error) { failLookups(f, err) }},
		{"introspect: token owner lookup", func(f *fixture) http.HandlerFunc { return f.srv.HandleIntrospect }, "rs",
			func(f *fixture, err error) { failLookups(f, err, "rs") }},
		{"revoke: caller lookup", func(f *fixture) http.HandlerFunc { return f.srv.HandleRevoke }, "owner",
			func(f *fixture, err error) { failLookups(f, err) }},
		{"revoke: deny-list write", func(f *fixture) http.HandlerFunc { return f.srv.HandleRevoke }, "owner",
			func(f *fixture, err error) { f.deny.Err = err }},
	}
	for _, tc := range tests {
		for _, cause := range []struct {
			err        error
			wantStatus int
		}{{unavailable, http.StatusServiceUnavailable}, {broken, http.StatusInternalServerError}} {
			t.Run(fmt.Sprintf("%s: %d", tc.name, cause.wantStatus), func(t *testing.T) {
				f := newFixture(t)
				var logs strings.Builder
				f.srv.Log = slog.New(slog.NewJSONHandler(&logs, nil))
				tok, _ := f.issue(t, "read")
				tc.fail(f, cause.err)
				form := url.Values{"token": {tok}, "grant_type": {"client_credentials"}, "audience": {testAudience}}
				w := send(tc.handler(f), form, basic(tc.caller, f.secrets[tc.caller]))
				code, desc := oauthError(t, w)
				if w.Code != cause.wantStatus || code != ErrServerError || desc == "" {
					t.Fatalf("%d %s, want %d server_error", w.Code, w.Body, cause.wantStatus)
				}
				for _, detail := range []string{"10.0.0.7", "refused", "disk", "m2mauth.db", "unavailable"} {
					if strings.Contains(w.Body.String(), detail) {
						t.Fatalf("the body %s tells %q", w.Body, detail)
					}
				}
				if ra := w.Header().Get("Retry-After"); (cause.wantStatus == http.StatusServiceUnavailable) != (ra == RetryAfter) || (ra != "" && ra != RetryAfter) {
					t.Fatalf("status %d with Retry-After %q", w.Code, ra)
				}
				if w.Header().Get("WWW-Authenticate") != "" {
					t.Fatal("a server failure with a challenge")
				}
				line, _, _ := strings.Cut(strings.TrimSpace(logs.String()), "\n")
				var fields map[string]any
				if err := json.Unmarshal([]byte(line), &fields); err != nil {
					t.Fatalf("log %q: %v", logs.String(), err)
				}
				if fields["level"] != "ERROR" || !strings.Contains(fmt.Sprint(fields["error"]), cause.err.Error()) || fields["client_id"] != tc.caller {
					t.Fatalf("log entry %s: want level ERROR, the cause under error and client_id %s", line, tc.caller)
				}
			})
		}
	}

	t.Run("token: no signing key is 500", func(t *testing.T) {
		f := newFixture(t)
		f.clients.ByID["owner"].Grants[0].API.SigningAlg = authz.RS256 // the fixture has ES256 keys only
		var logs strings.Builder
		f.srv.Log = slog.New(slog.NewJSONHandler(&logs, nil))
		w := send(f.srv.HandleToken, url.Values{"grant_type": {"client_credentials"}, "audience": {testAudience}}, basic("owner", f.secrets["owner"]))
		if code, _ := oauthError(t, w); w.Code != http.StatusInternalServerError || code != ErrServerError || w.Header().Get("Retry-After") != "" {
			t.Fatalf("%d %s %v", w.Code, w.Body, w.Header())
		}
		if !strings.Contains(logs.String(), `"client_id":"owner"`) || !strings.Contains(logs.String(), "RS256") {
			t.Fatalf("log %s", logs.String())
		}
	})
}

// TestClientErrorsAreNotLogged: a protocol error is the client's, written
// as it is and not logged as a server failure.
func TestClientErrorsAreNotLogged(t *testing.T) {
	f := newFixture(t)
	var logs strings.Builder
	f.srv.Log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, ep := range endpoints(f, "") {
		w := send(ep.handler, url.Values{"grant_type": {"password"}}, basic("owner", f.secrets["owner"]))
		if w.Code != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", ep.name, w.Code, w.Body)
		}
	}
	if logs.Len() != 0 {
		t.Fatalf("logged: %s", logs.String())
	}
}

// TestDiscoveryUnavailable: the metadata endpoint's 503 carries
// Retry-After too.
func TestDiscoveryUnavailable(t *testing.T) {
	d := &Discovery{Issuer: "https://auth", APIs: &countingAPIs{down: true}, Now: func() time.Time { return time.Unix(0, 0) }}
	w := httptest.NewRecorder()
	d.HandleMetadata(w, httptest.NewRequest(http.MethodGet, PathASMetadata, nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != RetryAfter {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
}

// TestJSONNull: null for a string parameter of a JSON body is an
// invalid_request (encoding/json would read it as ""), alone or in a list;
// null for an unknown member is ignored.
func TestJSONNull(t *testing.T) {
	f := newFixture(t)
	secret := f.secrets["owner"]
	valid := map[string]any{"grant_type": "client_credentials", "client_id": "owner", "client_secret": secret, "audience": testAudience}
	post := func(handler http.HandlerFunc, body map[string]any) *httptest.ResponseRecorder {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(b)))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		handler(w, r)
		return w
	}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		out[k] = v
		return out
	}
	if w := post(f.srv.HandleToken, valid); w.Code != http.StatusOK {
		t.Fatalf("the valid JSON request: %d %s", w.Code, w.Body)
	}
	if w := post(f.srv.HandleToken, with(valid, "extra", nil)); w.Code != http.StatusOK {
		t.Fatalf("null for an unknown member: %d %s", w.Code, w.Body)
	}
	for _, name := range []string{"grant_type", "client_id", "client_secret", "audience", "resource", "scope"} {
		for _, v := range []any{nil, []any{nil}, []any{testAudience, nil}} {
			t.Run(fmt.Sprintf("token: %s %v", name, v), func(t *testing.T) {
				w := post(f.srv.HandleToken, with(valid, name, v))
				if code, _ := oauthError(t, w); w.Code != http.StatusBadRequest || code != ErrInvalidRequest {
					t.Fatalf("%d %s, want 400 invalid_request", w.Code, w.Body)
				}
			})
		}
	}
	tok, _ := f.issue(t, "read")
	validTP := map[string]any{"token": tok, "token_type_hint": "access_token", "client_id": "owner", "client_secret": secret}
	for _, ep := range []struct {
		name    string
		handler http.HandlerFunc
	}{{"introspect", f.srv.HandleIntrospect}, {"revoke", f.srv.HandleRevoke}} {
		for _, name := range []string{"token", "token_type_hint", "client_id", "client_secret"} {
			t.Run(ep.name+": "+name, func(t *testing.T) {
				w := post(ep.handler, with(validTP, name, nil))
				if code, _ := oauthError(t, w); w.Code != http.StatusBadRequest || code != ErrInvalidRequest {
					t.Fatalf("%d %s, want 400 invalid_request", w.Code, w.Body)
				}
			})
		}
	}
	if len(f.deny.JTI) != 0 {
		t.Fatalf("revoked %v", f.deny.JTI)
	}
}
