package oauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func newRequest(contentType, body string, header map[string]string) (*httptest.ResponseRecorder, *http.Request) {
	r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return httptest.NewRecorder(), r
}

const form = "application/x-www-form-urlencoded"

func TestParseTokenRequest(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		header      map[string]string
		want        tokenRequest
		wantErr     string
	}{
		{name: "form with credentials in the body", contentType: form,
			body: "grant_type=client_credentials&client_id=c1&client_secret=s1&audience=https://api/",
			want: tokenRequest{creds: credentials{clientID: "c1", secret: "s1", method: MethodSecretPost}, audience: "https://api/"}},
		{name: "form with charset", contentType: form + "; charset=UTF-8",
			body: "grant_type=client_credentials&client_id=c1&client_secret=s1",
			want: tokenRequest{creds: credentials{clientID: "c1", secret: "s1", method: MethodSecretPost}}},
		{name: "json body", contentType: "application/json",
			body: `{"grant_type":"client_credentials","client_id":"c1","client_secret":"s1","audience":"aud","extra":42}`,
			want: tokenRequest{creds: credentials{clientID: "c1", secret: "s1", method: MethodSecretPost}, audience: "aud"}},
		{name: "json with null for an unknown member", contentType: "application/json",
			body: `{"grant_type":"client_credentials","client_id":"c1","client_secret":"s1","extra":null}`,
			want: tokenRequest{creds: credentials{clientID: "c1", secret: "s1", method: MethodSecretPost}}},
		{name: "json with a resource list", contentType: "application/json",
			body: `{"grant_type":"client_credentials","client_id":"c1","client_secret":"s1","resource":["https://api/"]}`,
			want: tokenRequest{creds: credentials{clientID: "c1", secret: "s1", method: MethodSecretPost}, audience: "https://api/"}},
		{name: "json with an unknown member repeated", contentType: "application/json",
			body: `{"grant_type":"client_credentials","client_id":"c1","client_secret":"s1","x":1,"x":{"y":[2]}}`,
			want: tokenRequest{creds: credentials{clientID: "c1", secret: "s1", method: MethodSecretPost}}},
		{name: "basic only", contentType: form, body: "grant_type=client_credentials&scope=a%20b",
			header: map[string]string{"Authorization": basic("c1", "s:1")},
			want:   tokenRequest{creds: credentials{clientID: "c1", secret: "s:1", basic: true, method: MethodSecretBasic}, scopes: []string{"a", "b"}, scopeGiven: true}},
		{name: "basic and the same credentials in the body", contentType: form,
			body:   "grant_type=client_credentials&client_id=c1&client_secret=s1&scope=a b a",
			header: map[string]string{"Authorization": basic("c1", "s1")},
			want:   tokenRequest{creds: credentials{clientID: "c1", secret: "s1", basic: true, method: MethodSecretBasic}, scopes: []string{"a", "b"}, scopeGiven: true}},
		{name: "resource instead of audience", contentType: form,
			body: "grant_type=client_credentials&client_id=c&client_secret=s&resource=https://api/&resource=https://api/",
			want: tokenRequest{creds: credentials{clientID: "c", secret: "s", method: MethodSecretPost}, audience: "https://api/"}},
		{name: "audience and the same resource", contentType: form,
			body: "grant_type=client_credentials&client_id=c&client_secret=s&resource=urn:x&audience=urn:x",
			want: tokenRequest{creds: credentials{clientID: "c", secret: "s", method: MethodSecretPost}, audience: "urn:x"}},
		{name: "audience need not be a URI", contentType: form,
			body: "grant_type=client_credentials&client_id=c&client_secret=s&audience=usage-api",
			want: tokenRequest{creds: credentials{clientID: "c", secret: "s", method: MethodSecretPost}, audience: "usage-api"}},
		{name: "an empty resource counts as omitted", contentType: form,
			body: "grant_type=client_credentials&client_id=c&client_secret=s&resource=&audience=https://api/",
			want: tokenRequest{creds: credentials{clientID: "c", secret: "s", method: MethodSecretPost}, audience: "https://api/"}},
		{name: "an empty resource beside another", contentType: form,
			body: "grant_type=client_credentials&client_id=c&client_secret=s&resource=https://api/&resource=",
			want: tokenRequest{creds: credentials{clientID: "c", secret: "s", method: MethodSecretPost}, audience: "https://api/"}},
		{name: "empty scope means none asked", contentType: form,
			body: "grant_type=client_credentials&client_id=c&client_secret=s&scope=",
			want: tokenRequest{creds: credentials{clientID: "c", secret: "s", method: MethodSecretPost}}},

		{name: "basic and different credentials in the body", contentType: form,
			body:    "grant_type=client_credentials&client_id=c2&client_secret=s1",
			header:  map[string]string{"Authorization": basic("c1", "s1")},
			wantErr: ErrInvalidRequest},
		{name: "basic and a different secret in the body", contentType: form,
			body:    "grant_type=client_credentials&client_id=c1&client_secret=s2",
			header:  map[string]string{"Authorization": basic("c1", "s1")},
			wantErr: ErrInvalidRequest},
		{name: "no grant type", contentType: form, body: "client_id=c&client_secret=s", wantErr: ErrInvalidRequest},
		{name: "other grant type", contentType: form, body: "grant_type=password&client_id=c&client_secret=s", wantErr: ErrUnsupportedGrantType},
		{name: "grant type repeated", contentType: form, body: "grant_type=client_credentials&grant_type=client_credentials&client_id=c&client_secret=s", wantErr: ErrInvalidRequest},
		{name: "no client authentication", contentType: form, body: "grant_type=client_credentials", wantErr: ErrInvalidClient},
		{name: "malformed basic header", contentType: form, body: "grant_type=client_credentials",
			header: map[string]string{"Authorization": "Basic !!!"}, wantErr: ErrInvalidClient},
		{name: "audience and resource differ", contentType: form,
			body: "grant_type=client_credentials&client_id=c&client_secret=s&audience=https://a/&resource=https://b/", wantErr: ErrInvalidRequest},
		{name: "two different resources", contentType: form,
			body: "grant_type=client_credentials&client_id=c&client_secret=s&resource=https://a/&resource=https://b/", wantErr: ErrInvalidTarget},
		{name: "resource not an absolute URI", contentType: form,
			body: "grant_type=client_credentials&client_id=c&client_secret=s&resource=usage-api", wantErr: ErrInvalidTarget},
		{name: "resource with a fragment", contentType: form,
			body: "grant_type=client_credentials&client_id=c&client_secret=s&resource=https://api/%23x", wantErr: ErrInvalidTarget},

		{name: "scope with a forbidden character", contentType: form,
			body: "grant_type=client_credentials&client_id=c&client_secret=s&scope=a%22b", wantErr: ErrInvalidScope},
		{name: "unsupported content type", contentType: "text/plain", body: "grant_type=client_credentials", wantErr: ErrInvalidRequest},
		{name: "no content type", body: "grant_type=client_credentials", wantErr: ErrInvalidRequest},
		{name: "json that is not an object", contentType: "application/json", body: `["x"]`, wantErr: ErrInvalidRequest},
		{name: "json with a number for a known parameter", contentType: "application/json", body: `{"grant_type":1}`, wantErr: ErrInvalidRequest},
		{name: "json with trailing data", contentType: "application/json", body: `{"grant_type":"client_credentials"} {}`, wantErr: ErrInvalidRequest},
		{name: "json with a closing bracket after the object", contentType: "application/json", body: `{"grant_type":"client_credentials","client_id":"c","client_secret":"s"}]`, wantErr: ErrInvalidRequest},
		{name: "json with a member repeated", contentType: "application/json",
			body: `{"grant_type":"client_credentials","client_id":"c1","client_secret":"s1","client_id":"c2"}`, wantErr: ErrInvalidRequest},
		{name: "json with a member repeated, the same value", contentType: "application/json",
			body: `{"grant_type":"client_credentials","client_id":"c1","client_secret":"s1","audience":"a","audience":"a"}`, wantErr: ErrInvalidRequest},
		{name: "json with grant_type repeated behind basic", contentType: "application/json",
			body:   `{"grant_type":"password","grant_type":"client_credentials"}`,
			header: map[string]string{"Authorization": basic("c1", "s1")}, wantErr: ErrInvalidRequest},
		{name: "json null for client_secret", contentType: "application/json",
			body: `{"grant_type":"client_credentials","client_id":"c1","client_secret":null}`, wantErr: ErrInvalidRequest},
		{name: "json null for scope", contentType: "application/json",
			body: `{"grant_type":"client_credentials","client_id":"c1","client_secret":"s1","scope":null}`, wantErr: ErrInvalidRequest},
		{name: "json null for grant_type behind basic", contentType: "application/json", body: `{"grant_type":null}`,
			header: map[string]string{"Authorization": basic("c1", "s1")}, wantErr: ErrInvalidRequest},
		{name: "json null in a resource list", contentType: "application/json",
			body: `{"grant_type":"client_credentials","client_id":"c1","client_secret":"s1","resource":["https://api/",null]}`, wantErr: ErrInvalidRequest},
		{name: "json empty resource list", contentType: "application/json",
			body: `{"grant_type":"client_credentials","client_id":"c1","client_secret":"s1","resource":[]}`, wantErr: ErrInvalidRequest},
		{name: "body too large", contentType: form, body: "grant_type=client_credentials&x=" + strings.Repeat("a", MaxBodyBytes), wantErr: ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, r := newRequest(tc.contentType, tc.body, tc.header)
			got, e := parseTokenRequest(w, r)
			if tc.wantErr != "" {
				if e == nil || e.Code != tc.wantErr {
					t.Fatalf("error = %v, want %s", e, tc.wantErr)
				}
				return
			}
			if e != nil {
				t.Fatalf("unexpected error %v", e)
			}
			tc.want.grantType = "client_credentials" // the only grant accepted
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestSecretInURIRefused(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/oauth/token?client_secret=x", strings.NewReader("grant_type=client_credentials"))
	r.Header.Set("Content-Type", form)
	if _, e := parseTokenRequest(httptest.NewRecorder(), r); e == nil || e.Code != ErrInvalidRequest {
		t.Fatalf("error = %v", e)
	}
}

func testClient() *authz.Client {
	usage := authz.API{Identifier: "https://usage/", Scopes: []authz.Scope{{Value: "read:meters"}, {Value: "create:meters"}, {Value: "read:meter_types"}}, TokenLifetime: time.Hour, SigningAlg: "ES256"}
	billing := authz.API{Identifier: "https://billing/", Scopes: []authz.Scope{{Value: "read:invoices"}, {Value: "read:meters"}}, TokenLifetime: 600 * time.Second, SigningAlg: "EdDSA"}
	return &authz.Client{
		Application: authz.Application{ClientID: "c1"},
		Grants: []authz.ClientGrant{
			{Grant: authz.Grant{Scopes: []string{"create:meters", "read:meters"}}, API: &usage},
			{Grant: authz.Grant{Scopes: []string{"read:invoices"}}, API: &billing},
		},
	}
}

func TestAuthorize(t *testing.T) {
	tests := []struct {
		name       string
		req        tokenRequest
		client     *authz.Client
		wantAud    string
		wantScopes []string
		wantErr    string
		wantInDesc string
	}{
		{name: "audience, no scope: every granted scope in the API's order", req: tokenRequest{audience: "https://usage/"},
			wantAud: "https://usage/", wantScopes: []string{"read:meters", "create:meters"}},
		{name: "audience and a granted scope", req: tokenRequest{audience: "https://usage/", scopes: []string{"create:meters"}, scopeGiven: true},
			wantAud: "https://usage/", wantScopes: []string{"create:meters"}},
		{name: "scope not granted", req: tokenRequest{audience: "https://usage/", scopes: []string{"read:meter_types"}, scopeGiven: true},
			wantErr: ErrInvalidScope, wantInDesc: "read:meter_types"},
		{name: "scope the API does not define", req: tokenRequest{audience: "https://usage/", scopes: []string{"nope"}, scopeGiven: true},
			wantErr: ErrInvalidScope},
		{name: "audience without a grant", req: tokenRequest{audience: "https://other/"}, wantErr: ErrInvalidTarget, wantInDesc: "https://other/"},
		{name: "no audience, scopes pick the one API", req: tokenRequest{scopes: []string{"read:invoices"}, scopeGiven: true},
			wantAud: "https://billing/", wantScopes: []string{"read:invoices"}},
		{name: "no audience, scopes fit two APIs", req: tokenRequest{scopes: []string{"read:meters"}, scopeGiven: true},
			wantErr: ErrInvalidRequest, wantInDesc: `"https://billing/"`},
		{name: "no audience, no scope, two grants", req: tokenRequest{}, wantErr: ErrInvalidRequest, wantInDesc: `"https://usage/"`},
		{name: "no audience, scopes no API defines", req: tokenRequest{scopes: []string{"x:y"}, scopeGiven: true}, wantErr: ErrInvalidRequest, wantInDesc: "x:y"},
		{name: "no audience, no scope, one grant", req: tokenRequest{},
			client:  &authz.Client{Application: authz.Application{ClientID: "c"}, Grants: testClient().Grants[1:]},
			wantAud: "https://billing/", wantScopes: []string{"read:invoices"}},
		{name: "no grants at all", req: tokenRequest{}, client: &authz.Client{}, wantErr: ErrInvalidRequest, wantInDesc: "no grants"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client
			if c == nil {
				c = testClient()
			}
			got, _, e := authorize(c, tc.req)
			if tc.wantErr != "" {
				if e == nil || e.Code != tc.wantErr || !strings.Contains(e.Description, tc.wantInDesc) {
					t.Fatalf("error = %v, want %s containing %q", e, tc.wantErr, tc.wantInDesc)
				}
				return
			}
			if e != nil {
				t.Fatal(e)
			}
			if got.Audience != tc.wantAud || !reflect.DeepEqual(got.Scopes, tc.wantScopes) {
				t.Fatalf("got %s %v, want %s %v", got.Audience, got.Scopes, tc.wantAud, tc.wantScopes)
			}
		})
	}
}

func FuzzParseBasic(f *testing.F) {
	f.Add(basic("client", "m2ms_x"))
	f.Add("Basic Og==")
	f.Add("basic " + base64.StdEncoding.EncodeToString([]byte("a%zz:b")))
	f.Fuzz(func(t *testing.T, h string) {
		id, _, ok := parseBasic(h)
		if ok && id == "" {
			t.Fatal("accepted an empty client_id")
		}
	})
}

func FuzzParseScope(f *testing.F) {
	f.Add("read:meters create:meters")
	f.Add("  a  b\t")
	f.Fuzz(func(t *testing.T, s string) {
		scopes, ok := parseScope(s)
		if !ok {
			return
		}
		seen := map[string]bool{}
		for _, sc := range scopes {
			if sc == "" || strings.ContainsAny(sc, " \"\\") || seen[sc] {
				t.Fatalf("bad scope %q from %q", sc, s)
			}
			seen[sc] = true
		}
	})
}

// FuzzParseJSONParams: parseJSONParams never panics, refuses only with
// 400, and accepts a parameter the endpoints read only as a string or a
// non-empty list of strings (never null), with the value encoding/json
// reads.
func FuzzParseJSONParams(f *testing.F) {
	f.Add([]byte(`{"grant_type":"client_credentials","resource":["a","b"]}`))
	f.Add([]byte(`{"a":{"b":1}}`))
	f.Add([]byte(`{"client_secret":null}`))
	f.Add([]byte(`{"resource":["a",null]}`))
	f.Add([]byte(`{"scope": null ,"x":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, e := parseJSONParams(params{}, b)
		if e == nil && p == nil {
			t.Fatal("nil params without an error")
		}
		if e != nil {
			if e.Status != http.StatusBadRequest {
				t.Fatalf("status %d", e.Status)
			}
			return
		}
		for _, kv := range p {
			if !knownParams[kv.name] {
				t.Fatalf("kept %q, which no endpoint reads", kv.name)
			}
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			return
		}
		for name := range knownParams {
			v, ok := m[name]
			if !ok {
				continue
			}
			var want []string
			switch v := v.(type) {
			case string:
				want = []string{v}
			case []any:
				for _, el := range v {
					s, ok := el.(string)
					if !ok {
						t.Fatalf("accepted %s = %v", name, v)
					}
					want = append(want, s)
				}
			default:
				t.Fatalf("accepted %s = %v", name, v)
			}
			if got := slices.Collect(p.values(name)); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s = %q, want %q", name, got, want)
			}
		}
	})
}

func TestLoggableClientID(t *testing.T) {
	for in, want := range map[string]string{
		"abc":                         "abc",
		"m2ms_0123_secretsecret":      "(redacted: holds a client secret)",
		strings.Repeat("a", 63) + "é": strings.Repeat("a", 63) + "…",
		"a\x00b\xffc\nd":              "a\ufffdb\ufffdc\ufffdd",
		"x m2ms_0123":                 "(redacted: holds a client secret)",
		strings.Repeat("a", 70):       strings.Repeat("a", 64) + "…",
	} {
		if got := loggableClientID(in); got != want {
			t.Errorf("loggableClientID(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestParseForm: parseForm reads what url.ParseQuery reads and refuses
// what it refuses, on both sides of maxFormParams.
func TestParseForm(t *testing.T) {
	many := strings.Repeat("x=1&", maxFormParams) + "grant_type=client_credentials"
	for _, tc := range []struct {
		name, body string
		wantOK     bool
	}{
		{"typical", "grant_type=client_credentials&audience=https%3A%2F%2Fusage%2F", true},
		{"repeated parameter", "scope=a&scope=b&audience=x", true},
		{"plus and percent", "scope=a+b%20c&client%5Fid=x", true},
		{"no value, no equals, empty pairs", "&a&=v&&b=&", true},
		{"equals in the value", "a==b=c", true},
		{"empty body", "", true},
		{"invalid percent-encoding", "client_secret=%zz", false},
		{"truncated percent-encoding", "grant_type=client_credentials&a=%4", false},
		{"invalid key", "%g=1", false},
		{"semicolon", "grant_type=client_credentials;client_id=x", false},
		{"encoded semicolon", "a=%3B", true},
		{"many parameters", many, true},
		{"many parameters, one invalid", many + "&%", false},
		{"many parameters, a known one repeated", many + "&scope=a&x=2&scope=b", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseForm(nil, tc.body)
			want, err := url.ParseQuery(tc.body)
			if ok != tc.wantOK || ok != (err == nil) {
				t.Fatalf("ok = %v, url.ParseQuery error %v, want ok = %v", ok, err, tc.wantOK)
			}
			if ok && !reflect.DeepEqual(asValues(got), formWant(tc.body, want)) {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

// FuzzParseForm: for any body, parseForm and url.ParseQuery agree on every
// parameter and value, or both refuse.
func FuzzParseForm(f *testing.F) {
	f.Add("grant_type=client_credentials&audience=https%3A%2F%2Fusage%2F&scope=read+write")
	f.Add("a=1&a=2&b&=c&&d=%41%zz")
	f.Add("a=1;b=2")
	f.Add("%=&+=%2b")
	f.Add(strings.Repeat("a=b&", maxFormParams+1))
	f.Fuzz(func(t *testing.T, body string) {
		prefix := params{{"kept", "1"}} // what dst held before stays first
		got, ok := parseForm(prefix, body)
		want, err := url.ParseQuery(body)
		if ok != (err == nil) {
			t.Fatalf("parseForm ok = %v, url.ParseQuery error %v", ok, err)
		}
		if !ok {
			return
		}
		if got[0] != prefix[0] {
			t.Fatalf("dst's parameter became %q", got[0])
		}
		gotValues := asValues(got[1:])
		want = formWant(body, want)
		if len(gotValues) != len(want) {
			t.Fatalf("got %q, want %q", gotValues, want)
		}
		for k, v := range want {
			if !slices.Equal(gotValues[k], v) {
				t.Fatalf("%q = %q, want %q", k, gotValues[k], v)
			}
			if n := len(slices.Collect(got.values(k))); k != "kept" && n != len(v) {
				t.Fatalf("%q has %d values, want %d", k, n, len(v))
			}
		}
	})
}

// formWant is what parseForm keeps of want, url.ParseQuery's reading of
// body: all of it, or for a form of more than maxFormParams parameters only
// the knownParams.
func formWant(body string, want url.Values) url.Values {
	if strings.Count(body, "&") < maxFormParams {
		return want
	}
	kept := url.Values{}
	for name, v := range want {
		if knownParams[name] {
			kept[name] = v
		}
	}
	return kept
}

// asValues returns p as url.Values: each name's values in the order sent.
func asValues(p params) url.Values {
	v := url.Values{}
	for _, kv := range p {
		v[kv.name] = append(v[kv.name], kv.value)
	}
	return v
}

// TestMediaType: the Content-Types answered without mime.ParseMediaType
// get the answer it gives.
func TestMediaType(t *testing.T) {
	for _, ct := range []string{
		"application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "application/x-www-form-urlencoded; charset=UTF-8",
		"application/json", "application/json; charset=utf-8", "application/json; charset=UTF-8",
		"Application/JSON", "application/json;charset=utf-8", "text/plain", "", "application/json; charset", "a/b; c=d; c=e",
	} {
		mt, ok := mediaType(ct)
		want, _, err := mime.ParseMediaType(ct)
		if ok != (err == nil) || (ok && mt != want) {
			t.Errorf("mediaType(%q) = %q, %v; mime.ParseMediaType: %q, %v", ct, mt, ok, want, err)
		}
	}
}

// oneByteReader returns its body a byte at a time, as a slow client's
// connection may.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), 1)]) }

// TestReadBody: the body is read whole up to MaxBodyBytes, with or without
// a Content-Length, and a longer one is a 413.
func TestReadBody(t *testing.T) {
	exact := "a=" + strings.Repeat("b", MaxBodyBytes-2)
	for _, tc := range []struct {
		name          string
		body          string
		contentLength int64 // -1: unknown (chunked)
		slow          bool
		wantStatus    int // 0: read
	}{
		{"small", "grant_type=client_credentials", 29, false, 0},
		{"empty", "", 0, false, 0},
		{"exactly the limit", exact, MaxBodyBytes, false, 0},
		{"exactly the limit, chunked", exact, -1, false, 0},
		{"exactly the limit, a byte at a time", exact, -1, true, 0},
		{"longer than announced", "grant_type=client_credentials", 4, false, 0},
		{"one byte over", exact + "c", MaxBodyBytes + 1, false, http.StatusRequestEntityTooLarge},
		{"one byte over, announced as short", exact + "c", 10, false, http.StatusRequestEntityTooLarge},
		{"one byte over, chunked", exact + "c", -1, false, http.StatusRequestEntityTooLarge},
		{"far over, a byte at a time", exact + exact, -1, true, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, r := newRequest(form, "", nil)
			var body io.Reader = strings.NewReader(tc.body)
			if tc.slow {
				body = oneByteReader{body}
			}
			r.Body, r.ContentLength = io.NopCloser(body), tc.contentLength
			got, e := readBody(w, r)
			if tc.wantStatus != 0 {
				if e == nil || e.Status != tc.wantStatus || e.Code != ErrInvalidRequest {
					t.Fatalf("error = %+v, want %d", e, tc.wantStatus)
				}
				return
			}
			if e != nil || string(got) != tc.body {
				t.Fatalf("read %d bytes, %v; want %d", len(got), e, len(tc.body))
			}
		})
	}
	t.Run("read error", func(t *testing.T) {
		w, r := newRequest(form, "", nil)
		r.Body = io.NopCloser(io.MultiReader(strings.NewReader("a=b"), iotest.ErrReader(errors.New("reset"))))
		if _, e := readBody(w, r); e == nil || e.Status != http.StatusBadRequest {
			t.Fatalf("error = %+v, want a 400", e)
		}
	})
}

// TestKnownParamsCoverReads: every parameter name the package reads from
// params (get, has, values with a literal name, and the names
// readBearerGrant checks in a loop) is in knownParams, which the JSON and
// long-form parsers keep.
func TestKnownParamsCoverReads(t *testing.T) {
	fset := gotoken.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	read := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "get" && sel.Sel.Name != "has" && sel.Sel.Name != "values") {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "p" {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok {
				return true // p.has(name) in readBearerGrant's loop: its literals are checked below
			}
			pname, _ := strconv.Unquote(lit.Value)
			read++
			if !knownParams[pname] {
				t.Errorf("%s reads %q, not in knownParams", fset.Position(lit.Pos()), pname)
			}
			return true
		})
	}
	if read < 10 {
		t.Fatalf("found %d reads: the search no longer sees them", read)
	}
	for _, name := range []string{"client_secret", "client_assertion", "client_assertion_type"} {
		if !knownParams[name] {
			t.Errorf("readBearerGrant checks %q, not in knownParams", name)
		}
	}
}

// BenchmarkParseTokenRequestLongForm: what a 16 KB form of 4 000 unknown
// parameters, which anyone may send, costs the token endpoint's parser
// (url.ParseQuery's share and the few parameters kept).
func BenchmarkParseTokenRequestLongForm(b *testing.B) {
	body := "grant_type=client_credentials&" + strings.Repeat("a=1&", 4000)
	body = body[:min(len(body), MaxBodyBytes)]
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		parseTokenRequest(httptest.NewRecorder(), r)
	}
}
