// Command loadseed fills an m2mauth database with many applications, for
// load runs at scale (tools/load scale, docs/benchmarks.md "Many clients
// and a million applications"):
//
//	go run ./internal/loadseed --data-dir DIR --apps 1000000 --clients 100000 --clients-file clients.txt
//	M2MAUTH_MASTER_KEY=... go run ./internal/loadseed --database-url postgres://... --apps 100000 --clients-file clients.txt
//
// It creates one API (--audience, one scope "read", signing with --alg)
// through manage, then --apps applications, each with one client secret
// and a grant of that API, through the store's own Store.Manage and
// Tx.CreateApplication, --batch applications per transaction. Secrets are
// generated and hashed exactly as the server does (clientsecret, under the
// database's pepper, sealed with the master key the server will use), so
// that `m2mauth serve` started on the same data directory or database
// authenticates them. The applications are not audited one by one: they
// are a benchmark fixture, not an operator's action.
//
// The client_id, client secret and audience of the first --clients
// applications go to --clients-file (mode 0600), one application a line,
// separated by single spaces: the file tools/load reads (run
// --clients-file). The file holds live secrets: delete it with the data.
//
// On SQLite the master key is M2MAUTH_MASTER_KEY, --master-key-file, or
// the data directory's master.key, created if missing (as serve does); on
// PostgreSQL it must be given, as serve requires. It refuses a data
// directory that is not empty, or a database that holds an application,
// unless --append; it holds the data directory's lock while it writes, so
// it never writes under a running server. It is bounded: at most
// maxApps applications, and --timeout.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientsecret"
	"github.com/m2mauth/m2mauth/internal/manage"
	"github.com/m2mauth/m2mauth/internal/masterkey"
	"github.com/m2mauth/m2mauth/internal/server"
	"github.com/m2mauth/m2mauth/internal/store/postgres"
	"github.com/m2mauth/m2mauth/internal/store/sqlite"
	"github.com/m2mauth/m2mauth/internal/token"
)

const (
	// maxApps bounds --apps.
	maxApps = 10_000_000
	// maxBatch bounds --batch, the applications per transaction.
	maxBatch = 10_000
	// maxTimeout bounds --timeout.
	maxTimeout = 2 * time.Hour

	// Scope is the one scope of the seeded API, granted to every seeded
	// application.
	Scope = "read"
)

// options are loadseed's flags.
type options struct {
	DataDir     string
	DatabaseURL string
	MasterKey   string // standard base64; never logged
	KeyFile     string
	Apps        int
	Clients     int
	ClientsFile string
	Audience    string
	Alg         string
	Batch       int
	Append      bool
	Timeout     time.Duration
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadseed:", err)
		}
		os.Exit(1)
	}
}

// parseFlags parses args into options and checks them. Returns an error
// naming the flag for a value out of its bounds.
func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadseed", flag.ContinueOnError)
	fs.StringVar(&o.DataDir, "data-dir", "", "SQLite data directory for `m2mauth serve --data-dir` (created; must be empty unless --append)")
	fs.StringVar(&o.DatabaseURL, "database-url", os.Getenv("M2MAUTH_DATABASE_URL"), "PostgreSQL postgres:// URL instead of --data-dir (or M2MAUTH_DATABASE_URL)")
	fs.StringVar(&o.KeyFile, "master-key-file", "", "file holding the master key (default: M2MAUTH_MASTER_KEY, else, on SQLite, the data directory's master.key)")
	fs.IntVar(&o.Apps, "apps", 1000, "applications to create (at most 10 000 000)")
	fs.IntVar(&o.Clients, "clients", -1, "how many of them (the first) to write to --clients-file (default: 100 000 or --apps if fewer)")
	fs.StringVar(&o.ClientsFile, "clients-file", "", "`file` for the credentials of the first --clients applications (mode 0600, replaced)")
	fs.StringVar(&o.Audience, "audience", "https://load.example/", "identifier of the API every application is granted (created unless it exists)")
	fs.StringVar(&o.Alg, "alg", authz.ES256, "signing_alg of the API, if created")
	fs.IntVar(&o.Batch, "batch", 5000, "applications per transaction (at most 10 000)")
	fs.BoolVar(&o.Append, "append", false, "add to a data directory or database that is not empty")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "give up after this long (at most 2h)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.MasterKey = os.Getenv("M2MAUTH_MASTER_KEY")
	if o.Clients == -1 {
		o.Clients = min(100_000, o.Apps)
	}
	switch {
	case (o.DataDir == "") == (o.DatabaseURL == ""):
		return o, errors.New("give exactly one of --data-dir and --database-url")
	case o.Apps < 1 || o.Apps > maxApps:
		return o, fmt.Errorf("--apps %d: want 1 to %d", o.Apps, maxApps)
	case o.Clients < 0 || o.Clients > o.Apps:
		return o, fmt.Errorf("--clients %d: want 0 to --apps (%d)", o.Clients, o.Apps)
	case o.Clients > 0 && o.ClientsFile == "":
		return o, errors.New("--clients-file is required unless --clients 0")
	case o.Batch < 1 || o.Batch > maxBatch:
		return o, fmt.Errorf("--batch %d: want 1 to %d", o.Batch, maxBatch)
	case o.Timeout <= 0 || o.Timeout > maxTimeout:
		return o, fmt.Errorf("--timeout %v: want more than 0 and at most %v", o.Timeout, maxTimeout)
	case !authz.ValidSigningAlg(o.Alg):
		return o, fmt.Errorf("--alg %q: want one of %v", o.Alg, authz.SigningAlgs)
	case o.DatabaseURL != "" && o.MasterKey == "" && o.KeyFile == "":
		return o, errors.New("PostgreSQL needs the master key the servers use: set M2MAUTH_MASTER_KEY or --master-key-file")
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	res, err := seed(ctx, o, rand.Reader, time.Now)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "seeded %d applications in %v (%.0f applications/s), granted %s (scope %s)\n",
		res.Apps, res.Elapsed.Round(time.Millisecond), float64(res.Apps)/res.Elapsed.Seconds(), o.Audience, Scope)
	if o.Clients > 0 {
		fmt.Fprintf(out, "credentials of the first %d in %s\n", o.Clients, o.ClientsFile)
	}
	return nil
}

