package main

import (
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name  string
		stat  string
		ticks int64
		ok    bool
	}{
		{"plain", "4242 (m2mauth) S 1 4242 4242 0 -1 4194560 1200 0 0 0 731 219 0 0 20 0 9 0 1000 1000000 3000 18446744073709551615", 950, true},
		{"name with spaces and parentheses", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1", 11, true},
		{"zero", "1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 1 1", 0, true},
		{"no parenthesis", "1 init S 0 1 1 0 -1 0 0 0 0 0 5 6", 0, false},
		{"too few fields", "1 (init) S 0 1 1 0 -1 0 0 0 0 0 5", 0, false},
		{"utime not a number", "1 (init) S 0 1 1 0 -1 0 0 0 0 0 x 6 0", 0, false},
		{"negative stime", "1 (init) S 0 1 1 0 -1 0 0 0 0 0 5 -6 0", 0, false},
		{"empty", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.stat))
			if (err == nil) != tt.ok {
				t.Fatalf("parseStat: error %v, want ok %v", err, tt.ok)
			}
			if got != tt.ticks {
				t.Fatalf("parseStat = %d ticks, want %d", got, tt.ticks)
			}
		})
	}
}

func TestCPUSecondsOfSelf(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	if _, err := parseStat(b); err != nil {
		t.Fatalf("/proc/self/stat %q: %v", b, err)
	}
	before, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := range 300_000_000 { // about 0.1 s of CPU, well over one tick
		x ^= i
	}
	after, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("CPU went from %v s to %v s over a busy loop (%d)", before, after, x)
	}
	if _, err := cpuSeconds(0); err == nil {
		t.Fatal("cpuSeconds(0): no error")
	}
}

func TestParseRSS(t *testing.T) {
	got, err := parseRSS([]byte("Name:\tm2mauth\nVmPeak:\t  99 kB\nVmRSS:\t   25332 kB\nThreads:\t9\n"))
	if err != nil || got != 25332 {
		t.Fatalf("parseRSS = %d, %v; want 25332", got, err)
	}
	if _, err := parseRSS([]byte("Name:\tkthreadd\nThreads:\t1\n")); err == nil {
		t.Fatal("parseRSS without VmRSS: no error")
	}
}
