package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "m2mauth test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns the PEM certificate and key of a leaf for 127.0.0.1
// with serial, for server (or client) authentication.
func (ca *testCA) issue(t *testing.T, serial int64, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// replaceFile replaces path with body as a certificate manager does: a
// new file renamed over the old one.
func replaceFile(t *testing.T, path string, body []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedSerial makes a request with client and returns the serial of the
// certificate the server presented.
func servedSerial(t *testing.T, client *http.Client, u string) int64 {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatal("no TLS peer certificate")
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

// TestOpsTLS serves TLS with a generated certificate: discovery shows the
// https issuer, a client gets a token, a client certificate is asked for
// but not required, and replaced certificate files are served on the
// next handshake while connections already open keep working.
func TestOpsTLS(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt")
	c1, k1 := ca.issue(t, 1001, x509.ExtKeyUsageServerAuth)
	replaceFile(t, certFile, c1)
	replaceFile(t, keyFile, k1)
	replaceFile(t, caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := Config{Addr: ln.Addr().String(), DataDir: t.TempDir(), TLSCertFile: certFile, TLSKeyFile: keyFile, TLSClientCAFile: caFile}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if want := "https://" + ln.Addr().String(); cfg.Issuer != want {
		t.Fatalf("derived issuer %s, want %s", cfg.Issuer, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, Deps{Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		srv.Close()
	})

	var asked atomic.Int32
	client := func() *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: ca.pool,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				asked.Add(1)
				return &tls.Certificate{}, nil // none: it is not required
			},
		}}}
	}
	first := client()

	t.Run("discovery shows the https issuer", func(t *testing.T) {
		resp, err := first.Get(cfg.Issuer + "/.well-known/oauth-authorization-server")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var md struct {
			Issuer        string `json:"issuer"`
			TokenEndpoint string `json:"token_endpoint"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
			t.Fatal(err)
		}
		if md.Issuer != cfg.Issuer || !strings.HasPrefix(md.TokenEndpoint, "https://") {
			t.Errorf("discovery: issuer %s, token_endpoint %s; want %s", md.Issuer, md.TokenEndpoint, cfg.Issuer)
		}
		if resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("TLS version %x", resp.TLS.Version)
		}
	})

	t.Run("a client gets a token over TLS", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, CredentialsFile))
		if err != nil {
			t.Fatal(err)
		}
		var cred Credentials
		if err := json.Unmarshal(b, &cred); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(cred.TokenEndpoint, "https://") {
			t.Errorf("credentials file token endpoint %s", cred.TokenEndpoint)
		}
		cc := clientcredentials.Config{ClientID: cred.ClientID, ClientSecret: cred.ClientSecret, TokenURL: cred.TokenEndpoint,
			EndpointParams: url.Values{"audience": {cred.Audience}}}
		tok, err := cc.Token(context.WithValue(context.Background(), oauth2.HTTPClient, first))
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken == "" {
			t.Fatal("no access token")
		}
		if strings.Contains(logs.String(), cred.ClientSecret) || strings.Contains(logs.String(), tok.AccessToken) {
			t.Error("the secret or the token reached the log")
		}
	})

	t.Run("a client certificate is asked for, not required", func(t *testing.T) {
		if asked.Load() == 0 {
			t.Error("the server did not ask for a client certificate")
		}
		cc, ck := ca.issue(t, 3001, x509.ExtKeyUsageClientAuth)
		pair, err := tls.X509KeyPair(cc, ck)
		if err != nil {
			t.Fatal(err)
		}
		withCert := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{pair}}}}
		if got := servedSerial(t, withCert, cfg.Issuer+"/healthz"); got != 1001 {
			t.Errorf("serial %d", got)
		}
	})

	t.Run("replaced files are served on the next handshake", func(t *testing.T) {
		if got := servedSerial(t, first, cfg.Issuer+"/healthz"); got != 1001 {
			t.Fatalf("serial %d, want 1001", got)
		}
		c2, k2 := ca.issue(t, 1002, x509.ExtKeyUsageServerAuth)
		replaceFile(t, certFile, c2)
		replaceFile(t, keyFile, k2)
		// The connection open before keeps working: nothing is dropped.
		if got := servedSerial(t, first, cfg.Issuer+"/healthz"); got != 1001 {
			t.Errorf("the open connection's serial %d, want 1001 (still the same connection)", got)
		}
		if got := servedSerial(t, client(), cfg.Issuer+"/healthz"); got != 1002 {
			t.Errorf("a new connection's serial %d, want 1002", got)
		}
		if !strings.Contains(logs.String(), "loaded a new TLS certificate") {
			t.Error("the reload was not logged")
		}
	})

	t.Run("a bad new pair keeps the previous certificate", func(t *testing.T) {
		c3, _ := ca.issue(t, 1003, x509.ExtKeyUsageServerAuth)
		_, otherKey := ca.issue(t, 1004, x509.ExtKeyUsageServerAuth)
		replaceFile(t, certFile, c3)
		replaceFile(t, keyFile, otherKey)
		if got := servedSerial(t, client(), cfg.Issuer+"/healthz"); got != 1002 {
			t.Errorf("serial %d, want the previous 1002", got)
		}
		if !strings.Contains(logs.String(), "the new TLS certificate does not load") {
			t.Error("the bad pair was not logged")
		}
	})
}

// TestOpsTLSConfig: the issuer is derived only where it can be, and TLS
// settings come in pairs.
func TestOpsTLSConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error; "" none
	}{
		{"wildcard IPv4 needs an issuer", Config{Addr: "0.0.0.0:8080"}, "issuer is required when addr \"0.0.0.0:8080\" listens on every interface"},
		{"wildcard IPv6 needs an issuer", Config{Addr: "[::]:8080"}, "issuer is required"},
		{"empty host needs an issuer", Config{Addr: ":8080"}, "issuer is required"},
		{"wildcard with an issuer", Config{Addr: "0.0.0.0:8080", Issuer: "https://auth.example.com"}, ""},
		{"cert without key", Config{Addr: "127.0.0.1:8080", TLSCertFile: "c.pem"}, "tls-cert-file and tls-key-file together"},
		{"client CA without TLS", Config{Addr: "127.0.0.1:8080", TLSClientCAFile: "ca.pem"}, "tls-client-ca-file \"ca.pem\" needs tls-cert-file"},
		{"bad CORS origin", Config{Addr: "127.0.0.1:8080", CORSAllowedOrigins: "https://a.example.com/path"}, "cors-allowed-origins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestOpsPlainHTTPWarning: plain HTTP beyond loopback is warned about at
// start; on loopback it is not.
func TestOpsPlainHTTPWarning(t *testing.T) {
	for _, tc := range []struct {
		listen string
		warn   bool
	}{{"0.0.0.0:0", true}, {"127.0.0.1:0", false}} {
		t.Run(tc.listen, func(t *testing.T) {
			ln, err := net.Listen("tcp", tc.listen)
			if err != nil {
				t.Skipf("cannot listen on %s: %v", tc.listen, err)
			}
			logs := &syncBuffer{}
			cfg := Config{Addr: ln.Addr().String(), Issuer: "https://auth.example.com", DataDir: t.TempDir()}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			srv, err := New(ctx, cfg, Deps{Log: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, ln) }()
			for !strings.Contains(logs.String(), "msg=serving") {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			<-done
			srv.Close()
			if got := strings.Contains(logs.String(), "level=WARN msg=\"SERVING PLAIN HTTP ON A NON-LOOPBACK ADDRESS"); got != tc.warn {
				t.Errorf("warned %v, want %v:\n%s", got, tc.warn, logs.String())
			}
		})
	}
}
