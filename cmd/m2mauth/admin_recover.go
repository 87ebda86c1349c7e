package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/server"
)

// recoverSettings are the rows of serveSettings that `admin recover`
// reads: where the database and the master key are, and the issuer its
// credentials file records.
var recoverSettings = pick(serveSettings,
	"addr", "issuer", "data-dir", "database-url",
	"M2MAUTH_MASTER_KEY", "master-key-file", "M2MAUTH_PREVIOUS_MASTER_KEY", "previous-master-key-file",
	"log-level", "log-format",
)

// newAdminCmd groups the commands run on the server's machine, on its
// database, rather than through the management API.
func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Work on the server's database directly, on its machine",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAdminRecoverCmd())
	return cmd
}

func newAdminRecoverCmd() *cobra.Command {
	var cfg server.Config
	var out string
	var settings *boundSettings[server.Config]
	cmd := &cobra.Command{
		Use:   "recover (--data-dir DIR | --database-url URL) [--master-key-file FILE] [--out FILE]",
		Short: "Create a new administrator when none is left",
		Long: `Create a new administrator application, holding every management scope,
directly in the server's database, and write its credentials file (mode
0600): the way back when no administrator is left, or none whose secret is
known. It is audited as administrator.recover.

Run it on the server's machine with the server's settings: the SQLite
--data-dir, or --database-url with the master key the server uses. With
SQLite and no master key given, it uses the data directory's master.key; it
never generates one. --issuer and --addr give the issuer the credentials
file records, as for serve.

The credentials file, by default <data-dir>/admin-credentials.json, is
replaced atomically. It prints where it wrote it and the new client_id,
never the secret. Then check the other administrators (m2mauth app list)
and delete or disable those you do not trust.`,
		Example: "  m2mauth admin recover --data-dir /var/lib/m2mauth\n" +
			"  M2MAUTH_MASTER_KEY=... m2mauth admin recover --database-url postgres://... --out ./admin.json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := settings.load(os.LookupEnv, &cfg); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return settings.explain(err)
			}
			if cfg.DatabaseURL == "" {
				if _, err := os.Stat(cfg.DataDir); errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("data dir %s does not exist: give the --data-dir the server uses", cfg.DataDir)
				}
			}
			if out == "" {
				out = filepath.Join(cfg.DataDir, server.CredentialsFile)
			}
			// Made before the administrator, so that a file that cannot be
			// written fails the command before it creates anything.
			tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
			if err != nil {
				return fmt.Errorf("cannot write the credentials file: %w", err)
			}
			defer os.Remove(tmp.Name()) // after the rename, there is none
			defer tmp.Close()
			log, logs := newLogger(cfg, os.Stderr)
			defer logs.Close()
			rec, err := server.Recover(cmd.Context(), cfg, server.Deps{Log: log})
			if err != nil {
				return err
			}
			clientID := rec.Credentials.ClientID
			if err := replaceFile(tmp, out, rec.Credentials); err != nil {
				return fmt.Errorf("administrator %s was created, but its credentials could not be written to %s: %w; run admin recover again, then delete %s", clientID, out, err, clientID)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Created administrator %s, holding every management scope.\n", clientID)
			fmt.Fprintf(w, "Credentials written to %s (mode 0600).\n", out)
			fmt.Fprintf(w, "Next: check the other administrators with m2mauth app list --credentials %s, and delete or disable those you do not trust.\n", out)
			return nil
		},
	}
	settings = bindSettings(cmd, false, recoverSettings)
	readConfigFile(cmd, settings, serveSettings)
	cmd.Flags().StringVar(&out, "out", "", "credentials `file` to write, replaced atomically (mode 0600); default <data-dir>/"+server.CredentialsFile)
	return cmd
}

// replaceFile writes c as JSON to tmp, a new file in path's directory, and
// renames it to path: a reader sees the old file or the new one, whole.
func replaceFile(tmp *os.File, path string, c server.Credentials) error {
	body, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(body, '\n')); err != nil {
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename itself survives a crash once the directory is synced.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
