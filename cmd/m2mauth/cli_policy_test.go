package main

import (
	"strings"
	"testing"

	"github.com/m2mauth/m2mauth/internal/admin"
)

// TestPolicyCommands: app create/update set the policy part by part, grant
// add/update the claims and token lifetime, and app usage shows the quota.
func TestPolicyCommands(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.run(t, "api", "create", "--identifier", usageAPI, "--scope", "read:usage")
	app := runJSON[admin.CreatedApplication](t, ts, "app", "create", "--name", "limited", "--grant", usageAPI,
		"--rate", "5/s", "--burst", "5", "--quota-hour", "100", "--allow-ip", "127.0.0.1")
	p := app.Policy
	if p.Rate == nil || p.Rate.PerSecond != 5 || p.Rate.Burst != 5 || p.Quota == nil || p.Quota.PerHour != 100 ||
		p.Mode != "enforce" || strings.Join(p.AllowedIPs, ",") != "127.0.0.1/32" {
		t.Fatalf("created policy %+v", p)
	}
	id := app.ClientID

	got := runJSON[admin.ApplicationResource](t, ts, "app", "update", id, "--quota-day", "2000", "--mode", "observe", "--allow-ip", "127.0.0.0/8", "--allow-ip", "::1/128")
	p = got.Policy
	if p.Rate == nil || p.Rate.PerSecond != 5 || p.Quota.PerHour != 100 || p.Quota.PerDay != 2000 || p.Mode != "observe" ||
		strings.Join(p.AllowedIPs, ",") != "127.0.0.0/8,::1/128" {
		t.Fatalf("updated policy %+v (the parts not named must stay)", p)
	}
	mustContain(t, ts.run(t, "app", "get", id), "Policy", "rate 5/s burst 5, 100/hour, 2000/day, observe, from 127.0.0.0/8 ::1/128")

	g := runJSON[admin.GrantResource](t, ts, "grant", "update", id, usageAPI, "--claim", "tenant_id=t-42", "--claim", "tier=3", "--token-lifetime", "10m")
	if string(g.Claims["tenant_id"]) != `"t-42"` || string(g.Claims["tier"]) != "3" || g.TokenLifetime != 600 {
		t.Fatalf("grant update: %+v", g)
	}
	tok := ts.run(t, "token", "--client-id", id, "--client-secret", app.ClientSecret, "--audience", usageAPI)
	claims := jwtClaims(t, tok)
	if claims["tenant_id"] != "t-42" || claims["exp"].(float64)-claims["iat"].(float64) != 600 {
		t.Fatalf("token claims %v", claims)
	}
	ts.fail(t, `claim "sub" is reserved`, "grant", "update", id, usageAPI, "--claim", "sub=x")
	mustContain(t, ts.run(t, "app", "usage", id), "Policy (its own): rate 5/s burst 5", "This hour (from ", " of 100", "Today (from ")

	g = runJSON[admin.GrantResource](t, ts, "grant", "update", id, usageAPI, "--no-claims", "--token-lifetime", "0")
	if len(g.Claims) != 0 || g.TokenLifetime != 0 {
		t.Fatalf("claims removed: %+v", g)
	}
	got = runJSON[admin.ApplicationResource](t, ts, "app", "update", id, "--rate", "none", "--quota-hour", "0", "--quota-day", "0")
	if got.Policy.Rate != nil || got.Policy.Quota != nil || got.Policy.Mode != "" || len(got.Policy.AllowedIPs) != 2 {
		t.Fatalf("limits removed: %+v", got.Policy)
	}
	got = runJSON[admin.ApplicationResource](t, ts, "app", "update", id, "--clear-policy")
	if got.Policy.AllowedIPs != nil {
		t.Fatalf("cleared: %+v", got.Policy)
	}
	ts.fail(t, "--burst needs a rate", "app", "update", id, "--burst", "3")
}
