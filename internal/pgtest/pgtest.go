// Package pgtest gives tests a real PostgreSQL server: a throwaway cluster
// that it creates with initdb in a temporary directory and starts with
// pg_ctl on a free loopback port, or the server named by
// M2MAUTH_TEST_DATABASE_URL. It is a non-test package so that the tests of
// every package can import it.
//
// A test binary shares one cluster (Shared) and isolates its tests by
// giving each its own database (NewDatabase). Its TestMain calls Main,
// which stops the shared cluster when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.Shared(t).NewDatabase(t)
//		...
//	}
//
// A test that stops or restarts PostgreSQL takes a cluster of its own
// (Start), so that it does not pull the server from under other tests.
//
// Without PostgreSQL binaries (looked for on PATH, then in
// /usr/lib/postgresql/*/bin) Shared and Start skip the test, and the first
// skip of a test binary prints "=== PostgreSQL not found: <package> tests
// SKIPPED" to stderr and the terminal; M2MAUTH_TEST_REQUIRE_POSTGRES=1
// fails the tests instead. initdb refuses
// to run as root; as root the binaries run as the "postgres" OS user that
// the Debian package creates.
//
// If the test binary dies before it stops its clusters (a -timeout panic,
// SIGKILL), a watchdog process stops them and removes their files within
// about a second.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDatabaseURL names the environment variable that points the tests at an
// existing server instead of a throwaway cluster: a postgres:// URL whose
// user may create databases. Clusters on such a server cannot be stopped or
// restarted.
const EnvDatabaseURL = "M2MAUTH_TEST_DATABASE_URL"

// EnvRequire names the environment variable that, when set to 1, turns the
// skip for missing PostgreSQL binaries into a failure: CI sets it after
// installing PostgreSQL, so that a broken installation cannot pass as a
// skipped test.
const EnvRequire = "M2MAUTH_TEST_REQUIRE_POSTGRES"

// skipMessage is why a test skips when PostgreSQL is not installed.
const skipMessage = "PostgreSQL not installed: install the Debian package postgresql (.ci/run does) to run these tests"

// ErrNotInstalled is returned by StartCluster when no PostgreSQL binaries
// are found.
var ErrNotInstalled = errors.New("pgtest: " + skipMessage)

// ErrExternal is returned by Stop, StartAgain and Restart on a cluster that
// is the server named by M2MAUTH_TEST_DATABASE_URL.
var ErrExternal = errors.New("pgtest: the server named by " + EnvDatabaseURL + " cannot be stopped or started by the tests")

// serverOptions are the postgres options of every throwaway cluster: fast
// and unsafe (no fsync), loopback only, enough connections for tests that
// open many stores at once.
const serverOptions = "-F -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"

// Cluster is one PostgreSQL server for tests. Its methods are safe for
// concurrent use.
type Cluster struct {
	dsn string // of the "postgres" database

	// The rest is unset for an external server.
	bin     string   // directory of initdb, pg_ctl and postgres
	runAs   []string // command prefix running a binary as the postgres user; nil if not root
	dir     string   // temporary directory holding data/, the socket and the log
	port    int
	watcher *exec.Cmd

	mu      sync.Mutex // serializes Stop, StartAgain and Close
	running bool
	closed  bool
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
	mainUsed   bool
)

// Main runs the tests of m and then stops and removes the shared cluster,
// if a test started it; it exits with m's code. Call it from TestMain.
func Main(m *testing.M) {
	mainUsed = true
	code := m.Run()
	if shared != nil {
		if err := shared.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// Shared returns the test binary's shared cluster, starting it on the
// first call. It skips t if PostgreSQL is not installed (fails it if
// M2MAUTH_TEST_REQUIRE_POSTGRES=1) and fails t if the cluster does not
// start. The binary's TestMain must call Main. Tests that stop or restart
// the server use Start instead.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	if !mainUsed {
		t.Fatal("pgtest.Shared needs the package's TestMain to call pgtest.Main, which stops the shared cluster")
	}
	sharedOnce.Do(func() { shared, sharedErr = StartCluster() })
	check(t, sharedErr)
	return shared
}

// Start returns a cluster of t's own, removed when t ends: for tests that
// stop or restart the server. It skips t if PostgreSQL is not installed
// (fails it if M2MAUTH_TEST_REQUIRE_POSTGRES=1) and fails t if the cluster
// does not start.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := StartCluster()
	check(t, err)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// check skips or fails t for an error of StartCluster.
func check(t testing.TB, err error) {
	t.Helper()
	switch {
	case err == nil:
	case errors.Is(err, ErrNotInstalled) && os.Getenv(EnvRequire) != "1":
		noticeOnce.Do(func() { announce(callerPackage()) })
		t.Skip(skipMessage)
	default:
		t.Fatal(err)
	}
}

// noticeOnce makes the loud line of announceSkip appear once per test
// binary, however many of its tests skip.
var noticeOnce sync.Once

// announce is announceSkip; pgtest's own tests, which hide the binaries,
// replace it.
var announce = announceSkip

