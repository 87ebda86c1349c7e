package oauth

import (
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

func TestAssertionAudienceOK(t *testing.T) {
	const iss = "https://as.example"
	tok := iss + PathToken
	for _, c := range []struct {
		name   string
		aud    jwt.Audience
		want   string
		mode   string
		accept bool
	}{
		{"issuer alone", jwt.Audience{iss}, iss, AudienceStrict, true},
		{"issuer among others (strict)", jwt.Audience{iss, "x"}, iss, AudienceStrict, false},
		{"token endpoint (strict)", jwt.Audience{tok}, iss, AudienceStrict, false},
		{"another audience (strict)", jwt.Audience{"x"}, iss, AudienceStrict, false},
		{"credential audience alone", jwt.Audience{"api://x"}, "api://x", AudienceStrict, true},
		{"issuer among others (lenient)", jwt.Audience{"x", iss}, iss, AudienceLenient, true},
		{"token endpoint (lenient)", jwt.Audience{tok}, iss, AudienceLenient, true},
		{"token endpoint among others (lenient)", jwt.Audience{"x", tok}, iss, AudienceLenient, true},
		{"token endpoint for another audience (lenient)", jwt.Audience{tok}, "api://x", AudienceLenient, false},
		{"another audience (lenient)", jwt.Audience{"y"}, iss, AudienceLenient, false},
		{"none", nil, iss, AudienceLenient, false},
	} {
		if got := assertionAudienceOK(c.aud, c.want, iss, c.mode); got != c.accept {
			t.Errorf("%s: %v, want %v", c.name, got, c.accept)
		}
	}
}

func TestCheckAssertionTimes(t *testing.T) {
	now := time.Unix(2_000_000_000, 0)
	at := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(now.Add(d)) }
	for _, c := range []struct {
		name    string
		cl      jwt.Claims
		minLeft time.Duration
		want    string
	}{
		{"fresh", jwt.Claims{Expiry: at(time.Minute), IssuedAt: at(0)}, 0, ""},
		{"no exp", jwt.Claims{IssuedAt: at(0)}, 0, "assertion without exp"},
		{"exp now", jwt.Claims{Expiry: at(0)}, 0, "assertion expired"},
		{"under minLeft", jwt.Claims{Expiry: at(999 * time.Millisecond)}, time.Second, "assertion expired"},
		{"at minLeft", jwt.Claims{Expiry: at(time.Second)}, time.Second, ""},
		{"lifetime at the bound", jwt.Claims{Expiry: at(5 * time.Minute)}, 0, ""},
		{"lifetime over the bound", jwt.Claims{Expiry: at(5*time.Minute + time.Second)}, 0, "assertion lifetime too long"},
		{"iat at the skew", jwt.Claims{Expiry: at(time.Minute), IssuedAt: at(AssertionClockSkew)}, 0, ""},
		{"iat past the skew", jwt.Claims{Expiry: at(time.Minute), IssuedAt: at(AssertionClockSkew + time.Second)}, 0, "assertion issued in the future"},
		{"nbf past the skew", jwt.Claims{Expiry: at(time.Minute), NotBefore: at(AssertionClockSkew + time.Second)}, 0, "assertion not yet valid"},
	} {
		if got := checkAssertionTimes(c.cl, now, c.minLeft, 5*time.Minute); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
