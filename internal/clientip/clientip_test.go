package clientip

import (
	"net/http/httptest"
	"testing"
)

func TestAddr(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8", "::1", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, peer, xff, fwd, want string
	}{
		{"no proxy", "203.0.113.5:4321", "", "", "203.0.113.5"},
		{"untrusted peer's header is ignored", "203.0.113.5:4321", "198.51.100.1", "", "203.0.113.5"},
		{"untrusted peer's Forwarded is ignored", "203.0.113.5:4321", "", "for=198.51.100.1", "203.0.113.5"},
		{"trusted proxy forwards", "10.1.2.3:80", "198.51.100.1", "", "198.51.100.1"},
		{"rightmost untrusted hop wins", "10.1.2.3:80", "6.6.6.6, 198.51.100.1, 10.9.9.9", "", "198.51.100.1"},
		{"client-sent spoof left of the real hop", "10.1.2.3:80", "1.2.3.4, 198.51.100.1", "", "198.51.100.1"},
		{"Forwarded beats X-Forwarded-For", "[::1]:80", "6.6.6.6", `for="[2001:db8::1]:443";proto=https`, "2001:db8::1"},
		{"Forwarded list", "192.0.2.7:1", "", "for=198.51.100.2, for=10.0.0.1", "198.51.100.2"},
		{"garbage hop stops at the proxy", "10.1.2.3:80", "not-an-ip", "", "10.1.2.3"},
		{"obfuscated Forwarded", "10.1.2.3:80", "", "for=_hidden", "10.1.2.3"},
		{"all hops trusted", "10.1.2.3:80", "10.0.0.9", "", "10.0.0.9"},
		{"v4-mapped peer", "[::ffff:203.0.113.9]:1", "", "", "203.0.113.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.peer
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.fwd != "" {
				req.Header.Set("Forwarded", tc.fwd)
			}
			if got := r.String(req); got != tc.want {
				t.Fatalf("Addr = %q, want %q", got, tc.want)
			}
		})
	}
	var zero *Resolver
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "10.1.2.3:80"
	req.Header.Set("X-Forwarded-For", "1.2.3.4")
	if got := zero.String(req); got != "10.1.2.3" {
		t.Fatalf("nil resolver: %q", got)
	}
	if _, err := New([]string{"10.0.0.0/33"}); err == nil {
		t.Fatal("bad prefix accepted")
	}
}

func FuzzAddr(f *testing.F) {
	f.Add("10.0.0.1:80", "1.2.3.4, 5.6.7.8", `for="[::1]:80"`)
	r, _ := New([]string{"10.0.0.0/8", "::/0"})
	f.Fuzz(func(t *testing.T, peer, xff, fwd string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = peer
		req.Header.Set("X-Forwarded-For", xff)
		req.Header.Set("Forwarded", fwd)
		_ = r.Addr(req)
	})
}
