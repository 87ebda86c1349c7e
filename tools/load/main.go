// Command load drives an m2mauth token endpoint on loopback with the client
// credentials grant and reports tokens/s, latency percentiles and, given
// the server's pid, its CPU time per 1000 tokens and resident memory.
//
//	go -C tools/load run . --url http://127.0.0.1:8080 --client-id ID --client-secret SECRET \
//	    --audience https://api.example.com/ --concurrency 16 --duration 20s --pid $(pgrep -f 'm2mauth serve')
//
// It is its own module so that it stays out of the server's dependencies.
// It sends traffic only to the URL given, which should be on loopback; the
// run is bounded by --duration.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run() error {
	base := flag.String("url", "http://127.0.0.1:8080", "the server's base URL (loopback)")
	id := flag.String("client-id", "", "client_id")
	secret := flag.String("client-secret", os.Getenv("LOAD_CLIENT_SECRET"), "client secret (or LOAD_CLIENT_SECRET)")
	audience := flag.String("audience", "", "audience to ask for")
	conc := flag.Int("concurrency", 16, "requests in flight")
	dur := flag.Duration("duration", 20*time.Second, "how long to run (at most 10m)")
	pid := flag.Int("pid", 0, "the server's process id, for CPU and RSS (Linux /proc)")
	flag.Parse()
	if *id == "" || *secret == "" {
		return errors.New("--client-id and --client-secret are required")
	}
	u, err := url.Parse(*base)
	if err != nil || !isLoopback(u.Hostname()) {
		return fmt.Errorf("--url %q must be an http URL on loopback", *base)
	}
	if *dur > 10*time.Minute {
		*dur = 10 * time.Minute
	}
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {*audience}}.Encode()
	tr := &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	cpu0, _ := cpuSeconds(*pid)
	start := time.Now()
	deadline := start.Add(*dur)
	var mu sync.Mutex
	var lat []time.Duration
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < *conc; i++ {
		wg.Go(func() {
			var local []time.Duration
			localCodes := map[int]int{}
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodPost, *base+"/oauth/token", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(url.QueryEscape(*id), url.QueryEscape(*secret))
				t0 := time.Now()
				resp, err := client.Do(req)
				code := 0
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				local = append(local, time.Since(t0))
				localCodes[code]++
			}
			mu.Lock()
			lat = append(lat, local...)
			for c, n := range localCodes {
				codes[c] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, cpuErr := cpuSeconds(*pid)

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(float64(len(lat)-1)*p)]
	}
	ok := codes[200]
	fmt.Printf("requests %d in %v, status counts %v\n", len(lat), elapsed.Round(time.Millisecond), codes)
	fmt.Printf("tokens/s %.0f (concurrency %d)\n", float64(ok)/elapsed.Seconds(), *conc)
	fmt.Printf("latency p50 %v p90 %v p99 %v max %v\n", pct(.5), pct(.9), pct(.99), pct(1))
	if *pid != 0 && cpuErr == nil && ok > 0 {
		fmt.Printf("server CPU %.2f s per 1000 tokens (%.2f cores busy)\n", (cpu1-cpu0)/float64(ok)*1000, (cpu1-cpu0)/elapsed.Seconds())
		if rss, err := rssKiB(*pid); err == nil {
			fmt.Printf("server RSS %.1f MiB\n", float64(rss)/1024)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

// cpuSeconds reads utime+stime of pid from /proc (clock ticks of 1/100 s).
func cpuSeconds(pid int) (float64, error) {
	if pid == 0 {
		return 0, errors.New("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil
}

// rssKiB reads VmRSS of pid.
func rssKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strconv.Atoi(strings.Fields(line)[1])
		}
	}
	return 0, errors.New("no VmRSS")
}
