package migrate

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	file := func(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }
	for _, tc := range []struct {
		name    string
		files   fstest.MapFS
		want    string // versions and names, or the error's start
		wantErr bool
	}{
		{"ordered by version, not by name", fstest.MapFS{
			"migrations/10_later.sql":  file("B"),
			"migrations/0002_next.sql": file("A"),
			"migrations/1_init.sql":    file("I"),
			"migrations/README.md":     file("not a migration"),
		}, "[{1 1_init.sql I} {2 0002_next.sql A} {10 10_later.sql B}]", false},
		{"no description", fstest.MapFS{"migrations/0001.sql": file("")}, "migration 0001.sql: name is not", true},
		{"version not a number", fstest.MapFS{"migrations/v1_init.sql": file("")}, "migration v1_init.sql: name is not", true},
		{"version zero", fstest.MapFS{"migrations/0000_init.sql": file("")}, "migration 0000_init.sql: name is not", true},
		{"two files with one version", fstest.MapFS{
			"migrations/0001_init.sql": file(""),
			"migrations/1_again.sql":   file(""),
		}, "migrations 0001_init.sql and 1_again.sql have one version", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := Load(tc.files)
			if tc.wantErr {
				if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
					t.Fatalf("Load = %v, %v; want an error starting %q", ms, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(ms); got != tc.want {
				t.Errorf("Load = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPending(t *testing.T) {
	ms := []Migration{{Version: 1}, {Version: 2}, {Version: 5}}
	for _, tc := range []struct {
		name   string
		newest int
		want   string
	}{
		{"a new database", 0, "[1 2 5]"},
		{"some applied", 2, "[5]"},
		{"all applied", 5, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pending, err := Pending(ms, tc.newest)
			if err != nil {
				t.Fatal(err)
			}
			versions := []int{}
			for _, m := range pending {
				versions = append(versions, m.Version)
			}
			if got := fmt.Sprint(versions); got != tc.want {
				t.Errorf("Pending(%d) = %s, want %s", tc.newest, got, tc.want)
			}
		})
	}
	t.Run("a database from a newer version", func(t *testing.T) {
		_, err := Pending(ms, 6)
		if want := "database schema version 6 is newer than this m2mauth knows (5)"; err == nil || err.Error() != want {
			t.Errorf("Pending(6) = %v, want %q", err, want)
		}
	})
}
