// Package migrate reads a store's embedded schema migrations and picks the
// ones a database lacks. Each store applies them itself, in its own SQL
// dialect and transactions.
package migrate

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Migration is one schema change.
type Migration struct {
	Version int
	Name    string // the file name, "<version>_<description>.sql"
	SQL     string
}

// Load reads the migration files migrations/*.sql of fsys, ordered by
// version. File names are "<version>_<description>.sql" with a positive
// version, no two alike.
func Load(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	seen := map[int]string{}
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name is not <version>_<description>.sql", base)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s have one version", other, base)
		}
		seen[v] = base
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Pending returns the migrations of ms, as Load orders them, that are newer
// than newest, the database's schema version (0 for none). A database
// whose version is newer than every one of ms was written by a newer
// m2mauth, and is refused with an error.
func Pending(ms []Migration, newest int) ([]Migration, error) {
	if known := ms[len(ms)-1].Version; newest > known {
		return nil, fmt.Errorf("database schema version %d is newer than this m2mauth knows (%d)", newest, known)
	}
	var pending []Migration
	for _, m := range ms {
		if m.Version > newest {
			pending = append(pending, m)
		}
	}
	return pending, nil
}
