// Package postgres is the PostgreSQL implementation of authz.Store, on
// jackc/pgx, for several m2mauth replicas sharing one database.
//
// Times are timestamptz, read back in UTC with the microsecond precision
// PostgreSQL keeps (see authz.StoreTime); optional times store the zero
// time.Time as NULL. API scope lists are jsonb, grant scope lists text[],
// hashes and sealed keys bytea. Every text column uses the "C" collation,
// so that orderings and list cursors compare bytes whatever the database's
// locale, as SQLite's do.
//
// Management transactions (Manage) take a transaction-level advisory lock
// first, and so do the Store's own write methods for APIs, applications,
// grants, secrets, credentials, trusted issuers and revocations, each one
// Manage of one method, the same code: every management write of the
// cluster is serialized, and what a management transaction reads stays
// true until it commits.
//
// Replicas keep caches; every write that changes what a cache holds sends
// a notification on the channel m2mauth_changes inside its transaction, so
// that it goes out when, and only if, the write commits (see Changes). The
// migrations are applied at Open under a transaction-level advisory lock,
// so replicas starting together apply each one once. TryLead elects one
// replica for cluster-wide chores with session advisory locks.
package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/m2mauth/m2mauth/internal/authz"
)

var (
	_ authz.Store      = (*Store)(nil)
	_ authz.ChangeFeed = (*Store)(nil)
	_ authz.Leader     = (*Store)(nil)
)

// Defaults for settings the DSN does not give.
const (
	// defaultMaxConns bounds the pool (pool_max_conns): plenty for one
	// replica, whose token endpoint reads through a cache. Each replica
	// also holds one connection for its change feed and one per lease it
	// tries; at PostgreSQL's default max_connections of 100, clusters of
	// more than four replicas lower pool_max_conns.
	defaultMaxConns = 20
	// defaultConnectTimeout bounds one connection attempt (connect_timeout).
	defaultConnectTimeout = 5 * time.Second
	// defaultHealthCheckPeriod is how often idle pooled connections are
	// checked (pool_health_check_period).
	defaultHealthCheckPeriod = 15 * time.Second
)

// Store is an authz.Store kept in one PostgreSQL database, shared by any
// number of replicas. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	conf   *pgx.ConnConfig // for the dedicated connections of Changes and TryLead
	logger *slog.Logger

	// Decoded API scope lists of Client, by their JSON text.
	apiScopes listCache[authz.Scope]

	// feedPoll and feedGrace time a change feed's version check
	// (defaultFeedPoll and defaultFeedGrace; tests shorten them).
	feedPoll, feedGrace time.Duration

	// closing is cancelled by Close, which then waits for listeners.
	closing   context.Context
	close     context.CancelFunc
	listeners sync.WaitGroup

	leaseMu sync.Mutex
	leases  map[string]*lease // this Store's lease connections, by lease name
}

// Open connects to the database dsn (a postgres:// URL or key=value
// string, as pgx accepts) and applies the schema migrations it lacks. The
// pool holds at most 20 connections unless the DSN says otherwise with
// pool_max_conns; pgx's other pool_* settings and connect_timeout (default
// 5 s) apply too. A nil logger discards. The DSN's password never appears
// in logs or errors.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := poolConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	closing, cancel := context.WithCancel(context.Background())
	s := &Store{
		pool:      pool,
		conf:      cfg.ConnConfig.Copy(),
		logger:    logger,
		closing:   closing,
		close:     cancel,
		leases:    map[string]*lease{},
		feedPoll:  defaultFeedPoll,
		feedGrace: defaultFeedGrace,
	}
	if err := applyMigrations(ctx, pool, logger); err != nil {
		s.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// poolConfig parses dsn and fills in the defaults for what it leaves out.
func poolConfig(dsn string) (*pgxpool.Config, error) {
	// pgxpool.ParseConfig consumes the pool_* parameters; a separate parse
	// tells which ones the DSN gave.
	given, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if _, ok := given.RuntimeParams["pool_max_conns"]; !ok {
		cfg.MaxConns = defaultMaxConns
	}
	if _, ok := given.RuntimeParams["pool_health_check_period"]; !ok {
		cfg.HealthCheckPeriod = defaultHealthCheckPeriod
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "m2mauth"
	}
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		// timestamptz values scan in UTC, not in the process's local zone.
		conn.TypeMap().RegisterType(&pgtype.Type{
			Name:  "timestamptz",
			OID:   pgtype.TimestamptzOID,
			Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
		})
		return nil
	}
	return cfg, nil
}

// Close stops the change feeds, releases the leases this Store holds and
// closes the pool.
func (s *Store) Close() error {
	s.close()
	s.listeners.Wait()
	s.releaseLeases()
	s.pool.Close()
	return nil
}

// write runs fn in a transaction and commits it if fn returns nil. If
// change is not nil, the transaction also notifies it to every replica's
// Changes, on commit. A transaction that fails on a serialization failure
// or a deadlock is run again, up to three times in all; one whose BEGIN
// finds the connection lost is begun again (see retryLost). Errors are
// wrapped with op.
func (s *Store) write(ctx context.Context, op string, change *authz.Change, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		var tx pgx.Tx
		err = s.retryLost(ctx, func() error {
			var err error
			tx, err = s.pool.Begin(ctx)
			return err
		})
		if err != nil {
			break
		}
		err = fn(tx)
		if err == nil && change != nil {
			err = notify(ctx, tx, *change)
		}
		if err == nil {
			err = tx.Commit(ctx)
		}
		// After a commit, or on a dead connection, this does nothing.
		tx.Rollback(ctx)
		if attempt == 3 || !retryable(err) {
			break
		}
	}
	if err != nil {
		return wrap(op, err)
	}
	return nil
}

