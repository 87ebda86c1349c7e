package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
	"github.com/m2mauth/m2mauth/internal/oauth"
)

// DatabaseFile is the name of the SQLite database in the data directory,
// as openStore opens it.
const DatabaseFile = "m2mauth.db"

// ErrNotBootstrapped is returned by Recover for a database that has no
// management API: `m2mauth serve` never started on it.
var ErrNotBootstrapped = errors.New("the database was never bootstrapped: start `m2mauth serve` on it once, which creates the management API and the first administrator")

// ErrNoMasterKey is returned by Recover when no master key is configured
// and the data directory holds none: recovery needs the key the database
// was sealed with, and never generates one.
var ErrNoMasterKey = errors.New("no master key")

// Recovered is what Recover made: the new administrator, with the only
// copy of its secret, and the credentials file to write for it.
type Recovered struct {
	Administrator manage.CreatedApplication
	Credentials   Credentials
}

// Recover creates a new administrator holding every management scope, with
// a secret, on the database of cfg: the way back when no administrator is
// left (`m2mauth admin recover`, run on the server's machine). It opens the
// store as New does, with the configured master key or, on SQLite, the
// data directory's master.key, which it never creates; it creates no data
// directory and no database either. Audited as "administrator.recover".
// cfg must have passed Validate.
//
// Returns an error wrapping ErrNotBootstrapped for a database without the
// management API, ErrNoMasterKey when no master key can be found, and
// masterkey.ErrOpen for a master key the database was not sealed with.
func Recover(ctx context.Context, cfg Config, deps Deps) (Recovered, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Rand == nil {
		deps.Rand = rand.Reader
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if cfg.DatabaseURL == "" {
		// sqlite.Open would create an empty database, and sealer a master
		// key, where there was none: refuse first.
		db := filepath.Join(cfg.DataDir, DatabaseFile)
		if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
			return Recovered{}, fmt.Errorf("%w (there is no %s in data dir %s; is it the --data-dir the server uses?)", ErrNotBootstrapped, DatabaseFile, cfg.DataDir)
		} else if err != nil {
			return Recovered{}, fmt.Errorf("data dir: %w", err)
		}
		if cfg.MasterKey == "" && cfg.MasterKeyFile == "" {
			path := filepath.Join(cfg.DataDir, MasterKeyFile)
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return Recovered{}, fmt.Errorf("%w: %s does not exist, and neither M2MAUTH_MASTER_KEY nor --master-key-file is set; give the key the server uses", ErrNoMasterKey, path)
			}
			// Loaded as a configured file, never created.
			cfg.MasterKeyFile = path
		}
	}
	s := &Server{cfg: cfg, log: deps.Log, now: deps.Now, rand: deps.Rand}
	sealer, err := s.sealer()
	if err != nil {
		return Recovered{}, err
	}
	st, err := s.openStore(ctx)
	if err != nil {
		return Recovered{}, err
	}
	defer st.Close()
	s.db, s.store = st, st
	// Before the pepper: loading it creates one on a database without.
	if _, err := st.GetAPIByIdentifier(ctx, authz.ManagementAudience); errors.Is(err, authz.ErrNotFound) {
		return Recovered{}, ErrNotBootstrapped
	} else if err != nil {
		return Recovered{}, fmt.Errorf("management API: %w", err)
	}
	hasher, err := s.pepper(ctx, sealer)
	if err != nil {
		return Recovered{}, err
	}
	svc := &manage.Service{
		Store: st, Hasher: hasher, DefaultAlg: cfg.DefaultSigningAlg, AdminTokenLifetime: cfg.AdminTokenLifetime,
		Now: s.now, Rand: s.rand, Log: s.log,
	}
	created, err := svc.Recover(ctx)
	if err != nil {
		var me *manage.Error
		if errors.As(err, &me) && me.Kind == manage.NotFound {
			return Recovered{}, fmt.Errorf("%w: %v", ErrNotBootstrapped, err)
		}
		return Recovered{}, fmt.Errorf("creating the administrator: %w", err)
	}
	return Recovered{
		Administrator: created,
		Credentials: Credentials{
			Issuer: cfg.Issuer, TokenEndpoint: cfg.Issuer + oauth.PathToken,
			ClientID: created.Application.ClientID, ClientSecret: created.ClientSecret, Audience: authz.ManagementAudience,
		},
	}, nil
}
