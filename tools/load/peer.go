package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The peer is node-oidc-provider (tools/load/peer: server.mjs, pinned in
// package-lock.json), set up as m2mauth is: client credentials with
// client_secret_basic, a resource indicator and JWT access tokens, one
// client per algorithm it signs with.
const (
	peerName   = "node-oidc-provider"
	peerSecret = "peer-bench-secret-0123456789abcdef" // server.mjs's; a loopback benchmark's, no secret
)

// peerWarmup is the unmeasured load per algorithm after the peer starts.
const peerWarmup = 5 * time.Second

// peerAlgs are the algorithms server.mjs has a key and a client for.
var peerAlgs = []string{"RS256", "ES256"}

// startPeer runs `node server.mjs PORT` in dir (after `npm ci --prefix
// dir`) on a free loopback port, NODE_ENV=production, and waits up to
// 30 s for its "listening on" line. Its stderr goes to logPath.
func startPeer(ctx context.Context, dir, logPath string) (*proc, error) {
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		return nil, fmt.Errorf("--peer %s: oidc-provider is not installed: run npm ci --prefix %s", dir, dir)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "server.mjs", port)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_ENV=production")
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				lines <- u
				break
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	select {
	case u := <-lines:
		p.url = u
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("node server.mjs exited; see %s", logPath)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("node server.mjs did not listen within 30 s; see %s", logPath)
	}
}

// peerTarget is the peer's client for alg.
func peerTarget(url, alg string) target {
	a := strings.ToLower(alg)
	return target{URL: url, Path: "/token", ClientID: "peer-" + a, Secret: peerSecret, Audience: "https://bench-" + a + ".example/"}
}

// others are the servers compare measures beside the default m2mauth, per
// algorithm: a second m2mauth binary (--fastcrypto) and the peer (--peer).
type others struct {
	fast, peer map[string]*measured
}

// startOthers starts what --fastcrypto (an m2mauth binary built with
// -tags fastcrypto) and --peer (the directory of server.mjs) name, either
// may be empty, with its data and logs under dir; stops collects how to
// stop them. It returns them to measure, in algs' order.
func startOthers(ctx context.Context, fastBin, peerDir, dir string, serveArgs, algs []string, stops *[]func()) (*others, []*measured, error) {
	o := &others{fast: map[string]*measured{}, peer: map[string]*measured{}}
	var all []*measured
	if fastBin != "" {
		fdir := filepath.Join(dir, "fastcrypto")
		if err := os.Mkdir(fdir, 0o700); err != nil {
			return nil, nil, err
		}
		srv, err := startM2mauth(ctx, fastBin, fdir, serveArgs)
		if err != nil {
			return nil, nil, fmt.Errorf("--fastcrypto: %w", err)
		}
		*stops = append(*stops, srv.stop)
		admin, err := newAdminClient(srv.url, filepath.Join(fdir, "data"))
		if err != nil {
			return nil, nil, err
		}
		for _, alg := range algs {
			t, err := admin.m2mauthTarget(srv.url, alg)
			if err != nil {
				return nil, nil, err
			}
			o.fast[alg] = &measured{name: "fastcrypto " + alg, t: t, pid: srv.pid()}
			all = append(all, o.fast[alg])
		}
	}
	if peerDir != "" {
		p, err := startPeer(ctx, peerDir, filepath.Join(dir, "peer.log"))
		if err != nil {
			return nil, nil, err
		}
		*stops = append(*stops, p.stop)
		for _, alg := range algs {
			if !slices.Contains(peerAlgs, alg) {
				continue
			}
			o.peer[alg] = &measured{name: "peer " + alg, t: peerTarget(p.url, alg), pid: p.pid()}
			all = append(all, o.peer[alg])
			// V8 compiles the hot paths during the first seconds: without
			// this, the first repetition measured the peer at twice its
			// later CPU per token.
			if _, err := drive(ctx, newClient(8), o.peer[alg].t, loadOpts{Conns: 8, Duration: peerWarmup}); err != nil {
				return nil, nil, err
			}
		}
	}
	return o, all, nil
}

// print writes the medians of the default build (base, per algorithm),
// the fastcrypto build and the peer side by side, and the ratio of each
// to the peer's CPU per token.
func (o *others) print(algs []string, base map[string]*measured) {
	if len(o.fast) == 0 && len(o.peer) == 0 {
		return
	}
	fmt.Printf("\nmedians, server CPU per token, tokens/s and p99 latency; ratio: CPU per token / %s's:\n\n", peerName)
	fmt.Printf("| algorithm | server | CPU per token | tokens/s | p99 | / %s |\n|---|---|---|---|---|---|\n", peerName)
	for _, alg := range algs {
		peer := o.peer[alg]
		for _, row := range []struct {
			name string
			m    *measured
		}{{"m2mauth", base[alg]}, {"m2mauth fastcrypto", o.fast[alg]}, {peerName, peer}} {
			if row.m == nil {
				continue
			}
			ratio := "—"
			if peer != nil {
				ratio = fmt.Sprintf("%.2f×", median(row.m.cpu)/median(peer.cpu))
			}
			fmt.Printf("| %s | %s | %.4f ms | %.0f | %v | %s |\n", alg, row.name, median(row.m.cpu), median(row.m.tps), median(row.m.p99).Round(100*time.Microsecond), ratio)
		}
	}
}
