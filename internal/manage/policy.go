package manage

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// Bounds of a grant's custom claims and an application's policy.
const (
	// MaxClaims bounds the custom claims of one grant.
	MaxClaims = 32
	// MaxClaimNameLen bounds a claim name, in characters.
	MaxClaimNameLen = 64
	// MaxClaimsBytes bounds a grant's claims as stored and signed: the
	// compact JSON object, 4096 bytes.
	MaxClaimsBytes = 4096
	// MaxAllowedIPs bounds an application's allow-list.
	MaxAllowedIPs = 100
	// MaxRatePerSecond and MaxBurst bound a rate; MaxQuota a quota.
	MaxRatePerSecond = 1_000_000
	MaxBurst         = 1_000_000
	MaxQuota         = 1_000_000_000
)

// PolicyInput is an application's policy as a request gives it: the
// allowed networks as text. The zero PolicyInput clears the policy (the
// server's default applies).
type PolicyInput struct {
	Rate       *authz.Rate
	Quota      *authz.Quota
	Mode       string
	AllowedIPs []string
}

// resolvePolicy validates in and returns the policy to store: a rate of
// more than 0 and at most MaxRatePerSecond a second with a burst of 1 to
// MaxBurst (0: the rate rounded up), quotas of 0 (none) to MaxQuota with at
// least one set, mode "enforce" (the default when a limit is set) or
// "observe", and at most MaxAllowedIPs distinct networks in CIDR notation
// without host bits (a bare address is a network of one).
func resolvePolicy(in PolicyInput) (authz.Policy, error) {
	var p authz.Policy
	if r := in.Rate; r != nil {
		if math.IsNaN(r.PerSecond) || r.PerSecond <= 0 || r.PerSecond > MaxRatePerSecond {
			return p, invalid("policy.rate.per_second must be more than 0 and at most %d", MaxRatePerSecond)
		}
		burst := r.Burst
		if burst == 0 {
			burst = int(math.Ceil(r.PerSecond))
		}
		if burst < 1 || burst > MaxBurst {
			return p, invalid("policy.rate.burst must be 1 to %d", MaxBurst)
		}
		p.Rate = &authz.Rate{PerSecond: r.PerSecond, Burst: burst}
	}
	if q := in.Quota; q != nil {
		if q.PerHour < 0 || q.PerHour > MaxQuota || q.PerDay < 0 || q.PerDay > MaxQuota {
			return p, invalid("policy.quota.per_hour and per_day must be 0 (none) to %d", MaxQuota)
		}
		if q.PerHour == 0 && q.PerDay == 0 {
			return p, invalid("policy.quota needs per_hour or per_day; leave quota out for none")
		}
		p.Quota = &authz.Quota{PerHour: q.PerHour, PerDay: q.PerDay}
	}
	switch authz.PolicyMode(in.Mode) {
	case "":
		if p.Rate != nil || p.Quota != nil {
			p.Mode = authz.PolicyEnforce
		}
	case authz.PolicyEnforce, authz.PolicyObserve:
		if p.Rate == nil && p.Quota == nil {
			return p, invalid("policy.mode applies to a rate or a quota; give one")
		}
		p.Mode = authz.PolicyMode(in.Mode)
	default:
		return p, invalid("policy.mode must be %q or %q", authz.PolicyEnforce, authz.PolicyObserve)
	}
	if len(in.AllowedIPs) > MaxAllowedIPs {
		return p, invalid("policy.allowed_ips holds at most %d networks", MaxAllowedIPs)
	}
	for _, s := range in.AllowedIPs {
		n, err := parseNetwork(s)
		if err != nil {
			return authz.Policy{}, err
		}
		if slices.Contains(p.AllowedIPs, n) {
			return authz.Policy{}, invalid("policy.allowed_ips lists %s twice", n)
		}
		p.AllowedIPs = append(p.AllowedIPs, n)
	}
	return p, nil
}

// parseNetwork reads one allow-list entry: a CIDR without host bits, or a
// bare IPv4 or IPv6 address. IPv4-mapped IPv6 is read as IPv4, the form
// the server compares.
func parseNetwork(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, invalid("policy.allowed_ips: %q is not an IP address or CIDR", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	n, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, invalid("policy.allowed_ips: %q is not a CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)", s)
	}
	if n != n.Masked() {
		return netip.Prefix{}, invalid("policy.allowed_ips: %q has host bits set; did you mean %s?", s, n.Masked())
	}
	if n.Addr().Is4In6() && n.Bits() >= 96 {
		n = netip.PrefixFrom(n.Addr().Unmap(), n.Bits()-96)
	}
	return n, nil
}

// allowsActor reports whether p's allow-list lets the actor's own address
// in (an actor with no known address is let in): an application cannot
// lock itself out, as it cannot disable itself.
func allowsActor(p authz.Policy, actor Actor) bool {
	if actor.RemoteAddr == "" || len(p.AllowedIPs) == 0 {
		return true
	}
	a, err := netip.ParseAddr(actor.RemoteAddr)
	return err != nil || p.AllowsAddr(a)
}

