package rs_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/rs"
)

// FuzzValidate feeds arbitrary strings to Validate. It must not panic, must
// reject anything but the issuer's own valid tokens with an error matching
// ErrInvalidToken, and must not repeat the token in that error. The clock
// stands still, so unknown kids cause no JWKS refetch.
func FuzzValidate(f *testing.F) {
	iss := newFullIssuer(f)
	v := iss.validator(nil)
	for _, kid := range []string{"es", "ed", "rs", "ps"} {
		alg := iss.private[kid].Algorithm
		f.Add(iss.token(kid, alg, "at+jwt", iss.claims("read:meters")))
	}
	f.Add(iss.token("es", "ES256", "JWT", iss.claims("")))
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.")
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6ImVzIiwidHlwIjoiYXQrand0In0.e30.AAAA")
	f.Add("a.b.c")
	f.Add("")

	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Validate(context.Background(), token)
		if err == nil {
			if c == nil || c.Issuer != iss.URL || c.ClientID == "" {
				t.Fatalf("accepted with claims %+v", c)
			}
			return
		}
		if c != nil {
			t.Fatalf("claims %+v returned with error %v", c, err)
		}
		if !errors.Is(err, rs.ErrInvalidToken) {
			t.Fatalf("error %v does not match ErrInvalidToken", err)
		}
		if len(token) >= 8 && strings.Contains(err.Error(), token) {
			t.Fatalf("error %q contains the token", err)
		}
	})
}

// BenchmarkValidateES256 measures Validate on a valid ES256 token with the
// key cached and the verified-token cache off: the cost of a token not
// seen before. BenchmarkValidateCached measures a repeated one.
func BenchmarkValidateES256(b *testing.B) {
	iss := newTestIssuer(b)
	iss.addKey("es", "ES256")
	v := iss.validator(func(c *rs.Config) { c.TokenCacheEntries = -1 })
	token := iss.token("es", "ES256", "at+jwt", iss.claims("read:meters create:meters"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}
