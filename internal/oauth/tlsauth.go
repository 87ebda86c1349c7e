package oauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientcert"
	"github.com/m2mauth/m2mauth/internal/jwks"
)

// Mutual TLS client authentication methods (RFC 8705 §2).
const (
	// MethodTLSClientAuth: a certificate chaining to a trusted CA, whose
	// subject DN or one SAN is registered (RFC 8705 §2.1).
	MethodTLSClientAuth = "tls_client_auth"
	// MethodSelfSignedTLSClientAuth: a certificate registered itself, in a
	// JWKS (RFC 8705 §2.2).
	MethodSelfSignedTLSClientAuth = "self_signed_tls_client_auth"
)

// TLSClientAuth holds what the two mutual TLS methods share; Authenticators
// returns them. The client certificate is the request's
// (clientcert.FromContext: the TLS peer's, or a trusted proxy's forwarded
// one), which readCredentials puts in the credentials of a request with a
// client_id and neither secret nor assertion. Both methods refuse a leaf
// certificate outside its validity period; then the application's
// unexpired credentials of the two types are tried:
//   - tls_client_auth: the leaf's subject is the registered subject_dn
//     (RDN by RDN, clientcert.MatchSubject) or it holds the registered
//     SAN, and the chain verifies, for client authentication, to CAs; a
//     san_uri that is a SPIFFE ID is an X.509-SVID instead, verified to
//     its trust domain's authorities only (see verifySVID).
//   - self_signed_tls_client_auth: the leaf is the certificate of a
//     registered key's x5c, or its SHA-256 is a registered x5t#S256.
type TLSClientAuth struct {
	S           *Server
	Credentials CredentialSource
	// CAs are the roots tls_client_auth chains must reach (the server's
	// --tls-client-ca-file); nil: only SPIFFE X.509-SVIDs verify.
	CAs *x509.CertPool
	// Issuers finds the spiffe trusted issuer of a SPIFFE ID's trust
	// domain; its bundle's x509-svid keys are the roots of that trust
	// domain's X.509-SVIDs. nil: no SPIFFE X.509-SVIDs.
	Issuers TrustedIssuerSource
	// Bundles fetches the bundle of a spiffe trusted issuer with a bundle
	// endpoint (jwks.Fetcher); nil: only inline bundles.
	Bundles BundleAuthoritySource
}

// BundleAuthoritySource fetches SPIFFE bundles' X.509 authorities
// (jwks.Fetcher).
type BundleAuthoritySource interface {
	// LookupBundleAuthorities returns the x509-svid CA certificates of the
	// SPIFFE bundle at rawURL, cached; an error if none could be fetched.
	LookupBundleAuthorities(ctx context.Context, rawURL string) ([]*x509.Certificate, error)
}

// Authenticators returns the methods tls_client_auth and
// self_signed_tls_client_auth. Register both: readCredentials cannot tell
// them apart (the request is the same) and names tls_client_auth, whose
// authenticator tries the credentials of both types.
func (a *TLSClientAuth) Authenticators() []ClientAuthenticator {
	return []ClientAuthenticator{mtlsAuth{a, MethodTLSClientAuth}, mtlsAuth{a, MethodSelfSignedTLSClientAuth}}
}

// mtlsAuth is one of the two methods.
type mtlsAuth struct {
	a      *TLSClientAuth
	method string
}

func (m mtlsAuth) Method() string { return m.method }

