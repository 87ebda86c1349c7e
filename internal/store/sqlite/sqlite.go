// Package sqlite is the SQLite implementation of authz.Store, on the pure-Go
// driver modernc.org/sqlite so that m2mauth builds with CGO_ENABLED=0.
//
// The database runs in WAL mode. Every write goes through one writer
// connection whose transactions begin with BEGIN IMMEDIATE, so writers from
// this and other processes queue on the busy timeout instead of failing
// with SQLITE_BUSY half-way through a transaction; reads use a separate pool
// of query-only connections that WAL lets run beside the writer.
//
// Management transactions (Manage) are transactions on the writer, so they
// are serialized with every other write; the Store's own write methods for
// APIs, applications, grants, secrets, credentials, trusted issuers,
// revocations and the audit log are each one Manage of one method, the
// same code.
//
// Times are stored as INTEGER microseconds since the Unix epoch and read
// back in UTC (see authz.StoreTime); optional times store the zero
// time.Time as NULL. Lists (scopes, introspection audiences) are JSON text
// and booleans INTEGER 0/1.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/m2mauth/m2mauth/internal/authz"
)

var _ authz.Store = (*Store)(nil)

// busyTimeout is how long a connection waits for another one's lock before
// it fails with SQLITE_BUSY, in milliseconds.
const busyTimeout = 5000

// Store is an authz.Store kept in one SQLite database file. It is safe for
// concurrent use.
type Store struct {
	w *sql.DB // the one writer connection
	r *sql.DB // query-only readers

	// client is the token endpoint's lookup (see clientQuery), prepared
	// once on the read pool.
	client *sql.Stmt
	// Decoded lists of the lookup, by their JSON text: the APIs' scopes,
	// and the grants' scopes and the application's introspection
	// audiences.
	apiScopes   listCache[authz.Scope]
	stringLists listCache[string]
}

