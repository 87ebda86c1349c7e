package rs_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/rs"
)

// errorBody is the JSON body of a refusal.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Scope       string `json:"scope"`
}

// echoClaims answers 200 with the client_id from the context.
func echoClaims(w http.ResponseWriter, r *http.Request) {
	c, ok := rs.ClaimsFromContext(r.Context())
	if !ok {
		http.Error(w, "no claims", http.StatusInternalServerError)
		return
	}
	fmt.Fprint(w, c.ClientID)
}

func TestMiddleware(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	v := iss.validator(nil)
	valid := iss.token("es", "ES256", "at+jwt", iss.claims("read:meters"))
	wrongTyp := iss.token("es", "ES256", "JWT", iss.claims("read:meters"))
	realm := `realm="` + audience + `"`

	for _, tc := range []struct {
		name       string
		header     []string // Authorization header values
		wantStatus int
		wantAuth   string // WWW-Authenticate
		wantError  string // "error" in the body
	}{
		{"valid token", []string{"Bearer " + valid}, 200, "", ""},
		{"scheme in lower case", []string{"bearer " + valid}, 200, "", ""},
		{"scheme in capitals, two spaces", []string{"BEARER  " + valid}, 200, "", ""},
		{"no header", nil, 401, "Bearer " + realm, ""},
		{"empty header", []string{""}, 401, "Bearer " + realm, ""},
		{"Basic scheme", []string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, 401, "Bearer " + realm, ""},
		{"Bearer without token", []string{"Bearer"}, 400, "Bearer " + realm + `, error="invalid_request", error_description="malformed Authorization header"`, "invalid_request"},
		{"Bearer with space only", []string{"Bearer "}, 400, "", "invalid_request"},
		{"token with a space", []string{"Bearer abc def"}, 400, "", "invalid_request"},
		{"token with a quote", []string{`Bearer abc"def`}, 400, "", "invalid_request"},
		{"two Authorization headers", []string{"Bearer " + valid, "Bearer " + valid}, 400, "", "invalid_request"},
		{"garbage token", []string{"Bearer abc.def.ghi"}, 401, "Bearer " + realm + `, error="invalid_token", error_description="malformed token"`, "invalid_token"},
		{"wrong typ", []string{"Bearer " + wrongTyp}, 401, "Bearer " + realm + `, error="invalid_token", error_description="not a JWT access token (typ must be at+jwt)"`, "invalid_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/meters", nil)
			for _, h := range tc.header {
				r.Header.Add("Authorization", h)
			}
			w := httptest.NewRecorder()
			v.Middleware(http.HandlerFunc(echoClaims)).ServeHTTP(w, r)

			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.wantStatus, w.Body)
			}
			if tc.wantStatus == 200 {
				if got := w.Body.String(); got != "app_123" {
					t.Errorf("handler saw client_id %q", got)
				}
				return
			}
			auth := w.Header().Get("WWW-Authenticate")
			if tc.wantAuth != "" && auth != tc.wantAuth {
				t.Errorf("WWW-Authenticate = %s\nwant %s", auth, tc.wantAuth)
			}
			if !strings.HasPrefix(auth, "Bearer "+realm) {
				t.Errorf("WWW-Authenticate = %s, want a Bearer challenge with the realm", auth)
			}
			if tc.wantError == "" && strings.Contains(auth, "error=") {
				t.Errorf("WWW-Authenticate = %s: no error code without credentials (RFC 6750 §3.1)", auth)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var body errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if body.Error != tc.wantError || body.Description == "" {
				t.Errorf("body = %+v, want error %q and a description", body, tc.wantError)
			}
			for _, h := range tc.header {
				if len(h) > 20 && strings.Contains(w.Body.String()+auth, strings.TrimPrefix(h, "Bearer ")) {
					t.Errorf("the response echoes the token")
				}
			}
		})
	}
}

func TestRequireScope(t *testing.T) {
	iss := newTestIssuer(t)
	iss.addKey("es", "ES256")
	v := iss.validator(nil)
	realm := `realm="` + audience + `"`

	for _, tc := range []struct {
		name       string
		scope      string // granted
		require    []string
		wantStatus int
		wantAuth   string
	}{
		{"scope granted", "read:meters", []string{"read:meters"}, 200, ""},
		{"all of several granted", "create:meters read:meters other", []string{"read:meters", "create:meters"}, 200, ""},
		{"scope not granted", "read:meters", []string{"create:meters"}, 403,
			"Bearer " + realm + `, error="insufficient_scope", error_description="token lacks scope create:meters", scope="create:meters"`},
		{"one of two missing", "read:meters", []string{"read:meters", "create:meters"}, 403,
			"Bearer " + realm + `, error="insufficient_scope", error_description="token lacks scope read:meters create:meters", scope="read:meters create:meters"`},
		{"no scope claim", "", []string{"read:meters"}, 403, ""},
		{"prefix of a granted scope", "read:meters", []string{"read"}, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/meters", nil)
			r.Header.Set("Authorization", "Bearer "+iss.token("es", "ES256", "at+jwt", iss.claims(tc.scope)))
			w := httptest.NewRecorder()
			v.Middleware(rs.RequireScope(tc.require...)(http.HandlerFunc(echoClaims))).ServeHTTP(w, r)
			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.wantStatus, w.Body)
			}
			if tc.wantStatus != 403 {
				return
			}
			auth := w.Header().Get("WWW-Authenticate")
			if tc.wantAuth != "" && auth != tc.wantAuth {
				t.Errorf("WWW-Authenticate = %s\nwant %s", auth, tc.wantAuth)
			}
			var body errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.Error != "insufficient_scope" || body.Scope != strings.Join(tc.require, " ") {
				t.Errorf("body = %+v", body)
			}
		})
	}

	t.Run("without Middleware", func(t *testing.T) {
		w := httptest.NewRecorder()
		rs.RequireScope("read:meters")(http.HandlerFunc(echoClaims)).ServeHTTP(w, httptest.NewRequest("GET", "/meters", nil))
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("status %d, WWW-Authenticate %q; want 401 and a bare Bearer challenge", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	})
}

func TestRequireScopePanics(t *testing.T) {
	for _, scopes := range [][]string{nil, {""}, {"read meters"}, {`read"meters`}, {"read:meters", "ünïcode"}} {
		t.Run(fmt.Sprintf("%q", scopes), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("RequireScope(%q) did not panic", scopes)
				}
			}()
			rs.RequireScope(scopes...)
		})
	}
}

func TestClaimsFromContextEmpty(t *testing.T) {
	if c, ok := rs.ClaimsFromContext(httptest.NewRequest("GET", "/", nil).Context()); ok || c != nil {
		t.Errorf("ClaimsFromContext on a bare context = %v, %v", c, ok)
	}
}
