package token

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// TestIssueWithClaims: a request's claims go into the token after jti;
// Verify keeps them for Extra, and a token without keeps nothing.
func TestIssueWithClaims(t *testing.T) {
	f := newFixture(t)
	f.ensure(t, authz.ES256)
	req := Request{ClientID: "client-1", Audience: "https://api.example.com", Scopes: []string{"read:things"},
		Lifetime: 10 * time.Minute, Alg: authz.ES256, Claims: json.RawMessage(`{"tenant_id":"t-42","tier":3}`)}
	tok, c, err := f.issuer.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	_, claims, _ := jwtSegments(t, tok)
	if claims["tenant_id"] != "t-42" || claims["tier"] != float64(3) || claims["client_id"] != "client-1" {
		t.Fatalf("claims %v", claims)
	}
	got, err := f.issuer.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if *got != c {
		t.Fatalf("Verify = %+v, want %+v", *got, c)
	}
	extra, err := got.Extra()
	if err != nil || len(extra) != 2 || string(extra["tenant_id"]) != `"t-42"` {
		t.Fatalf("Extra = %v, %v", extra, err)
	}
	req.Claims = nil
	tok, _, _ = f.issuer.Issue(req)
	plain, err := f.issuer.Verify(tok)
	if err != nil || plain.payload != "" {
		t.Fatalf("a token without claims kept its payload: %v", err)
	}
	if extra, err := plain.Extra(); extra != nil || err != nil {
		t.Fatalf("Extra of a plain token = %v, %v", extra, err)
	}
}

func BenchmarkIssue(b *testing.B) {
	f := newFixture(b)
	f.ensure(b, authz.ES256)
	req := Request{ClientID: "client-1", Audience: "https://api.example.com", Scopes: []string{"read:things"},
		Lifetime: 10 * time.Minute, Alg: authz.ES256}
	b.Run("no-claims", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = f.issuer.Issue(req)
		}
	})
	req.Claims = json.RawMessage(`{"env":"prod","org":"acme","tenant_id":"t-42"}`)
	b.Run("three-claims", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = f.issuer.Issue(req)
		}
	})
}
