package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/server"
)

// writeConfig writes body to a config file in a temporary directory and
// returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m2mauth.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadWithFile binds the serve table with its config file to a command,
// parses args and loads with env as the environment.
func loadWithFile(t *testing.T, args []string, env map[string]string) (server.Config, *boundSettings[server.Config], error) {
	t.Helper()
	cmd := &cobra.Command{Use: "probe"}
	b := bindSettings(cmd, false, serveSettings)
	readConfigFile(cmd, b, serveSettings)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	var c server.Config
	err := b.load(func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}, &c)
	return c, b, err
}

// TestConfigFilePrecedence: for settings of every kind, a flag wins over
// its variable, the variable over the config file, the file over the
// default; an empty variable or value counts as unset.
func TestConfigFilePrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, env string
		// def is the value with nothing given; file, fromEnv and fromFlag
		// are given in the file (as YAML), the variable and the flag.
		def, file, fromEnv, fromFlag string
		show                         func(server.Config) string
	}{
		{key: "addr", env: "M2MAUTH_ADDR", def: server.DefaultAddr,
			file: "127.0.0.1:7001", fromEnv: "127.0.0.1:7002", fromFlag: "127.0.0.1:7003",
			show: func(c server.Config) string { return c.Addr }},
		{key: "cache-ttl", env: "M2MAUTH_CACHE_TTL", def: "2s",
			file: "3s", fromEnv: "4s", fromFlag: "5s",
			show: func(c server.Config) string { return c.CacheTTL.String() }},
		{key: "cache-max-entries", env: "M2MAUTH_CACHE_MAX_ENTRIES", def: "200000",
			file: "20", fromEnv: "30", fromFlag: "40",
			show: func(c server.Config) string { return strconv.Itoa(c.CacheMaxEntries) }},
		{key: "token-reuse-max-entries", env: "M2MAUTH_TOKEN_REUSE_MAX_ENTRIES", def: "100000",
			file: "20", fromEnv: "30", fromFlag: "40",
			show: func(c server.Config) string { return strconv.Itoa(c.TokenReuseMaxEntries) }},
		{key: "usage-interval", env: "M2MAUTH_USAGE_INTERVAL", def: "30s",
			file: "3s", fromEnv: "4s", fromFlag: "5s",
			show: func(c server.Config) string { return c.UsageInterval.String() }},
		{key: "max-connections", env: "M2MAUTH_MAX_CONNECTIONS", def: "10000",
			file: "20", fromEnv: "30", fromFlag: "40",
			show: func(c server.Config) string { return strconv.Itoa(c.MaxConnections) }},
		{key: "trusted-proxies", env: "M2MAUTH_TRUSTED_PROXIES", def: "",
			file: "10.0.0.0/8,192.168.0.0/16", fromEnv: "10.1.0.0/16", fromFlag: "10.2.0.0/16",
			show: func(c server.Config) string { return c.TrustedProxies }},
		{key: "database-url", env: "M2MAUTH_DATABASE_URL", def: "",
			file: "postgres://file@h/db", fromEnv: "postgres://env@h/db", fromFlag: "postgres://flag@h/db",
			show: func(c server.Config) string { return c.DatabaseURL }},
		{key: "default-quota-day", env: "M2MAUTH_DEFAULT_QUOTA_DAY", def: "0",
			file: "100", fromEnv: "200", fromFlag: "300",
			show: func(c server.Config) string { return strconv.Itoa(c.DefaultQuotaDay) }},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			file := writeConfig(t, "# a comment\nlog-level: debug\n"+tt.key+": "+tt.file+"\n")
			empty := writeConfig(t, tt.key+": \"\"\nlog-level:\n")
			flag := "--" + tt.key + "=" + tt.fromFlag
			cases := []struct {
				name string
				args []string
				env  map[string]string
				want string
			}{
				{"default", nil, nil, tt.def},
				{"file over default", []string{"--config", file}, nil, tt.file},
				{"file named by M2MAUTH_CONFIG", nil, map[string]string{envConfig: file}, tt.file},
				{"empty value in the file counts as unset", []string{"--config", empty}, nil, tt.def},
				{"empty variable counts as unset", []string{"--config", file}, map[string]string{tt.env: ""}, tt.file},
				{"environment over file", []string{"--config", file}, map[string]string{tt.env: tt.fromEnv}, tt.fromEnv},
				{"flag over environment and file", []string{"--config", file, flag}, map[string]string{tt.env: tt.fromEnv}, tt.fromFlag},
				{"flag over file", []string{"--config", file, flag}, nil, tt.fromFlag},
				{"--config over M2MAUTH_CONFIG", []string{"--config", file}, map[string]string{envConfig: empty}, tt.file},
			}
			for _, c := range cases {
				cfg, _, err := loadWithFile(t, c.args, c.env)
				if err != nil {
					t.Errorf("%s: %v", c.name, err)
					continue
				}
				if got := tt.show(cfg); got != normalize(tt.key, c.want) {
					t.Errorf("%s: got %q, want %q", c.name, got, normalize(tt.key, c.want))
				}
				// Another key of the same file is read in every case.
				if fromFile := slices.Contains(c.args, file) || c.env[envConfig] == file; fromFile && cfg.LogLevel != "debug" {
					t.Errorf("%s: log-level %q, want debug from the file", c.name, cfg.LogLevel)
				}
			}
		})
	}
}

