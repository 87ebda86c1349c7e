package pgtest

import (
	"errors"
	"testing"
)

// withoutPostgreSQL makes the binaries impossible to find for t.
func withoutPostgreSQL(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(EnvDatabaseURL, "")
	old := debianBinaries
	debianBinaries = t.TempDir() + "/*/bin"
	t.Cleanup(func() { debianBinaries = old })
}

func TestWithoutPostgreSQL(t *testing.T) {
	t.Run("StartCluster reports it", func(t *testing.T) {
		withoutPostgreSQL(t)
		if _, err := StartCluster(); !errors.Is(err, ErrNotInstalled) {
			t.Errorf("StartCluster: %v, want ErrNotInstalled", err)
		}
	})
	t.Run("Start skips", func(t *testing.T) {
		withoutPostgreSQL(t)
		t.Setenv(EnvRequire, "")
		var skipped bool
		t.Run("inner", func(t *testing.T) {
			defer func() { skipped = t.Skipped() }()
			Start(t)
		})
		if !skipped {
			t.Error("Start did not skip")
		}
	})
}
