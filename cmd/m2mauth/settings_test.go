package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/server"
)

// secretValue is what TestHelpShowsNoEnvironmentValues sets variable name
// to: distinct per variable, and shaped like a credential.
func secretValue(name string) string {
	return "s3cr3t-" + name + "-postgres://u:pw@h/db"
}

// everyVariable lists the variables of every settings table, the
// environment-only secrets and the token command's credentials.
func everyVariable() []string {
	out := []string{"M2MAUTH_MASTER_KEY", "M2MAUTH_PREVIOUS_MASTER_KEY", "M2MAUTH_CLIENT_ID", "M2MAUTH_CLIENT_SECRET", envConfig}
	for _, s := range serveSettings {
		if !slices.Contains(out, s.env) {
			out = append(out, s.env)
		}
	}
	for _, s := range clientSettings {
		if !slices.Contains(out, s.env) {
			out = append(out, s.env)
		}
	}
	return out
}

// commandPaths returns the path of every command under cmd, such as
// ["admin", "recover"].
func commandPaths(cmd *cobra.Command, prefix []string) [][]string {
	var out [][]string
	for _, c := range cmd.Commands() {
		p := append(slices.Clone(prefix), c.Name())
		out = append(out, p)
		out = append(out, commandPaths(c, p)...)
	}
	return out
}

// TestHelpShowsNoEnvironmentValues sets every variable of the settings
// tables to a secret-looking value and runs every command's --help: none
// may show a value. It sets environment variables, so it cannot run in
// parallel.
func TestHelpShowsNoEnvironmentValues(t *testing.T) {
	vars := everyVariable()
	for _, name := range vars {
		t.Setenv(name, secretValue(name))
	}
	paths := commandPaths(newRoot(), nil)
	for _, want := range []string{"serve", "admin recover", "api list", "app create", "token"} {
		if !slices.ContainsFunc(paths, func(p []string) bool { return strings.Join(p, " ") == want }) {
			t.Fatalf("no command %q among %v", want, paths)
		}
	}
	for _, p := range paths {
		t.Run(strings.Join(p, " "), func(t *testing.T) {
			out, errOut, err := runCLI(t, "", append(p, "--help")...)
			if err != nil {
				t.Fatalf("--help: %v", err)
			}
			if out == "" {
				t.Fatal("--help printed nothing")
			}
			for _, name := range vars {
				if strings.Contains(out+errOut, secretValue(name)) {
					t.Errorf("--help shows the value of %s:\n%s", name, out)
				}
			}
			if strings.Contains(out+errOut, "s3cr3t") {
				t.Errorf("--help shows part of a variable's value:\n%s", out)
			}
		})
	}
}

// loadArgs binds rows to a command, parses args and loads the settings
// with env as the environment.
func loadArgs[T any](t *testing.T, rows []setting[T], args []string, env map[string]string) (T, error) {
	t.Helper()
	cmd := &cobra.Command{Use: "probe"}
	b := bindSettings(cmd, false, rows)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	var c T
	err := b.load(func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}, &c)
	return c, err
}

// probe is a configuration with a boolean, which serve has none of, to
// test the bool parser the tables may use.
type probe struct{ verbose bool }

var probeSettings = []setting[probe]{
	{flag: "verbose", env: "M2MAUTH_TEST_VERBOSE", def: "false", usage: "say more",
		parse: boolField(func(p *probe) *bool { return &p.verbose })},
}

