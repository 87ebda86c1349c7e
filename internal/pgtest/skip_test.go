package pgtest

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

// withoutPostgreSQL makes the binaries impossible to find for t.
func withoutPostgreSQL(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(EnvDatabaseURL, "")
	old := debianBinaries
	debianBinaries = t.TempDir() + "/*/bin"
	t.Cleanup(func() { debianBinaries = old })
	// No loud line on the terminal for a skip these tests provoke.
	announced = nil
	noticeOnce = sync.Once{}
	oldAnnounce := announce
	announce = func(pkg string) { announced = append(announced, pkg) }
	t.Cleanup(func() { announce = oldAnnounce })
}

// announced lists the packages announce was called with since
// withoutPostgreSQL.
var announced []string

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
		if len(announced) != 1 || announced[0] != "internal/pgtest" {
			t.Errorf("announced %v, want the one line for internal/pgtest", announced)
		}
	})
}

func TestSkipNotice(t *testing.T) {
	for function, want := range map[string]string{
		"github.com/m2mauth/m2mauth/internal/store/postgres_test.TestStore.func1": "internal/store/postgres",
		"github.com/m2mauth/m2mauth/internal/server.TestPolicy":                   "internal/server",
		"github.com/m2mauth/m2mauth/cmd/m2mauth.TestCluster":                      "cmd/m2mauth",
		"testing.tRunner": "",
		"sync.(*Once).Do": "",
	} {
		if got := packageOf(function); got != want {
			t.Errorf("packageOf(%s) = %q, want %q", function, got, want)
		}
	}
	// Called from this test, callerPackage names this package.
	if got := callerPackage(); got != "internal/pgtest" {
		t.Errorf("callerPackage from pgtest's tests: %q", got)
	}
	line := skipNotice("internal/store/postgres")
	for _, want := range []string{"=== PostgreSQL not found: internal/store/postgres tests SKIPPED", EnvRequire + "=1", "\n"} {
		if !strings.Contains(line, want) {
			t.Errorf("notice %q lacks %q", line, want)
		}
	}
}
