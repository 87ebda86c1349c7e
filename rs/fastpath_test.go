package rs_test

import (
	"context"
	"crypto"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/m2mauth/m2mauth/rs"
)

// TestValidateMatchesGoJOSE: for each algorithm and claim shape, with the
// hand-written fast path (the usual header and claims) and without it
// (custom claims, a header member it does not read), the claims Validate
// returns are the ones go-jose's jwt.ParseSigned and Claims read with the
// same allow-list and key.
func TestValidateMatchesGoJOSE(t *testing.T) {
	iss := newFullIssuer(t)
	v := iss.validator(func(c *rs.Config) { c.TokenCacheEntries = -1 })
	algs := []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256, jose.PS256}
	shapes := map[string]func(map[string]any){
		"usual":          func(map[string]any) {},
		"no scope":       func(c map[string]any) { delete(c, "scope") },
		"audience array": func(c map[string]any) { c["aud"] = []string{"https://other/", audience} },
		"nbf":            func(c map[string]any) { c["nbf"] = c["iat"] },
		"cnf": func(c map[string]any) {
			c["cnf"] = map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
		},
		"custom claim":    func(c map[string]any) { c["tenant_id"] = "t-1" },
		"escaped subject": func(c map[string]any) { c["sub"] = "app/\"1\"" },
	}
	for _, kid := range []string{"es", "ed", "rs", "ps"} {
		for name, edit := range shapes {
			t.Run(kid+"/"+name, func(t *testing.T) {
				claims := iss.claims("read:meters create:meters")
				edit(claims)
				tok := iss.token(kid, iss.private[kid].Algorithm, "at+jwt", claims)
				got, err := v.Validate(context.Background(), tok)
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				parsed, err := jwt.ParseSigned(tok, algs)
				if err != nil {
					t.Fatalf("go-jose: %v", err)
				}
				var std jwt.Claims
				var more struct {
					ClientID string `json:"client_id"`
					Scope    string `json:"scope"`
					Cnf      struct {
						JKT string `json:"jkt"`
					} `json:"cnf"`
				}
				if err := parsed.Claims(iss.private[kid].Key.(crypto.Signer).Public(), &std, &more); err != nil {
					t.Fatalf("go-jose claims: %v", err)
				}
				var scopes []string
				if more.Scope != "" {
					scopes = strings.Fields(more.Scope)
				}
				want := &rs.Claims{
					Issuer: std.Issuer, Subject: std.Subject, ClientID: more.ClientID, JTI: std.ID,
					Audience: std.Audience, Scopes: scopes,
					IssuedAt: std.IssuedAt.Time().UTC(), ExpiresAt: std.Expiry.Time().UTC(),
				}
				if !equalClaims(got, want) || got.Confirmation.JKT != more.Cnf.JKT {
					t.Fatalf("Validate %+v, go-jose %+v", got, want)
				}
				var tenant string
				if ok, err := got.Claim("tenant_id", &tenant); err != nil || ok != (name == "custom claim") || ok && tenant != "t-1" {
					t.Fatalf("Claim tenant_id: %v %v %q", ok, err, tenant)
				}
				if !slices.Equal(got.Scopes, []string{"read:meters", "create:meters"}) && name != "no scope" {
					t.Fatalf("scopes %v", got.Scopes)
				}
			})
		}
	}
}
