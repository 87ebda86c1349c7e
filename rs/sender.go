package rs

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/internal/clientcert"
)

// Policy says which access tokens a Validator's Middleware accepts.
type Policy int

const (
	// BearerAllowed accepts bearer tokens (no cnf claim) under the Bearer
	// scheme, and sender-constrained tokens with their constraint met: a
	// DPoP-bound token under the DPoP scheme with a proof by its key, a
	// certificate-bound token over a connection with its certificate.
	BearerAllowed Policy = iota
	// SenderConstrained accepts only sender-constrained tokens, with their
	// constraint met: a token without cnf is refused whatever the scheme.
	// This is what FAPI 2.0 requires.
	SenderConstrained
)

func (p Policy) String() string {
	switch p {
	case BearerAllowed:
		return "bearer allowed"
	case SenderConstrained:
		return "sender-constrained required"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ErrSenderConstraint: the token is sender-constrained and the request does
// not meet the constraint (a DPoP-bound token presented as Bearer, a proof
// by another key, a certificate-bound token without its certificate), or
// the policy is SenderConstrained and the token is a bearer token. Like
// every token rejection it matches ErrInvalidToken: invalid_token.
var ErrSenderConstraint = errors.New("sender constraint not met")

// Defaults of DPoPConfig.
const (
	// DefaultReplayEntries bounds the default replay cache: 100000 proofs,
	// about 10 MB, enough for some 1400 DPoP requests a second with the
	// default proof lifetime of 70 s.
	DefaultReplayEntries = 100_000
)

// DPoPConfig tunes DPoP proof checking (RFC 9449). The zero value selects
// every default.
type DPoPConfig struct {
	// Algorithms are the proof algorithms accepted, advertised as algs in
	// DPoP challenges and as dpop_signing_alg_values_supported in the
	// resource metadata. Default dpop.DefaultAlgs (ES256, PS256, EdDSA,
	// RS256); each must be one of dpop.SupportedAlgs.
	Algorithms []string

	// MaxAge is how old a proof's iat may be, and Leeway how far in the
	// future (RFC 9449 §11.1). Defaults dpop.DefaultMaxAge (60 s) and
	// dpop.DefaultLeeway (10 s); MaxAge at most 5 min, Leeway at most
	// MaxLeeway.
	MaxAge time.Duration
	Leeway time.Duration

	// Replay records the jti of each accepted proof until iat + MaxAge +
	// Leeway, under the key "dpop:" + jkt + ":" + jti as dpop.Verify
	// would, and a proof whose jti it holds is refused (RFC 9449 §11.1).
	// Only proofs by the token's key are recorded, so that proofs from
	// keys of no token cannot fill the store.
	// Default: a ReplayCache of DefaultReplayEntries for this Validator
	// alone. APIs with several replicas give them one shared store, or
	// turn on Nonces, which bound where a proof is usable in time.
	Replay dpop.Replay

	// Nonces, when set, makes this API require a server nonce in every
	// proof (RFC 9449 §9): a proof without a valid one is refused with
	// use_dpop_nonce and a DPoP-Nonce header holding the current nonce,
	// which also goes on every 401 and on successful responses when the
	// client's nonce is no longer the current one. Replicas built with
	// the same key accept each other's nonces. Default nil: no nonce.
	Nonces *dpop.Nonces
}

// maxProofAge bounds DPoPConfig.MaxAge: a proof is meant for one request.
const maxProofAge = 5 * time.Minute

// dpopSettings is a DPoPConfig with its defaults applied.
type dpopSettings struct {
	algs          []string
	challengeAlgs string // algs, space-separated, for challenges
	maxAge        time.Duration
	leeway        time.Duration
	replay        dpop.Replay
	nonces        *dpop.Nonces
}

func (c DPoPConfig) check(now func() time.Time) (dpopSettings, error) {
	s := dpopSettings{algs: c.Algorithms, maxAge: c.MaxAge, leeway: c.Leeway, replay: c.Replay, nonces: c.Nonces}
	if len(s.algs) == 0 {
		s.algs = dpop.DefaultAlgs
	}
	for _, a := range s.algs {
		if !containsString(dpop.SupportedAlgs, a) {
			return s, fmt.Errorf("rs: Config.DPoP.Algorithms: %q is not one of %v", a, dpop.SupportedAlgs)
		}
	}
	s.algs = append([]string(nil), s.algs...)
	s.challengeAlgs = strings.Join(s.algs, " ")
	switch {
	case s.maxAge == 0:
		s.maxAge = dpop.DefaultMaxAge
	case s.maxAge < 0 || s.maxAge > maxProofAge:
		return s, fmt.Errorf("rs: Config.DPoP.MaxAge %v outside (0, %v]", c.MaxAge, maxProofAge)
	}
	switch {
	case s.leeway == 0:
		s.leeway = dpop.DefaultLeeway
	case s.leeway < 0 || s.leeway > MaxLeeway:
		return s, fmt.Errorf("rs: Config.DPoP.Leeway %v outside (0, %v]", c.Leeway, MaxLeeway)
	}
	if s.replay == nil {
		s.replay = NewReplayCache(DefaultReplayEntries, now)
	}
	return s, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// MTLSConfig describes how client certificates reach this API (RFC 8705).
// The zero value means this server terminates TLS itself and asks for
// client certificates (tls.Config.ClientAuth): the certificate checked
// against a token's cnf.x5t#S256 is the TLS peer's leaf certificate,
// r.TLS.PeerCertificates[0].
type MTLSConfig struct {
	// CertificateHeader, behind a TLS-terminating proxy, names the request
	// header the proxy puts the client's certificate in, e.g.
	// "X-SSL-Client-Cert". It is read only on requests whose peer address
	// is in TrustedProxies, and on those it is the only source: a request
	// from a trusted proxy without it has no client certificate. Two
	// encodings are understood, told apart by their first characters:
	//   - URL-escaped PEM, as nginx's $ssl_client_escaped_cert and the AWS
	//     ALB's X-Amzn-Mtls-Clientcert send it ("-----BEGIN%20CERTIFICATE
	//     -----%0A..."); plain PEM with its line breaks folded into spaces
	//     is accepted too. The first CERTIFICATE block is the leaf.
	//   - base64 (standard alphabet, padded or not) DER, as Traefik's
	//     passTLSClientCert sends it; of a comma-separated chain, the
	//     first is the leaf.
	CertificateHeader string

	// TrustedProxies are the addresses (CIDR prefixes such as
	// "10.0.0.0/8" or single addresses such as "127.0.0.1") of the proxies
	// allowed to set CertificateHeader, matched against r.RemoteAddr.
	// Required with CertificateHeader.
	TrustedProxies []string
}

type mtlsSettings struct {
	header  string // canonical header name; "" for none
	proxies []netip.Prefix
}

func (c *MTLSConfig) check() (*mtlsSettings, error) {
	s := &mtlsSettings{}
	if c.CertificateHeader == "" {
		if len(c.TrustedProxies) > 0 {
			return nil, errors.New("rs: Config.MTLS.TrustedProxies without CertificateHeader")
		}
		return s, nil
	}
	if len(c.TrustedProxies) == 0 {
		return nil, errors.New("rs: Config.MTLS.CertificateHeader needs TrustedProxies: the header is honoured only from them")
	}
	s.header = http.CanonicalHeaderKey(c.CertificateHeader)
	for _, p := range c.TrustedProxies {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("rs: Config.MTLS.TrustedProxies: %q is neither a CIDR prefix nor an address", p)
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		s.proxies = append(s.proxies, prefix.Masked())
	}
	return s, nil
}

// trusted reports whether remoteAddr ("host:port", as in r.RemoteAddr) is
// one of the trusted proxies.
func (s *mtlsSettings) trusted(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range s.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// errNoCertificate and errBadCertificateHeader are clientCertificate's
// reasons for having no certificate.
var (
	errNoCertificate        = errors.New("no client certificate")
	errBadCertificateHeader = errors.New("the forwarded client certificate is unreadable")
)

// clientCertificate returns the DER of the client's leaf certificate: from
// the trusted proxy's header, or from the TLS connection.
func (v *Validator) clientCertificate(r *http.Request) ([]byte, error) {
	if m := v.mtls; m != nil && m.header != "" && m.trusted(r.RemoteAddr) {
		values := r.Header.Values(m.header)
		switch {
		case len(values) == 0 || values[0] == "":
			return nil, errNoCertificate
		case len(values) > 1:
			return nil, errBadCertificateHeader
		}
		return parseForwardedCertificate(values[0])
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, errNoCertificate
	}
	return r.TLS.PeerCertificates[0].Raw, nil
}

// parseForwardedCertificate decodes a certificate header value as the
// server does (clientcert.ParseHeader: URL-escaped, form-escaped or
// space-folded PEM, or base64 DER, a comma-separated list being a chain)
// and returns the leaf's DER; the proxy has verified it.
func parseForwardedCertificate(v string) ([]byte, error) {
	ders, err := clientcert.ParseHeader(v)
	if err != nil || len(ders) == 0 || len(ders[0]) == 0 {
		return nil, errBadCertificateHeader
	}
	return ders[0], nil
}

// requestURL is the request's URL as clients know it, without query: the
// htu a DPoP proof must match (RFC 9449 §4.3).
func (v *Validator) requestURL(r *http.Request) string {
	path := r.URL.EscapedPath()
	if v.externalURL != "" {
		return v.externalURL + path
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + path
}

// scheme is the authentication scheme of a request's credentials.
type scheme int

const (
	schemeBearer scheme = iota
	schemeDPoP
)

// proofError is a refused DPoP proof: invalid_dpop_proof, or
// use_dpop_nonce when it matches dpop.ErrUseNonce.
type proofError struct{ err error }

func (e *proofError) Error() string { return "rs: " + e.err.Error() }
func (e *proofError) Unwrap() error { return e.err }

// description is the error_description: dpop's reason without its prefix.
func (e *proofError) description() string {
	msg := e.err.Error()
	for _, p := range []string{dpop.ErrInvalidProof.Error() + ": ", dpop.ErrUseNonce.Error() + ": "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return "invalid DPoP proof: " + msg
}

// errReplayReused is the refusal of a proof whose jti was seen.
var errReplayReused = fmt.Errorf("%w: jti already used", dpop.ErrInvalidProof)

// checkSenderConstraint checks that the request meets the constraint of a
// token Validate accepted, under policy p (RFC 9449 §7.1, RFC 8705 §3). It
// returns a *tokenError (invalid_token), a *proofError or the replay
// store's error.
func (v *Validator) checkSenderConstraint(ctx context.Context, r *http.Request, p Policy, sc scheme, token string, claims *Claims) (*dpop.Proof, error) {
	cnf := claims.Confirmation
	var proof *dpop.Proof
	switch sc {
	case schemeDPoP:
		if cnf.JKT == "" {
			return nil, &tokenError{reason: ErrSenderConstraint, detail: "the token is not DPoP-bound (no cnf.jkt)"}
		}
		var err error
		proof, err = dpop.Verify(ctx, r.Header.Values("DPoP"), dpop.VerifyOptions{
			Method:      r.Method,
			URL:         v.requestURL(r),
			Now:         v.now(),
			MaxAge:      v.dpop.maxAge,
			Leeway:      v.dpop.leeway,
			Algs:        v.dpop.algs,
			AccessToken: token,
			Nonces:      v.dpop.nonces,
		})
		if errors.Is(err, dpop.ErrInvalidProof) {
			return nil, &proofError{err: err}
		}
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare([]byte(proof.JKT), []byte(cnf.JKT)) != 1 {
			return nil, &tokenError{reason: ErrSenderConstraint, detail: "the DPoP proof's key does not match the token's cnf.jkt"}
		}
		// The jti is recorded only for a proof by the token's key, so that
		// proofs from keys of no token cannot fill the cache.
		fresh, err := v.dpop.replay.UseJTI(ctx, "dpop:"+proof.JKT+":"+proof.JTI, proof.IssuedAt.Add(v.dpop.maxAge+v.dpop.leeway))
		if err != nil {
			return nil, fmt.Errorf("rs: DPoP replay store: %w", err)
		}
		if !fresh {
			return nil, &proofError{err: errReplayReused}
		}
	case schemeBearer:
		if cnf.JKT != "" {
			return nil, &tokenError{reason: ErrSenderConstraint, detail: "a DPoP-bound token must be sent with the DPoP scheme and a proof"}
		}
		if cnf.X5TS256 == "" && p == SenderConstrained {
			return nil, &tokenError{reason: ErrSenderConstraint, detail: "this resource requires a sender-constrained (DPoP- or certificate-bound) token"}
		}
	}
	if cnf.X5TS256 != "" {
		der, err := v.clientCertificate(r)
		if err != nil {
			return nil, &tokenError{reason: ErrSenderConstraint, detail: "certificate-bound token: " + err.Error()}
		}
		if subtle.ConstantTimeCompare([]byte(clientcert.Thumbprint(der)), []byte(cnf.X5TS256)) != 1 {
			return nil, &tokenError{reason: ErrSenderConstraint, detail: "the client certificate does not match the token's cnf.x5t#S256"}
		}
	}
	return proof, nil
}
