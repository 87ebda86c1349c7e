package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// AppendAudit inserts events in one transaction. Returns an error wrapping
// authz.ErrConflict, and inserts none, if an event's ID is taken.
func (s *Store) AppendAudit(ctx context.Context, events []authz.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.manage(ctx, "append audit", false, func(t *tx) error { return t.AppendAudit(ctx, events) })
}

// AppendAudit is Store.AppendAudit within the transaction.
func (t *tx) AppendAudit(ctx context.Context, events []authz.AuditEvent) error {
	if len(events) == 0 {
		return t.check("append audit")
	}
	return t.step(ctx, "append audit", func() error {
		stmt, err := t.q.PrepareContext(ctx, `INSERT INTO audit_events
			(id, time, actor, action, target, remote_addr, details) VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, e := range events {
			if _, err := stmt.ExecContext(ctx, e.ID, micros(e.Time), e.Actor, e.Action, e.Target, e.RemoteAddr, e.Details); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListAudit returns one page of the events matching f, newest first
// (Time, then ID, descending), and the cursor of the next page, "" after
// the last. A malformed cursor is an error wrapping authz.ErrInvalid.
func (s *Store) ListAudit(ctx context.Context, f authz.AuditFilter, p authz.Page) ([]authz.AuditEvent, string, error) {
	const op = "list audit"
	p = p.Normalize()
	var w where
	if !f.Since.IsZero() {
		w.add(`time >= ?`, micros(f.Since))
	}
	if !f.Until.IsZero() {
		w.add(`time < ?`, micros(f.Until))
	}
	if f.Actor != "" {
		w.add(`actor = ?`, f.Actor)
	}
	if f.Target != "" {
		w.add(`target = ?`, f.Target)
	}
	if f.Action != "" {
		w.add(`action = ?`, f.Action)
	}
	if p.Cursor != "" {
		us, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, "", wrap(op, err)
		}
		w.add(`(time, id) < (?, ?)`, us, id)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, time, actor, action, target, remote_addr, details
		FROM audit_events`+w.String()+` ORDER BY time DESC, id DESC LIMIT ?`, append(w.args, p.Limit+1)...)
	list, err := collect(rows, err, func(sc scanner) (authz.AuditEvent, error) {
		var (
			e  authz.AuditEvent
			us int64
		)
		if err := sc.Scan(&e.ID, &us, &e.Actor, &e.Action, &e.Target, &e.RemoteAddr, &e.Details); err != nil {
			return authz.AuditEvent{}, err
		}
		e.Time = fromMicros(us)
		return e, nil
	})
	if err != nil {
		return nil, "", wrap(op, err)
	}
	next := ""
	if len(list) > p.Limit {
		list = list[:p.Limit]
		last := list[len(list)-1]
		next = encodeCursor(micros(last.Time), last.ID)
	}
	return list, next, nil
}

// AddIssuance adds each count to the counter of its (ClientID, Audience,
// Hour), creating it if needed, and raises its LastIssuedAt, in one
// transaction of statements of batchRows rows. Hour is truncated to the
// start of its UTC hour.
func (s *Store) AddIssuance(ctx context.Context, counts []authz.Issuance) error {
	if len(counts) == 0 {
		return nil
	}
	// In key order, consecutive rows land on the same pages of the
	// primary key's B-tree: each statement touches (and journals) a few
	// pages rather than one per row. The order of equal keys does not
	// matter: their counts are summed and the latest time kept.
	order := authz.IssuanceOrder(counts)
	return s.write(ctx, "add issuance", func(tx *sql.Tx) error {
		return execBatched(ctx, tx, len(counts), issuanceUpsert, func(dst []any, i int) []any {
			c := &counts[order[i]]
			return append(dst, c.ClientID, c.Audience, micros(c.Hour.UTC().Truncate(time.Hour)), c.Count, micros(c.LastIssuedAt))
		})
	})
}

// ListIssuance returns the counters of application clientID ("" for every
// application) whose Hour is at or after since, ordered by Hour, ClientID,
// Audience.
func (s *Store) ListIssuance(ctx context.Context, clientID string, since time.Time) ([]authz.Issuance, error) {
	const op = "list issuance"
	var w where
	if clientID != "" {
		w.add(`client_id = ?`, clientID)
	}
	w.add(`hour >= ?`, micros(since))
	rows, err := s.r.QueryContext(ctx, `SELECT client_id, audience, hour, count, last_issued_at
		FROM token_issuance`+w.String()+` ORDER BY hour, client_id, audience`, w.args...)
	list, err := collect(rows, err, func(sc scanner) (authz.Issuance, error) {
		var (
			c              authz.Issuance
			hour, lastUsed int64
		)
		if err := sc.Scan(&c.ClientID, &c.Audience, &hour, &c.Count, &lastUsed); err != nil {
			return authz.Issuance{}, err
		}
		c.Hour = fromMicros(hour)
		c.LastIssuedAt = fromMicros(lastUsed)
		return c, nil
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	return list, nil
}

// purgeAuditBatch bounds one purge statement, so that a purge of months of
// events does not hold the one writer connection for long.
const purgeAuditBatch = 5000

// PurgeAudit removes the events whose time is before before, in batches of
// purgeAuditBatch rows each its own transaction, and returns how many it
// removed.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n, err := s.exec(ctx, "purge audit", `DELETE FROM audit_events WHERE rowid IN
			(SELECT rowid FROM audit_events WHERE time < ? LIMIT ?)`, micros(before), purgeAuditBatch)
		total += int(n)
		if err != nil || n < purgeAuditBatch {
			return total, err
		}
	}
}
