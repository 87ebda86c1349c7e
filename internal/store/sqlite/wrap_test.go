package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	msqlite "modernc.org/sqlite"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// TestBusyIsUnavailable: SQLITE_BUSY, which a connection gets once the
// busy timeout runs out (here at once), wraps authz.ErrUnavailable and
// keeps the driver's error.
func TestBusyIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m2mauth.db")
	ctx := t.Context()
	holder, err := sql.Open("sqlite", dsn(path, "_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	tx, err := holder.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	impatient, err := sql.Open("sqlite", dsn(path, "_pragma=busy_timeout(0)"))
	if err != nil {
		t.Fatal(err)
	}
	defer impatient.Close()
	_, err = impatient.ExecContext(ctx, `INSERT INTO t VALUES (1)`)
	if err == nil {
		t.Fatal("a write beside a held write lock succeeded")
	}
	err = wrap("insert", err)
	var se *msqlite.Error
	if !errors.Is(err, authz.ErrUnavailable) || !errors.As(err, &se) {
		t.Errorf("wrap(SQLITE_BUSY) = %v, want one wrapping %q and the driver's error", err, authz.ErrUnavailable)
	}
	for _, other := range []error{authz.ErrNotFound, errors.New("disk I/O error"), sql.ErrNoRows} {
		if errors.Is(wrap("op", other), authz.ErrUnavailable) {
			t.Errorf("wrap(%v) wraps %q", other, authz.ErrUnavailable)
		}
	}
	if wrap("op", nil) != nil {
		t.Error("wrap(nil) is not nil")
	}
}
