package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFile is the name of the lock file in an SQLite data directory: held
// by the one server using it, and naming that server's PID and address.
const LockFile = "m2mauth.lock"

// dataFiles are the files of the data directory that hold secrets or the
// database: each is kept mode 0600.
var dataFiles = []string{DatabaseFile, DatabaseFile + "-wal", DatabaseFile + "-shm", MasterKeyFile, CredentialsFile}

// prepareDataDir creates the data directory, or restricts an existing one,
// to mode 0700, and with SQLite takes its lock (lockDataDir). PostgreSQL
// replicas share their database, not a data directory, and take no lock.
func (s *Server) prepareDataDir() error {
	dir := s.cfg.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		err = fmt.Errorf("data dir %s: cannot restrict it to mode 0700 (owner only): %w", dir, err)
		if s.cfg.DatabaseURL == "" {
			return err
		}
		// With PostgreSQL the data dir holds no database, and may be a
		// volume the process does not own (a Kubernetes fsGroup volume).
		s.log.Warn("data dir permissions left as they are", "error", err)
	}
	if s.cfg.DatabaseURL != "" {
		return nil
	}
	lock, err := lockDataDir(dir, s.cfg.Addr)
	if err != nil {
		return err
	}
	s.lock = lock
	if err := s.restrictDataFiles(); err != nil {
		s.unlockDataDir()
		return err
	}
	return nil
}

// createDatabaseFile creates the SQLite database file, mode 0600, before
// SQLite opens it: SQLite gives its -wal and -shm files the database
// file's mode, and would create it with the umask's.
func (s *Server) createDatabaseFile() error {
	f, err := os.OpenFile(filepath.Join(s.cfg.DataDir, DatabaseFile), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	return f.Close()
}

// restrictDataFiles sets every data file that exists to mode 0600. With
// PostgreSQL a failure is only a warning (see prepareDataDir).
func (s *Server) restrictDataFiles() error {
	for _, name := range dataFiles {
		path := filepath.Join(s.cfg.DataDir, name)
		err := os.Chmod(path, 0o600)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		err = fmt.Errorf("data dir: cannot restrict %s to mode 0600 (owner only): %w", path, err)
		if s.cfg.DatabaseURL == "" {
			return err
		}
		s.log.Warn("data file permissions left as they are", "error", err)
	}
	return nil
}

// lockDataDir takes the exclusive lock of dir's lock file and writes this
// process's PID and listen address into it. If another process holds it,
// the error names that process's PID and address.
func lockDataDir(dir, addr string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir lock: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	if held {
		b, _ := os.ReadFile(path)
		f.Close()
		pid, holderAddr := parseLockFile(string(b))
		return nil, fmt.Errorf("data dir %s is in use by another m2mauth server (pid %s, listening on %s): two servers on one SQLite database disagree; stop that one, or give this one its own --data-dir (several replicas share a PostgreSQL --database-url instead)", dir, pid, holderAddr)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte("pid "+strconv.Itoa(os.Getpid())+"\naddr "+addr+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir lock %s: %w", path, err)
	}
	return f, nil
}

// parseLockFile reads the PID and address a lock file names; "unknown"
// for what it lacks (the holder may be writing it).
func parseLockFile(text string) (pid, addr string) {
	pid, addr = "unknown", "unknown"
	for line := range strings.SplitSeq(text, "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch {
		case k == "pid" && v != "":
			pid = v
		case k == "addr" && v != "":
			addr = v
		}
	}
	return pid, addr
}

// unlockDataDir releases the data directory's lock, if held. The lock
// file stays: removing it would let a third server lock a new file while
// a second still waits on the old one.
func (s *Server) unlockDataDir() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}
