package authz

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// PolicyMode says what a Policy's rate and quota do to a request over
// them.
type PolicyMode string

// Policy modes. The zero mode is PolicyEnforce.
const (
	// PolicyEnforce refuses a token request over a limit (429).
	PolicyEnforce PolicyMode = "enforce"
	// PolicyObserve never refuses: a crossing is recorded (audit event,
	// once per window) and the rate-limit headers are still sent.
	PolicyObserve PolicyMode = "observe"
)

// Rate is a token bucket: PerSecond tokens a second on average, at most
// Burst at once.
type Rate struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// Quota bounds the tokens issued per UTC hour and per UTC day; zero does
// not bound.
type Quota struct {
	PerHour int64 `json:"per_hour,omitempty"`
	PerDay  int64 `json:"per_day,omitempty"`
}

// Policy is an application's token policy: a rate, quotas, their mode and
// the source addresses it may authenticate from. Every part is optional;
// the zero Policy means "none set": the server's default policy applies.
type Policy struct {
	Rate  *Rate      `json:"rate,omitempty"`
	Quota *Quota     `json:"quota,omitempty"`
	Mode  PolicyMode `json:"mode,omitempty"`
	// AllowedIPs, when not empty, are the only networks (IPv4 and IPv6
	// CIDRs) the application's token, introspection and revocation
	// requests may come from.
	AllowedIPs []netip.Prefix `json:"allowed_ips,omitempty"`
}

// IsZero reports whether no part of the policy is set.
func (p Policy) IsZero() bool {
	return p.Rate == nil && p.Quota == nil && p.Mode == "" && len(p.AllowedIPs) == 0
}

// Observe reports whether limits only record and never refuse.
func (p Policy) Observe() bool { return p.Mode == PolicyObserve }

// AllowsAddr reports whether addr may authenticate as the application: the
// allow-list is empty, or one of its networks contains addr (an IPv4-mapped
// IPv6 address counts as IPv4). An invalid addr is allowed only by an empty
// list.
func (p Policy) AllowsAddr(addr netip.Addr) bool {
	if len(p.AllowedIPs) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, n := range p.AllowedIPs {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// EncodePolicy returns p as stores keep it: "" for the zero policy, else
// its JSON.
func EncodePolicy(p Policy) (string, error) {
	if p.IsZero() {
		return "", nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("authz: encoding policy: %w", err)
	}
	return string(b), nil
}

// DecodePolicy reads what EncodePolicy wrote.
func DecodePolicy(s string) (Policy, error) {
	var p Policy
	if s == "" || s == "{}" {
		return p, nil
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return Policy{}, fmt.Errorf("authz: decoding policy: %w", err)
	}
	return p, nil
}

// ReservedClaims are the claim names a grant's custom claims may not use:
// the registered JWT claims (RFC 7519 §4.1), those RFC 9068 §2.2 gives an
// access token, those of RFC 8693 (act, may_act, scope, client_id), RFC 7800
// (cnf), OpenID Connect's authentication claims that a resource server could
// take for an authentication event, the introspection response's own
// members (RFC 7662 §2.2), so that the answer cannot be forged by a claim,
// and RFC 9068 §2.2.3.1's authorization attributes (roles, groups,
// entitlements), which resource servers act on generically and which are
// outside the scopes m2mauth's privilege rules govern.
var ReservedClaims = []string{
	"iss", "sub", "aud", "exp", "nbf", "iat", "jti",
	"client_id", "scope", "scp", "cnf", "act", "may_act",
	"azp", "auth_time", "acr", "amr", "typ", "nonce", "sid", "at_hash", "c_hash",
	"active", "token_type", "username",
	"roles", "groups", "entitlements",
}

// IsReservedClaim reports whether name is one of ReservedClaims, compared
// under Unicode case folding: many JWT libraries decode claims with
// case-insensitive matching (Go's encoding/json folds "AUD" and even "ſub"
// onto "aud" and "sub", and the last member wins), so a custom claim "Exp"
// or "AUD" would override the real one for their resource servers.
func IsReservedClaim(name string) bool {
	for _, r := range ReservedClaims {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

// MinGrantTokenLifetime is the shortest per-grant token lifetime: 60
// seconds.
const MinGrantTokenLifetime = 60 * time.Second

// EffectiveTokenLifetime is the lifetime of a token issued for grant g on
// api: the grant's own lifetime when set and shorter than the API's (the
// API's may have been lowered since), else the API's.
func EffectiveTokenLifetime(g *Grant, api *API) time.Duration {
	if g.TokenLifetime > 0 && g.TokenLifetime < api.TokenLifetime {
		return g.TokenLifetime
	}
	return api.TokenLifetime
}

// ParseRate reads a rate as the CLI and the server's settings write it:
// "5/s", "300/m", "1000/h" or a bare number of tokens a second. Returns
// tokens a second, or an error saying what is wrong.
func ParseRate(s string) (float64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || !(n > 0) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("rate %q: want a positive number per s, m or h, such as 5/s or 300/m", s)
	}
	switch unit {
	case "", "s":
		return n, nil
	case "m":
		return n / 60, nil
	case "h":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("rate %q: the unit is s, m or h", s)
}

// EffectiveLimits returns the rate, quota and mode that apply to an
// application with policy own on a server whose default policy is
// defaults: own's when it sets a rate or a quota, else the defaults'
// (allowed_ips are never defaulted, and left out). limited is false when
// neither sets a rate or a quota.
func EffectiveLimits(own, defaults Policy) (p Policy, limited bool) {
	p = own
	if p.Rate == nil && p.Quota == nil {
		p = defaults
	}
	p.AllowedIPs = nil
	return p, p.Rate != nil || p.Quota != nil
}
