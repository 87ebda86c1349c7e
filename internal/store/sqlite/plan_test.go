package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientQueryIsIndexed: reading an application the cache does not
// hold (clientQuery) is one statement whose every table access is an
// index search (SEARCH), never a full scan (SCAN), whatever the number of
// applications.
func TestClientQueryIsIndexed(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "m2mauth.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	plan := queryPlan(t, s, clientQuery, "app_1")
	p := strings.Join(plan, "\n")
	for _, d := range plan {
		if strings.HasPrefix(d, "SCAN ") {
			t.Errorf("the plan of clientQuery scans a table:\n%s", p)
			break
		}
	}
	if !strings.Contains(p, "SEARCH") {
		t.Errorf("the plan of clientQuery searches no index:\n%s", p)
	}
	t.Logf("plan:\n%s", p)
}

// TestTouchUsesPrimaryKey: the batched last-use updates (touchUpdate) find
// each row by its key: a SEARCH by the primary key of the touched table,
// never a SCAN of it, however many rows it holds (the VALUES list itself
// is scanned, as it must be).
func TestTouchUsesPrimaryKey(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "m2mauth.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, table := range []string{"client_secrets", "credentials"} {
		plan := queryPlan(t, s, touchUpdate(table)(3), "a", int64(1), "b", int64(2), "c", int64(3))
		p := strings.Join(plan, "\n")
		if strings.Contains(p, "SCAN "+table) || !strings.Contains(p, "SEARCH "+table) {
			t.Errorf("touching %s:\n%s\nwant a SEARCH of %s by its primary key, no SCAN of it", table, p, table)
		}
		t.Logf("plan of touching %s:\n%s", table, p)
	}
}

// queryPlan returns the detail column of EXPLAIN QUERY PLAN for query
// with args, on a reader connection of s, one line per plan step.
func queryPlan(t *testing.T, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.r.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}
