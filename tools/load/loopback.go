package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
)

// isLoopbackHost reports whether host, a URL's or address's host without
// port or brackets, is "localhost" or an IP literal on loopback
// (127.0.0.0/8, ::1). Any other name is refused, not resolved: a name
// that resolves to loopback today may not tomorrow.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return false
	}
	return ip.Unmap().IsLoopback()
}

// checkLoopbackURL returns an error unless raw is an http URL whose host
// is on loopback: this tool sends load to nothing else.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%q must be an http URL on loopback (127.0.0.0/8, ::1 or localhost)", raw)
	}
	return nil
}

// checkLoopbackAddr returns an error unless addr is a host:port to listen
// on whose host is on loopback.
func checkLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !isLoopbackHost(host) {
		return fmt.Errorf("%q must be host:port on loopback (127.0.0.0/8, ::1 or localhost)", addr)
	}
	return nil
}
