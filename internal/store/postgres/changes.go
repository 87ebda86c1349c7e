package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// channel is the PostgreSQL notification channel of change notifications.
// A payload is "<kind>:<key>", e.g. "client:3kq4..." or "keys:".
const channel = "m2mauth_changes"

// Timings of a change feed.
const (
	// feedMinBackoff and feedMaxBackoff bound the wait between attempts to
	// reconnect a lost feed; it doubles after each failed attempt.
	feedMinBackoff = 100 * time.Millisecond
	feedMaxBackoff = 5 * time.Second
	// feedIdleCheck is how long a feed waits for a notification before it
	// checks that its connection still works: a connection cut without a
	// word (a network partition) would otherwise wait for ever.
	feedIdleCheck = 15 * time.Second
	// feedPingTimeout bounds that check.
	feedPingTimeout = 5 * time.Second
)

// notifyQuery queues the notification $1 on channel.
const notifyQuery = `SELECT pg_notify('` + channel + `', $1)`

// notify queues c on channel within tx: PostgreSQL delivers it to every
// listener when, and only if, tx commits.
func notify(ctx context.Context, tx pgx.Tx, c authz.Change) error {
	_, err := tx.Exec(ctx, notifyQuery, payload(c))
	return err
}

// payload is the notification of c, as parseChange reads it.
func payload(c authz.Change) string { return string(c.Kind) + ":" + c.Key }

// parseChange reads a notification payload written by notify. A kind this
// version does not know (sent by a newer replica) reads as ChangeAll, which
// is always safe.
func parseChange(payload string) authz.Change {
	kind, key, _ := strings.Cut(payload, ":")
	switch k := authz.ChangeKind(kind); k {
	case authz.ChangeClient, authz.ChangeRevoked:
		return authz.Change{Kind: k, Key: key}
	case authz.ChangeKeys, authz.ChangeSettings:
		return authz.Change{Kind: k}
	}
	return authz.Change{Kind: authz.ChangeAll}
}

// Changes delivers the changes every replica's writes make, this one's
// too, once they have committed, until ctx is done or the Store is closed;
// then it closes the channel. It listens on a dedicated connection (its
// application_name is "m2mauth changes") and delivers Change{Kind:
// ChangeAll} as soon as that listens: what a cache read before may be
// stale. When the connection is lost, it reconnects, waiting from 100 ms
// up to 5 s between attempts, and delivers ChangeAll again, since changes
// may have been missed. A connection that stays silent is checked every
// 15 s. The caller must keep receiving: the feed waits for it. Changes
// must not be called after Close.
func (s *Store) Changes(ctx context.Context) <-chan authz.Change {
	out := make(chan authz.Change, 64)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.closing, cancel)
	s.listeners.Add(1)
	go func() {
		defer s.listeners.Done()
		defer close(out)
		defer cancel()
		defer stop()
		s.feed(ctx, out)
	}()
	return out
}

// feed runs a change feed until ctx is done.
func (s *Store) feed(ctx context.Context, out chan<- authz.Change) {
	backoff := feedMinBackoff
	for {
		conn, err := s.listen(ctx)
		if err == nil {
			backoff = feedMinBackoff
			// Changes made while no connection listened are lost.
			err = send(ctx, out, authz.Change{Kind: authz.ChangeAll})
			if err == nil {
				err = receive(ctx, conn, out)
			}
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Close(closeCtx)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		s.logger.WarnContext(ctx, "postgres: change feed lost its connection; reconnecting",
			"error", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, feedMaxBackoff)
	}
}

// listen opens a dedicated connection listening on channel.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	conf := s.conf.Copy()
	conf.RuntimeParams["application_name"] = "m2mauth changes"
	conn, err := pgx.ConnectConfig(ctx, conf)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// receive passes the notifications conn receives to out until ctx is done
// or conn fails, and returns why it stopped.
func receive(ctx context.Context, conn *pgx.Conn, out chan<- authz.Change) error {
	for {
		wait, cancel := context.WithTimeout(ctx, feedIdleCheck)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			if err := send(ctx, out, parseChange(n.Payload)); err != nil {
				return err
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// A timeout leaves the connection usable: check it answers.
			ping, cancel := context.WithTimeout(ctx, feedPingTimeout)
			err := conn.Ping(ping)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// send delivers c on out unless ctx ends first.
func send(ctx context.Context, out chan<- authz.Change, c authz.Change) error {
	select {
	case out <- c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
