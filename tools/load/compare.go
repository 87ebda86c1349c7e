package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// proc is a server process this tool started.
type proc struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop ends the process: SIGTERM, then SIGKILL after 5 s.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// startFloor starts "load floor --sign alg" as a child process, so that
// its CPU time in /proc is the floor's alone, and waits for its address.
func startFloor(alg string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "floor", "--addr", "127.0.0.1:0", "--sign", alg)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	line, err := bufio.NewReader(out).ReadString('\n')
	go func() { io.Copy(io.Discard, out); cmd.Wait(); close(p.done) }()
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		p.stop()
		return nil, fmt.Errorf("floor --sign %s did not start: %q %v", alg, line, err)
	}
	p.url = u
	return p, nil
}

// startM2mauth starts bin serve on a free loopback port with a fresh data
// directory dir and waits until /readyz answers 200.
func startM2mauth(ctx context.Context, bin, dir string, extra []string) (*proc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	args := append([]string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data"), "--shutdown-delay", "1ms"}, extra...)
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(dir, "m2mauth.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+dir) // serve records where its credentials are under the user's config dir
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, url: "http://" + addr, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s serve exited; see %s", bin, logf.Name())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s serve not ready after 30 s; see %s", bin, logf.Name())
		}
	}
}

// credentials is the part of <data-dir>/admin-credentials.json, written by
// serve on an empty database, that this tool reads.
type credentials struct {
	TokenEndpoint string `json:"token_endpoint"`
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
	Audience      string `json:"audience"`
}

// adminClient calls m2mauth's management API with the bootstrap
// administrator's token.
type adminClient struct {
	base  string
	token string
}

func newAdminClient(base, dataDir string) (*adminClient, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "admin-credentials.json"))
	if err != nil {
		return nil, err
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("admin-credentials.json: %w", err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {c.Audience}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := doJSON(req, &tok); err != nil {
		return nil, fmt.Errorf("administrator token: %w", err)
	}
	return &adminClient{base: base, token: tok.AccessToken}, nil
}

func (a *adminClient) post(path string, body, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, a.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.token)
	return doJSON(req, out)
}

func doJSON(req *http.Request, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, b)
	}
	return json.Unmarshal(b, out)
}

// m2mauthTarget creates, through the management API, an API signing with
// alg and an application granted it, and returns the target that asks
// for its tokens.
func (a *adminClient) m2mauthTarget(base, alg string) (target, error) {
	aud := "https://bench-" + strings.ToLower(alg) + ".example/"
	api := map[string]any{"identifier": aud, "name": "bench " + alg, "signing_alg": alg,
		"scopes": []map[string]string{{"value": "read:meters", "description": "Read meter readings"}}}
	if err := a.post("/admin/v1/apis", api, &struct{}{}); err != nil {
		return target{}, err
	}
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := a.post("/admin/v1/applications", map[string]any{"name": "bench " + alg, "grants": []map[string]any{{"audience": aud}}}, &app); err != nil {
		return target{}, err
	}
	return target{URL: base, ClientID: app.ClientID, Secret: app.ClientSecret, Audience: aud}, nil
}

// measured is one server measured in every repetition.
type measured struct {
	name string
	t    target
	pid  int
	cpu  []float64 // ms per token, one per repetition
	tps  []float64
	p99  []time.Duration
}