func TestSettingsPrecedence(t *testing.T) {
	t.Parallel()
	// Each kind loads one setting from args and env and shows the value.
	serve := func(show func(server.Config) string) func(*testing.T, []string, map[string]string) (string, error) {
		return func(t *testing.T, args []string, env map[string]string) (string, error) {
			c, err := loadArgs(t, serveSettings, args, env)
			return show(c), err
		}
	}
	tests := []struct {
		name      string
		flag, env string
		// def is the value with neither flag nor variable; fromEnv and
		// fromFlag are given as the variable and the flag; bad is a
		// variable the flag must make irrelevant.
		def, fromEnv, fromFlag, bad string
		load                        func(*testing.T, []string, map[string]string) (string, error)
	}{
		{name: "string", flag: "issuer", env: "M2MAUTH_ISSUER",
			def: "", fromEnv: "https://env.example.com", fromFlag: "https://flag.example.com",
			load: serve(func(c server.Config) string { return c.Issuer })},
		{name: "string with a default", flag: "data-dir", env: "M2MAUTH_DATA_DIR",
			def: server.DefaultDataDir, fromEnv: "/env/data", fromFlag: "/flag/data",
			load: serve(func(c server.Config) string { return c.DataDir })},
		{name: "duration", flag: "cache-ttl", env: "M2MAUTH_CACHE_TTL",
			def: "2s", fromEnv: "3s", fromFlag: "4s", bad: "soon",
			load: serve(func(c server.Config) string { return c.CacheTTL.String() })},
		{name: "new duration", flag: "admin-token-lifetime", env: "M2MAUTH_ADMIN_TOKEN_LIFETIME",
			def: "15m0s", fromEnv: "5m0s", fromFlag: "1h0m0s", bad: "forever",
			load: serve(func(c server.Config) string { return c.AdminTokenLifetime.String() })},
		{name: "bool", flag: "verbose", env: "M2MAUTH_TEST_VERBOSE",
			def: "false", fromEnv: "true", fromFlag: "false", bad: "maybe",
			load: func(t *testing.T, args []string, env map[string]string) (string, error) {
				p, err := loadArgs(t, probeSettings, args, env)
				return strconv.FormatBool(p.verbose), err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flag := []string{"--" + tt.flag + "=" + tt.fromFlag}
			cases := []struct {
				name string
				args []string
				env  map[string]string
				want string
			}{
				{"default", nil, nil, tt.def},
				{"empty variable counts as unset", nil, map[string]string{tt.env: ""}, tt.def},
				{"environment over default", nil, map[string]string{tt.env: tt.fromEnv}, tt.fromEnv},
				{"flag over environment", flag, map[string]string{tt.env: tt.fromEnv}, tt.fromFlag},
				{"flag over default", flag, nil, tt.fromFlag},
			}
			if tt.bad != "" {
				cases = append(cases, struct {
					name string
					args []string
					env  map[string]string
					want string
				}{"flag given: its bad variable is not read", flag, map[string]string{tt.env: tt.bad}, tt.fromFlag})
			}
			for _, c := range cases {
				got, err := tt.load(t, c.args, c.env)
				if err != nil || got != c.want {
					t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
				}
			}
			if tt.bad != "" {
				_, err := tt.load(t, nil, map[string]string{tt.env: tt.bad})
				if err == nil || !strings.Contains(err.Error(), tt.env+" "+strconv.Quote(tt.bad)) {
					t.Errorf("bad variable: error %v, want one naming %s and its value", err, tt.env)
				}
				_, err = tt.load(t, []string{"--" + tt.flag + "=" + tt.bad}, nil)
				if err == nil || !strings.Contains(err.Error(), "--"+tt.flag+" "+strconv.Quote(tt.bad)) {
					t.Errorf("bad flag: error %v, want one naming --%s and its value", err, tt.flag)
				}
			}
		})
	}
	t.Run("bool flag alone means true", func(t *testing.T) {
		p, err := loadArgs(t, probeSettings, []string{"--verbose"}, map[string]string{"M2MAUTH_TEST_VERBOSE": "false"})
		if err != nil || !p.verbose {
			t.Errorf("--verbose: %v, %v", p.verbose, err)
		}
	})
}