// policyDetails is a policy for the audit log.
func policyDetails(p authz.Policy) any {
	if p.IsZero() {
		return map[string]any{}
	}
	return p
}

// resolveClaims validates a grant's custom claims and returns them as
// stored and signed: a compact JSON object with members sorted by name;
// nil for none. At most MaxClaims claims and MaxClaimsBytes bytes; names
// of 1 to MaxClaimNameLen printable characters without spaces, none of
// authz.ReservedClaims; any JSON value but null. A grant on the
// management API carries none.
func resolveClaims(api authz.API, claims map[string]json.RawMessage) (json.RawMessage, error) {
	if len(claims) == 0 {
		return nil, nil
	}
	if api.System {
		return nil, invalid("management API tokens carry no custom claims")
	}
	if len(claims) > MaxClaims {
		return nil, invalid("a grant carries at most %d claims", MaxClaims)
	}
	for name, v := range claims {
		if !validClaimName(name) {
			return nil, invalid("claim name %q must be 1 to %d printable characters without spaces", name, MaxClaimNameLen)
		}
		if authz.IsReservedClaim(name) {
			return nil, invalid("claim %q is reserved (registered or protocol claim); reserved: %s", name, strings.Join(authz.ReservedClaims, " "))
		}
		if !json.Valid(v) {
			return nil, invalid("claim %q is not valid JSON", name)
		}
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			return nil, invalid("claim %q is null; leave it out instead", name)
		}
	}
	b, err := json.Marshal(claims) // sorted by name, each value compacted
	if err != nil {
		return nil, invalid("claims: %v", err)
	}
	if len(b) > MaxClaimsBytes {
		return nil, invalid("claims take %d bytes as JSON; at most %d", len(b), MaxClaimsBytes)
	}
	return b, nil
}

func validClaimName(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxClaimNameLen {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// resolveTokenLifetime validates a grant's token lifetime on api: 0 (the
// API's), or whole seconds from authz.MinGrantTokenLifetime to the API's
// own lifetime. A grant on the management API has none: management tokens'
// lifetime is the server's setting.
func resolveTokenLifetime(api authz.API, d time.Duration) (time.Duration, error) {
	if d == 0 {
		return 0, nil
	}
	if api.System {
		return 0, invalid("the management API's token lifetime is the server's --admin-token-lifetime; a grant cannot change it")
	}
	if d%time.Second != 0 {
		return 0, invalid("token_lifetime is in whole seconds")
	}
	if d < authz.MinGrantTokenLifetime || d > api.TokenLifetime {
		return 0, invalid("token_lifetime must be %d to %d seconds (the API's token_lifetime)",
			int64(authz.MinGrantTokenLifetime/time.Second), int64(api.TokenLifetime/time.Second))
	}
	return d, nil
}

// claimsDetails is a grant's claims for the audit log.
func claimsDetails(c json.RawMessage) json.RawMessage {
	if len(c) == 0 {
		return json.RawMessage("{}")
	}
	return c
}

// PolicyUsage is an application's use of its quotas: the limits that
// apply (its own or the server's default) and the tokens issued in the
// current UTC hour and day, by every replica, as the store's counters have
// them (a few seconds behind).
type PolicyUsage struct {
	Policy    authz.Policy // rate, quota and mode; zero if none applies
	Default   bool         // Policy is the server's default
	Hour, Day time.Time    // starts of the current UTC hour and day
	HourUsed  int64
	DayUsed   int64
}

// GetPolicyUsage returns application clientID's PolicyUsage. Needs
// read:applications. Errors: NotFound.
func (s *Service) GetPolicyUsage(ctx context.Context, actor Actor, clientID string) (PolicyUsage, error) {
	if err := actor.require(authz.ScopeReadApplications); err != nil {
		return PolicyUsage{}, err
	}
	app, err := s.Store.GetApplication(ctx, clientID)
	if err != nil {
		return PolicyUsage{}, storeErr(err, "application")
	}
	now := s.now().UTC()
	u := PolicyUsage{Hour: now.Truncate(time.Hour), Day: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)}
	u.Policy, _ = authz.EffectiveLimits(app.Policy, s.DefaultPolicy)
	u.Default = app.Policy.Rate == nil && app.Policy.Quota == nil && !u.Policy.IsZero()
	counts, err := s.Store.ListIssuance(ctx, clientID, u.Day)
	if err != nil {
		return PolicyUsage{}, storeErr(err, "usage")
	}
	for _, c := range counts {
		if c.Hour.Before(u.Day) {
			continue
		}
		u.DayUsed += c.Count
		if c.Hour.Equal(u.Hour) {
			u.HourUsed += c.Count
		}
	}
	return u, nil
}
