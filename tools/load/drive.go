package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxDuration bounds every measured run.
const maxDuration = 10 * time.Minute

// target is a token endpoint on loopback and the client that asks it for
// tokens with the client credentials grant (RFC 6749 §4.4), secret in
// the Basic header (client_secret_basic).
type target struct {
	URL      string // base URL, http on loopback
	Path     string // token endpoint path; "" is /oauth/token
	ClientID string
	Secret   string
	Audience string
	// Spread, when set, replaces the one client above: each request is
	// the next of its clients, round-robin (scale.go).
	Spread *ring
}

// loadOpts bound one run: Conns keep-alive connections, each with one
// request in flight, until Duration has passed or Requests have been sent
// (0: no count bound).
type loadOpts struct {
	Conns    int
	Duration time.Duration
	Requests int64
	PID      int // the server's process, for CPU and RSS; 0: not measured
}

// result is one run's outcome. CPU is the server's user+system CPU time
// over the run, in seconds, -1 if not measured.
type result struct {
	Requests int64
	OK       int64
	Codes    map[int]int64
	Elapsed  time.Duration
	CPU      float64
	RSSKiB   int
	Lat      []time.Duration // sorted
}

// CPUPerToken is the server's CPU time per 200 answer, in milliseconds.
func (r result) CPUPerToken() float64 {
	if r.CPU < 0 || r.OK == 0 {
		return 0
	}
	return r.CPU / float64(r.OK) * 1000
}

// TokensPerSecond is the rate of 200 answers.
func (r result) TokensPerSecond() float64 { return float64(r.OK) / r.Elapsed.Seconds() }

// Pct returns the p-quantile of latency (0 ≤ p ≤ 1).
func (r result) Pct(p float64) time.Duration {
	if len(r.Lat) == 0 {
		return 0
	}
	return r.Lat[int(float64(len(r.Lat)-1)*p)]
}

// newClient returns an HTTP client that keeps conns connections open to
// one host.
func newClient(conns int) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true, IdleConnTimeout: time.Minute}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// drive sends token requests to t as o says, through client (reuse one
// client across a warm-up and the run, so that the run starts on open
// connections). The server's CPU is read from /proc just before the first
// request and just after the last answer.
func drive(ctx context.Context, client *http.Client, t target, o loadOpts) (result, error) {
	if err := checkLoopbackURL(t.URL); err != nil {
		return result{}, err
	}
	if o.Conns < 1 {
		return result{}, fmt.Errorf("%d connections: want at least 1", o.Conns)
	}
	if o.Duration <= 0 || o.Duration > maxDuration {
		return result{}, fmt.Errorf("duration %v: want more than 0 and at most %v", o.Duration, maxDuration)
	}
	path := t.Path
	if path == "" {
		path = "/oauth/token"
	}
	endpoint := t.URL + path
	pick := t.picker()

	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var sent atomic.Int64
	res := result{Codes: map[int]int64{}, CPU: -1}
	var mu sync.Mutex
	var wg sync.WaitGroup

	cpu0, cpuErr := 0.0, error(nil)
	if o.PID != 0 {
		if cpu0, cpuErr = cpuSeconds(o.PID); cpuErr != nil {
			return result{}, cpuErr
		}
	}
	start := time.Now()
	for range o.Conns {
		wg.Go(func() {
			var lat []time.Duration
			codes := map[int]int64{}
			for ctx.Err() == nil {
				if o.Requests > 0 && sent.Add(1) > o.Requests {
					break
				}
				next := pick()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(next.form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", next.basic)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						break // cut off by the deadline: not a request
					}
					codes[0]++
					lat = append(lat, time.Since(t0))
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				codes[resp.StatusCode]++
			}
			mu.Lock()
			res.Lat = append(res.Lat, lat...)
			for c, n := range codes {
				res.Codes[c] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if o.PID != 0 {
		cpu1, err := cpuSeconds(o.PID)
		if err != nil {
			return result{}, err
		}
		res.CPU = cpu1 - cpu0
		res.RSSKiB, _ = rssKiB(o.PID)
	}
	slices.Sort(res.Lat)
	res.Requests = int64(len(res.Lat))
	res.OK = res.Codes[http.StatusOK]
	return res, nil
}