// announceSkip tells the person running the tests that pkg's PostgreSQL
// tests are skipped, loudly, since go test shows a skipping package as
// "ok": on stderr, which go test shows with -v, for one package or a
// failure, and on the terminal, if there is one, because go test ./...
// swallows what a passing package prints.
func announceSkip(pkg string) {
	line := skipNotice(pkg)
	fmt.Fprint(os.Stderr, line)
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		fmt.Fprint(tty, line)
		tty.Close()
	}
}

// skipNotice is the line announceSkip writes for pkg.
func skipNotice(pkg string) string {
	return "=== PostgreSQL not found: " + pkg + " tests SKIPPED (install postgresql, or set " + EnvRequire + "=1 to fail instead)\n"
}

// modulePath is the module the tests' packages are named relative to.
const modulePath = "github.com/m2mauth/m2mauth/"

// callerPackage returns the package, relative to the module, of the first
// caller in the module outside this file: the package whose tests skip.
func callerPackage() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if pkg := packageOf(f.Function); pkg != "" && filepath.Base(f.File) != "pgtest.go" {
			return pkg
		}
		if !more {
			return "this package's"
		}
	}
}

// packageOf returns the package of a function name as runtime reports it
// ("github.com/m2mauth/m2mauth/internal/store/postgres_test.TestX.func1"),
// relative to the module and without the _test suffix
// ("internal/store/postgres"); "" for a function outside the module.
func packageOf(function string) string {
	if !strings.HasPrefix(function, modulePath) {
		return ""
	}
	slash := strings.LastIndex(function, "/")
	dot := strings.Index(function[slash+1:], ".")
	if dot < 0 {
		return ""
	}
	pkg := function[:slash+1+dot]
	return strings.TrimSuffix(strings.TrimPrefix(pkg, modulePath), "_test")
}

