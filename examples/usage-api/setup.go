package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/rs"
)

// minNonceKeyBytes is the least DPoP nonce key accepted: 32 bytes, the
// HMAC-SHA-256 output size.
const minNonceKeyBytes = 32

// maxKeyFileBytes bounds the nonce key file: 4 KiB is far more than the
// base64 of any sensible key.
const maxKeyFileBytes = 4 << 10

// validatorConfig turns cfg into the rs configuration: issuer trust, DPoP
// nonces and mTLS as configured.
func validatorConfig(cfg config, log *slog.Logger) (rs.Config, error) {
	// 401 challenges point clients at the RFC 9728 metadata, when the
	// audience is a URL it can be derived from.
	metadataURL, _ := rs.MetadataURL(cfg.audience)
	c := rs.Config{
		Issuer:              cfg.issuer,
		Audience:            cfg.audience,
		Logger:              log,
		ExternalURL:         cfg.externalURL,
		ResourceMetadataURL: metadataURL,
	}
	if cfg.issuerCAFile != "" {
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		if err := appendCertificates(roots, cfg.issuerCAFile); err != nil {
			return c, fmt.Errorf("--issuer-ca-file: %w", err)
		}
		c.HTTPClient = &http.Client{Timeout: rs.DefaultHTTPTimeout, Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: rs.DefaultHTTPTimeout,
		}}
	}
	if cfg.dpopNonceKeyFile != "" {
		key, err := readNonceKey(cfg.dpopNonceKeyFile)
		if err != nil {
			return c, fmt.Errorf("--dpop-nonce-key-file: %w", err)
		}
		c.DPoP.Nonces = dpop.NewNonces(key, cfg.dpopNonceWindow, nil)
	}
	if cfg.clientCAFile != "" || cfg.clientCertHeader != "" {
		c.MTLS = &rs.MTLSConfig{CertificateHeader: cfg.clientCertHeader}
		for _, p := range strings.Split(cfg.trustedProxies, ",") {
			if p = strings.TrimSpace(p); p != "" {
				c.MTLS.TrustedProxies = append(c.MTLS.TrustedProxies, p)
			}
		}
	}
	return c, nil
}

// serverTLS returns the TLS configuration to serve with, or nil for plain
// HTTP. With a client CA file it asks every client for a certificate and
// verifies one that is given against those CAs; a client without one still
// connects, for bearer and DPoP tokens. rs then compares the certificate
// with a token's cnf.x5t#S256 (RFC 8705 §3).
func serverTLS(cfg config) (*tls.Config, error) {
	if cfg.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert, --tls-key: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.clientCAFile != "" {
		pool := x509.NewCertPool()
		if err := appendCertificates(pool, cfg.clientCAFile); err != nil {
			return nil, fmt.Errorf("--client-ca-file: %w", err)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return c, nil
}

// appendCertificates adds the PEM certificates of the file at path to pool.
func appendCertificates(pool *x509.CertPool, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}

// readNonceKey reads a DPoP nonce key: the base64 (standard or URL-safe
// alphabet, padding optional) of at least minNonceKeyBytes bytes, with
// surrounding white space ignored, as `openssl rand -base64 32` writes it.
func readNonceKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxKeyFileBytes)
	}
	text := string(bytes.TrimSpace(b))
	var key []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err = enc.DecodeString(text); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New(path + " is not base64: generate it with `openssl rand -base64 32`")
	}
	if len(key) < minNonceKeyBytes {
		return nil, fmt.Errorf("%s holds %d bytes, fewer than %d", path, len(key), minNonceKeyBytes)
	}
	return key, nil
}
