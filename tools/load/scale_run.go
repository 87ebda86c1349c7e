package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// maxApps bounds a size of scale --apps (internal/loadseed's bound).
	maxApps = 10_000_000
	// maxStartup bounds how long scale waits for a server to be ready.
	maxStartup = 2 * time.Minute
	// maxSeed bounds a seeder's run.
	maxSeed = time.Hour
)

// parseSizes parses scale --apps: a comma-separated list of application
// counts, each digits with an optional k (thousand) or M (million) suffix
// and underscores between digits ("10,100k,1M", "100_000"). Returns an
// error for an empty list, or a size below 1 or above max.
func parseSizes(s string, max int) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		p := strings.ReplaceAll(strings.TrimSpace(part), "_", "")
		mult := 1
		switch {
		case strings.HasSuffix(p, "k"):
			mult, p = 1000, strings.TrimSuffix(p, "k")
		case strings.HasSuffix(p, "M"):
			mult, p = 1_000_000, strings.TrimSuffix(p, "M")
		}
		n, err := strconv.Atoi(p)
		if err != nil || p == "" || p[0] == '+' || p[0] == '-' {
			return nil, fmt.Errorf("--apps: %q is not a count", strings.TrimSpace(part))
		}
		if n < 1 || n > max/mult {
			return nil, fmt.Errorf("--apps: %q: want 1 to %d", strings.TrimSpace(part), max)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

// scaleRow is what scale measured at one size.
type scaleRow struct {
	apps, clients      int
	seed               time.Duration
	firstStart         time.Duration // bootstrapping the administrator and signing keys
	startup            time.Duration // a restart on the same data
	rssIdle, rssActive int           // KiB
	single, spread     *measured
	db                 map[*measured][]float64 // database CPU per token (--db-pid), ms
}

// runScale is "load scale".
func runScale(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	bin := fs.String("m2mauth", "", "`path` of an m2mauth binary (go build -o m2mauth ./cmd/m2mauth)")
	seeder := fs.String("seeder", "", "`path` of the seeder (go build -o loadseed ./internal/loadseed)")
	sizes := fs.String("apps", "10,100k,1M", "comma-separated numbers of applications, one database each")
	nClients := fs.Int("clients", 100_000, "active clients taking turns (the first ones seeded; fewer if a size has fewer)")
	dbURL := fs.String("database-url", "", "an empty PostgreSQL database (postgres:// on loopback) to seed and serve from, instead of SQLite; one size only")
	dbPID := fs.Int("db-pid", 0, "PostgreSQL's postmaster PID (first line of postmaster.pid): also measure the database's CPU per token, its backends included")
	reps := fs.Int("reps", 3, "repetitions; figures are medians")
	conns := fs.Int("conns", 32, "keep-alive connections, one request in flight on each")
	// The warm-up outlasts the server's default --usage-interval (30 s)
	// plus its 2 s flush, so that the issuance counters one run buffered
	// are written during the next run's warm-up, not billed to the next
	// measured run (to one client's, after the clients taking turns); a
	// measured run as long as the interval then holds its own warm-up's
	// writes instead of its own, of the same kind and number.
	dur := fs.Duration("duration", 30*time.Second, "length of each measured run (at most 10m; at least the server's --usage-interval, 30 s by default, to measure its steady state)")
	warm := fs.Duration("warmup", 32*time.Second, "unmeasured run before each measured one, on the same connections (longer than the server's --usage-interval plus its 2 s flush)")
	alg := fs.String("alg", "ES256", "signing algorithm of the seeded API")
	serveArgs := fs.String("serve-args", "", "extra space-separated arguments to m2mauth serve (none: its defaults)")
	seededClients := fs.String("seeded-clients", "", "skip seeding: measure the data directory --seeded-data-dir (or the database --database-url, with M2MAUTH_MASTER_KEY set) that loadseed already seeded with --apps applications, with the clients `file` it wrote")
	seededDir := fs.String("seeded-data-dir", "", "with --seeded-clients on SQLite: the seeded data `directory`")
	keep := fs.Bool("keep", false, "keep the temporary directories (data, clients file with live secrets, m2mauth's log)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" || (*seeder == "" && *seededClients == "") {
		return errors.New("--m2mauth and --seeder are required: go build -o m2mauth ./cmd/m2mauth && go build -o loadseed ./internal/loadseed")
	}
	apps, err := parseSizes(*sizes, maxApps)
	if err != nil {
		return err
	}
	switch {
	case *nClients < 1 || *nClients > maxClients:
		return fmt.Errorf("--clients: want 1 to %d", maxClients)
	case *reps < 1 || *reps > 20:
		return errors.New("--reps: want 1 to 20")
	case *dur <= 0 || *dur > maxDuration:
		return fmt.Errorf("--duration: want more than 0 and at most %v", maxDuration)
	case *warm < 0 || *warm > maxDuration:
		return fmt.Errorf("--warmup: want 0 to %v", maxDuration)
	case *dbURL != "" && len(apps) != 1:
		return errors.New("--database-url takes one size: the database must be empty, so give each size its own")
	case *seededClients != "" && len(apps) != 1:
		return errors.New("--seeded-clients takes one size: the number of applications seeded")
	case *seededClients != "" && (*dbURL == "") == (*seededDir == ""):
		return errors.New("--seeded-clients needs exactly one of --seeded-data-dir and --database-url")
	case *seededClients != "" && *dbURL != "" && os.Getenv("M2MAUTH_MASTER_KEY") == "":
		return errors.New("--seeded-clients on PostgreSQL needs M2MAUTH_MASTER_KEY, the key given to loadseed")
	}
	if *dbURL != "" {
		if err := checkLoopbackDSN(*dbURL); err != nil {
			return err
		}
	}
	printMachine()
	store := "SQLite"
	if *dbURL != "" {
		store = "PostgreSQL"
	}
	fmt.Printf("%s; %d connections, %v per run after a %v warm-up, %d repetitions, server CPU from /proc/<pid>/stat, RSS from /proc/<pid>/status\n\n", store, *conns, *dur, *warm, *reps)
	var rows []scaleRow
	for _, n := range apps {
		row, err := scaleOne(ctx, scaleOpts{
			bin: *bin, seeder: *seeder, apps: n, clients: min(*nClients, n), dbURL: *dbURL, alg: *alg,
			extra: strings.Fields(*serveArgs), keep: *keep, reps: *reps, conns: *conns, dur: *dur, warm: *warm, dbPID: *dbPID,
			seededClients: *seededClients, seededDir: *seededDir,
		})
		if err != nil {
			return fmt.Errorf("%d applications: %w", n, err)
		}
		rows = append(rows, row)
	}
	fmt.Printf("\nmedians of %d repetitions (%s, %s, default settings%s):\n\n", *reps, store, *alg, map[bool]string{true: " plus " + *serveArgs, false: ""}[*serveArgs != ""])
	fmt.Println("| applications | seeding | first start, restart to /readyz | RSS idle | RSS, clients active | one client: tokens/s, CPU/token | clients taking turns: tokens/s, CPU/token | CPU ratio turns / one | per repetition: median (range) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		perRep := repRatios(r.spread.cpu, r.single.cpu)
		fmt.Printf("| %d | %v | %v, %v | %.1f MiB | %.1f MiB (%d clients) | %.0f, %.4f ms | %.0f, %.4f ms | %.2f× | %.2f× (%.2f–%.2f×) |\n",
			r.apps, seedText(r.seed), r.firstStart.Round(time.Millisecond), r.startup.Round(time.Millisecond), float64(r.rssIdle)/1024, float64(r.rssActive)/1024, r.clients,
			median(r.single.tps), median(r.single.cpu), median(r.spread.tps), median(r.spread.cpu), median(r.spread.cpu)/median(r.single.cpu),
			median(perRep), slices.Min(perRep), slices.Max(perRep))
	}
	if *dbPID != 0 {
		fmt.Println("\nPostgreSQL's CPU per token (postmaster and backends), and m2mauth's plus PostgreSQL's:")
		fmt.Println()
		fmt.Println("| applications | database, one client | database, clients taking turns | m2mauth + database, one client | m2mauth + database, turns | ratio turns / one |")
		fmt.Println("|---|---|---|---|---|---|")
		for _, r := range rows {
			dbOne, dbTurns := median(r.db[r.single]), median(r.db[r.spread])
			one, turns := dbOne+median(r.single.cpu), dbTurns+median(r.spread.cpu)
			fmt.Printf("| %d | %.4f ms | %.4f ms | %.4f ms | %.4f ms | %.2f× |\n", r.apps, dbOne, dbTurns, one, turns, turns/one)
		}
	}
	return nil
}

// repRatios returns turns[i]/one[i] for each repetition i: the two runs
// of a repetition are seconds apart, so their ratio is less exposed than
// the ratio of medians to a machine whose speed drifts over minutes.
func repRatios(turns, one []float64) []float64 {
	out := make([]float64, min(len(turns), len(one)))
	for i := range out {
		out[i] = turns[i] / one[i]
	}
	return out
}

// scaleOpts are one size's run of scale.
type scaleOpts struct {
	bin, seeder, dbURL, alg string
	apps, clients           int
	extra                   []string
	keep                    bool
	reps, conns             int
	dbPID                   int
	// seededClients and seededDir, when set, name what loadseed made
	// already: no seeding.
	seededClients, seededDir string
	dur, warm                time.Duration
}

// scaleOne seeds a database with o.apps applications, starts m2mauth on
// it, and measures startup, idle memory, then, in each repetition, one
// client and o.clients clients taking turns.
func scaleOne(ctx context.Context, o scaleOpts) (scaleRow, error) {
	row := scaleRow{apps: o.apps, clients: o.clients, db: map[*measured][]float64{}}
	dir, err := os.MkdirTemp("", "m2mauth-scale-")
	if err != nil {
		return row, err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "data directory, clients file and log in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	dataDir := filepath.Join(dir, "data")
	clientsFile := filepath.Join(dir, "clients.txt")
	// serve records where its credentials are under the user's config dir.
	env := append(os.Environ(), "HOME="+dir)
	if o.seededClients != "" {
		clientsFile, dataDir = o.seededClients, o.seededDir
		if o.dbURL != "" {
			dataDir = filepath.Join(dir, "data")
			env = append(env, "M2MAUTH_DATABASE_URL="+o.dbURL)
		}
	} else if o.dbURL != "" {
		// Replicas on PostgreSQL need a master key given; the seeder seals
		// the pepper with the same one. Neither is ever printed.
		key := make([]byte, 32)
		rand.Read(key)
		env = append(env, "M2MAUTH_MASTER_KEY="+base64.StdEncoding.EncodeToString(key), "M2MAUTH_DATABASE_URL="+o.dbURL)
	}

	seedArgs := []string{"--apps", strconv.Itoa(o.apps), "--clients", strconv.Itoa(o.clients), "--clients-file", clientsFile, "--alg", o.alg}
	if o.dbURL == "" {
		seedArgs = append(seedArgs, "--data-dir", dataDir)
	}
	if o.seededClients == "" {
		sctx, cancel := context.WithTimeout(ctx, maxSeed)
		defer cancel()
		cmd := exec.CommandContext(sctx, o.seeder, seedArgs...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stdout, os.Stderr
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			return row, fmt.Errorf("seeding: %w", err)
		}
		row.seed = time.Since(t0)
	}

	// The first start bootstraps (the administrator, signing keys); the
	// startup figure is the restart's, as after a deploy.
	first, firstStart, err := startServe(ctx, o.bin, dir, dataDir, env, o.extra)
	if err != nil {
		return row, err
	}
	first.stop()
	row.firstStart = firstStart
	srv, startup, err := startServe(ctx, o.bin, dir, dataDir, env, o.extra)
	if err != nil {
		return row, err
	}
	defer srv.stop()
	row.startup = startup
	// Idle: after the start's garbage has had a second to be collected.
	time.Sleep(time.Second)
	if row.rssIdle, err = rssKiB(srv.pid()); err != nil {
		return row, err
	}
	fmt.Printf("%d applications: seeded in %v, first start ready after %v, restart after %v, RSS idle %.1f MiB\n", o.apps, row.seed.Round(100*time.Millisecond), firstStart.Round(time.Millisecond), startup.Round(time.Millisecond), float64(row.rssIdle)/1024)

	clients, err := loadClients(clientsFile)
	if err != nil {
		return row, err
	}
	one := clients[0]
	row.single = &measured{name: "one client", pid: srv.pid(), t: target{URL: srv.url, ClientID: one.ClientID, Secret: one.Secret, Audience: one.Audience}}
	row.spread = &measured{name: fmt.Sprintf("%d clients", len(clients)), pid: srv.pid(), t: target{URL: srv.url, Spread: newRing(clients)}}

	client := newClient(o.conns)
	defer client.CloseIdleConnections()
	// Every client once, so that all are active before the first
	// measurement; bounded by count and time.
	t0 := time.Now()
	r, err := drive(ctx, client, row.spread.t, loadOpts{Conns: o.conns, Duration: 5 * time.Minute, Requests: int64(len(clients))})
	if err != nil {
		return row, err
	}
	if err := allOK(row.spread.name+" first pass", r); err != nil {
		return row, err
	}
	fmt.Printf("first pass over %d clients: %v, %.0f tokens/s\n", len(clients), time.Since(t0).Round(time.Millisecond), r.TokensPerSecond())

	for rep := 1; rep <= o.reps; rep++ {
		for _, m := range []*measured{row.single, row.spread} {
			if o.warm > 0 {
				if _, err := drive(ctx, client, m.t, loadOpts{Conns: o.conns, Duration: o.warm}); err != nil {
					return row, err
				}
			}
			db0, err := dbCPU(o.dbPID)
			if err != nil {
				return row, err
			}
			r, err := drive(ctx, client, m.t, loadOpts{Conns: o.conns, Duration: o.dur, PID: m.pid})
			if err != nil {
				return row, err
			}
			db1, err := dbCPU(o.dbPID)
			if err != nil {
				return row, err
			}
			if ctx.Err() != nil {
				return row, ctx.Err()
			}
			if err := allOK(m.name, r); err != nil {
				return row, err
			}
			m.cpu = append(m.cpu, r.CPUPerToken())
			m.tps = append(m.tps, r.TokensPerSecond())
			m.p99 = append(m.p99, r.Pct(.99))
			dbMS := (db1 - db0) / float64(max(r.OK, 1)) * 1000
			row.db[m] = append(row.db[m], dbMS)
			fmt.Printf("rep %d  %-16s %8.4f ms/token  %7.0f tokens/s  p99 %v  RSS %.1f MiB", rep, m.name, r.CPUPerToken(), r.TokensPerSecond(), r.Pct(.99).Round(10*time.Microsecond), float64(r.RSSKiB)/1024)
			if o.dbPID != 0 {
				fmt.Printf("  database %.4f ms/token", dbMS)
			}
			fmt.Println()
			if m == row.spread {
				row.rssActive = r.RSSKiB
			}
		}
	}
	return row, nil
}

// seedText is the seeding time as the table shows it; 0 means seeded
// before (--seeded-clients).
func seedText(d time.Duration) string {
	if d == 0 {
		return "before"
	}
	return d.Round(100 * time.Millisecond).String()
}

// dbCPU is treeCPUSeconds of pid, or 0 if pid is 0 (not measured).
func dbCPU(pid int) (float64, error) {
	if pid == 0 {
		return 0, nil
	}
	return treeCPUSeconds(pid)
}

// allOK returns an error unless at least 99 % of r's requests got 200.
func allOK(name string, r result) error {
	if r.OK == 0 || r.OK < r.Requests*99/100 {
		return fmt.Errorf("%s: %d of %d requests answered 200: %v", name, r.OK, r.Requests, r.Codes)
	}
	return nil
}

// startServe starts bin serve on a free loopback port on dataDir (and the
// database env names, if any), logging to dir/m2mauth.log, and returns it
// with the time from process start until /readyz first answered 200,
// polled every 2 ms.
func startServe(ctx context.Context, bin, dir, dataDir string, env, extra []string) (*proc, time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr, "--data-dir", dataDir, "--shutdown-delay", "1ms"}, extra...)...)
	logf, err := os.Create(filepath.Join(dir, "m2mauth.log"))
	if err != nil {
		return nil, 0, err
	}
	cmd.Stdout, cmd.Stderr, cmd.Env = logf, logf, env
	poll := &http.Client{Timeout: time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, 0, err
	}
	p := &proc{cmd: cmd, url: "http://" + addr, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	for time.Since(start) < maxStartup {
		resp, err := poll.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, time.Since(start), nil
			}
		}
		select {
		case <-p.done:
			return nil, 0, fmt.Errorf("%s serve exited; see %s", bin, logf.Name())
		case <-ctx.Done():
			p.stop()
			return nil, 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	p.stop()
	return nil, 0, fmt.Errorf("%s serve not ready after %v; see %s", bin, maxStartup, logf.Name())
}

// checkLoopbackDSN returns an error unless dsn is a postgres:// URL whose
// host is on loopback (or a Unix socket directory).
func checkLoopbackDSN(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("--database-url: want a postgres:// URL")
	}
	host := u.Hostname()
	if host == "" || strings.HasPrefix(host, "/") || isLoopbackHost(host) {
		return nil
	}
	return errors.New("--database-url: the database must be on loopback")
}
