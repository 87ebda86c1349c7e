package dpop

import "testing"

func TestNormalizeURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://server.example.com/token", "https://server.example.com/token"},
		{"HTTPS://Server.Example.COM/token", "https://server.example.com/token"},
		{"https://server.example.com:443/token", "https://server.example.com/token"},
		{"http://server.example.com:80/token", "http://server.example.com/token"},
		{"http://server.example.com:443/token", "http://server.example.com:443/token"},
		{"https://server.example.com:8443/token", "https://server.example.com:8443/token"},
		{"https://server.example.com", "https://server.example.com/"},
		{"https://server.example.com/token?a=1#b", "https://server.example.com/token"},
		{"https://server.example.com/a%2fb", "https://server.example.com/a%2Fb"},
		{"https://server.example.com/%7e%41", "https://server.example.com/~A"},
		{"https://server.example.com/Token", "https://server.example.com/Token"},
		{"https://server.example.com/a/../b", "https://server.example.com/a/../b"},
		{"https://[::1]:443/x", "https://[::1]/x"},
		{"https://[::1]:8443/x", "https://[::1]:8443/x"},
		{"https://server.example.com:/token", "https://server.example.com/token"},
	} {
		got, err := normalizeURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("normalizeURL(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "/token", "ftp://server.example.com/", "https:server", "https://user@server.example.com/", "https:///path", "https://server.example.com/%zz", "https://:443/"} {
		if got, err := normalizeURL(bad); err == nil {
			t.Errorf("normalizeURL(%q) = %q, want an error", bad, got)
		}
	}
}