// Open opens the SQLite database at path, creating the file if it does not
// exist, and applies the schema migrations it lacks. path must name a file:
// the writer and the readers are separate connections, so ":memory:" does
// not work. A nil logger discards.
func Open(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	var err error
	s.w, err = sql.Open("sqlite", dsn(path,
		"_txlock=immediate",
		"_pragma=busy_timeout("+strconv.Itoa(busyTimeout)+")",
		"_pragma=synchronous(NORMAL)",
		"_pragma=foreign_keys(1)",
		// The statement journal of a multi-row write (execBatched: a few
		// pages per statement) in memory rather than a temporary file
		// written through a system call per page.
		"_pragma=temp_store(MEMORY)",
	))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One writer: SQLite allows one at a time anyway, and queueing in the
	// pool is cheaper than spinning on the busy handler.
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	if err := enableWAL(ctx, s.w); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := applyMigrations(ctx, s.w, logger); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	s.r, err = sql.Open("sqlite", dsn(path,
		"_pragma=busy_timeout("+strconv.Itoa(busyTimeout)+")",
		"_pragma=foreign_keys(1)",
		"_query_only=1",
	))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	s.r.SetMaxOpenConns(readers)
	s.r.SetMaxIdleConns(readers)
	s.r.SetConnMaxLifetime(0)
	s.r.SetConnMaxIdleTime(0)
	if err := s.prepare(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	ok = true
	return s, nil
}

// enableWAL switches the database to WAL mode, which the file keeps from
// then on. The switch needs an exclusive lock and SQLite fails it with
// SQLITE_BUSY at once rather than waiting the busy timeout, so while other
// processes open the same new database it is retried here, for as long as
// that timeout.
func enableWAL(ctx context.Context, db *sql.DB) error {
	const pause = 10 * time.Millisecond
	for tries := busyTimeout / 10; ; tries-- {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		if err == nil {
			if !strings.EqualFold(mode, "wal") {
				return fmt.Errorf("journal_mode is %q, not wal (is the file on a network file system?)", mode)
			}
			return nil
		}
		var se *msqlite.Error
		if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || tries == 0 {
			return fmt.Errorf("enabling WAL: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// dsn returns the driver's name for the database file at path with params.
// The name is a "file:" URI so that a '?' or '#' in path stays part of it.
func dsn(path string, params ...string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?" + strings.Join(params, "&")
}

// Close closes the read pool and the writer.
func (s *Store) Close() error {
	var errs []error
	if s.client != nil {
		errs = append(errs, s.client.Close())
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	return errors.Join(errs...)
}

// querier is what the statements of a method run on: the read pool, the
// writer, or a transaction on the writer (*sql.DB or *sql.Tx).
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// write runs fn in a write transaction (BEGIN IMMEDIATE on the writer) and
// commits it if fn returns nil. Errors are wrapped with op.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrap(op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return wrap(op, err)
	}
	if err := tx.Commit(); err != nil {
		return wrap(op, err)
	}
	return nil
}

// exec runs one statement on the writer and returns the number of rows it
// changed. Errors are wrapped with op.
func (s *Store) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	res, err := s.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap(op, err)
	}
	return n, nil
}

// execOne runs one statement on the writer that must change a row; if it
// changes none the error wraps authz.ErrNotFound.
func (s *Store) execOne(ctx context.Context, op, query string, args ...any) error {
	return wrap(op, changeOne(ctx, s.w, query, args...))
}

// changeOne runs one statement on q that must change a row; if it changes
// none the error is authz.ErrNotFound.
func changeOne(ctx context.Context, q querier, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return authz.ErrNotFound
	}
	return nil
}

// wrap prefixes err with op and translates what the driver reports into
// the authz errors: a violated unique key into ErrConflict, a missing
// foreign-key parent or sql.ErrNoRows into ErrNotFound, a failed CHECK into
// ErrInvalid, and a database another connection keeps locked
// (SQLITE_BUSY, SQLITE_LOCKED: the busy timeout ran out) or a deadline
// that passed while waiting for it into ErrUnavailable, the driver's error
// staying in the chain. Errors already wrapping an authz error keep it; a
// nil err stays nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, authz.ErrNotFound) || errors.Is(err, authz.ErrConflict) ||
		errors.Is(err, authz.ErrInvalid) || errors.Is(err, authz.ErrUnavailable) {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sqlite: %s: %w: %w", op, authz.ErrUnavailable, err)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", op, authz.ErrNotFound)
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("sqlite: %s: %w: %v", op, authz.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("sqlite: %s: %w: %v", op, authz.ErrNotFound, err)
		case sqlite3.SQLITE_CONSTRAINT_CHECK:
			return fmt.Errorf("sqlite: %s: %w: %v", op, authz.ErrInvalid, err)
		}
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("sqlite: %s: %w: %w", op, authz.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// micros returns t as stored: microseconds since the Unix epoch.
func micros(t time.Time) int64 { return t.UnixMicro() }

// collect returns every row of a query, read with scan; rows and err are
// what QueryContext returned.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
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

// nullMicros returns an optional time as stored: NULL for the zero time.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromMicros is the inverse of micros.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// fromNullMicros is the inverse of nullMicros.
func fromNullMicros(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromMicros(us.Int64)
}

// nonNil returns b, or an empty slice if b is nil, for NOT NULL BLOB columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// marshalList returns list as JSON text, "[]" when it is empty.
func marshalList[T any](list []T) (string, error) {
	if len(list) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// unmarshalList parses JSON text written by marshalList.
func unmarshalList[T any](text []byte) ([]T, error) {
	list := []T{}
	if err := json.Unmarshal(text, &list); err != nil {
		return nil, fmt.Errorf("decoding stored list %q: %w", text, err)
	}
	return list, nil
}

// Cursors are opaque to callers: the base64url encoding of the last
// returned item's sort key, "<microseconds>:<id>".

func encodeCursor(us int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(us, 10) + ":" + id))
}

func decodeCursor(cursor string) (us int64, id string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, "", fmt.Errorf("malformed cursor: %w", authz.ErrInvalid)
	}
	t, id, ok := strings.Cut(string(b), ":")
	if !ok || id == "" {
		return 0, "", fmt.Errorf("malformed cursor: %w", authz.ErrInvalid)
	}
	us, err = strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("malformed cursor: %w", authz.ErrInvalid)
	}
	return us, id, nil
}

// where collects the conditions and arguments of a list query.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// String returns the WHERE clause, "" when there is no condition.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// assignments collects the SET list and arguments of a patch's UPDATE.
type assignments struct {
	list []string
	args []any
}

func (a *assignments) add(assignment string, args ...any) {
	a.list = append(a.list, assignment)
	a.args = append(a.args, args...)
}

// String returns the SET list.
func (a *assignments) String() string { return strings.Join(a.list, ", ") }
