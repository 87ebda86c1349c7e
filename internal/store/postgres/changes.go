package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// channel is the PostgreSQL notification channel of change notifications.
// A payload is "<kind>@<version>:<key>", e.g. "client@17:3kq4..." or
// "keys@18:", where version is the number the transaction took from the
// change_version row (migration 0010). Versions before 0010 sent
// "<kind>:<key>", which is still read (with no version). An older replica
// reads "<kind>@<version>" as a kind it does not know, that is as
// ChangeAll: safe, while a rolling upgrade lasts.
const channel = "m2mauth_changes"

// Timings of a change feed.
const (
	// feedMinBackoff and feedMaxBackoff bound the wait between attempts to
	// reconnect a lost feed; it doubles after each failed attempt.
	feedMinBackoff = 100 * time.Millisecond
	feedMaxBackoff = 5 * time.Second
	// defaultFeedPoll is how often a feed reads the change version on its
	// connection (Store.feedPoll): the version check, which also finds a
	// connection cut without a word (a network partition).
	// Twice a second: a cache counts an entry's age from the last check
	// that found nothing lost, and --cache-ttl is 2 s by default.
	defaultFeedPoll = 500 * time.Millisecond
	// defaultFeedGrace is how long a version the check found committed may
	// stay undelivered, its notification in flight, before the feed
	// counts it lost and delivers ChangeAll (Store.feedGrace). The
	// committing backend signals listeners just after its commit becomes
	// visible, so a notification is in flight for microseconds to
	// milliseconds after the check can see its version: one that takes a
	// second is lost. A lost notification is found within 1.5 s.
	defaultFeedGrace = time.Second
	// feedPingTimeout bounds the version check.
	feedPingTimeout = 5 * time.Second
	// maxAhead bounds the versions a feed remembers past a gap; past it
	// the gap counts as lost.
	maxAhead = 1 << 16
)

// notifyQuery takes the transaction's change version and queues one
// notification per element of the arrays $1 (kinds) and $2 (keys) on
// channel, in one statement. The UPDATE holds change_version's row lock
// until the transaction ends, so concurrent writers take versions in the
// order they commit.
const notifyQuery = `WITH v AS (UPDATE change_version SET v = v + 1 RETURNING v)
SELECT pg_notify('` + channel + `', c.kind || '@' || v.v || ':' || c.key)
  FROM v, unnest($1::text[], $2::text[]) AS c(kind, key)`

// notify queues changes (at least one) on channel within tx, under one
// new change version: PostgreSQL delivers them to every listener when,
// and only if, tx commits. Call it last before the commit, since the
// version's row stays locked until then.
func notify(ctx context.Context, tx pgx.Tx, changes ...authz.Change) error {
	kinds, keys := make([]string, len(changes)), make([]string, len(changes))
	for i, c := range changes {
		kinds[i], keys[i] = string(c.Kind), c.Key
	}
	_, err := tx.Exec(ctx, notifyQuery, kinds, keys)
	return err
}

// parseChange reads a notification payload written by notify, and its
// version; a payload from before migration 0010 ("<kind>:<key>") has
// version 0. A kind this version does not know (sent by a newer replica),
// or a malformed version, reads as ChangeAll, which is always safe.
func parseChange(payload string) (authz.Change, uint64) {
	head, key, _ := strings.Cut(payload, ":")
	kind, ver, numbered := strings.Cut(head, "@")
	var v uint64
	if numbered {
		var err error
		if v, err = strconv.ParseUint(ver, 10, 64); err != nil || v == 0 {
			return authz.Change{Kind: authz.ChangeAll}, 0
		}
	}
	switch k := authz.ChangeKind(kind); k {
	case authz.ChangeClient, authz.ChangeRevoked:
		return authz.Change{Kind: k, Key: key}, v
	case authz.ChangeKeys, authz.ChangeSettings:
		return authz.Change{Kind: k}, v
	}
	return authz.Change{Kind: authz.ChangeAll}, v
}

// versions is what a feed knows of the change versions: every one up to
// upTo was delivered, or is covered by a ChangeAll delivered since it
// committed; ahead are those delivered past a gap (notifications arrive in
// commit order, so a gap is one in flight, or lost).
type versions struct {
	upTo  uint64
	ahead map[uint64]struct{}
	// checked is the version the last check read (at a reset: upTo).
	checked uint64
	// missing is the version the check found committed and undelivered
	// first, at missingSince; 0 when the last check found none.
	missing      uint64
	missingSince time.Time
}

// reset makes v as of a ChangeAll delivered after version upTo committed.
func (v *versions) reset(upTo uint64) {
	v.upTo, v.checked, v.missing = upTo, upTo, 0
	for k := range v.ahead {
		if k <= upTo {
			delete(v.ahead, k)
		}
	}
	v.advance()
}

// received records that version n was delivered.
func (v *versions) received(n uint64) {
	switch {
	case n == 0 || n <= v.upTo:
	case n == v.upTo+1:
		v.upTo = n
		v.advance()
	default:
		if v.ahead == nil {
			v.ahead = map[uint64]struct{}{}
		}
		v.ahead[n] = struct{}{}
	}
}

