package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"
)

// batchRows is how many rows one statement of a batched write carries. A
// statement costs about as much to run as the rows it writes (database/sql
// and the driver per call, a goroutine watching the context, the VDBE's
// start), so the background flushes that write a row per active client
// (issuance counters, secrets' last use) write 100 at a time: far below
// SQLite's limit of 32 766 host parameters at ≤ 5 per row.
const batchRows = 100

// execBatched runs in tx, over rows 0 … n−1 in chunks of batchRows, the
// statement query(k) builds for k rows, with the parameters args appends
// for row i. The statement of a full chunk is prepared once.
func execBatched(ctx context.Context, tx *sql.Tx, n int, query func(rows int) string, args func(dst []any, i int) []any) error {
	var full *sql.Stmt
	params := make([]any, 0, 5*min(n, batchRows))
	for start := 0; start < n; start += batchRows {
		k := min(batchRows, n-start)
		params = params[:0]
		for i := start; i < start+k; i++ {
			params = args(params, i)
		}
		var err error
		if k < batchRows {
			_, err = tx.ExecContext(ctx, query(k), params...)
		} else {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, query(k)); err != nil {
					return err
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, params...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// valuesList returns k comma-separated copies of tuple, as a VALUES list.
func valuesList(tuple string, k int) string {
	var b strings.Builder
	b.Grow(k * (len(tuple) + 2))
	for i := range k {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	return b.String()
}

// issuanceUpsert adds k counters to token_issuance, each row (client_id,
// audience, hour, count, last_issued_at). Rows of one statement are
// applied in order, so a key given twice in one call is summed.
func issuanceUpsert(k int) string {
	return `INSERT INTO token_issuance (client_id, audience, hour, count, last_issued_at) VALUES ` +
		valuesList("(?, ?, ?, ?, ?)", k) + `
		ON CONFLICT (client_id, audience, hour) DO UPDATE SET
			count = count + excluded.count,
			last_issued_at = MAX(last_issued_at, excluded.last_issued_at)`
}

// touchUpdate raises the last_used_at of k rows of table, each given as
// (id, time): only to a later time, and ids that do not exist are no-ops.
// v's columns are column1 and column2, as SQLite names those of VALUES;
// each row finds its target by the primary key (TestTouchUsesPrimaryKey).
func touchUpdate(table string) func(k int) string {
	return func(k int) string {
		return `UPDATE ` + table + ` SET last_used_at = v.column2
			FROM (VALUES ` + valuesList("(?, ?)", k) + `) AS v
			WHERE ` + table + `.id = v.column1
			AND (` + table + `.last_used_at IS NULL OR ` + table + `.last_used_at < v.column2)`
	}
}

// touch raises last_used_at of each row of table (client_secrets or
// credentials) whose id is in used to its time of use if that is later,
// in one transaction (touchUpdate, batchRows at a time, in id order so
// that each statement walks the primary key forward). Zero times and ids
// that do not exist are ignored.
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
	return s.write(ctx, op, func(tx *sql.Tx) error {
		return execBatched(ctx, tx, len(ids), touchUpdate(table), func(dst []any, i int) []any {
			return append(dst, ids[i], micros(used[ids[i]]))
		})
	})
}