// StartCluster creates and starts a throwaway cluster, or returns the
// external server if M2MAUTH_TEST_DATABASE_URL is set. The caller calls
// Close when done. It returns an error wrapping ErrNotInstalled if no
// PostgreSQL binaries are found.
func StartCluster() (*Cluster, error) {
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		if _, err := databaseURL(u, "postgres"); err != nil {
			return nil, fmt.Errorf("pgtest: %s: %w", EnvDatabaseURL, err)
		}
		return &Cluster{dsn: u}, nil
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		if c.runAs, err = asPostgres(); err != nil {
			return nil, err
		}
	}
	if err := c.create(); err != nil {
		c.remove()
		return nil, err
	}
	// A port found free may be taken before postgres binds it: try others.
	for attempt := 1; ; attempt++ {
		if c.port, err = freePort(); err != nil {
			c.remove()
			return nil, err
		}
		if err = c.start(); err == nil {
			break
		}
		if attempt == 3 {
			c.remove()
			return nil, err
		}
	}
	c.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	if err := c.watch(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// DSN returns the URL of the cluster's "postgres" database.
func (c *Cluster) DSN() string { return c.dsn }

// Controllable reports whether the tests can stop and start the server:
// false for the server named by M2MAUTH_TEST_DATABASE_URL.
func (c *Cluster) Controllable() bool { return c.bin != "" }

// SkipUnlessControllable skips t if the server cannot be stopped and
// started (see Controllable).
func (c *Cluster) SkipUnlessControllable(t testing.TB) {
	t.Helper()
	if !c.Controllable() {
		t.Skip("the server named by " + EnvDatabaseURL + " cannot be stopped or restarted by the tests")
	}
}

// NewDatabase creates an empty database with a unique name and returns its
// URL; it drops the database (closing its connections) when t ends. It
// fails t on error.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	name := "m2mauth_test_" + hex.EncodeToString(b[:])
	dsn, err := databaseURL(c.dsn, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.admin(context.Background(), `CREATE DATABASE `+name+` TEMPLATE template0`); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		// The server may have been stopped on purpose by the test.
		if !c.isRunning() {
			return
		}
		if err := c.admin(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return dsn
}

// admin runs one statement on the cluster's "postgres" database.
func (c *Cluster) admin(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// isRunning reports whether the server is (meant to be) up.
func (c *Cluster) isRunning() bool {
	if !c.Controllable() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running && !c.closed
}

// Stop stops the server (pg_ctl stop -m fast: open connections are ended)
// and keeps its data, so that StartAgain can start it on the same port.
// Returns ErrExternal for an external server.
func (c *Cluster) Stop() error {
	if !c.Controllable() {
		return ErrExternal
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("pgtest: cluster closed")
	}
	if !c.running {
		return nil
	}
	if err := c.pgctl("-m", "fast", "-w", "stop"); err != nil {
		return err
	}
	c.running = false
	return nil
}

// StartAgain starts the stopped server again, on the same port with the
// same data. Returns ErrExternal for an external server.
func (c *Cluster) StartAgain() error {
	if !c.Controllable() {
		return ErrExternal
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("pgtest: cluster closed")
	}
	if c.running {
		return nil
	}
	return c.start()
}

// Restart stops the server and starts it again (see Stop and StartAgain).
func (c *Cluster) Restart() error {
	if err := c.Stop(); err != nil {
		return err
	}
	return c.StartAgain()
}

// Close stops a throwaway cluster and removes its files; it does nothing to
// an external server. Closing twice is not an error.
func (c *Cluster) Close() error {
	if !c.Controllable() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var err error
	if c.running {
		// immediate: the files go next, so nothing needs to reach the disk.
		err = c.pgctl("-m", "immediate", "-w", "stop")
		c.running = false
	}
	if c.watcher != nil {
		c.watcher.Process.Kill()
		c.watcher.Wait()
	}
	c.remove()
	return err
}

// create makes the temporary directory and runs initdb in it.
func (c *Cluster) create() error {
	base := ""
	if c.runAs != nil {
		// The postgres user must reach the directory: TMPDIR may lie under
		// a home it cannot enter, /tmp never does.
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "m2mauth-pg-")
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	c.dir = dir
	if c.runAs != nil {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	out, err := c.command(filepath.Join(c.bin, "initdb"),
		"-D", c.data(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	return nil
}

// start runs pg_ctl start on c.port and waits until the server accepts
// connections.
func (c *Cluster) start() error {
	opts := fmt.Sprintf("-k %s -p %d -h 127.0.0.1 %s", c.dir, c.port, serverOptions)
	if err := c.pgctl("-w", "-t", "60", "-l", c.log(), "-o", opts, "start"); err != nil {
		if log, rerr := os.ReadFile(c.log()); rerr == nil {
			err = fmt.Errorf("%w\nserver log:\n%s", err, tail(string(log), 2000))
		}
		return err
	}
	c.running = true
	return nil
}

// pgctl runs pg_ctl on the cluster's data directory with args.
func (c *Cluster) pgctl(args ...string) error {
	cmd := c.command(filepath.Join(c.bin, "pg_ctl"), append([]string{"-D", c.data()}, args...)...)
	// The server pg_ctl starts writes to the log file, not to our pipe;
	// WaitDelay guards against one that would keep the pipe open.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// watch starts the watchdog: a shell that outlives this process, waits for
// it to exit and then stops the server and removes its files. Close kills
// the watchdog first, so it only acts if this process died without
// closing the cluster. It runs in its own process group, so that a Ctrl-C
// that kills the test binary leaves it to clean up.
func (c *Cluster) watch() error {
	stop := append(append([]string{}, c.runAs...), filepath.Join(c.bin, "pg_ctl"), "-D", c.data(), "-m", "immediate", "-w", "stop")
	const script = `p=$1; dir=$2; shift 2
while kill -0 "$p" 2>/dev/null; do sleep 1; done
"$@" >/dev/null 2>&1
rm -rf "$dir"`
	args := append([]string{"-c", script, "pgtest-watchdog", strconv.Itoa(os.Getpid()), c.dir}, stop...)
	cmd := exec.Command("/bin/sh", args...)
	// No inherited stdout: go test waits for the test binary's output to
	// close, and would wait for the watchdog too.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: starting the watchdog: %w", err)
	}
	c.watcher = cmd
	return nil
}

// remove deletes the cluster's temporary directory.
func (c *Cluster) remove() {
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) log() string  { return filepath.Join(c.dir, "postgres.log") }

// command returns a command running the PostgreSQL binary name, as the
// postgres user when this process is root.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, c.runAs...), name), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.dir
	return cmd
}

// debianBinaries matches the directories where the Debian packages of
// PostgreSQL install their binaries, one per major version.
var debianBinaries = "/usr/lib/postgresql/*/bin"

// findBinaries returns the directory holding initdb, pg_ctl and postgres:
// the one on PATH, else the newest /usr/lib/postgresql/<version>/bin.
func findBinaries() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if dir := filepath.Dir(p); has(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(debianBinaries)
	// Newest major version first: "9.6" < "10" < "15".
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	return "", ErrNotInstalled
}

// version returns the numeric major version in a /usr/lib/postgresql/<v>/bin path.
func version(bin string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(bin)), 64)
	return v
}

// asPostgres returns the command prefix that runs a program as the
// postgres OS user.
func asPostgres() ([]string, error) {
	if _, err := user.Lookup("postgres"); err != nil {
		return nil, fmt.Errorf("pgtest: initdb refuses to run as root, and there is no postgres user to run it as (the Debian package postgresql creates one): %w", err)
	}
	if p, err := exec.LookPath("runuser"); err == nil {
		return []string{p, "-u", "postgres", "--"}, nil
	}
	if p, err := exec.LookPath("setpriv"); err == nil {
		u, _ := user.Lookup("postgres")
		return []string{p, "--reuid=" + u.Uid, "--regid=" + u.Gid, "--init-groups", "--"}, nil
	}
	return nil, errors.New("pgtest: running as root needs runuser or setpriv (util-linux) to run PostgreSQL as the postgres user")
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// databaseURL returns the postgres:// URL dsn with its database replaced by
// name.
func databaseURL(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("pgtest: want a postgres:// URL, not %q", redact(dsn))
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// redact returns dsn without its password, for error messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
		return u.String()
	}
	return "(unparsable)"
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
