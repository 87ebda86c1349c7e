package rs

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   string
		err    error
	}{
		{"no header", nil, "", errNoToken},
		{"empty", []string{""}, "", errNoToken},
		{"Basic", []string{"Basic dXNlcjpwYXNz"}, "", errNoToken},
		{"DPoP", []string{"DPoP abc"}, "", errNoToken},
		{"Bearer prefix of a longer scheme", []string{"Bearerx abc"}, "", errNoToken},
		{"token", []string{"Bearer abc.def-_~+/=="}, "abc.def-_~+/==", nil},
		{"scheme case", []string{"bEaReR abc"}, "abc", nil},
		{"several spaces", []string{"Bearer   abc"}, "abc", nil},
		{"no token", []string{"Bearer"}, "", errMalformed},
		{"only spaces", []string{"Bearer   "}, "", errMalformed},
		{"trailing space", []string{"Bearer abc "}, "", errMalformed},
		{"tab", []string{"Bearer\tabc"}, "", errNoToken},
		{"inner space", []string{"Bearer ab c"}, "", errMalformed},
		{"padding only", []string{"Bearer =="}, "", errMalformed},
		{"padding inside", []string{"Bearer ab=c"}, "", errMalformed},
		{"comma", []string{"Bearer abc, Basic x"}, "", errMalformed},
		{"non-ASCII", []string{"Bearer abcé"}, "", errMalformed},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", errMultiple},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.values {
				h.Add("Authorization", v)
			}
			got, err := bearerToken(h)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("bearerToken = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestKeysTTL(t *testing.T) {
	const minInterval = 10e9 // 10 s
	for _, tc := range []struct {
		cacheControl string
		wantSeconds  int64
	}{
		{"", 300},
		{"max-age=60", 60},
		{"public, max-age=600", 600},
		{`max-age="120"`, 120},
		{"MAX-AGE=90", 90},
		{"max-age=1", 10},
		{"max-age=-5", 300},
		{"max-age=abc", 300},
		{"max-age=99999999999999999", 86400},
		{"no-store", 10},
		{"no-cache, max-age=600", 10},
	} {
		h := http.Header{}
		if tc.cacheControl != "" {
			h.Set("Cache-Control", tc.cacheControl)
		}
		if got := keysTTL(h, minInterval); int64(got.Seconds()) != tc.wantSeconds {
			t.Errorf("keysTTL(%q) = %v, want %ds", tc.cacheControl, got, tc.wantSeconds)
		}
	}
}

// FuzzBearerHeader checks bearerToken on arbitrary Authorization headers:
// a token it returns is a non-empty RFC 6750 b64token that ends the header.
func FuzzBearerHeader(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", "bearer a.b.c", "Bearer", "Bearer  x==", "Basic abc", "Bearer a b", "Bearer é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		h := http.Header{"Authorization": {value}}
		token, err := bearerToken(h)
		if err != nil {
			if token != "" {
				t.Fatalf("token %q returned with error %v", token, err)
			}
			if !errors.Is(err, errNoToken) && !errors.Is(err, errMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if token == "" || !strings.HasSuffix(value, token) || !isB64Token(token) {
			t.Fatalf("bearerToken(%q) = %q", value, token)
		}
		if scheme := value[:6]; !strings.EqualFold(scheme, "Bearer") {
			t.Fatalf("bearerToken(%q) accepted scheme %q", value, scheme)
		}
		for _, c := range []byte(token) {
			if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == '\\' {
				t.Fatalf("token %q holds %q", token, c)
			}
		}
	})
}
