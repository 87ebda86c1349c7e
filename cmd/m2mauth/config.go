package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/server"
)

// envConfig names the variable that gives the config file when --config
// is not given.
const envConfig = "M2MAUTH_CONFIG"

// A config file is YAML, one key per setting: the key is the setting's flag
// name (addr: 127.0.0.1:8080, cache-ttl: 2s), its value a scalar in the
// flag's syntax. It comes after the flag and the variable, before the
// default. A key that is no setting is an error naming it, so that a typo
// cannot silently do nothing. The secrets the environment alone gives
// (M2MAUTH_MASTER_KEY, M2MAUTH_PREVIOUS_MASTER_KEY) are refused in the file:
// a config file is often copied, committed or mounted world-readable, and
// master-key-file names a file of the key's own instead.
type configFile struct {
	flag *flagValue // --config
	// keys are the keys a file may hold: the flags of the whole table, so
	// that one file serves every command reading part of it.
	keys []string
	// envOnly maps the key a reader would write for an environment-only
	// secret (master-key) to its variable.
	envOnly map[string]string
}

// fileValues are the settings a config file gives, as text in the flags'
// syntax, by key; path is "" when no file is read.
type fileValues struct {
	path   string
	values map[string]string
}

// readConfigFile gives cmd a --config flag (M2MAUTH_CONFIG) whose file b
// loads, with the keys of table (a superset of b's rows).
func readConfigFile[T any](cmd *cobra.Command, b *boundSettings[T], table []setting[T]) {
	f := &configFile{flag: &flagValue{typ: "string"}, envOnly: map[string]string{}}
	for _, s := range table {
		if s.flag != "" {
			f.keys = append(f.keys, s.flag)
		} else {
			f.envOnly[envKey(s.env)] = s.env
		}
	}
	cmd.Flags().Var(f.flag, "config", "YAML `file` of settings, keyed by flag name (addr: 127.0.0.1:8080); flags and variables win over it ("+envConfig+")")
	b.file = f
}

// envKey is the key a variable would have in a config file:
// M2MAUTH_MASTER_KEY is master-key.
func envKey(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "M2MAUTH_")), "_", "-")
}

// read reads the file --config or M2MAUTH_CONFIG names, if any. Its errors
// name the file, and the key for a key's problem; none shows a value.
func (f *configFile) read(lookup func(string) (string, bool)) (fileValues, error) {
	path, from := f.flag.text, "--config"
	if !f.flag.given {
		path, from = "", envConfig
		if v, ok := lookup(envConfig); ok {
			path = v
		}
	}
	if path == "" {
		return fileValues{}, nil
	}
	body, err := os.ReadFile(path)
	if err != nil {
		return fileValues{}, fmt.Errorf("%s: reading the config file: %w", from, err)
	}
	var doc map[string]any
	if err := yaml.UnmarshalWithOptions(body, &doc); err != nil {
		// Without the source lines the error could quote: one may hold
		// database-url's password.
		return fileValues{}, fmt.Errorf("config file %s is not a YAML map of settings: %s", path, yaml.FormatError(err, false, false))
	}
	out := fileValues{path: path, values: map[string]string{}}
	var errs []error
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if env, ok := f.envOnly[k]; ok {
			errs = append(errs, fmt.Errorf("%s: %s may not be in a config file: it is a secret only %s gives; name a file holding it with %s-file instead", path, k, env, k))
			continue
		}
		if !slices.Contains(f.keys, k) {
			msg := fmt.Sprintf("%s: unknown key %q", path, k)
			if near := nearest(k, f.keys); near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", near)
			}
			errs = append(errs, errors.New(msg+"; the keys are serve's flag names (m2mauth serve --help)"))
			continue
		}
		text, ok, err := scalarText(doc[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s %v", path, k, err))
			continue
		}
		if ok {
			out.values[k] = text
		}
	}
	return out, errors.Join(errs...)
}

