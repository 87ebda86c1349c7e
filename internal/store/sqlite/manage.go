package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"

	"github.com/m2mauth/m2mauth/internal/authz"
)

var _ authz.Tx = (*tx)(nil)

// errTxDone is what a tx answers once the function given to Manage has
// returned.
var errTxDone = errors.New("management transaction used after its function returned")

// Manage runs fn in one write transaction on the writer connection (BEGIN
// IMMEDIATE), which serializes it with every other write to the database,
// this process's and other processes': what fn reads through tx stays true
// until the commit. It commits if fn returns nil; otherwise it rolls back
// and returns fn's error as it is. A method of tx that fails changes
// nothing (it runs in a savepoint) and the transaction goes on. fn must
// read and write through tx only: the Store's own write methods wait for
// the writer that fn holds. fn runs once: SQLite never asks for a retry.
// Returns an error wrapping authz.ErrUnavailable if another process keeps
// the database locked past the busy timeout (5 s) or ctx's deadline.
func (s *Store) Manage(ctx context.Context, fn func(tx authz.Tx) error) error {
	return s.manage(ctx, "manage", true, func(t *tx) error { return fn(t) })
}

// manage runs fn in a transaction on the writer and commits it if fn
// returns nil; fn's error is returned as it is, the transaction's own
// failures wrapped with op. With savepoints, each write method of the tx
// runs in a savepoint of its own: the Store's write methods, one tx method
// each, need none, since a failure rolls back the whole transaction.
func (s *Store) manage(ctx context.Context, op string, savepoints bool, fn func(t *tx) error) error {
	sqlTx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return wrap(op, err)
	}
	defer sqlTx.Rollback()
	t := &tx{q: sqlTx, savepoints: savepoints}
	err = fn(t)
	t.done.Store(true)
	if err != nil {
		return err
	}
	if t.broken != nil {
		return wrap(op, t.broken)
	}
	return wrap(op, sqlTx.Commit())
}

// tx is the authz.Tx of Manage. Its methods run the statements of the
// Store's methods of the same name on the transaction.
type tx struct {
	q          *sql.Tx
	savepoints bool
	done       atomic.Bool
	// broken is why a failed method could not be undone (its ROLLBACK TO
	// failed): the transaction then must not commit.
	broken error
}

// check returns an error wrapped with op if t may no longer be used.
func (t *tx) check(op string) error {
	if t.done.Load() {
		return wrap(op, errTxDone)
	}
	if t.broken != nil {
		return wrap(op, t.broken)
	}
	return nil
}

// step runs fn, the statements of one write method, and wraps its error
// with op. In a savepoint (see manage), a failure of fn is undone before
// step returns, so that a method either does all it says or nothing, and
// the transaction stays usable.
func (t *tx) step(ctx context.Context, op string, fn func() error) error {
	if err := t.check(op); err != nil {
		return err
	}
	if !t.savepoints {
		return wrap(op, fn())
	}
	if _, err := t.q.ExecContext(ctx, `SAVEPOINT step`); err != nil {
		return wrap(op, err)
	}
	if err := fn(); err != nil {
		// ROLLBACK TO keeps the savepoint; RELEASE then ends it.
		if _, rerr := t.q.ExecContext(ctx, `ROLLBACK TO step`); rerr != nil {
			t.broken = rerr
		} else if _, rerr := t.q.ExecContext(ctx, `RELEASE step`); rerr != nil {
			t.broken = rerr
		}
		return wrap(op, err)
	}
	if _, err := t.q.ExecContext(ctx, `RELEASE step`); err != nil {
		t.broken = err
		return wrap(op, err)
	}
	return nil
}