// TestSettingsBadValue: a bad M2MAUTH_* value fails the commands that read
// it, with an error naming the variable, before anything is created, and
// no other command. It sets environment variables, so it cannot run in
// parallel.
func TestSettingsBadValue(t *testing.T) {
	tests := []struct {
		env, value, want string
	}{
		{"M2MAUTH_CACHE_TTL", "soon", `M2MAUTH_CACHE_TTL "soon" must be a Go duration of at least 100ms`},
		{"M2MAUTH_KEY_ROTATION_PERIOD", "0", `M2MAUTH_KEY_ROTATION_PERIOD "0" must be a Go duration of at least 1h0m0s`},
		{"M2MAUTH_KEY_ROTATION_PERIOD", "59m", "M2MAUTH_KEY_ROTATION_PERIOD 59m0s must be at least 1h0m0s"},
		{"M2MAUTH_ADMIN_TOKEN_LIFETIME", "2h", "M2MAUTH_ADMIN_TOKEN_LIFETIME 2h0m0s must be between 1m and 1h"},
		{"M2MAUTH_ADMIN_TOKEN_LIFETIME", "90.5s", "M2MAUTH_ADMIN_TOKEN_LIFETIME 1m30.5s must be between 1m and 1h, in whole seconds"},
		{"M2MAUTH_ADMIN_TOKEN_LIFETIME", "30s", "M2MAUTH_ADMIN_TOKEN_LIFETIME 30s must be between 1m and 1h"},
		{"M2MAUTH_LOG_FORMAT", "xml", `M2MAUTH_LOG_FORMAT "xml" must be text or json`},
		{"M2MAUTH_ADDR", "nowhere", `M2MAUTH_ADDR "nowhere" is not host:port`},
		{"M2MAUTH_DATABASE_URL", "mysql://u:pw@h/db", "M2MAUTH_DATABASE_URL must be a postgres:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			t.Setenv(tt.env, tt.value)
			dir := filepath.Join(t.TempDir(), "data")

			_, _, err := runCLI(t, "", "serve", "--data-dir", dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("serve: error %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Errorf("the error shows the secret value: %v", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("serve created its data dir before refusing the setting (%v)", err)
			}

			// The client commands read no serve setting.
			for _, args := range [][]string{{"api", "list", "--help"}, {"admin", "recover", "--help"}, {"serve", "--help"}} {
				if _, _, err := runCLI(t, "", args...); err != nil {
					t.Errorf("%v: %v", args, err)
				}
			}
			missing := filepath.Join(t.TempDir(), "missing.json")
			if _, _, err := runCLI(t, "", "app", "list", "--credentials", missing); err == nil || !strings.Contains(err.Error(), "does not exist") {
				t.Errorf("app list: error %v, want the one about the credentials file", err)
			}
			// admin recover fails on it only if it reads it.
			_, _, err = runCLI(t, "", "admin", "recover", "--data-dir", t.TempDir())
			reads := slices.ContainsFunc(recoverSettings, func(s setting[server.Config]) bool { return s.env == tt.env })
			if reads && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("admin recover reads %s: error %v, want one containing %q", tt.env, err, tt.want)
			}
			if !reads && !errors.Is(err, server.ErrNotBootstrapped) {
				t.Errorf("admin recover does not read %s: error %v, want the never-bootstrapped one", tt.env, err)
			}
		})
	}
}

