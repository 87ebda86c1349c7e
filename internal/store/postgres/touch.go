package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// touch raises last_used_at of each row of table (client_secrets or
// credentials) whose id is in used to its time of use if that is later, in
// one transaction of two statements whatever the number of rows: the rows
// are first locked in id order (a LockRows above a Sort), so that replicas
// flushing overlapping batches at once queue rather than deadlock; then
// one UPDATE joins them with the ids and times as arrays (unnest). A
// statement per row cost the database a parse, plan and round of its own
// for each active client's secret once a minute. Zero times and ids that
// do not exist are ignored.
func (s *Store) touch(ctx context.Context, op, table string, used map[string]time.Time) error {
	ids := make([]string, 0, len(used))
	for id, t := range used {
		if !t.IsZero() {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	times := make([]time.Time, len(ids))
	for i, id := range ids {
		times[i] = used[id]
	}
	return s.write(ctx, op, nil, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM `+table+` WHERE id = ANY($1::text[]) ORDER BY id COLLATE "C" FOR UPDATE`, ids); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE `+table+` AS t SET last_used_at = v.at
			FROM unnest($1::text[], $2::timestamptz[]) AS v(id, at)
			WHERE t.id = v.id AND (t.last_used_at IS NULL OR t.last_used_at < v.at)`, ids, times)
		return err
	})
}