// retryLost runs fn, a read or a BEGIN: something without effect until it
// succeeds. If fn fails because its connection was lost, the pool is reset
// and fn runs once more. A lost connection most often means that the
// server restarted or failed over, which ends every pooled connection; the
// pool would hand out the dead ones one by one, each failing a request,
// while after a reset the retry gets a new connection.
func (s *Store) retryLost(ctx context.Context, fn func() error) error {
	err := fn()
	if err != nil && connLost(err) && ctx.Err() == nil {
		s.logger.WarnContext(ctx, "postgres: connection lost; resetting the pool and retrying", "error", err)
		s.pool.Reset()
		err = fn()
	}
	return err
}

// connLost reports whether err means the connection failed rather than
// the statement: a network error, the server closing the connection, or
// the server ending the session (SQLSTATE class 08, or 57P01-57P03 and
// 57P05: administrator, crash or idle-session shutdown).
func connLost(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "57P05":
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	var ne net.Error
	return pgconn.SafeToRetry(err) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// execOne runs one statement in a write transaction (see write) that must
// change a row; if it changes none the error wraps authz.ErrNotFound and
// nothing is notified.
func (s *Store) execOne(ctx context.Context, op string, change *authz.Change, query string, args ...any) error {
	return s.write(ctx, op, change, func(tx pgx.Tx) error {
		return changeOne(ctx, tx, query, args...)
	})
}

// changeOne runs one statement on q that must change a row; if it changes
// none the error is authz.ErrNotFound.
func changeOne(ctx context.Context, q querier, query string, args ...any) error {
	tag, err := q.Exec(ctx, query, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return authz.ErrNotFound
	}
	return nil
}

// querier is what the statements of a method run on: the pool, or a
// transaction (*pgxpool.Pool or pgx.Tx).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// retryable reports whether err is a transient failure of a transaction
// that running it again may cure.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// wrap prefixes err with op and translates what PostgreSQL reports into
// the authz errors: a violated unique key into ErrConflict, a missing
// foreign-key parent or pgx.ErrNoRows into ErrNotFound, a failed CHECK into
// ErrInvalid, and a database that could not be reached (see unreachable)
// into ErrUnavailable, the driver's error staying in the chain. Errors
// already wrapping an authz error keep it; a nil err stays nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, authz.ErrNotFound) || errors.Is(err, authz.ErrConflict) ||
		errors.Is(err, authz.ErrInvalid) || errors.Is(err, authz.ErrUnavailable) {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", op, authz.ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("postgres: %s: %w: %v", op, authz.ErrConflict, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("postgres: %s: %w: %v", op, authz.ErrNotFound, err)
		case "23514": // check_violation
			return fmt.Errorf("postgres: %s: %w: %v", op, authz.ErrInvalid, err)
		}
	}
	if unreachable(err) {
		return fmt.Errorf("postgres: %s: %w: %w", op, authz.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// unreachable reports whether err means that the database could not be
// reached, rather than that it refused the statement: a failed connection
// attempt, a lost connection (see connLost), or ctx's deadline passing
// while the call waited for the server, a connection or a lock.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ce) ||
		errors.Is(err, pgconn.ErrConnClosed) || connLost(err)
}

// collect returns every row of a query, read with scan; rows and err are
// what Query returned.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	list := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
	}
	return list, rows.Err()
}

// nullTime returns an optional time as stored: NULL for the zero time.
func nullTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// fromNull is the inverse of nullTime.
func fromNull(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time
}

// nonNil returns b, or an empty slice if b is nil, for NOT NULL bytea
// columns: pgx sends a nil slice as NULL.
func nonNil[T any](b []T) []T {
	if b == nil {
		return []T{}
	}
	return b
}

// marshalScopes returns an API's scopes as stored in jsonb, "[]" when
// there are none.
func marshalScopes(list []authz.Scope) (string, error) {
	b, err := json.Marshal(nonNil(list))
	return string(b), err
}

// unmarshalList parses the JSON array text.
func unmarshalList[T any](text []byte) ([]T, error) {
	list := []T{}
	if err := json.Unmarshal(text, &list); err != nil {
		return nil, fmt.Errorf("decoding stored list %q: %w", text, err)
	}
	return list, nil
}

// Cursors are opaque to callers: the base64url encoding of the last
// returned item's sort key, "<microseconds since the Unix epoch>:<id>".

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMicro(), 10) + ":" + id))
}

func decodeCursor(cursor string) (t time.Time, id string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("malformed cursor: %w", authz.ErrInvalid)
	}
	us, id, ok := strings.Cut(string(b), ":")
	if !ok || id == "" {
		return time.Time{}, "", fmt.Errorf("malformed cursor: %w", authz.ErrInvalid)
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("malformed cursor: %w", authz.ErrInvalid)
	}
	return time.UnixMicro(n).UTC(), id, nil
}

// where collects the conditions and arguments of a list query.
type where struct {
	conds []string
	args  []any
}

// arg adds v to the arguments and returns its placeholder, "$<n>".
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// and adds cond, whose placeholders come from arg.
func (w *where) and(cond string) { w.conds = append(w.conds, cond) }

// String returns the WHERE clause, "" when there is no condition.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// assignments collects the SET list of a patch's UPDATE; its arguments go
// to a where, which numbers the placeholders of the whole statement.
type assignments []string

// String returns the SET list.
func (a assignments) String() string { return strings.Join(a, ", ") }