// TestSettingsTable checks the tables themselves: names, defaults, and
// that Validate names its fields as the table's flags.
func TestSettingsTable(t *testing.T) {
	t.Parallel()
	t.Run("names", func(t *testing.T) {
		for name, flags := range map[string][][2]string{"serve": rowNames(serveSettings), "client": rowNames(clientSettings)} {
			seen := map[string]bool{}
			for _, fe := range flags {
				flag, env := fe[0], fe[1]
				if !regexp.MustCompile(`^M2MAUTH_[A-Z_]+$`).MatchString(env) {
					t.Errorf("%s: --%s has variable %q", name, flag, env)
				}
				if flag != "" && env != "M2MAUTH_"+strings.ToUpper(strings.ReplaceAll(flag, "-", "_")) {
					t.Errorf("%s: --%s has variable %s, not the one named after it", name, flag, env)
				}
				if seen[flag] || seen[env] {
					t.Errorf("%s: --%s or %s defined twice", name, flag, env)
				}
				seen[env] = true
				if flag != "" {
					seen[flag] = true
				}
			}
		}
		for _, s := range serveSettings {
			if s.flag == "" && !s.secret {
				t.Errorf("%s has no flag but is not a secret: only secrets are environment-only", s.env)
			}
		}
	})
	t.Run("defaults load and validate", func(t *testing.T) {
		c, err := loadArgs(t, serveSettings, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		want := server.Config{}
		if err := want.Validate(); err != nil {
			t.Fatal(err)
		}
		if c != want {
			t.Errorf("the table's defaults give\n%+v\nValidate's give\n%+v", c, want)
		}
	})
	t.Run("Validate names the table's flags", func(t *testing.T) {
		c := server.Config{
			Addr: "nowhere", Issuer: "ftp://x", DefaultSigningAlg: "HS1", MasterKey: "k",
			DatabaseURL: "mysql://x", CacheTTL: time.Millisecond, CacheMaxStale: 100 * time.Hour, KeyRotationPeriod: time.Second,
			AdminTokenLifetime: 2 * time.Hour, LogLevel: "loud", LogFormat: "xml",
		}
		err := c.Validate()
		var named []string
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *server.FieldError
			if !errors.As(e, &fe) {
				t.Errorf("not a FieldError: %v", e)
				continue
			}
			named = append(named, fe.Setting)
			if !slices.ContainsFunc(serveSettings, func(s setting[server.Config]) bool { return s.flag == fe.Setting }) {
				t.Errorf("Validate names %q, which is no flag of serve: %v", fe.Setting, e)
			}
		}
		if len(named) != 10 {
			t.Errorf("Validate named %v, want the 10 bad fields", named)
		}
	})
	t.Run("short durations", func(t *testing.T) {
		for d, want := range map[string]string{"720h": "720h", "15m": "15m", "2s": "2s", "1h30m": "1h30m", "90s": "1m30s", "100ms": "100ms"} {
			dur, err := time.ParseDuration(d)
			if err != nil {
				t.Fatal(err)
			}
			if got := shortDuration(dur); got != want {
				t.Errorf("shortDuration(%s) = %s, want %s", d, got, want)
			}
		}
	})
}

func rowNames[T any](rows []setting[T]) [][2]string {
	var out [][2]string
	for _, s := range rows {
		out = append(out, [2]string{s.flag, s.env})
	}
	return out
}

// TestSettingsREADME: the README's Configuration table has one row per
// setting of serve, with its variable and default, and no other; the
// client settings are named in the text after it, and the config file
// (whose keys are the table's flags) in the text before it.
func TestSettingsREADME(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(b)
	start := strings.Index(section, "## Configuration\n")
	if start < 0 {
		t.Fatal("the README has no Configuration section")
	}
	section = section[start+len("## Configuration\n"):]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	rows := map[string]string{} // by variable: the row's default column
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) < 4 || !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| flag") || strings.HasPrefix(line, "| ---") {
			continue
		}
		flag, env, def := strings.TrimPrefix(cells[0], "| "), strings.Trim(cells[1], "`"), cells[2]
		i := slices.IndexFunc(serveSettings, func(s setting[server.Config]) bool { return s.env == env })
		if i < 0 {
			t.Errorf("README row for %s, which is no setting of serve", env)
			continue
		}
		s := serveSettings[i]
		if (s.flag == "" && flag != "—") || (s.flag != "" && flag != "`--"+s.flag+"`") {
			t.Errorf("README row for %s names flag %s, want --%s", env, flag, s.flag)
		}
		if s.def != "" && def != "`"+s.def+"`" {
			t.Errorf("README row for %s has default %s, want `%s`", env, def, s.def)
		}
		rows[env] = def
	}
	for _, s := range serveSettings {
		if _, ok := rows[s.env]; !ok {
			t.Errorf("the README's Configuration table has no row for %s", s.env)
		}
	}
	for _, s := range clientSettings {
		if !strings.Contains(section, "`--"+s.flag+"`") || !strings.Contains(section, "`"+s.env+"`") {
			t.Errorf("the README's Configuration section does not name --%s (%s)", s.flag, s.env)
		}
	}
	// The config file's keys are the flags, which the table names; the
	// section says so and names the file's flag, variable and command.
	for _, want := range []string{"`--config FILE`", "`" + envConfig + "`", "flag > environment > config file > default", "`m2mauth config print`", "flag names"} {
		if !strings.Contains(section, want) {
			t.Errorf("the README's Configuration section does not say %s", want)
		}
	}
}
