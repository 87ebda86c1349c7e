package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/m2mauth/m2mauth/internal/admin"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/oauth"
	"github.com/m2mauth/m2mauth/internal/server"
)

// addClientCommands adds the commands that drive a running server: api,
// app and grant call the management API with the administrator's
// credentials; token asks the token endpoint for any application.
func addClientCommands(root *cobra.Command) {
	opts := &clientOptions{}
	for _, cmd := range []*cobra.Command{newAPICmd(opts), newAppCmd(opts), newGrantCmd(opts), newTokenCmd(opts), newAuditCmd(opts), newKeyCmd(opts), newTrustedIssuerCmd(opts)} {
		opts.register(cmd)
		root.AddCommand(cmd)
	}
}

// requestTimeout bounds each HTTP exchange with the server, the token
// request included.
const requestTimeout = 30 * time.Second

// maxResponseBytes bounds a response body the CLI reads: 16 MiB.
const maxResponseBytes = 16 << 20

// Output formats of -o/--output.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// clientOptions are the flags every client command shares.
type clientOptions struct {
	server      string // base URL; "" means the issuer in the credentials file
	credentials string // path; "" means the one credentialsPath finds
	dataDir     string
	output      string
	// dataDirGiven is whether --data-dir or M2MAUTH_DATA_DIR gave dataDir.
	dataDirGiven bool
}

// register adds the shared flags (clientSettings and -o) to cmd and its
// subcommands; their values are read when one of them runs.
func (o *clientOptions) register(cmd *cobra.Command) {
	settings := bindSettings(cmd, true, clientSettings)
	cmd.PersistentFlags().StringVarP(&o.output, "output", "o", outputTable, "output format: table or json")
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		if err := settings.load(os.LookupEnv, o); err != nil {
			return err
		}
		_, o.dataDirGiven = settings.from["data-dir"]
		if o.output != outputTable && o.output != outputJSON {
			return fmt.Errorf("--output %q must be table or json", o.output)
		}
		return nil
	}
}

// wantJSON reports whether the user asked for JSON output.
func (o *clientOptions) wantJSON() bool { return o.output == outputJSON }

// credentialsPath is the credentials file the options name: --credentials
// (M2MAUTH_CREDENTIALS); else the one in --data-dir (M2MAUTH_DATA_DIR) if
// given; else ./m2mauth-data's if it exists; else the one `serve` last
// recorded for this user (recordCredentialsPath), if it still exists; else
// ./m2mauth-data's, which loadCredentials reports missing.
func (o *clientOptions) credentialsPath() string {
	if o.credentials != "" {
		return o.credentials
	}
	local := filepath.Join(o.dataDir, server.CredentialsFile)
	if o.dataDirGiven {
		return local
	}
	if _, err := os.Stat(local); err == nil {
		return local
	}
	if recorded := recordedCredentialsPath(); recorded != "" {
		if _, err := os.Stat(recorded); err == nil {
			return recorded
		}
	}
	return local
}

// credentialsPathRecord is where `serve` records, for the user running it,
// the absolute path of the credentials file in its data dir:
// $XDG_CONFIG_HOME/m2mauth/credentials-path (~/.config on Linux). It is ""
// when the user has no config directory (no $HOME).
func credentialsPathRecord() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "m2mauth", "credentials-path")
}

// recordedCredentialsPath returns the path `serve` last recorded, or "".
func recordedCredentialsPath() string {
	record := credentialsPathRecord()
	if record == "" {
		return ""
	}
	b, err := os.ReadFile(record)
	if err != nil {
		return ""
	}
	p := strings.TrimSpace(string(b))
	if !filepath.IsAbs(p) {
		return ""
	}
	return p
}

// recordCredentialsPath records the absolute path of the credentials file
// in dataDir, if there is one, where the CLI of the same user looks when
// it is given no --credentials or --data-dir: so that `m2mauth app list`
// works from any directory on the server's machine. It only logs a failure
// (the user may have no writable home): the CLI then needs --data-dir.
func recordCredentialsPath(dataDir string, log *slog.Logger) {
	record := credentialsPathRecord()
	path, err := filepath.Abs(filepath.Join(dataDir, server.CredentialsFile))
	if record == "" || err != nil {
		return
	}
	if _, err := os.Stat(path); err != nil {
		return
	}
	if recordedCredentialsPath() == path {
		return
	}
	if err := os.MkdirAll(filepath.Dir(record), 0o700); err == nil {
		err = os.WriteFile(record, []byte(path+"\n"), 0o600)
	}
	if err != nil {
		log.Debug("cannot record the credentials file's path for the CLI", "path", record, "error", err)
		return
	}
	log.Info("recorded the credentials file's path for the CLI of this user", "record", record, "path", path)
}