// scalarText is a YAML value as a flag's text. A null or empty value counts
// as unset (ok false), as an empty variable does.
func scalarText(v any) (text string, ok bool, err error) {
	switch v := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return v, v != "", nil
	case bool:
		return strconv.FormatBool(v), true, nil
	case int64:
		return strconv.FormatInt(v, 10), true, nil
	case uint64:
		return strconv.FormatUint(v, 10), true, nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "", false, errors.New("must be a number, a string or a bool")
		}
		return strconv.FormatFloat(v, 'f', -1, 64), true, nil
	case map[string]any, []any:
		return "", false, errors.New("must be a single value, not a map or a list (a list of CIDRs is one comma-separated string)")
	default:
		return fmt.Sprint(v), true, nil
	}
}

// nearest returns the key of keys closest to k, if one is at most two
// edits away.
func nearest(k string, keys []string) string {
	best, bestD := "", 3
	for _, c := range keys {
		if d := editDistance(k, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the server's configuration",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newConfigPrintCmd())
	return cmd
}

func newConfigPrintCmd() *cobra.Command {
	var cfg server.Config
	var settings *boundSettings[server.Config]
	cmd := &cobra.Command{
		Use:   "print [--config FILE] [serve's flags]",
		Short: "Print the configuration serve would run with, secrets redacted",
		Long: `Print the configuration m2mauth serve would run with, given the same flags,
environment and config file: every setting, as a config file's key, with
where its value came from (a flag, a variable, the config file or the
default). Precedence: flag > environment > config file > default.

Secrets are redacted: the master keys, and the password of --database-url.
It then checks the configuration as serve does, and fails if serve would.`,
		Example: "  m2mauth config print --config /etc/m2mauth/m2mauth.yaml\n" +
			"  M2MAUTH_CACHE_TTL=5s m2mauth config print --addr 0.0.0.0:8443",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := settings.load(os.LookupEnv, &cfg); err != nil {
				return err
			}
			if err := printConfig(cmd.OutOrStdout(), settings); err != nil {
				return err
			}
			return settings.explain(cfg.Validate())
		},
	}
	settings = bindSettings(cmd, false, serveSettings)
	readConfigFile(cmd, settings, serveSettings)
	return cmd
}

// printConfig writes b's loaded values as a config file, each with where it
// came from; secrets redacted. Environment-only secrets, which a file may
// not hold, are comments.
func printConfig[T any](w io.Writer, b *boundSettings[T]) error {
	type line struct{ entry, from string }
	lines := make([]line, len(b.rows))
	width := 0
	for i, s := range b.rows {
		v := b.loaded[i]
		from := v.from
		if from == "" {
			from = "default"
		}
		shown := v.text
		if s.secret {
			shown = redactSecret(v.text)
		}
		var entry string
		if s.flag == "" {
			if v.text == "" {
				entry = "# " + s.env + " not set"
			} else {
				entry = "# " + s.env + " set: " + shown
			}
			from += " (environment only)"
		} else {
			entry = s.flag + ": " + yamlScalar(shown)
		}
		lines[i] = line{entry, from}
		width = max(width, len(entry))
	}
	var out strings.Builder
	out.WriteString("# The configuration of m2mauth serve: flag > environment > config file > default.\n")
	for _, l := range lines {
		fmt.Fprintf(&out, "%-*s  # %s\n", width, l.entry, l.from)
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// redacted replaces a secret in what config print shows.
const redacted = "REDACTED"

// redactSecret returns what may be shown of a secret setting's value: nothing but
// "REDACTED", except for a URL, shown with its password (and any password
// parameter) redacted. An unset secret is "".
func redactSecret(v string) string {
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return redacted
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") || strings.Contains(strings.ToLower(k), "key") {
			q.Set(k, redacted)
		}
	}
	u.RawQuery = q.Encode()
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// plainScalar matches the values YAML reads back as the same string
// without quotes.
var plainScalar = regexp.MustCompile(`^[A-Za-z0-9./][A-Za-z0-9._/:@+%=,-]*$`)

// yamlScalar writes v as a YAML scalar that reads back as v.
func yamlScalar(v string) string {
	switch strings.ToLower(v) {
	case "", "null", "~", "yes", "no", "on", "off", "y", "n":
		return strconv.Quote(v)
	}
	if plainScalar.MatchString(v) && !strings.HasSuffix(v, ":") {
		return v
	}
	return strconv.Quote(v)
}
