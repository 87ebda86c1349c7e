package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// AppendAudit inserts events in one transaction, sent as one batch.
// Returns an error wrapping authz.ErrConflict, and inserts none, if an
// event's ID is taken. It notifies nothing, and, unlike the management
// writes, takes no lock: failed client authentications are audited too,
// and they must not queue behind management transactions.
func (s *Store) AppendAudit(ctx context.Context, events []authz.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return s.write(ctx, "append audit", nil, func(tx pgx.Tx) error {
		return insertAudit(ctx, tx, events)
	})
}

// AppendAudit is Store.AppendAudit within the transaction.
func (t *tx) AppendAudit(ctx context.Context, events []authz.AuditEvent) error {
	if len(events) == 0 {
		return t.check("append audit")
	}
	return t.step(ctx, "append audit", nil, func() error { return insertAudit(ctx, t.q, events) })
}

// insertAudit inserts events, sent as one batch.
func insertAudit(ctx context.Context, q querier, events []authz.AuditEvent) error {
	var b pgx.Batch
	for _, e := range events {
		b.Queue(`INSERT INTO audit_events (id, time, actor, action, target, remote_addr, details)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			e.ID, e.Time, e.Actor, e.Action, e.Target, e.RemoteAddr, e.Details)
	}
	return q.SendBatch(ctx, &b).Close()
}

// ListAudit returns one page of the events matching f, newest first
// (Time, then ID, descending), and the cursor of the next page, "" after
// the last. A malformed cursor is an error wrapping authz.ErrInvalid.
func (s *Store) ListAudit(ctx context.Context, f authz.AuditFilter, p authz.Page) ([]authz.AuditEvent, string, error) {
	const op = "list audit"
	p = p.Normalize()
	var w where
	if !f.Since.IsZero() {
		w.and(`time >= ` + w.arg(f.Since))
	}
	if !f.Until.IsZero() {
		w.and(`time < ` + w.arg(f.Until))
	}
	if f.Actor != "" {
		w.and(`actor = ` + w.arg(f.Actor))
	}
	if f.Target != "" {
		w.and(`target = ` + w.arg(f.Target))
	}
	if f.Action != "" {
		w.and(`action = ` + w.arg(f.Action))
	}
	if p.Cursor != "" {
		t, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, "", wrap(op, err)
		}
		w.and(`(time, id) < (` + w.arg(t) + `, ` + w.arg(id) + `)`)
	}
	query := `SELECT id, time, actor, action, target, remote_addr, details FROM audit_events` + w.String() +
		` ORDER BY time DESC, id DESC LIMIT ` + w.arg(p.Limit+1)
	var list []authz.AuditEvent
	err := s.retryLost(ctx, func() error {
		rows, err := s.pool.Query(ctx, query, w.args...)
		list, err = collect(rows, err, func(row pgx.Row) (e authz.AuditEvent, err error) {
			return e, row.Scan(&e.ID, &e.Time, &e.Actor, &e.Action, &e.Target, &e.RemoteAddr, &e.Details)
		})
		return err
	})
	if err != nil {
		return nil, "", wrap(op, err)
	}
	next := ""
	if len(list) > p.Limit {
		list = list[:p.Limit]
		last := list[len(list)-1]
		next = encodeCursor(last.Time, last.ID)
	}
	return list, next, nil
}

// AddIssuance adds each count to the counter of its (ClientID, Audience,
// Hour), creating it if needed, and raises its LastIssuedAt, in one
// statement (the rows as arrays, unnest) within one transaction: with many
// clients a flush holds one row per client, about one per token, and one
// statement for them all spares the database a statement's overhead per
// row (docs/benchmarks.md, "Figures at scale"). Hour is
// truncated to the start of its UTC hour; counts of the same counter are
// summed first. It notifies nothing.
func (s *Store) AddIssuance(ctx context.Context, counts []authz.Issuance) error {
	if len(counts) == 0 {
		return nil
	}
	// Rows are locked in key order, so that replicas flushing overlapping
	// counters at once queue rather than deadlock; the statement orders
	// them, and in that order here equal keys are adjacent and summed, as
	// ON CONFLICT DO UPDATE may not touch a row twice in one statement.
	// Truncating to the hour keeps the order, so keys equal once truncated
	// are adjacent too.
	order := authz.IssuanceOrder(counts)
	clients := make([]string, 0, len(counts))
	audiences := make([]string, 0, len(counts))
	hours := make([]time.Time, 0, len(counts))
	n := make([]int64, 0, len(counts))
	lasts := make([]time.Time, 0, len(counts))
	for _, i := range order {
		c := &counts[i]
		hour := c.Hour.UTC().Truncate(time.Hour)
		if k := len(clients) - 1; k >= 0 && clients[k] == c.ClientID && audiences[k] == c.Audience && hours[k].Equal(hour) {
			n[k] += c.Count
			if c.LastIssuedAt.After(lasts[k]) {
				lasts[k] = c.LastIssuedAt
			}
			continue
		}
		clients, audiences, hours = append(clients, c.ClientID), append(audiences, c.Audience), append(hours, hour)
		n, lasts = append(n, c.Count), append(lasts, c.LastIssuedAt)
	}
	return s.write(ctx, "add issuance", nil, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO token_issuance (client_id, audience, hour, count, last_issued_at)
			SELECT c, a, h, n, l FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::timestamptz[]) AS r(c, a, h, n, l)
			ORDER BY c COLLATE "C", a COLLATE "C", h
			ON CONFLICT (client_id, audience, hour) DO UPDATE SET
				count = token_issuance.count + excluded.count,
				last_issued_at = GREATEST(token_issuance.last_issued_at, excluded.last_issued_at)`,
			clients, audiences, hours, n, lasts)
		return err
	})
}

// ListIssuance returns the counters of application clientID ("" for every
// application) whose Hour is at or after since, ordered by Hour, ClientID,
// Audience.
func (s *Store) ListIssuance(ctx context.Context, clientID string, since time.Time) ([]authz.Issuance, error) {
	var w where
	if clientID != "" {
		w.and(`client_id = ` + w.arg(clientID))
	}
	w.and(`hour >= ` + w.arg(since))
	query := `SELECT client_id, audience, hour, count, last_issued_at FROM token_issuance` + w.String() +
		` ORDER BY hour, client_id, audience`
	var list []authz.Issuance
	err := s.retryLost(ctx, func() error {
		rows, err := s.pool.Query(ctx, query, w.args...)
		list, err = collect(rows, err, func(row pgx.Row) (c authz.Issuance, err error) {
			return c, row.Scan(&c.ClientID, &c.Audience, &c.Hour, &c.Count, &c.LastIssuedAt)
		})
		return err
	})
	if err != nil {
		return nil, wrap("list issuance", err)
	}
	return list, nil
}

// purgeAuditBatch bounds one purge statement, so that a purge of months of
// events holds no long transaction.
const purgeAuditBatch = 5000

// PurgeAudit removes the events whose time is before before, in batches of
// purgeAuditBatch rows each its own transaction, and returns how many it
// removed.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := s.write(ctx, "purge audit", nil, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM audit_events WHERE ctid IN
				(SELECT ctid FROM audit_events WHERE time < $1 LIMIT $2)`, before, purgeAuditBatch)
			n = tag.RowsAffected()
			return err
		})
		total += int(n)
		if err != nil || n < purgeAuditBatch {
			return total, err
		}
	}
}