// result is what seed did.
type result struct {
	Apps    int
	Elapsed time.Duration
}

// seed does the work of run with the randomness r and the clock now.
func seed(ctx context.Context, o options, r io.Reader, now func() time.Time) (result, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var (
		st     authz.Store
		sealer *masterkey.Sealer
		err    error
	)
	if o.DataDir != "" {
		var unlock func()
		st, sealer, unlock, err = openSQLite(ctx, o, r, log)
		if err != nil {
			return result{}, err
		}
		defer unlock()
	} else {
		if sealer, err = loadSealer(o, r); err != nil {
			return result{}, err
		}
		pg, err := postgres.Open(ctx, o.DatabaseURL, log)
		if err != nil {
			return result{}, err
		}
		st = pg
	}
	defer st.Close()
	if !o.Append {
		apps, _, err := st.ListApplications(ctx, authz.ApplicationFilter{}, authz.Page{Limit: 1})
		if err != nil {
			return result{}, err
		}
		if len(apps) > 0 {
			return result{}, errors.New("the database already holds applications: give --append to add to it")
		}
	}
	hasher, err := pepper(ctx, st, sealer, r)
	if err != nil {
		return result{}, err
	}
	svc := &manage.Service{
		Store: st, Hasher: hasher, Keys: token.NewKeys(st, sealer, now, r, log),
		DefaultAlg: o.Alg, Now: now, Rand: r, Log: log,
	}
	api, err := st.GetAPIByIdentifier(ctx, o.Audience)
	if errors.Is(err, authz.ErrNotFound) {
		api, err = svc.CreateAPI(ctx, manage.System(), manage.NewAPI{
			Identifier: o.Audience, Name: "load " + o.Audience, SigningAlg: o.Alg,
			Scopes: []authz.Scope{{Value: Scope, Description: "Read (load test)"}},
		})
	}
	if err != nil {
		return result{}, fmt.Errorf("API %s: %w", o.Audience, err)
	}

	var w *bufio.Writer
	if o.Clients > 0 {
		f, err := os.OpenFile(o.ClientsFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		w = bufio.NewWriterSize(f, 1<<16)
	}

	start := time.Now()
	b := batch{hasher: hasher, rand: r, api: api}
	for done := 0; done < o.Apps; {
		if err := ctx.Err(); err != nil {
			return result{}, fmt.Errorf("after %d applications: %w", done, err)
		}
		n := min(o.Batch, o.Apps-done)
		if err := b.build(n, done, authz.StoreTime(now())); err != nil {
			return result{}, err
		}
		if err := st.Manage(ctx, b.insert); err != nil {
			return result{}, fmt.Errorf("after %d applications: %w", done, err)
		}
		for i := range b.apps {
			if done+i < o.Clients {
				fmt.Fprintf(w, "%s %s %s\n", b.apps[i].ClientID, b.plain[i], api.Identifier)
			}
		}
		done += n
	}
	if w != nil {
		if err := w.Flush(); err != nil {
			return result{}, err
		}
	}
	return result{Apps: o.Apps, Elapsed: time.Since(start)}, nil
}

// batch is the applications of one transaction, built before it starts
// so that a retried transaction inserts the same ones.
type batch struct {
	hasher *clientsecret.Hasher
	rand   io.Reader
	api    authz.API

	apps    []authz.Application
	secrets []authz.Secret
	grants  []authz.Grant
	plain   []string
}

// build makes n applications numbered from first, created at now, each
// with one secret and a grant of b.api's scope, as manage does.
func (b *batch) build(n, first int, now time.Time) error {
	b.apps, b.secrets, b.grants, b.plain = b.apps[:0], b.secrets[:0], b.grants[:0], b.plain[:0]
	for i := range n {
		clientID, err := authz.NewClientID(b.rand)
		if err != nil {
			return err
		}
		grantID, err := authz.NewID(b.rand, "grt_")
		if err != nil {
			return err
		}
		id, plain, err := clientsecret.Generate(b.rand)
		if err != nil {
			return err
		}
		name := "load-" + strconv.Itoa(first+i)
		b.apps = append(b.apps, authz.Application{ClientID: clientID, Name: name, CreatedAt: now, UpdatedAt: now})
		b.secrets = append(b.secrets, authz.Secret{ID: id, ClientID: clientID, Hash: b.hasher.Hash(plain), Prefix: clientsecret.DisplayPrefix(id), CreatedAt: now, UpdatedAt: now})
		b.grants = append(b.grants, authz.Grant{ID: grantID, ClientID: clientID, APIID: b.api.ID, Audience: b.api.Identifier, Scopes: []string{Scope}, CreatedAt: now, UpdatedAt: now})
		b.plain = append(b.plain, plain)
	}
	return nil
}

// insert writes the batch in tx (Store.Manage may run it more than once).
func (b *batch) insert(tx authz.Tx) error {
	ctx := context.Background()
	for i := range b.apps {
		if err := tx.CreateApplication(ctx, b.apps[i], b.secrets[i:i+1], b.grants[i:i+1]); err != nil {
			return fmt.Errorf("application %s: %w", b.apps[i].Name, err)
		}
	}
	return nil
}

// openSQLite prepares the data directory as serve does (mode 0700, the
// database file 0600, the master key), takes its lock, and opens the
// database. unlock releases the lock.
func openSQLite(ctx context.Context, o options, r io.Reader, log *slog.Logger) (authz.Store, *masterkey.Sealer, func(), error) {
	dir := o.DataDir
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("data dir: %w", err)
	}
	if len(entries) > 0 && !o.Append {
		return nil, nil, nil, fmt.Errorf("data dir %s is not empty: give --append to add to its database", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, nil, fmt.Errorf("data dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, server.LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("data dir lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, nil, nil, fmt.Errorf("data dir %s is in use (is m2mauth serve running on it?): %w", dir, err)
	}
	unlock := func() { lock.Close() }
	if o.MasterKey == "" && o.KeyFile == "" {
		o.KeyFile = filepath.Join(dir, server.MasterKeyFile)
		if _, _, err := masterkey.LoadOrCreateFile(o.KeyFile, r); err != nil {
			unlock()
			return nil, nil, nil, err
		}
	}
	sealer, err := loadSealer(o, r)
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	path := filepath.Join(dir, server.DatabaseFile)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		unlock()
		return nil, nil, nil, fmt.Errorf("data dir: %w", err)
	}
	st, err := sqlite.Open(ctx, path, log)
	if err != nil {
		unlock()
		return nil, nil, nil, err
	}
	return st, sealer, unlock, nil
}

// loadSealer loads the master key from o.MasterKey or o.KeyFile.
func loadSealer(o options, r io.Reader) (*masterkey.Sealer, error) {
	var key []byte
	var err error
	if o.MasterKey != "" {
		key, err = masterkey.Parse(o.MasterKey)
	} else {
		key, err = masterkey.LoadFile(o.KeyFile)
	}
	if err != nil {
		return nil, err
	}
	return masterkey.NewSealer(r, key)
}

// pepper loads the client-secret pepper sealed in the database, creating
// it on a database without one, as the server does (server.OpenPepper).
func pepper(ctx context.Context, st authz.Store, sealer *masterkey.Sealer, r io.Reader) (*clientsecret.Hasher, error) {
	p, _, err := server.OpenPepper(ctx, st, sealer, r)
	if err != nil {
		return nil, err
	}
	return clientsecret.NewHasher(p)
}
