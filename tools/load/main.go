// Command load measures an m2mauth token endpoint on loopback: tokens/s,
// latency and, from /proc, the server's CPU time per token.
//
//	load run --url http://127.0.0.1:8080 --client-id ID --client-secret SECRET \
//	    --audience https://api.example.com/ --conns 32 --duration 10s --pid PID
//	load floor --addr 127.0.0.1:0 --sign ES256
//	load compare --m2mauth ./m2mauth --algs ES256,EdDSA,RS256 --reps 3
//	load run --url http://127.0.0.1:8080 --clients-file clients.txt --pid PID
//	load scale --m2mauth ./m2mauth --seeder ./loadseed --apps 10,100000,1000000
//
// run drives a server already running (or, with --floor, a floor server
// it starts itself). floor serves the cheapest honest token endpoint,
// optionally with one bare signature per token. compare runs, in one
// invocation, the floor with and without a signature and a real m2mauth
// it starts on a temporary data directory, and prints the CPU per token
// of each and their ratio (docs/benchmarks.md). run --clients-file takes
// turns over many clients, and scale seeds databases of several sizes
// (internal/loadseed) and measures, on each, startup, memory and the cost
// of many clients taking turns against one client (scale_run.go).
//
// It is its own module so that it stays out of the server's dependencies.
// It sends traffic only to loopback addresses, and every run is bounded in
// time (at most 10 minutes) and optionally in requests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := dispatch(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "load:", err)
		}
		os.Exit(1)
	}
}

func dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return runLoad(ctx, args) // before subcommands, flags alone meant run
	}
	switch args[0] {
	case "run":
		return runLoad(ctx, args[1:])
	case "floor":
		return runFloor(args[1:])
	case "compare":
		return runCompare(ctx, args[1:])
	case "scale":
		return runScale(ctx, args[1:])
	}
	return fmt.Errorf("unknown command %q: want run, floor, compare or scale", args[0])
}

// runLoad is "load run".
func runLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "the server's base `URL` (http, loopback)")
	path := fs.String("path", "/oauth/token", "token endpoint `path`")
	id := fs.String("client-id", "", "client_id")
	secret := fs.String("client-secret", os.Getenv("LOAD_CLIENT_SECRET"), "client secret (or LOAD_CLIENT_SECRET)")
	audience := fs.String("audience", "", "audience to ask for")
	conns := fs.Int("conns", 32, "keep-alive connections, one request in flight on each")
	fs.IntVar(conns, "concurrency", 32, "same as --conns")
	dur := fs.Duration("duration", 10*time.Second, "how long to measure (at most 10m)")
	count := fs.Int64("requests", 0, "stop after this many requests; 0: only --duration bounds the run")
	warm := fs.Duration("warmup", time.Second, "unmeasured run first, on the same connections")
	pid := fs.Int("pid", 0, "the server's process id, for CPU per token and RSS (Linux /proc)")
	clientsFile := fs.String("clients-file", "", "take turns over the clients of this `file` (internal/loadseed writes it), one request each, instead of --client-id")
	floorAlg := fs.String("floor", "", "start a floor server with this signature (none, ES256, EdDSA, RS256) and drive it instead of --url")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t := target{URL: *base, Path: *path, ClientID: *id, Secret: *secret, Audience: *audience}
	if *floorAlg != "" {
		p, err := startFloor(*floorAlg)
		if err != nil {
			return err
		}
		defer p.stop()
		t = target{URL: p.url, ClientID: floorClientID, Secret: floorSecret, Audience: floorAudience}
		*pid = p.pid()
	}
	if *clientsFile != "" {
		clients, err := loadClients(*clientsFile)
		if err != nil {
			return err
		}
		t.Spread = newRing(clients)
		fmt.Printf("taking turns over %d clients\n", t.Spread.Len())
	} else if t.ClientID == "" || t.Secret == "" {
		return errors.New("--client-id and --client-secret (or --clients-file) are required")
	}
	if err := checkLoopbackURL(t.URL); err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	o := loadOpts{Conns: *conns, Duration: *dur, Requests: *count, PID: *pid}
	client := newClient(o.Conns)
	if *warm > 0 {
		if _, err := drive(ctx, client, t, loadOpts{Conns: o.Conns, Duration: *warm}); err != nil {
			return err
		}
	}
	r, err := drive(ctx, client, t, o)
	if err != nil {
		return err
	}
	fmt.Printf("requests %d in %v, status counts %v\n", r.Requests, r.Elapsed.Round(time.Millisecond), r.Codes)
	fmt.Printf("tokens/s %.0f (%d connections)\n", r.TokensPerSecond(), o.Conns)
	fmt.Printf("latency p50 %v p90 %v p99 %v max %v\n", r.Pct(.5), r.Pct(.9), r.Pct(.99), r.Pct(1))
	if o.PID != 0 && r.OK > 0 {
		fmt.Printf("server CPU %.4f ms per token (%.2f cores busy), RSS %.1f MiB\n", r.CPUPerToken(), r.CPU/r.Elapsed.Seconds(), float64(r.RSSKiB)/1024)
	}
	return nil
}
