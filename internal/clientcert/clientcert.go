// Package clientcert finds the client certificate of an HTTP request (RFC
// 8705): the TLS peer's, or, on a request from a trusted proxy that
// terminates TLS, the one it forwards in a configured header. It does not
// verify anything: the client authentication methods and the certificate
// binding of tokens decide what a certificate is worth.
package clientcert

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/m2mauth/m2mauth/internal/clientip"
)

// MaxHeaderBytes bounds a forwarded certificate header: 16 KiB, as rs
// bounds it.
const MaxHeaderBytes = 16 << 10

// maxChain bounds the certificates read from one header.
const maxChain = 8

// ErrBadHeader: the forwarded client certificate header is present but
// unreadable (too long, repeated, not one of the encodings ParseHeader
// understands, or not X.509).
var ErrBadHeader = errors.New("the forwarded client certificate is unreadable")

// Source finds requests' client certificates. The zero Source, and a nil
// one, read the TLS connection's only.
type Source struct {
	// Header names the request header a TLS-terminating proxy puts the
	// client's certificate in ("" for none). It is read only on requests
	// whose peer Proxies trusts, and on those it is the only source: a
	// request from a trusted proxy without it has no client certificate.
	Header string
	// Proxies makes the trust decision (clientip.Resolver.TrustsPeer);
	// nil trusts no proxy.
	Proxies *clientip.Resolver
}

// Chain returns the client certificate chain of r, leaf first, or nil if
// it has none. The TLS peer's certificates are as the handshake received
// them, not verified. Returns ErrBadHeader for an unreadable forwarded
// certificate.
func (s *Source) Chain(r *http.Request) ([]*x509.Certificate, error) {
	if s != nil && s.Header != "" && s.Proxies.TrustsPeer(r) {
		values := r.Header.Values(s.Header)
		switch {
		case len(values) == 0 || values[0] == "":
			return nil, nil
		case len(values) > 1:
			return nil, ErrBadHeader
		}
		ders, err := ParseHeader(values[0])
		if err != nil {
			return nil, err
		}
		chain := make([]*x509.Certificate, len(ders))
		for i, der := range ders {
			if chain[i], err = x509.ParseCertificate(der); err != nil {
				return nil, ErrBadHeader
			}
		}
		return chain, nil
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, nil
	}
	return r.TLS.PeerCertificates, nil
}

// ParseHeader decodes a forwarded certificate header value into DER
// certificates, leaf first, in the encodings rs.MTLSConfig.CertificateHeader
// documents (rs/sender.go reads the same, leaf only):
//   - URL-escaped PEM, as nginx's $ssl_client_escaped_cert and the AWS
//     ALB's X-Amzn-Mtls-Clientcert send it; form-style escaping ("+" for a
//     space) and plain PEM with its line breaks folded into spaces are
//     accepted too. Every CERTIFICATE block counts, in order.
//   - base64 (standard alphabet, padded or not) DER, as Traefik's
//     passTLSClientCert sends it; a comma-separated list is a chain.
//
// Returns ErrBadHeader for anything else, and for more than 8
// certificates.
func ParseHeader(v string) ([][]byte, error) {
	if len(v) > MaxHeaderBytes {
		return nil, ErrBadHeader
	}
	if strings.HasPrefix(v, "-----BEGIN") {
		// PathUnescape, not QueryUnescape: a raw "+" of base64 stays "+".
		if unescaped, err := url.PathUnescape(v); err == nil {
			if ders := pemCertificates(unescaped); len(ders) > 0 {
				return bounded(ders)
			}
		}
		// Form-style escaping turns spaces into "+" (and a base64 "+"
		// into %2B): "-----BEGIN+CERTIFICATE-----".
		if strings.HasPrefix(v, "-----BEGIN+") {
			if unescaped, err := url.QueryUnescape(v); err == nil {
				if ders := pemCertificates(unescaped); len(ders) > 0 {
					return bounded(ders)
				}
			}
		}
		return nil, ErrBadHeader
	}
	var ders [][]byte
	for part := range strings.SplitSeq(v, ",") {
		part = strings.TrimSpace(part)
		der, err := base64.StdEncoding.DecodeString(part)
		if err != nil {
			der, err = base64.RawStdEncoding.DecodeString(part)
		}
		if err != nil || len(der) == 0 {
			return nil, ErrBadHeader
		}
		ders = append(ders, der)
	}
	return bounded(ders)
}

func bounded(ders [][]byte) ([][]byte, error) {
	if len(ders) > maxChain {
		return nil, ErrBadHeader
	}
	return ders, nil
}

// pemCertificates returns the DER of the CERTIFICATE blocks of a PEM text.
// Some proxies fold PEM's line breaks into spaces; the base64 body has
// none of its own, so they are restored first. An empty block ends the
// list.
func pemCertificates(text string) [][]byte {
	var out [][]byte
	for rest := []byte(unfoldPEM(text)); ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return out
		}
		if block.Type == "CERTIFICATE" {
			if len(block.Bytes) == 0 {
				return out
			}
			out = append(out, block.Bytes)
		}
	}
}

// unfoldPEM turns a PEM text whose line breaks became spaces back into
// lines: the spaces inside "-----BEGIN CERTIFICATE-----" stay.
func unfoldPEM(s string) string {
	if strings.Contains(s, "\n") {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		i := strings.Index(s, "-----")
		if i < 0 {
			b.WriteString(strings.ReplaceAll(s, " ", "\n"))
			break
		}
		b.WriteString(strings.ReplaceAll(s[:i], " ", "\n"))
		s = s[i+5:]
		j := strings.Index(s, "-----")
		if j < 0 {
			b.WriteString("-----" + s)
			break
		}
		b.WriteString("-----" + s[:j] + "-----")
		s = s[j+5:]
	}
	return b.String()
}

// Thumbprint is the x5t#S256 of a DER certificate (RFC 8705 §3.1): the
// base64url of its SHA-256, unpadded.
func Thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

type contextKey struct{}

// result is what Middleware found.
type result struct {
	chain []*x509.Certificate
	err   error
}

// NewContext returns ctx carrying chain (leaf first) and err as the
// request's client certificate, for FromContext.
func NewContext(ctx context.Context, chain []*x509.Certificate, err error) context.Context {
	return context.WithValue(ctx, contextKey{}, result{chain, err})
}

// FromContext returns the client certificate chain Middleware (or
// NewContext) put in ctx, leaf first; nil if none. err is ErrBadHeader if
// a trusted proxy forwarded an unreadable one.
func FromContext(ctx context.Context) (chain []*x509.Certificate, err error) {
	r, _ := ctx.Value(contextKey{}).(result)
	return r.chain, r.err
}

// Middleware puts each request's client certificate (s.Chain) in its
// context, where FromContext finds it; headers a request from an
// untrusted peer sends are ignored.
func (s *Source) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chain, err := s.Chain(r)
		if chain != nil || err != nil {
			r = r.WithContext(NewContext(r.Context(), chain, err))
		}
		next.ServeHTTP(w, r)
	})
}