// loadCredentials reads and checks the administrator credentials file.
func (o *clientOptions) loadCredentials() (server.Credentials, error) {
	var c server.Credentials
	path := o.credentialsPath()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("credentials file %s does not exist: start `m2mauth serve` once to create it, or name it with --credentials or --data-dir%s", path, o.recordHint())
	}
	if err != nil {
		return c, fmt.Errorf("reading credentials file: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("credentials file %s is not valid JSON: %v", path, err)
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return c, fmt.Errorf("credentials file %s has no client_id or client_secret", path)
	}
	return c, nil
}

// recordHint explains, in the error about a missing credentials file that
// neither --credentials nor --data-dir named, where else the CLI looked.
func (o *clientOptions) recordHint() string {
	if o.credentials != "" || o.dataDirGiven {
		return ""
	}
	record := credentialsPathRecord()
	if record == "" {
		return ""
	}
	if recorded := recordedCredentialsPath(); recorded != "" {
		return fmt.Sprintf(" (the file %s names, as the last `m2mauth serve` of this user wrote it, is gone: %s)", record, recorded)
	}
	return fmt.Sprintf(" (without them the CLI looks in ./%s, then in the file a `m2mauth serve` of this user records in %s: there is none)", filepath.Base(server.DefaultDataDir), record)
}

// serverURL returns the server's base URL: --server, else the issuer of
// creds.
func (o *clientOptions) serverURL(creds server.Credentials) (string, error) {
	s := o.server
	if s == "" {
		s = creds.Issuer
	}
	if s == "" {
		return "", fmt.Errorf("no server: give --server or set M2MAUTH_SERVER (credentials file %s names no issuer)", o.credentialsPath())
	}
	s = strings.TrimRight(s, "/")
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("server %q must be an http(s) URL", s)
	}
	return s, nil
}

// mgmtClient calls the management API with a token obtained with the
// administrator's credentials. It is the one place the CLI speaks HTTP to
// /admin/v1.
type mgmtClient struct {
	base            string       // the server's base URL, no trailing slash
	hc              *http.Client // adds the bearer token, fetching it when needed
	credentialsPath string       // named in errors about the token
}

// mgmt returns a management API client built from the options.
func (o *clientOptions) mgmt(ctx context.Context) (*mgmtClient, error) {
	creds, err := o.loadCredentials()
	if err != nil {
		return nil, err
	}
	base, err := o.serverURL(creds)
	if err != nil {
		return nil, err
	}
	cc := &clientcredentials.Config{
		ClientID:       creds.ClientID,
		ClientSecret:   creds.ClientSecret,
		TokenURL:       base + oauth.PathToken,
		EndpointParams: url.Values{"audience": {authz.ManagementAudience}},
		AuthStyle:      oauth2.AuthStyleInHeader,
	}
	return &mgmtClient{base: base, hc: cc.Client(withHTTPClient(ctx)), credentialsPath: o.credentialsPath()}, nil
}

// withHTTPClient makes golang.org/x/oauth2 use an HTTP client with a
// timeout, for the token request and the requests it authorizes.
func withHTTPClient(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: requestTimeout})
}

