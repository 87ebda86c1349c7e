package rs_test

import (
	"context"
	"testing"
)

// TestClaim: Claims.Claim reads a custom claim, names matched exactly.
func TestClaim(t *testing.T) {
	iss := newFullIssuer(t)
	v := iss.validator(nil)
	claims := iss.claims("read:meters")
	claims["tenant_id"], claims["tier"], claims["Org"] = "t-42", 3, "not org"
	c, err := v.Validate(context.Background(), iss.token("es", "ES256", "at+jwt", claims))
	if err != nil {
		t.Fatal(err)
	}
	var tenant, org string
	var tier int
	if ok, err := c.Claim("tenant_id", &tenant); !ok || err != nil || tenant != "t-42" {
		t.Fatalf("tenant_id: %v %v %q", ok, err, tenant)
	}
	if ok, err := c.Claim("tier", &tier); !ok || err != nil || tier != 3 {
		t.Fatalf("tier: %v %v %d", ok, err, tier)
	}
	if ok, err := c.Claim("org", &org); ok || err != nil {
		t.Fatalf("org (only Org is there): %v %v", ok, err)
	}
	if ok, err := c.Claim("tenant_id", &tier); !ok || err == nil {
		t.Fatalf("a string into an int: %v %v", ok, err)
	}
}