func median[T float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// runCompare is "load compare".
func runCompare(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	bin := fs.String("m2mauth", "", "`path` of an m2mauth binary (go build -o m2mauth ./cmd/m2mauth)")
	algList := fs.String("algs", "ES256,EdDSA,RS256", "comma-separated signing algorithms: ES256, EdDSA, RS256")
	reps := fs.Int("reps", 3, "repetitions; figures are medians")
	conns := fs.Int("conns", 32, "keep-alive connections, one request in flight on each")
	dur := fs.Duration("duration", 5*time.Second, "length of each measured run (at most 10m)")
	warm := fs.Duration("warmup", time.Second, "unmeasured run before each measured one, on the same connections")
	serveArgs := fs.String("serve-args", "", "extra space-separated arguments to m2mauth serve")
	keep := fs.Bool("keep", false, "keep the temporary data directory and m2mauth's log")
	fastBin := fs.String("fastcrypto", "", "`path` of a second m2mauth binary, built with -tags fastcrypto, measured beside the first")
	peerDir := fs.String("peer", "", "`directory` of node-oidc-provider's server.mjs (tools/load/peer, after npm ci there), measured beside m2mauth (RS256, ES256)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" {
		return errors.New("--m2mauth is required: go build -o m2mauth ./cmd/m2mauth first")
	}
	if *reps < 1 {
		return errors.New("--reps: want at least 1")
	}
	if *dur <= 0 || *dur > maxDuration {
		return fmt.Errorf("--duration: want more than 0 and at most %v", maxDuration)
	}
	algs := strings.Split(*algList, ",")
	for _, alg := range algs {
		if _, err := newSigner(alg); err != nil || alg == "none" || alg == "" {
			return fmt.Errorf("--algs: %q: want ES256, EdDSA or RS256", alg)
		}
	}

	dir, err := os.MkdirTemp("", "m2mauth-load-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "data directory and log in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	srv, err := startM2mauth(ctx, *bin, dir, strings.Fields(*serveArgs))
	if err != nil {
		return err
	}
	defer srv.stop()
	admin, err := newAdminClient(srv.url, filepath.Join(dir, "data"))
	if err != nil {
		return err
	}

	var all []*measured
	var stops []func()
	floorOf := func(alg string) (*measured, error) {
		p, err := startFloor(alg)
		if err != nil {
			return nil, err
		}
		stops = append(stops, p.stop)
		return &measured{name: "floor+" + alg, pid: p.pid(),
			t: target{URL: p.url, ClientID: floorClientID, Secret: floorSecret, Audience: floorAudience}}, nil
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	bare, err := floorOf("none")
	if err != nil {
		return err
	}
	bare.name = "floor"
	all = append(all, bare)
	pairs := map[string][2]*measured{}
	for _, alg := range algs {
		f, err := floorOf(alg)
		if err != nil {
			return err
		}
		t, err := admin.m2mauthTarget(srv.url, alg)
		if err != nil {
			return err
		}
		m := &measured{name: "m2mauth " + alg, t: t, pid: srv.pid()}
		all = append(all, f, m)
		pairs[alg] = [2]*measured{f, m}
	}
	base := map[string]*measured{}
	for alg, p := range pairs {
		base[alg] = p[1]
	}
	more, extra, err := startOthers(ctx, *fastBin, *peerDir, dir, strings.Fields(*serveArgs), algs, &stops)
	if err != nil {
		return err
	}
	all = append(all, extra...)

	printMachine()
	fmt.Printf("%d connections, %v per run after a %v warm-up, %d repetitions, server CPU from /proc/<pid>/stat\n\n", *conns, *dur, *warm, *reps)
	for rep := 1; rep <= *reps; rep++ {
		for _, m := range all {
			client := newClient(*conns)
			if *warm > 0 {
				if _, err := drive(ctx, client, m.t, loadOpts{Conns: *conns, Duration: *warm}); err != nil {
					return err
				}
			}
			r, err := drive(ctx, client, m.t, loadOpts{Conns: *conns, Duration: *dur, PID: m.pid})
			client.CloseIdleConnections()
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if r.OK == 0 || r.OK < r.Requests*99/100 {
				return fmt.Errorf("%s: %d of %d requests answered 200: %v", m.name, r.OK, r.Requests, r.Codes)
			}
			m.cpu = append(m.cpu, r.CPUPerToken())
			m.tps = append(m.tps, r.TokensPerSecond())
			m.p99 = append(m.p99, r.Pct(.99))
			fmt.Printf("rep %d  %-16s %8.4f ms/token  %7.0f tokens/s  p99 %v\n", rep, m.name, r.CPUPerToken(), r.TokensPerSecond(), r.Pct(.99).Round(10*time.Microsecond))
		}
	}

	fmt.Printf("\nmedians of %d repetitions, server CPU per token:\n\n", *reps)
	fmt.Printf("| algorithm | floor | floor + bare signature | m2mauth | m2mauth / (floor + signature) | m2mauth tokens/s |\n")
	fmt.Printf("|---|---|---|---|---|---|\n")
	for _, alg := range algs {
		f, m := pairs[alg][0], pairs[alg][1]
		fmt.Printf("| %s | %.4f ms | %.4f ms | %.4f ms | %.2f× | %.0f |\n", alg, median(bare.cpu), median(f.cpu), median(m.cpu), median(m.cpu)/median(f.cpu), median(m.tps))
	}
	more.print(algs, base)
	return nil
}

// printMachine prints the CPU model, the CPUs and the load average, so
// that a figure is read with the machine it came from.
func printMachine() {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("CPU %s, %d CPUs, %s, load average %s\n", model, runtime.NumCPU(), runtime.Version(), strings.Join(strings.Fields(string(load))[:3], " "))
}