// do sends method path with body (if not nil) as JSON, and decodes the
// JSON response into out (if not nil). A response other than 2xx becomes
// an error carrying the problem's detail.
func (c *mgmtClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return fmt.Errorf("getting a management API token with the credentials in %s: %w", c.credentialsPath, retrieveError(re))
		}
		return unreachable(c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return unreachable(c.base, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return problemError(resp, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: the server's answer is not the expected JSON: %v", method, path, err)
	}
	return nil
}

// send sends one request to the management API with a client built from
// opts, and decodes the answer into a T, as do does.
func send[T any](ctx context.Context, opts *clientOptions, method, path string, body any) (T, error) {
	var out T
	c, err := opts.mgmt(ctx)
	if err != nil {
		return out, err
	}
	err = c.do(ctx, method, path, body, &out)
	return out, err
}

// list fetches the pages of a list endpoint: one page, or with all every
// page by following next_cursor. q holds the filters and limit.
func list[T any](ctx context.Context, c *mgmtClient, path string, q url.Values, all bool) (admin.List[T], error) {
	var out admin.List[T]
	out.Items = []T{}
	for {
		var pg admin.List[T]
		p := path
		if len(q) > 0 {
			p += "?" + q.Encode()
		}
		if err := c.do(ctx, http.MethodGet, p, nil, &pg); err != nil {
			return out, err
		}
		out.Items = append(out.Items, pg.Items...)
		out.NextCursor = pg.NextCursor
		if !all || pg.NextCursor == "" {
			return out, nil
		}
		q.Set("cursor", pg.NextCursor)
	}
}

// pageFlags are the --limit and --all flags of a list command.
type pageFlags struct {
	limit int
	all   bool
}

// register adds the flags to cmd; items names what the list holds.
func (p *pageFlags) register(cmd *cobra.Command, items string) {
	f := cmd.Flags()
	f.IntVar(&p.limit, "limit", 0, items+" per page (default: the server's)")
	f.BoolVar(&p.all, "all", false, "list every page, not only the first")
}

// query is the limit parameter of a list request: --limit, or with --all
// the largest page, to make few requests.
func (p *pageFlags) query() url.Values {
	q := url.Values{}
	limit := p.limit
	if limit == 0 && p.all {
		limit = authz.MaxPageLimit
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

// showPages lists path with the filters and limit in q (one page, or with
// all every page), shows the list and tells a table reader if it has more
// pages.
func showPages[T any](cmd *cobra.Command, opts *clientOptions, path string, q url.Values, all bool, printTable func(io.Writer, admin.List[T]) error) error {
	c, err := opts.mgmt(cmd.Context())
	if err != nil {
		return err
	}
	l, err := list[T](cmd.Context(), c, path, q, all)
	if err != nil {
		return err
	}
	if err := show(cmd, opts, l, printTable); err != nil {
		return err
	}
	if l.NextCursor != "" && !opts.wantJSON() {
		fmt.Fprintln(cmd.ErrOrStderr(), "There are more; use --all to list every one.")
	}
	return nil
}

// problemError turns an error response into an error reading
// "409 Conflict: <detail>": the problem's detail (RFC 9457 §3.1.4), or the
// start of whatever else the server sent.
func problemError(resp *http.Response, body []byte) error {
	msg := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	var p admin.Problem
	if json.Unmarshal(body, &p) == nil && p.Status != 0 {
		detail := p.Detail
		if detail == "" && p.Title != http.StatusText(resp.StatusCode) {
			detail = p.Title
		}
		if detail != "" {
			msg += ": " + detail
		}
		return errors.New(msg)
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		const shown = 200
		if len(s) > shown {
			s = strings.ToValidUTF8(s[:shown], "") + "…"
		}
		msg += ": " + s
	}
	return errors.New(msg)
}

// retrieveError turns a failed token request into an error reading
// "401 Unauthorized: client authentication failed (invalid_client)"
// (RFC 6749 §5.2).
func retrieveError(re *oauth2.RetrieveError) error {
	msg := "token request failed"
	if re.Response != nil {
		msg = re.Response.Status
	}
	switch {
	case re.ErrorDescription != "":
		msg += ": " + re.ErrorDescription
		if re.ErrorCode != "" {
			msg += " (" + re.ErrorCode + ")"
		}
	case re.ErrorCode != "":
		msg += ": " + re.ErrorCode
	case len(bytes.TrimSpace(re.Body)) > 0 && len(re.Body) <= 200:
		msg += ": " + string(bytes.TrimSpace(re.Body))
	}
	return errors.New(msg)
}

// unreachable names the server an exchange failed with, and why, without
// the nested "Post <url>:" prefixes net/http adds.
func unreachable(base string, err error) error {
	var ue *url.Error
	for errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("cannot reach the server at %s: %w", base, err)
}
