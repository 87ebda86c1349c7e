package manage

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

func TestResolvePolicy(t *testing.T) {
	for _, c := range []struct {
		name string
		in   PolicyInput
		want string // EncodePolicy of the result, or "error: ..." substring
	}{
		{"empty clears", PolicyInput{}, ""},
		{"rate gets enforce and its burst", PolicyInput{Rate: &authz.Rate{PerSecond: 2.5}}, `{"rate":{"per_second":2.5,"burst":3},"mode":"enforce"}`},
		{"observe quota", PolicyInput{Quota: &authz.Quota{PerHour: 100}, Mode: "observe"}, `{"quota":{"per_hour":100},"mode":"observe"}`},
		{"bare address is one host", PolicyInput{AllowedIPs: []string{"10.1.2.3", "::1", "::ffff:10.0.0.0/104"}}, `{"allowed_ips":["10.1.2.3/32","::1/128","10.0.0.0/8"]}`},
		{"zero rate", PolicyInput{Rate: &authz.Rate{PerSecond: 0}}, "error: per_second"},
		{"empty quota", PolicyInput{Quota: &authz.Quota{}}, "error: per_hour or per_day"},
		{"negative quota", PolicyInput{Quota: &authz.Quota{PerDay: -1}}, "error: 0 (none)"},
		{"mode alone", PolicyInput{Mode: "observe"}, "error: applies to a rate or a quota"},
		{"unknown mode", PolicyInput{Rate: &authz.Rate{PerSecond: 1}, Mode: "audit"}, "error: must be"},
		{"host bits", PolicyInput{AllowedIPs: []string{"10.0.0.1/8"}}, "error: did you mean 10.0.0.0/8"},
		{"twice", PolicyInput{AllowedIPs: []string{"10.0.0.0/8", "10.0.0.0/8"}}, "error: twice"},
		{"too many", PolicyInput{AllowedIPs: strings.Split(strings.Repeat("10.0.0.1,", 101), ",")[:101]}, "error: at most 100"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := resolvePolicy(c.in)
			if want, ok := strings.CutPrefix(c.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want one saying %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := authz.EncodePolicy(p); got != c.want {
				t.Fatalf("policy %s, want %s", got, c.want)
			}
		})
	}
}

func TestResolveClaims(t *testing.T) {
	api := authz.API{Identifier: "https://api", TokenLifetime: time.Hour}
	got, err := resolveClaims(api, map[string]json.RawMessage{"tier": json.RawMessage(" 3 "), "tenant_id": json.RawMessage(`"t-42"`), "nested": json.RawMessage(`{ "a" : [1, 2] }`)})
	if err != nil || string(got) != `{"nested":{"a":[1,2]},"tenant_id":"t-42","tier":3}` {
		t.Fatalf("claims %s, %v", got, err)
	}
	if got, err := resolveClaims(api, map[string]json.RawMessage{}); got != nil || err != nil {
		t.Fatalf("no claims: %s, %v", got, err)
	}
	// Case and Unicode folding too: case-insensitive decoders (encoding/json)
	// would let "AUD", "Exp" or "ſub" (U+017F) override the real claim.
	for _, name := range append(slices.Clone(authz.ReservedClaims), "AUD", "Exp", "ſub", "Client_ID") {
		if _, err := resolveClaims(api, map[string]json.RawMessage{name: json.RawMessage(`"x"`)}); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("reserved claim %q: %v", name, err)
		}
	}
	many := map[string]json.RawMessage{}
	for i := range MaxClaims + 1 {
		many[strings.Repeat("c", i+1)] = json.RawMessage("1")
	}
	for name, claims := range map[string]map[string]json.RawMessage{
		"too many":    many,
		"long name":   {strings.Repeat("n", MaxClaimNameLen+1): json.RawMessage("1")},
		"empty name":  {"": json.RawMessage("1")},
		"control":     {"a\x01": json.RawMessage("1")},
		"null":        {"a": json.RawMessage("null")},
		"too large":   {"a": json.RawMessage(`"` + strings.Repeat("x", MaxClaimsBytes) + `"`)},
		"not json":    {"a": json.RawMessage("{")},
		"on mgmt API": nil,
	} {
		a := api
		if name == "on mgmt API" {
			a.System, claims = true, map[string]json.RawMessage{"tenant_id": json.RawMessage(`"t"`)}
		}
		if _, err := resolveClaims(a, claims); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestResolveTokenLifetime(t *testing.T) {
	api := authz.API{TokenLifetime: time.Hour}
	for d, ok := range map[time.Duration]bool{0: true, time.Minute: true, time.Hour: true, 59 * time.Second: false, time.Hour + time.Second: false, 90*time.Second + time.Millisecond: false} {
		if _, err := resolveTokenLifetime(api, d); (err == nil) != ok {
			t.Errorf("%v: error %v", d, err)
		}
	}
	if _, err := resolveTokenLifetime(authz.API{TokenLifetime: time.Hour, System: true}, time.Minute); err == nil {
		t.Error("a management grant's lifetime accepted")
	}
}

func TestAllowsActor(t *testing.T) {
	p, err := resolvePolicy(PolicyInput{AllowedIPs: []string{"10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"10.1.2.3": true, "192.0.2.1": false, "": true, "::ffff:10.0.0.1": true} {
		if got := allowsActor(p, Actor{ClientID: "a", RemoteAddr: addr}); got != want {
			t.Errorf("%q: %v", addr, got)
		}
	}
}

func FuzzParseNetwork(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "::1", "::ffff:10.0.0.0/104", "fe80::1%eth0", "1.2.3.4/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseNetwork(s)
		if err != nil {
			return
		}
		if !n.IsValid() || n != n.Masked() || n.Addr().Is4In6() || n.Addr().Zone() != "" {
			t.Fatalf("parseNetwork(%q) = %v", s, n)
		}
	})
}