// normalize writes a duration as time.Duration.String does.
func normalize(key, v string) string {
	if key == "cache-ttl" {
		return strings.TrimSuffix(v, "s") + "s"
	}
	return v
}

// TestConfigFileRefuses: a key that is no setting, an environment-only
// secret, a value that is no scalar, a bad value and a missing file are
// errors naming the file and the key, and never showing a secret.
func TestConfigFileRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       []string
	}{
		{"typo", "cache-tll: 5s\n", []string{`unknown key "cache-tll"`, "did you mean cache-ttl?"}},
		{"unknown key", "listen: 127.0.0.1:1\n", []string{`unknown key "listen"`, "the keys are serve's flag names"}},
		{"every unknown key", "a: 1\nb: 2\n", []string{`unknown key "a"`, `unknown key "b"`}},
		{"environment-only master key", "master-key: c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==\n",
			[]string{"master-key may not be in a config file", "M2MAUTH_MASTER_KEY", "master-key-file"}},
		{"environment-only previous master key", "previous-master-key: s3cr3t\n",
			[]string{"previous-master-key may not be in a config file", "M2MAUTH_PREVIOUS_MASTER_KEY"}},
		{"a list", "trusted-proxies: [10.0.0.0/8]\n", []string{"trusted-proxies must be a single value", "comma-separated"}},
		{"a map", "addr: {host: x}\n", []string{"addr must be a single value"}},
		{"not a map", "- addr\n", []string{"is not a YAML map of settings"}},
		{"bad YAML", "addr: [\n", []string{"is not a YAML map of settings"}},
		{"bad YAML next to a password", "database-url: postgres://u:s3cr3t@h/db\naddr: [\n", []string{"is not a YAML map of settings"}},
		{"duplicate key", "addr: 127.0.0.1:1\naddr: 127.0.0.1:2\n", []string{"is not a YAML map of settings"}},
		{"bad value", "cache-ttl: soon\n", []string{`: cache-ttl "soon" must be a Go duration`}},
		{"bad secret value", "database-url: 42\nmax-connections: 0\n", []string{`: max-connections "0" must be a whole number`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeConfig(t, tt.body)
			_, _, err := loadWithFile(t, []string{"--config", path}, nil)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, want := range append(tt.want, path) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(t.TempDir(), "none.yaml")
		for _, c := range []struct {
			args []string
			env  map[string]string
			want string
		}{
			{[]string{"--config", missing}, nil, "--config: reading the config file"},
			{nil, map[string]string{envConfig: missing}, envConfig + ": reading the config file"},
		} {
			_, _, err := loadWithFile(t, c.args, c.env)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), missing) {
				t.Errorf("error %v, want one containing %q and the path", err, c.want)
			}
		}
	})
}

// TestConfigFileCommands: serve and admin recover read the file, name the
// file and key in Validate's errors, and admin recover accepts the keys
// of serve it does not read.
func TestConfigFileCommands(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	path := writeConfig(t, "data-dir: "+dir+"\nkey-rotation-period: 59m\n")
	_, _, err := runCLI(t, "", "serve", "--config", path)
	if want := path + ": key-rotation-period 59m0s must be at least 1h0m0s"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("serve: error %v, want one containing %q", err, want)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("serve created its data dir before refusing the config file")
	}
	// key-rotation-period is no setting of admin recover: it reads
	// data-dir from the file and finds no database there.
	_, _, err = runCLI(t, "", "admin", "recover", "--config", path)
	if err == nil || !strings.Contains(err.Error(), "data dir "+dir+" does not exist") {
		t.Errorf("admin recover: error %v, want the one about the file's data dir", err)
	}
	typo := writeConfig(t, "data-dri: "+dir+"\n")
	_, _, err = runCLI(t, "", "admin", "recover", "--config", typo)
	if err == nil || !strings.Contains(err.Error(), `unknown key "data-dri"`) {
		t.Errorf("admin recover: error %v, want the unknown key", err)
	}
}