func (m mtlsAuth) authenticate(ctx context.Context, c credentials) (authenticated, error) {
	a := m.a
	switch {
	case c.cert == nil || (c.cert.err == nil && len(c.cert.chain) == 0):
		return authenticated{}, authFailure("no client certificate")
	case c.cert.err != nil:
		return authenticated{}, authFailure("forwarded client certificate unreadable")
	}
	leaf := c.cert.chain[0]
	now := a.S.Now()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return authenticated{}, authFailure("client certificate expired or not yet valid")
	}
	client, err := a.S.Clients.Client(ctx, c.clientID)
	if errors.Is(err, authz.ErrNotFound) {
		return authenticated{}, authFailure("unknown client_id")
	}
	if err != nil {
		return authenticated{}, fmt.Errorf("looking up client: %w", err)
	}
	creds, err := a.Credentials.ListCredentials(ctx, c.clientID)
	if err != nil {
		return authenticated{}, fmt.Errorf("listing credentials: %w", err)
	}
	types := []string{authz.CredentialTLSClientAuth, authz.CredentialSelfSignedTLSClientAuth}
	if m.method == MethodSelfSignedTLSClientAuth {
		types = types[1:]
	}
	v := &chainCheck{a: a, chain: c.cert.chain}
	reason := "no " + m.method + " credential"
	for _, cr := range creds {
		if cr.Expired(now) {
			continue
		}
		var ok bool
		var why string
		switch {
		case cr.Type == authz.CredentialTLSClientAuth && slices.Contains(types, cr.Type):
			ok, why, err = v.matchTLSClientAuth(ctx, cr)
		case cr.Type == authz.CredentialSelfSignedTLSClientAuth && slices.Contains(types, cr.Type):
			ok, why = matchSelfSigned(cr, leaf, a.S)
		default:
			continue
		}
		if err != nil {
			return authenticated{}, err
		}
		if ok {
			return authenticated{client: client, credentialID: cr.ID}, nil
		}
		reason = why
	}
	return authenticated{}, authFailure(reason)
}

// chainCheck verifies a client certificate chain at most once per root
// set.
type chainCheck struct {
	a     *TLSClientAuth
	chain []*x509.Certificate

	caDone, caOK bool
}

