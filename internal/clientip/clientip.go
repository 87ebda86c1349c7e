// Package clientip tells the address of the client behind an HTTP request:
// the connection's peer, or, when the peer is a configured trusted proxy,
// the address that proxy forwarded (RFC 7239 Forwarded, or
// X-Forwarded-For). It is the one rule every place that records, limits
// or allow-lists an address uses.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver resolves client addresses. The zero Resolver trusts no proxy:
// every request's address is its connection's peer. It is safe for
// concurrent use.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that honours forwarding headers only from peers
// within trusted (CIDR prefixes, IPv4 or IPv6, such as "10.0.0.0/8" or
// "::1/128"; a bare address counts as one host). Returns an error naming
// the first prefix that does not parse.
func New(trusted []string) (*Resolver, error) {
	r := &Resolver{}
	for _, s := range trusted {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// trusts reports whether a is a trusted proxy.
func (r *Resolver) trusts(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// TrustsPeer reports whether the connection's peer of req is a trusted
// proxy: the one trust decision for every header a proxy sets (Forwarded,
// X-Forwarded-For, a forwarded client certificate). False for a nil or
// empty Resolver.
func (r *Resolver) TrustsPeer(req *http.Request) bool {
	if r == nil || len(r.trusted) == 0 {
		return false
	}
	peer := peerAddr(req.RemoteAddr)
	return peer.IsValid() && r.trusts(peer)
}

// Addr returns the client's address for req. It starts at the
// connection's peer and, while the address in hand is a trusted proxy,
// steps to the address that proxy put last in Forwarded (RFC 7239 §4, the
// for= parameter) or, without Forwarded, X-Forwarded-For, walking the list
// from the right. It stops at the first untrusted address, so a client
// cannot choose what is recorded by sending the header itself. A header
// that does not parse is ignored (the proxy's address is the answer).
// Returns the zero Addr only if the peer address itself does not parse
// (never for a real connection).
func (r *Resolver) Addr(req *http.Request) netip.Addr {
	peer := peerAddr(req.RemoteAddr)
	if !peer.IsValid() || r == nil || len(r.trusted) == 0 || !r.trusts(peer) {
		return peer
	}
	hops := forwarded(req.Header)
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		hop, ok := hopAddr(hops[i])
		if !ok {
			return addr
		}
		addr = hop
		if !r.trusts(addr) {
			return addr
		}
	}
	return addr
}

// String returns Addr(req) as text, "" if it is not valid.
func (r *Resolver) String(req *http.Request) string {
	a := r.Addr(req)
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// peerAddr parses an http.Request's RemoteAddr ("ip:port").
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// maxHops bounds the forwarding list read from a request: a longer
// header is attacker-made, and the rightmost hops are the ones that count.
const maxHops = 32

// forwarded returns the hops of Forwarded's for= parameters, or without
// Forwarded those of X-Forwarded-For, leftmost first, at most the last
// maxHops.
func forwarded(h http.Header) []string {
	var hops []string
	if vals := h.Values("Forwarded"); len(vals) > 0 {
		for _, v := range vals {
			for elem := range strings.SplitSeq(v, ",") {
				for pair := range strings.SplitSeq(elem, ";") {
					k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if ok && strings.EqualFold(k, "for") {
						hops = append(hops, strings.Trim(val, `"`))
					}
				}
			}
		}
	} else {
		for _, v := range h.Values("X-Forwarded-For") {
			for hop := range strings.SplitSeq(v, ",") {
				hops = append(hops, strings.TrimSpace(hop))
			}
		}
	}
	if len(hops) > maxHops {
		hops = hops[len(hops)-maxHops:]
	}
	return hops
}

// hopAddr parses one hop: an address, "[v6]", "[v6]:port" or "v4:port"
// (RFC 7239 §6). Obfuscated identifiers and "unknown" do not parse.
func hopAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