// TestConfigPrint: config print shows every setting with where it came
// from, and redacts every secret, whether it came from the environment,
// the file or a flag. It sets environment variables, so it cannot run in
// parallel.
func TestConfigPrint(t *testing.T) {
	const (
		masterKey   = "s3cr3t-master-key-bXlrZXlteWtleW15a2V5bXlrZXlteWtleW15a2V5MTI="
		previousKey = "s3cr3t-previous-key"
		envPassword = "s3cr3t-env-pw"
	)
	path := writeConfig(t, "cache-ttl: 3s\nlog-format: json\nmaster-key-file: /run/secrets/master.key\n"+
		"database-url: postgres://m2mauth:s3cr3t-file-pw@db.internal:5432/m2mauth?sslmode=verify-full&password=s3cr3t-param\n")
	t.Setenv(envConfig, path)
	t.Setenv("M2MAUTH_MASTER_KEY", masterKey)
	t.Setenv("M2MAUTH_PREVIOUS_MASTER_KEY", previousKey)
	t.Setenv("M2MAUTH_LOG_FORMAT", "text")

	out, errOut, err := runCLI(t, "", "config", "print", "--addr", "127.0.0.1:9999")
	// Both a master key and a master-key-file: Validate refuses, after
	// printing.
	if err == nil {
		t.Errorf("config print accepted both a master key and a master-key-file")
	}
	for _, want := range []string{
		"addr: 127.0.0.1:9999", "# --addr",
		"cache-ttl: 3s", "# " + path + ": cache-ttl",
		"log-format: text", "# M2MAUTH_LOG_FORMAT",
		"max-connections: 10000", "# default",
		"master-key-file: /run/secrets/master.key",
		"# M2MAUTH_MASTER_KEY set: REDACTED", "# M2MAUTH_PREVIOUS_MASTER_KEY set: REDACTED",
		"database-url: \"postgres://m2mauth:REDACTED@db.internal:5432/m2mauth?password=REDACTED&sslmode=verify-full\"",
		"# " + path + ": database-url",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "s3cr3t") || (err != nil && strings.Contains(err.Error(), "s3cr3t")) {
		t.Errorf("config print shows a secret:\n%s\n%s\n%v", out, errOut, err)
	}
	if n := strings.Count(out, "\n"); n != len(serveSettings)+1 {
		t.Errorf("config print has %d lines, want a heading and one per setting (%d)", n, len(serveSettings))
	}

	// A secret from the environment and a flag, too.
	t.Setenv("M2MAUTH_DATABASE_URL", "postgres://u:"+envPassword+"@h/db")
	out, _, _ = runCLI(t, "", "config", "print")
	if !strings.Contains(out, "database-url: postgres://u:REDACTED@h/db") || !strings.Contains(out, "# M2MAUTH_DATABASE_URL") || strings.Contains(out, "s3cr3t") {
		t.Errorf("database-url from the environment:\n%s", out)
	}
	out, _, _ = runCLI(t, "", "config", "print", "--database-url", "s3cr3t-not-a-url")
	if !strings.Contains(out, "database-url: REDACTED") || strings.Contains(out, "s3cr3t") {
		t.Errorf("database-url that is no URL:\n%s", out)
	}
}

// TestConfigPrintReadsBack: what config print prints is a config file
// giving the same configuration.
func TestConfigPrintReadsBack(t *testing.T) {
	t.Parallel()
	args := []string{"--addr", "127.0.0.1:9999", "--issuer", "https://auth.example.com", "--cache-ttl", "3s",
		"--trusted-proxies", "10.0.0.0/8, 192.168.0.0/16", "--default-rate", "5/s", "--log-level", "debug"}
	want, b, err := loadWithFile(t, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := printConfig(&out, b); err != nil {
		t.Fatal(err)
	}
	got, _, err := loadWithFile(t, []string{"--config", writeConfig(t, out.String())}, nil)
	if err != nil {
		t.Fatalf("reading back:\n%s\n%v", out.String(), err)
	}
	if got != want {
		t.Errorf("read back\n%+v\nwant\n%+v\nfrom\n%s", got, want, out.String())
	}
}
