package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaseTimeout bounds the statements release and Close send for a lease.
const leaseTimeout = 5 * time.Second

// lease is this Store's dedicated connection for one lease name: holding
// the session advisory lock on it, or kept open to try again.
type lease struct {
	name    string
	conn    *pgx.Conn
	held    bool
	release func()
}

// TryLead reports whether this replica now holds the cluster-wide lease
// name and returns release, which ends it (unlocks and closes the lease's
// connection; calling it again does nothing). The lease is a session
// advisory lock, pg_try_advisory_lock(hashtext(name)), on a connection of
// its own (application_name "m2mauth lease"), so it also ends when that
// connection dies and another replica can then take it.
//
// A holder calling TryLead again gets ok=true after checking that the
// connection still answers; if it does not, the lease was lost, and
// TryLead tries to take it anew, which fails if another replica took it
// meanwhile. Between losing the lease and that call a replica still
// believes it leads: the work done under a lease must tolerate a second
// leader for a moment. A replica that did not get the lease keeps its
// connection for the next try; Close closes it. When ok is false, release
// does nothing. err reports a failure to reach the database.
func (s *Store) TryLead(ctx context.Context, name string) (release func(), ok bool, err error) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	noop := func() {}
	l := s.leases[name]
	if l != nil && l.held {
		if err := l.conn.Ping(ctx); err == nil {
			return l.release, true, nil
		}
		s.logger.WarnContext(ctx, "postgres: lease lost with its connection", "lease", name)
		l.close()
		delete(s.leases, name)
		l = nil
	}
	if l != nil && l.conn.IsClosed() {
		delete(s.leases, name)
		l = nil
	}
	for {
		fresh := l == nil
		if fresh {
			conf := s.conf.Copy()
			conf.RuntimeParams["application_name"] = "m2mauth lease"
			conn, err := pgx.ConnectConfig(ctx, conf)
			if err != nil {
				return noop, false, wrap("try lead", err)
			}
			l = &lease{name: name, conn: conn}
			s.leases[name] = l
		}
		err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, name).Scan(&ok)
		if err == nil {
			break
		}
		l.close()
		delete(s.leases, name)
		l = nil
		// The connection kept from an earlier try may have died since:
		// try once on a new one.
		if fresh || !connLost(err) || ctx.Err() != nil {
			return noop, false, wrap("try lead", err)
		}
	}
	if !ok {
		return noop, false, nil
	}
	l.held = true
	l.release = sync.OnceFunc(func() {
		s.leaseMu.Lock()
		defer s.leaseMu.Unlock()
		if s.leases[name] == l {
			delete(s.leases, name)
		}
		l.unlock()
		l.close()
	})
	s.logger.InfoContext(ctx, "postgres: lease taken", "lease", name)
	return l.release, true, nil
}

// unlock releases the advisory lock, if the connection still works.
func (l *lease) unlock() {
	if !l.held || l.conn.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaseTimeout)
	defer cancel()
	l.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, l.name)
	l.held = false
}

// close closes the lease's connection, which ends the lock if it was held.
func (l *lease) close() {
	ctx, cancel := context.WithTimeout(context.Background(), leaseTimeout)
	defer cancel()
	l.conn.Close(ctx)
}

// releaseLeases ends every lease this Store holds and closes their
// connections, for Close.
func (s *Store) releaseLeases() {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	for name, l := range s.leases {
		l.unlock()
		l.close()
		delete(s.leases, name)
	}
}
