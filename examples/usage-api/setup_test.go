package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfigSenderConstraints(t *testing.T) {
	env := map[string]string{
		"USAGE_API_DPOP_NONCE_KEY_FILE": "/env/nonce.key",
		"USAGE_API_DPOP_NONCE_WINDOW":   "1m",
		"USAGE_API_TLS_CERT":            "/env/tls.crt",
		"USAGE_API_TLS_KEY":             "/env/tls.key",
		"USAGE_API_CLIENT_CA_FILE":      "/env/ca.crt",
		"USAGE_API_CLIENT_CERT_HEADER":  "X-SSL-Client-Cert",
		"USAGE_API_TRUSTED_PROXIES":     "10.0.0.0/8",
		"USAGE_API_ISSUER_CA_FILE":      "/env/issuer-ca.crt",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := parseConfig([]string{"--dpop-nonce-window", "30s", "--trusted-proxies", "127.0.0.1, 10.1.0.0/16"}, lookup, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{addr: "127.0.0.1:9090", issuer: "http://127.0.0.1:8080", audience: "http://127.0.0.1:9090",
		issuerCAFile: "/env/issuer-ca.crt", dpopNonceKeyFile: "/env/nonce.key", dpopNonceWindow: 30 * time.Second,
		tlsCert: "/env/tls.crt", tlsKey: "/env/tls.key", clientCAFile: "/env/ca.crt",
		clientCertHeader: "X-SSL-Client-Cert", trustedProxies: "127.0.0.1, 10.1.0.0/16"}
	if c != want {
		t.Errorf("config = %+v,\nwant %+v (flag > environment)", c, want)
	}
	if c, err := parseConfig(nil, lookup, io.Discard); err != nil || c.dpopNonceWindow != time.Minute {
		t.Errorf("USAGE_API_DPOP_NONCE_WINDOW=1m: window %v, error %v", c.dpopNonceWindow, err)
	}

	noEnv := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // in the error
	}{
		{"certificate without key", []string{"--tls-cert", "c.pem"}, nil, "--tls-cert and --tls-key together"},
		{"key without certificate", []string{"--tls-key", "k.pem"}, nil, "--tls-cert and --tls-key together"},
		{"client CA without TLS", []string{"--client-ca-file", "ca.pem"}, nil, "--client-ca-file needs --tls-cert"},
		{"header without trusted proxies", []string{"--client-cert-header", "X-SSL-Client-Cert"}, nil, "together"},
		{"header with blank trusted proxies", []string{"--client-cert-header", "X-SSL-Client-Cert", "--trusted-proxies", " , "}, nil, "together"},
		{"trusted proxies without header", []string{"--trusted-proxies", "10.0.0.0/8"}, nil, "together"},
		{"nonce window too short", []string{"--dpop-nonce-window", "100ms"}, nil, "--dpop-nonce-window 100ms outside"},
		{"nonce window too long", []string{"--dpop-nonce-window", "48h"}, nil, "outside"},
		{"bad nonce window in the environment", nil, map[string]string{"USAGE_API_DPOP_NONCE_WINDOW": "soon"}, "USAGE_API_DPOP_NONCE_WINDOW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := noEnv
			if tc.env != nil {
				lookup = func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			}
			_, err := parseConfig(tc.args, lookup, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestReadNonceKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb, 0xff, 0x01}, 11) // 33 bytes, with + and / in base64
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, body string
	}{
		{"standard base64 with a newline", base64.StdEncoding.EncodeToString(key) + "\n"},
		{"unpadded", base64.RawStdEncoding.EncodeToString(key)},
		{"URL-safe", " " + base64.URLEncoding.EncodeToString(key) + " \n"},
		{"URL-safe unpadded", base64.RawURLEncoding.EncodeToString(key)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readNonceKey(write("key", tc.body))
			if err != nil || !bytes.Equal(got, key) {
				t.Errorf("key %x, error %v; want %x", got, err, key)
			}
		})
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"too short", base64.StdEncoding.EncodeToString(key[:31]), "31 bytes, fewer than 32"},
		{"raw bytes", string(key), "not base64"},
		{"empty", "\n", "0 bytes"},
		{"too large", strings.Repeat("A", maxKeyFileBytes+1), "larger than"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			if _, err := readNonceKey(write("key", tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := readNonceKey(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file was accepted")
	}
}
