package postgres

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
)

var _ authz.Tx = (*tx)(nil)

// manageLock is the key of the transaction-level advisory lock that every
// management transaction takes first: "m2mmanag" in ASCII. Like
// migrationLock it lies outside the int4 range of the hashtext keys
// TryLead uses, and it differs from migrationLock.
const manageLock int64 = 0x6d326d6d616e6167

// errTxDone is what a tx answers once the function given to Manage has
// returned.
var errTxDone = errors.New("management transaction used after its function returned")

// Manage runs fn in one transaction that first takes the advisory lock
// manageLock, which every management write of every replica takes too:
// management transactions run one at a time across the cluster, so what
// fn reads through tx stays true until the commit. It commits if fn
// returns nil, and then notifies every change fn made (see Changes), each
// once; otherwise it rolls back, notifies nothing, and returns fn's error
// as it is. A method of tx that fails changes nothing (it runs in a
// savepoint) and the transaction goes on. A transaction that fails on a
// serialization failure or a deadlock runs fn again, up to three times in
// all. fn must read and write through tx only: the Store's own write
// methods wait for the lock that fn's transaction holds. Returns an error
// wrapping authz.ErrUnavailable if the database cannot be reached or ctx's
// deadline passes while waiting for the lock.
func (s *Store) Manage(ctx context.Context, fn func(tx authz.Tx) error) error {
	return s.manage(ctx, "manage", true, func(t *tx) error { return fn(t) })
}

// manage runs fn in a management transaction (see Manage). fn's error is
// returned as it is, the transaction's own failures wrapped with op. With
// savepoints, each write method of the tx runs in a savepoint of its own:
// the Store's write methods, one tx method each, need none, since a
// failure rolls back the whole transaction.
func (s *Store) manage(ctx context.Context, op string, savepoints bool, fn func(t *tx) error) error {
	for attempt := 1; ; attempt++ {
		own, err := s.manageOnce(ctx, savepoints, fn)
		if attempt < 3 && retryable(err) {
			continue
		}
		if own {
			return wrap(op, err)
		}
		return err
	}
}

// manageOnce runs one attempt of manage, and reports whether a failure is
// its own (own) rather than fn's.
func (s *Store) manageOnce(ctx context.Context, savepoints bool, fn func(t *tx) error) (own bool, err error) {
	var pgTx pgx.Tx
	err = s.retryLost(ctx, func() (err error) {
		pgTx, err = s.pool.Begin(ctx)
		return err
	})
	if err != nil {
		return true, err
	}
	// After a commit, or on a dead connection, this does nothing.
	defer pgTx.Rollback(ctx)
	if _, err := pgTx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, manageLock); err != nil {
		return true, err
	}
	t := &tx{q: pgTx, savepoints: savepoints}
	err = fn(t)
	t.done.Store(true)
	if err != nil {
		return false, err
	}
	if t.broken != nil {
		return true, t.broken
	}
	if err := t.notify(ctx); err != nil {
		return true, err
	}
	return true, pgTx.Commit(ctx)
}

// tx is the authz.Tx of Manage. Its methods run the statements of the
// Store's methods of the same name on the transaction, and queue the
// changes they make, to be notified on commit.
type tx struct {
	q          pgx.Tx
	savepoints bool
	done       atomic.Bool
	// broken is why a failed method could not be undone (its ROLLBACK TO
	// failed): the transaction then must not commit.
	broken  error
	changes []authz.Change // in the order made, each once
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

// step runs fn, the statements of one write method, wraps its error with
// op, and queues change (if not nil) when fn succeeds. In a savepoint (see
// manage), a failure of fn is undone before step returns, so that a method
// either does all it says or nothing, and the transaction stays usable: on
// PostgreSQL a failed statement otherwise aborts the whole transaction.
func (t *tx) step(ctx context.Context, op string, change *authz.Change, fn func() error) error {
	if err := t.check(op); err != nil {
		return err
	}
	if !t.savepoints {
		if err := fn(); err != nil {
			return wrap(op, err)
		}
	} else {
		if _, err := t.q.Exec(ctx, `SAVEPOINT step`); err != nil {
			return wrap(op, err)
		}
		if err := fn(); err != nil {
			// ROLLBACK TO keeps the savepoint; RELEASE then ends it.
			if _, rerr := t.q.Exec(ctx, `ROLLBACK TO SAVEPOINT step`); rerr != nil {
				t.broken = rerr
			} else if _, rerr := t.q.Exec(ctx, `RELEASE SAVEPOINT step`); rerr != nil {
				t.broken = rerr
			}
			return wrap(op, err)
		}
		if _, err := t.q.Exec(ctx, `RELEASE SAVEPOINT step`); err != nil {
			t.broken = err
			return wrap(op, err)
		}
	}
	if change != nil && !slices.Contains(t.changes, *change) {
		t.changes = append(t.changes, *change)
	}
	return nil
}

// notify queues the notifications of t's changes on the transaction, in
// one round trip and under one change version: PostgreSQL delivers them
// if, and when, it commits. ChangeAll stands for every other change, so it
// goes alone.
func (t *tx) notify(ctx context.Context) error {
	changes := t.changes
	if slices.Contains(changes, *changeAll) {
		changes = []authz.Change{*changeAll}
	}
	if len(changes) == 0 {
		return nil
	}
	return notify(ctx, t.q, changes...)
}
