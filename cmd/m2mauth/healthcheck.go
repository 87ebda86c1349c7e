package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/m2mauth/m2mauth/internal/server"
)

// healthcheckSettings are the rows of serveSettings that `healthcheck`
// reads: where serve listens and whether it speaks TLS, so that the same
// environment (M2MAUTH_ADDR in the image) or config file configures both.
var healthcheckSettings = pick(serveSettings, "addr", "tls-cert-file")

// defaultHealthcheckTimeout bounds one `m2mauth healthcheck`, well inside
// the image's HEALTHCHECK --timeout.
const defaultHealthcheckTimeout = 3 * time.Second

// newHealthcheckCmd is `m2mauth healthcheck`: GET /healthz of the server
// on this machine, exit 0 on 200 and 1 otherwise. It is the container
// image's HEALTHCHECK, since a scratch image has no curl.
func newHealthcheckCmd() *cobra.Command {
	var cfg server.Config
	var timeout time.Duration
	var settings *boundSettings[server.Config]
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Check that the server on this machine answers /healthz",
		Long: `Send GET /healthz to the server listening on --addr (M2MAUTH_ADDR, or the
--config file's addr), as serve reads it, and exit 0 if it answers 200, 1
otherwise. A wildcard address (0.0.0.0:8080, [::]:8080, :8080) is checked
on loopback.

With --tls-cert-file set, or when the server answers that it speaks TLS,
the check is over https without verifying the certificate: it tests that
this machine's server answers, not who it is. It is the container image's
HEALTHCHECK.`,
		Example: "  m2mauth healthcheck\n  M2MAUTH_ADDR=0.0.0.0:8080 m2mauth healthcheck --timeout 1s",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := settings.load(os.LookupEnv, &cfg); err != nil {
				return err
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout %v must be positive", timeout)
			}
			hostport, err := healthcheckHost(cfg.Addr)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := checkHealth(ctx, hostport, cfg.TLSCertFile != ""); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	settings = bindSettings(cmd, false, healthcheckSettings)
	readConfigFile(cmd, settings, serveSettings)
	cmd.Flags().DurationVar(&timeout, "timeout", defaultHealthcheckTimeout, "how long to wait for the answer, a Go `duration`")
	return cmd
}

// healthcheckHost is the host:port to reach a server listening on addr:
// addr itself, or loopback for a wildcard host.
func healthcheckHost(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port), nil
}

// tlsAnswer is what net/http writes to a plain-HTTP request on a TLS
// listener, with status 400.
const tlsAnswer = "Client sent an HTTP request to an HTTPS server"

// checkHealth GETs /healthz of hostport over https if useTLS, else over
// http and then https if the server answers that it speaks TLS (serve's
// TLS flags given to serve alone); nil means 200.
func checkHealth(ctx context.Context, hostport string, useTLS bool) error {
	// No proxy: the server checked is this machine's, whatever
	// HTTP_PROXY says. The certificate names the public host, not
	// loopback; whether this machine's server answers is all that is
	// checked here.
	plain := &http.Transport{DisableKeepAlives: true}
	secure := &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}
	var status int
	var body string
	var err error
	if !useTLS {
		status, body, err = getHealth(ctx, plain, "http://"+hostport+"/healthz")
		useTLS = err == nil && status == http.StatusBadRequest && strings.Contains(body, tlsAnswer)
	}
	if useTLS {
		status, body, err = getHealth(ctx, secure, "https://"+hostport+"/healthz")
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("healthcheck %s: no answer in time", hostport)
	case err != nil:
		return fmt.Errorf("healthcheck: %w", err)
	case status != http.StatusOK:
		return fmt.Errorf("healthcheck %s: status %d: %s", hostport, status, strings.TrimSpace(body))
	}
	return nil
}

// getHealth GETs url and returns its status and the start of its body.
func getHealth(ctx context.Context, rt http.RoundTripper, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	client := &http.Client{
		Transport: rt,
		// /healthz never redirects; following one would check another server.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(body), nil
}