func (v *versions) advance() {
	for {
		if _, ok := v.ahead[v.upTo+1]; !ok {
			return
		}
		delete(v.ahead, v.upTo+1)
		v.upTo++
	}
}

// Results of a version check.
const (
	// checkSynced: every version committed before the previous check was
	// delivered (under steady writes the newest are often in flight).
	checkSynced  = iota
	checkPending // some are not, within the grace
	checkLost    // some are not, past the grace, or the count went back
)

// check compares what was delivered with current, the version the
// database has committed, read at now, given grace for notifications in
// flight. On checkLost, v is reset as of a ChangeAll the caller delivers.
func (v *versions) check(current uint64, now time.Time, grace time.Duration) int {
	previous := v.checked
	v.checked = current
	switch {
	case current < v.upTo: // the database was restored, or replaced
		v.reset(current)
		return checkLost
	case current == v.upTo:
		v.missing = 0
		return checkSynced
	case v.missing == 0 || v.upTo >= v.missing:
		// A new gap, or the last one filled and another behind it.
		v.missing, v.missingSince = v.upTo+1, now
	case now.Sub(v.missingSince) >= grace || len(v.ahead) >= maxAhead:
		v.reset(current)
		return checkLost
	}
	if v.upTo >= previous {
		return checkSynced
	}
	return checkPending
}

// Changes delivers the changes every replica's writes make, this one's
// too, once they have committed, until ctx is done or the Store is closed;
// then it closes the channel. It listens on a dedicated connection (its
// application_name is "m2mauth changes") and delivers Change{Kind:
// ChangeAll} as soon as that listens: what a cache read before may be
// stale. When the connection is lost, it reconnects, waiting from 100 ms
// up to 5 s between attempts, and delivers ChangeAll again, since changes
// may have been missed.
//
// Every 500 ms (Store.feedPoll) it reads the change version on that
// connection (one row; migration 0010): if every version up to the one
// the previous check read has been delivered, it delivers ChangeSynced
// (under steady writes the newest are often still in flight); if one has
// not been after 1 s
// (Store.feedGrace: its notification may be in flight), the notification
// was lost, and it delivers ChangeAll. A check that fails, or takes more
// than 5 s, counts as a lost connection. The caller must keep receiving: the feed
// waits for it. Changes must not be called after Close.
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
		conn, current, err := s.listen(ctx)
		if err == nil {
			backoff = feedMinBackoff
			// Changes made while no connection listened are lost: the
			// ChangeAll covers every version up to current, read after
			// LISTEN took effect, and later ones will be delivered.
			err = send(ctx, out, authz.Change{Kind: authz.ChangeAll})
			if err == nil {
				v := &versions{}
				v.reset(current)
				err = s.receive(ctx, conn, v, out)
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

// versionQuery reads the change version (migration 0010).
const versionQuery = `SELECT v FROM change_version`

// listen opens a dedicated connection listening on channel, and returns
// it with the change version read once it listens.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, uint64, error) {
	conf := s.conf.Copy()
	conf.RuntimeParams["application_name"] = "m2mauth changes"
	conn, err := pgx.ConnectConfig(ctx, conf)
	if err != nil {
		return nil, 0, err
	}
	var current int64
	_, err = conn.Exec(ctx, `LISTEN `+channel)
	if err == nil {
		err = conn.QueryRow(ctx, versionQuery).Scan(&current)
	}
	if err != nil {
		conn.Close(context.Background())
		return nil, 0, err
	}
	return conn, uint64(current), nil
}

// receive passes the notifications conn receives to out, and checks the
// change version every s.feedPoll, until ctx is done or conn fails, and
// returns why it stopped.
func (s *Store) receive(ctx context.Context, conn *pgx.Conn, v *versions, out chan<- authz.Change) error {
	nextCheck := time.Now().Add(s.feedPoll)
	for {
		wait, cancel := context.WithDeadline(ctx, nextCheck)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			c, version := parseChange(n.Payload)
			v.received(version)
			if err := send(ctx, out, c); err != nil {
				return err
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// A timeout leaves the connection usable. Notifications that
			// arrive during the query are kept for WaitForNotification.
			check, cancel := context.WithTimeout(ctx, feedPingTimeout)
			var current int64
			err := conn.QueryRow(check, versionQuery).Scan(&current)
			cancel()
			if err != nil {
				return err
			}
			now := time.Now()
			nextCheck = now.Add(s.feedPoll)
			switch v.check(uint64(current), now, s.feedGrace) {
			case checkSynced:
				err = send(ctx, out, authz.Change{Kind: authz.ChangeSynced})
			case checkLost:
				s.logger.WarnContext(ctx, "postgres: a change notification was lost; every cache entry is dropped",
					"version", current)
				err = send(ctx, out, authz.Change{Kind: authz.ChangeAll})
			}
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
