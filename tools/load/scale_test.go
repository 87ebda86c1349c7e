package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseClients(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want []credential
		err  string // "" for none, else a substring
	}{
		{"two clients", "a s1 https://x/\nb s2 https://y/\n", 10,
			[]credential{{"a", "s1", "https://x/"}, {"b", "s2", "https://y/"}}, ""},
		{"comments, blank lines and CRLF", "# seeded\n\na s1 aud\r\n", 10, []credential{{"a", "s1", "aud"}}, ""},
		{"no final newline", "a s1 aud", 10, []credential{{"a", "s1", "aud"}}, ""},
		{"two fields", "a s1\n", 10, nil, "line 1"},
		{"four fields", "# c\na s1 aud x\n", 10, nil, "line 2"},
		{"double space", "a  s1 aud\n", 10, nil, "line 1"},
		{"empty", "# nothing\n", 10, nil, "no clients"},
		{"over the bound", "a s aud\nb s aud\nc s aud\n", 2, nil, "more than 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseClients(strings.NewReader(tt.in), tt.max)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseSizes(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		ok   bool
	}{
		{"10,100000,1000000", []int{10, 100_000, 1_000_000}, true},
		{"10, 100k, 1M", []int{10, 100_000, 1_000_000}, true},
		{"100_000", []int{100_000}, true},
		{"10M", []int{10_000_000}, true},
		{"11M", nil, false},
		{"0", nil, false},
		{"-5", nil, false},
		{"+5", nil, false},
		{"k", nil, false},
		{"", nil, false},
		{"10,,20", nil, false},
		{"1e6", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSizes(tt.in, maxApps)
			if (err == nil) != tt.ok || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseSizes(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestCheckLoopbackDSN(t *testing.T) {
	for dsn, ok := range map[string]bool{
		"postgres://u:p@127.0.0.1:5432/db":    true,
		"postgresql://localhost/db":           true,
		"postgres://[::1]:5433/db":            true,
		"postgres:///db?host=/tmp/pgsock":     true,
		"postgres://db.example.com/db":        false,
		"postgres://10.0.0.5/db":              false,
		"mysql://127.0.0.1/db":                false,
		"host=127.0.0.1 dbname=db (keywords)": false,
	} {
		if err := checkLoopbackDSN(dsn); (err == nil) != ok {
			t.Errorf("checkLoopbackDSN(%q) = %v, want ok %v", dsn, err, ok)
		}
	}
}

// TestRingTakesTurns: from many goroutines at once, n·k calls of next give
// each of the k clients exactly n turns.
func TestRingTakesTurns(t *testing.T) {
	const k, n, workers = 7, 300, 8
	var clients []credential
	for i := range k {
		clients = append(clients, credential{ClientID: fmt.Sprint("c", i), Secret: "s", Audience: "aud"})
	}
	r := newRing(clients)
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := map[string]int{}
			for range k * n / workers {
				local[r.next().basic]++
			}
			mu.Lock()
			for b, c := range local {
				counts[b] += c
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for range k * n % workers {
		counts[r.next().basic]++
	}
	if len(counts) != k {
		t.Fatalf("%d distinct clients asked, want %d", len(counts), k)
	}
	for _, c := range clients {
		if got := counts[newRequest(c).basic]; got != n {
			t.Errorf("client %s asked %d times, want %d", c.ClientID, got, n)
		}
	}
}

// TestDriveSpread drives a loopback server that records who asked: with a
// spread target, each client asks the same number of times, with its own
// credentials and audience in the form (RFC 6749 §4.4.2); without, the one
// client asks every time.
func TestDriveSpread(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		r.ParseForm()
		if !ok || r.PostForm.Get("grant_type") != "client_credentials" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[id+" "+secret+" "+r.PostForm.Get("audience")]++
		mu.Unlock()
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()

	var clients []credential
	for i := range 5 {
		clients = append(clients, credential{ClientID: fmt.Sprint("id", i), Secret: fmt.Sprint("secret", i), Audience: fmt.Sprint("https://a", i, "/")})
	}
	const per = 40
	run := func(t *testing.T, tg target, requests int64) {
		t.Helper()
		clear(seen)
		r, err := drive(context.Background(), newClient(4), tg, loadOpts{Conns: 4, Duration: time.Minute, Requests: requests})
		if err != nil {
			t.Fatal(err)
		}
		if r.OK != requests {
			t.Fatalf("%d of %d answered 200: %v", r.OK, requests, r.Codes)
		}
	}
	t.Run("spread", func(t *testing.T) {
		run(t, target{URL: srv.URL, Spread: newRing(clients)}, per*int64(len(clients)))
		if len(seen) != len(clients) {
			t.Fatalf("%d distinct clients, want %d: %v", len(seen), len(clients), seen)
		}
		for _, c := range clients {
			if n := seen[c.ClientID+" "+c.Secret+" "+c.Audience]; n != per {
				t.Errorf("%s asked %d times, want %d", c.ClientID, n, per)
			}
		}
	})
	t.Run("one client", func(t *testing.T) {
		c := clients[2]
		run(t, target{URL: srv.URL, ClientID: c.ClientID, Secret: c.Secret, Audience: c.Audience}, 30)
		if n := seen[c.ClientID+" "+c.Secret+" "+c.Audience]; n != 30 || len(seen) != 1 {
			t.Fatalf("seen %v, want only %s, 30 times", seen, c.ClientID)
		}
	})
}

func TestParseStatTimes(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want statTimes
		ok   bool
	}{
		{"postmaster", "900 (postgres) S 1 900 900 0 -1 4194560 1200 0 0 0 731 219 40 2 20 0 1 0 1000 1000000 3000", statTimes{ppid: 1, self: 950, kids: 42}, true},
		{"name with spaces and parentheses", "7 (a) b (c)) R 3 7 7 0 -1 0 0 0 0 0 5 6 7 8 20 0 1 0 1 1 1", statTimes{ppid: 3, self: 11, kids: 15}, true},
		{"no parenthesis", "1 init S 0 1 1 0 -1 0 0 0 0 0 5 6 7 8", statTimes{}, false},
		{"no cstime", "1 (init) S 0 1 1 0 -1 0 0 0 0 0 5 6 7", statTimes{}, false},
		{"negative cutime", "1 (init) S 0 1 1 0 -1 0 0 0 0 0 5 6 -7 8", statTimes{}, false},
		{"ppid not a number", "1 (init) S x 1 1 0 -1 0 0 0 0 0 5 6 7 8", statTimes{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatTimes([]byte(tt.stat))
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("parseStatTimes = %+v, %v; want %+v, ok %v", got, err, tt.want, tt.ok)
			}
		})
	}
}

// TestTreeCPUSeconds: a process tree's CPU includes the process's own.
func TestTreeCPUSeconds(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// Own CPU first: it only grows, so the tree read after holds at least it.
	self, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := treeCPUSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if tree < self {
		t.Fatalf("tree %v s < the process's own %v s", tree, self)
	}
}

// TestRepRatios: each repetition's ratio of the turns' CPU per token to one
// client's, over the repetitions both have.
func TestRepRatios(t *testing.T) {
	got := repRatios([]float64{0.11, 0.12, 0.3}, []float64{0.1, 0.1})
	want := []float64{1.1, 1.2}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
