package main

import "testing"

func TestCheckLoopbackURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://127.1.2.3:8080/", true},
		{"http://localhost:8080", true},
		{"http://[::1]:8080", true},
		{"http://[::ffff:127.0.0.1]:8080", true},
		{"http://127.0.0.1.example.com:8080", false}, // a name that starts like a loopback address
		{"http://127.evil.example:8080", false},
		{"http://10.0.0.1:8080", false},
		{"http://0.0.0.0:8080", false},
		{"http://[::]:8080", false},
		{"http://[fe80::1%25lo]:8080", false},
		{"http://example.com", false},
		{"http://localhost.example.com", false},
		{"https://127.0.0.1:8443", false}, // the tool speaks plain http only
		{"http://user:pass@127.0.0.1:8080", false},
		{"127.0.0.1:8080", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			if err := checkLoopbackURL(tt.url); (err == nil) != tt.ok {
				t.Fatalf("checkLoopbackURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
			}
		})
	}
}

func TestCheckLoopbackAddr(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true},
		{"localhost:8080", true},
		{"[::1]:0", true},
		{":8080", false}, // every interface
		{"0.0.0.0:0", false},
		{"192.168.1.10:0", false},
		{"127.0.0.1", false}, // no port
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if err := checkLoopbackAddr(tt.addr); (err == nil) != tt.ok {
				t.Fatalf("checkLoopbackAddr(%q) = %v, want ok %v", tt.addr, err, tt.ok)
			}
		})
	}
}