// verify reports whether the chain verifies to roots for client
// authentication at the server's time; certificates without extKeyUsage
// count as fit for it (crypto/x509).
func (v *chainCheck) verify(roots *x509.CertPool) bool {
	if roots == nil {
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range v.chain[1:] {
		inter.AddCert(c)
	}
	_, err := v.chain[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: v.a.S.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err == nil
}

func (v *chainCheck) toCAs() bool {
	if !v.caDone {
		v.caDone, v.caOK = true, v.verify(v.a.CAs)
	}
	return v.caOK
}

// matchTLSClientAuth checks the chain against a tls_client_auth
// credential; why is the refusal reason when it does not match.
func (v *chainCheck) matchTLSClientAuth(ctx context.Context, cr authz.Credential) (ok bool, why string, err error) {
	var cfg authz.TLSClientAuthConfig
	if json.Unmarshal(cr.Config, &cfg) != nil {
		return false, "stored tls_client_auth credential unreadable", nil
	}
	leaf := v.chain[0]
	if !matchesCertificate(leaf, cfg) {
		return false, "client certificate subject or SAN not registered", nil
	}
	// A SPIFFE ID is its trust domain's to vouch for: never the client
	// CAs' (draft-ietf-oauth-spiffe-client-auth, X.509-SVID).
	if strings.HasPrefix(strings.ToLower(cfg.SANURI), "spiffe:") {
		return v.verifySVID(ctx, cfg.SANURI)
	}
	if v.toCAs() {
		return true, "", nil
	}
	return false, "client certificate chain not trusted", nil
}

// matchesCertificate reports whether leaf has the subject DN or the SAN
// of cfg.
func matchesCertificate(leaf *x509.Certificate, cfg authz.TLSClientAuthConfig) bool {
	switch {
	case cfg.SubjectDN != "":
		dn, err := clientcert.ParseDN(cfg.SubjectDN)
		return err == nil && clientcert.MatchSubject(leaf, dn)
	case cfg.SANDNS != "":
		for _, n := range leaf.DNSNames {
			if strings.EqualFold(n, cfg.SANDNS) {
				return true
			}
		}
	case cfg.SANURI != "":
		for _, u := range leaf.URIs {
			if u.String() == cfg.SANURI {
				return true
			}
		}
	case cfg.SANIP != "":
		for _, ip := range leaf.IPAddresses {
			if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap().String() == cfg.SANIP {
				return true
			}
		}
	case cfg.SANEmail != "":
		for _, e := range leaf.EmailAddresses {
			if e == cfg.SANEmail {
				return true
			}
		}
	}
	return false
}

// verifySVID checks the chain as an X.509-SVID of id (SPIFFE X509-SVID
// §4, §5.2): id is a SPIFFE ID with a path, the leaf's only URI SAN, the
// leaf is no CA and has neither keyCertSign nor cRLSign, and the chain
// verifies for client authentication to the X.509 authorities of the
// bundle of the spiffe trusted issuer of id's trust domain: inline, or
// fetched from its bundle endpoint through Bundles. Neither the system
// roots nor CAs are trusted for it. A bundle that cannot be had is a
// refusal (logged), as for JWT-SVIDs.
func (v *chainCheck) verifySVID(ctx context.Context, id string) (bool, string, error) {
	leaf := v.chain[0]
	td, ok := SPIFFETrustDomain(id)
	if !ok {
		return false, "registered san_uri is not a SPIFFE ID of a workload", nil
	}
	if leaf.IsCA || leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 || len(leaf.URIs) != 1 || leaf.URIs[0].String() != id {
		return false, "not an X.509-SVID of the registered SPIFFE ID (a CA, or not exactly one URI SAN)", nil
	}
	if v.a.Issuers == nil {
		return false, "client certificate chain not trusted", nil
	}
	ti, err := v.a.Issuers.TrustedIssuerByIssuer(ctx, "spiffe://"+td)
	if errors.Is(err, authz.ErrNotFound) {
		return false, "client certificate chain not trusted (no trusted issuer for its SPIFFE trust domain)", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("looking up the trusted issuer: %w", err)
	}
	if ti.Kind != authz.TrustedIssuerSPIFFE || ti.TrustDomain != td {
		return false, "client certificate chain not trusted", nil
	}
	var authorities []*x509.Certificate
	switch {
	case len(ti.JWKS) > 0:
		b, err := jwks.ParseBundle(ti.JWKS)
		if err != nil {
			v.a.S.Log.Warn("stored SPIFFE bundle does not parse", "issuer", ti.Issuer, "error", err)
			return false, "trusted issuer's bundle unavailable", nil
		}
		authorities = b.Authorities
	case ti.BundleURL != "" && v.a.Bundles != nil:
		if authorities, err = v.a.Bundles.LookupBundleAuthorities(ctx, ti.BundleURL); err != nil {
			// Debug: the fetcher warned once per (rate-limited) fetch
			// attempt; this runs per request.
			v.a.S.Log.Debug("trusted issuer's bundle unavailable", "issuer", ti.Issuer, "error", err)
			return false, "trusted issuer's bundle unavailable", nil
		}
	}
	if len(authorities) == 0 {
		return false, "the SPIFFE trusted issuer's bundle has no x509-svid authorities", nil
	}
	roots := x509.NewCertPool()
	for _, c := range authorities {
		roots.AddCert(c)
	}
	if !v.verify(roots) {
		return false, "X.509-SVID chain not trusted by its trust domain's bundle", nil
	}
	return true, "", nil
}

// matchSelfSigned checks leaf against a self_signed_tls_client_auth
// credential's keys: their x5c leaf or x5t#S256.
func matchSelfSigned(cr authz.Credential, leaf *x509.Certificate, s *Server) (bool, string) {
	var cfg authz.KeyCredentialConfig
	if json.Unmarshal(cr.Config, &cfg) != nil {
		return false, "stored self_signed_tls_client_auth credential unreadable"
	}
	set, err := jwks.Parse(cfg.JWKS)
	if err != nil {
		s.Log.Warn("stored self_signed_tls_client_auth credential does not parse", "client_id", cr.ClientID, "error", err)
		return false, "stored self_signed_tls_client_auth credential unreadable"
	}
	sum := sha256.Sum256(leaf.Raw)
	for _, k := range set.Keys {
		if len(k.Certificates) > 0 && bytes.Equal(k.Certificates[0].Raw, leaf.Raw) {
			return true, ""
		}
		if bytes.Equal(k.CertificateThumbprintSHA256, sum[:]) {
			return true, ""
		}
	}
	return false, "client certificate not registered"
}
