package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves the certificate of a PEM certificate and key file
// pair, and loads the pair again when either file changes, so that a
// certificate manager can rotate them under a running server: handshakes
// already done keep their connection, the next ones get the new
// certificate. A new pair that does not load (half-written, mismatched)
// is logged once and the previous certificate is kept until the files
// change again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	loaded fileStamp // of the pair cert was loaded from
	tried  fileStamp // of the last pair tried, loaded or not
}

// fileStamp identifies a version of the two files: a rotation replaces a
// file (new inode, as with Kubernetes' symlink swap) or rewrites it (new
// modification time or size).
type fileStamp struct {
	cert, key os.FileInfo
}

func (a fileStamp) same(b fileStamp) bool {
	return sameFile(a.cert, b.cert) && sameFile(a.key, b.key)
}

func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// newCertReloader loads the pair, failing if it does not load.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	st, err := r.stat()
	if err != nil {
		return nil, err
	}
	if err := r.load(st); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) stat() (fileStamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("tls-cert-file: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("tls-key-file: %w", err)
	}
	return fileStamp{cert: c, key: k}, nil
}

// load reads the pair; r.mu is held or r not yet shared.
func (r *certReloader) load(st fileStamp) error {
	r.tried = st
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("loading the TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.loaded = &cert, st
	return nil
}

// GetCertificate is tls.Config.GetCertificate: two stat calls per
// handshake, a reload only when the files changed since the last try.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stat()
	switch {
	case err != nil:
		// Mid-rotation a file may be missing for a moment.
		if !r.tried.same(fileStamp{}) {
			r.log.Error("the TLS certificate files cannot be read; serving the previous certificate", "error", err)
			r.tried = fileStamp{}
		}
	case !st.same(r.tried):
		if err := r.load(st); err != nil {
			r.log.Error("the new TLS certificate does not load; serving the previous one until the files change again", "error", err)
		} else {
			r.log.Info("loaded a new TLS certificate", "cert_file", r.certFile, "not_after", notAfter(r.cert))
		}
	}
	return r.cert, nil
}

func notAfter(c *tls.Certificate) string {
	if c.Leaf == nil {
		return ""
	}
	return c.Leaf.NotAfter.UTC().Format(time.RFC3339)
}

// tlsConfig is the listener's TLS configuration: TLS 1.2 at least, Go's
// default cipher suites, the reloaded certificate, and, with a client CA
// file, client certificates asked for but not required (RFC 8705 clients
// send one, others do not). They are not verified in the handshake, and
// no CA names are sent: a self-signed certificate
// (self_signed_tls_client_auth) or a SPIFFE X.509-SVID must get through
// too, and a client offered CA names may withhold a certificate none of
// them issued. The tls_client_auth method verifies chains itself
// (oauth.TLSClientAuth, with the CAs of clientCAs).
func tlsConfig(r *certReloader, clientCAFile string) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		// HTTP/1.1 only: connection limits and the drain work per
		// connection.
		NextProtos: []string{"http/1.1"},
	}
	if clientCAFile != "" {
		if _, err := clientCAs(clientCAFile); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequestClientCert
	}
	return cfg, nil
}

// clientCAs reads the PEM CAs of --tls-client-ca-file.
func clientCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls-client-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("tls-client-ca-file: no PEM certificate in " + file)
	}
	return pool, nil
}

// newTLS builds the TLS configuration of cfg, or nil without TLS.
func (s *Server) newTLS() (*tls.Config, error) {
	if s.cfg.TLSCertFile == "" {
		return nil, nil
	}
	r, err := newCertReloader(s.cfg.TLSCertFile, s.cfg.TLSKeyFile, s.log)
	if err != nil {
		return nil, err
	}
	return tlsConfig(r, s.cfg.TLSClientCAFile)
}
