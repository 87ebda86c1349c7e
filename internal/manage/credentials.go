package manage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientcert"
	"github.com/m2mauth/m2mauth/internal/jwks"
)

// MaxCredentialsPerApplication bounds how many credentials one application
// holds.
const MaxCredentialsPerApplication = 10

// maxCredentialJWKSBytes bounds an inline JWKS, and maxCredentialKeys the
// keys in it.
const (
	maxCredentialJWKSBytes = 64 << 10
	maxCredentialKeys      = 20
)

// CredentialAlgs are the JWS algorithms a credential's key may be for
// (its "alg", when it has one): the client assertion algorithms the server
// may accept (RFC 7518; never none, never HMAC).
var CredentialAlgs = []string{"PS256", "ES256", "EdDSA", "RS256"}

// NewCredential is what CreateCredential adds: Type is
// authz.CredentialJWKS with JWKS, authz.CredentialJWKSURI with JWKSURI,
// authz.CredentialFederated with TrustedIssuer, Subject and optionally
// Audience and Claims (authz.FederatedCredentialConfig),
// authz.CredentialTLSClientAuth with exactly one of SubjectDN, SANDNS,
// SANURI, SANIP and SANEmail (authz.TLSClientAuthConfig), or
// authz.CredentialSelfSignedTLSClientAuth with JWKS, each of whose keys
// carries x5c or x5t#S256 (RFC 8705 §2.2).
type NewCredential struct {
	Type    string
	JWKS    json.RawMessage // {"keys": [...]}, public keys only
	JWKSURI string          // https
	// SubjectDN (RFC 4514) or one SAN of a tls_client_auth credential:
	// what the client certificate's subject or a subjectAltName entry of
	// that type must be (RFC 8705 §2.1.2).
	SubjectDN string
	SANDNS    string
	SANURI    string
	SANIP     string
	SANEmail  string
	// TrustedIssuer is the id of the trusted issuer of a federated
	// credential.
	TrustedIssuer string
	// Subject is the sub expected, exact or a glob (authz.MatchSubject).
	Subject string
	// Audience is the aud expected; "": the server's issuer identifier.
	Audience string
	// Claims are further conditions on named claims: one value, or a
	// list the claim must equal one of.
	Claims map[string]authz.ClaimCondition
	// ExpiresIn sets when the credential expires, in seconds; nil: never.
	ExpiresIn *int64
}

// Limits of a federated credential, in bytes unless said.
const (
	maxSubjectLen       = 512
	maxAudienceLen      = 2048
	maxClaimConditions  = 16 // claim names
	maxClaimNameLen     = 128
	maxClaimValues      = 32 // values of one claim
	maxClaimValueLen    = 256
	githubActionsIssuer = "https://token.actions.githubusercontent.com"
	githubOwnerClaim    = "repository_owner"
	githubOwnerIDClaim  = "repository_owner_id"
)

// registeredClaims are the JWT claims (RFC 7519 §4.1) a federated
// credential's own fields or the token checks already decide, so never a
// claim condition.
var registeredClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti"}

// check validates in as far as it can without the store, and returns the
// Config to store for the jwks and jwks_uri types; a federated
// credential's is made in the transaction (federatedConfig), once its
// trusted issuer is read.
func (in NewCredential) check(allowInsecure bool) ([]byte, error) {
	if in.ExpiresIn != nil && (*in.ExpiresIn <= 0 || *in.ExpiresIn > MaxSecretExpiry) {
		return nil, invalid("expires_in must be from 1 to %d seconds", MaxSecretExpiry)
	}
	federated := in.TrustedIssuer != "" || in.Subject != "" || in.Audience != "" || in.Claims != nil
	if in.Type != authz.CredentialFederated && federated {
		return nil, invalid("trusted_issuer, subject, audience and claims are for type %q", authz.CredentialFederated)
	}
	if in.Type != authz.CredentialTLSClientAuth && in.tlsClientAuth() {
		return nil, invalid("subject_dn, san_dns, san_uri, san_ip and san_email are for type %q", authz.CredentialTLSClientAuth)
	}
	switch in.Type {
	case authz.CredentialJWKS, authz.CredentialSelfSignedTLSClientAuth:
		if in.JWKSURI != "" {
			return nil, invalid("a %s credential takes jwks, not jwks_uri", in.Type)
		}
		if len(in.JWKS) == 0 {
			return nil, invalid("jwks is required")
		}
		if len(in.JWKS) > maxCredentialJWKSBytes {
			return nil, invalid("jwks is larger than %d bytes", maxCredentialJWKSBytes)
		}
		set, err := jwks.Parse(in.JWKS)
		if err != nil {
			return nil, invalid("jwks: %v", err)
		}
		if len(set.Keys) > maxCredentialKeys {
			return nil, invalid("jwks holds more than %d keys", maxCredentialKeys)
		}
		for i, k := range set.Keys {
			if in.Type == authz.CredentialSelfSignedTLSClientAuth {
				// RFC 8705 §2.2: the certificate is what is matched; the
				// key alone is not enough.
				if len(k.Certificates) == 0 && len(k.CertificateThumbprintSHA256) == 0 {
					return nil, invalid("jwks key %d: a %s key carries its certificate in x5c or its SHA-256 in x5t#S256", i, in.Type)
				}
				continue
			}
			if !fitsCredentialAlg(k) {
				return nil, invalid("jwks key %d: its alg or type fits none of %v", i, CredentialAlgs)
			}
		}
		// Stored as parsed and written back: public members only (with
		// x5c and x5t#S256).
		raw, err := json.Marshal(struct {
			Keys any `json:"keys"`
		}{set.Keys})
		if err != nil {
			return nil, err
		}
		return json.Marshal(authz.KeyCredentialConfig{JWKS: raw})
	case authz.CredentialTLSClientAuth:
		if len(in.JWKS) != 0 || in.JWKSURI != "" {
			return nil, invalid("a %s credential takes one of subject_dn, san_dns, san_uri, san_ip and san_email, not jwks or jwks_uri", in.Type)
		}
		cfg, err := in.tlsClientAuthConfig()
		if err != nil {
			return nil, err
		}
		return json.Marshal(cfg)
	case authz.CredentialJWKSURI:
		if len(in.JWKS) != 0 {
			return nil, invalid("a jwks_uri credential takes jwks_uri, not jwks")
		}
		if in.JWKSURI == "" {
			return nil, invalid("jwks_uri is required")
		}
		if len(in.JWKSURI) > 2048 {
			return nil, invalid("jwks_uri is longer than 2048 bytes")
		}
		if err := jwks.CheckURL(in.JWKSURI, allowInsecure); err != nil {
			return nil, invalid("jwks_uri must be an absolute https URL without user info or fragment")
		}
		return json.Marshal(authz.KeyCredentialConfig{JWKSURI: in.JWKSURI})
	case authz.CredentialFederated:
		return nil, in.checkFederated()
	}
	return nil, invalid("type must be %q, %q, %q, %q or %q", authz.CredentialJWKS, authz.CredentialJWKSURI, authz.CredentialFederated,
		authz.CredentialTLSClientAuth, authz.CredentialSelfSignedTLSClientAuth)
}

// Limits of a tls_client_auth credential's fields, in bytes.
const (
	maxSANDNSLen   = 253
	maxSANURILen   = 2048
	maxSANEmailLen = 320
)

func (in NewCredential) tlsClientAuth() bool {
	return in.SubjectDN != "" || in.SANDNS != "" || in.SANURI != "" || in.SANIP != "" || in.SANEmail != ""
}

// tlsClientAuthConfig checks the one field of a tls_client_auth credential
// (RFC 8705 §2.1.2) and returns its Config: the subject DN as given
// (compared as parsed RDNs at authentication), a DNS name in lower case,
// an IP address in its canonical form.
func (in NewCredential) tlsClientAuthConfig() (authz.TLSClientAuthConfig, error) {
	set := 0
	for _, v := range []string{in.SubjectDN, in.SANDNS, in.SANURI, in.SANIP, in.SANEmail} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return authz.TLSClientAuthConfig{}, invalid("a %s credential takes exactly one of subject_dn, san_dns, san_uri, san_ip and san_email", authz.CredentialTLSClientAuth)
	}
	var cfg authz.TLSClientAuthConfig
	switch {
	case in.SubjectDN != "":
		if _, err := clientcert.ParseDN(in.SubjectDN); err != nil {
			return cfg, invalid("subject_dn is not an RFC 4514 distinguished name: %v", err)
		}
		cfg.SubjectDN = strings.TrimSpace(in.SubjectDN)
	case in.SANDNS != "":
		if !validSANDNS(in.SANDNS) {
			return cfg, invalid("san_dns must be a DNS name of at most %d bytes (letters, digits, \"-\", dots; \"*.\" may lead)", maxSANDNSLen)
		}
		cfg.SANDNS = strings.ToLower(in.SANDNS)
	case in.SANURI != "":
		u, err := url.Parse(in.SANURI)
		if err != nil || !u.IsAbs() || len(in.SANURI) > maxSANURILen || !utf8.ValidString(in.SANURI) || strings.ContainsAny(in.SANURI, " \t\r\n") {
			return cfg, invalid("san_uri must be an absolute URI of at most %d bytes", maxSANURILen)
		}
		if strings.HasPrefix(in.SANURI, "spiffe://") {
			td, path, _ := strings.Cut(strings.TrimPrefix(in.SANURI, "spiffe://"), "/")
			if validTrustDomain(td) != nil || path == "" || u.RawQuery != "" || u.Fragment != "" {
				return cfg, invalid("san_uri %q starts with spiffe:// but is not a SPIFFE ID of a workload (spiffe://trust-domain/path)", in.SANURI)
			}
		}
		cfg.SANURI = in.SANURI
	case in.SANIP != "":
		a, err := netip.ParseAddr(in.SANIP)
		if err != nil || a.Zone() != "" {
			return cfg, invalid("san_ip must be an IPv4 or IPv6 address")
		}
		cfg.SANIP = a.Unmap().String()
	default:
		local, domain, ok := strings.Cut(in.SANEmail, "@")
		if !ok || local == "" || domain == "" || strings.Contains(domain, "@") || len(in.SANEmail) > maxSANEmailLen ||
			!utf8.ValidString(in.SANEmail) || strings.ContainsAny(in.SANEmail, " \t\r\n<>") {
			return cfg, invalid("san_email must be an email address (local@domain) of at most %d bytes", maxSANEmailLen)
		}
		cfg.SANEmail = in.SANEmail
	}
	return cfg, nil
}

// validSANDNS checks a dNSName as certificates carry it (RFC 5280
// §4.2.1.6): LDH labels, optionally a leading "*." wildcard label.
func validSANDNS(s string) bool {
	if len(s) > maxSANDNSLen {
		return false
	}
	s = strings.TrimPrefix(s, "*.")
	if s == "" {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
				return false
			}
		}
	}
	return true
}

// checkFederated checks the fields of a federated credential that do not
// depend on its trusted issuer.
func (in NewCredential) checkFederated() error {
	if len(in.JWKS) != 0 || in.JWKSURI != "" {
		return invalid("a federated credential takes trusted_issuer and subject, not jwks or jwks_uri")
	}
	if in.TrustedIssuer == "" {
		return invalid("trusted_issuer is required")
	}
	if err := validText("subject", in.Subject, maxSubjectLen, true); err != nil {
		return err
	}
	if n := strings.Count(in.Subject, "*"); n > authz.MaxSubjectWildcards {
		return invalid("subject holds %d wildcards (*); at most %d", n, authz.MaxSubjectWildcards)
	}
	if err := validText("audience", in.Audience, maxAudienceLen, false); err != nil {
		return err
	}
	if len(in.Claims) > maxClaimConditions {
		return invalid("claims names at most %d claims", maxClaimConditions)
	}
	for name, cond := range in.Claims {
		if name == "" || len(name) > maxClaimNameLen || !utf8.ValidString(name) {
			return invalid("claims: a claim name is 1 to %d bytes of UTF-8", maxClaimNameLen)
		}
		if slices.Contains(registeredClaims, name) {
			return invalid("claims: %q is checked by the credential itself (issuer, subject, audience) or by every token; name another claim", name)
		}
		if len(cond.Values) == 0 || len(cond.Values) > maxClaimValues {
			return invalid("claims: %q needs 1 to %d values", name, maxClaimValues)
		}
		for _, v := range cond.Values {
			if len(v) > maxClaimValueLen || !utf8.ValidString(v) {
				return invalid("claims: a value of %q is longer than %d bytes or not UTF-8", name, maxClaimValueLen)
			}
		}
	}
	return nil
}

// federatedConfig checks a federated credential against its trusted
// issuer ti and returns the Config to store.
func (in NewCredential) federatedConfig(ti authz.TrustedIssuer) ([]byte, error) {
	if ti.Kind == authz.TrustedIssuerSPIFFE {
		// A JWT-SVID's sub is a SPIFFE ID of the trust domain (SPIFFE
		// JWT-SVID §3.1.1): the pattern may not reach into another one.
		prefix := "spiffe://" + ti.TrustDomain + "/"
		if !strings.HasPrefix(in.Subject, prefix) || len(in.Subject) == len(prefix) {
			return nil, invalid("the subject of a credential of spiffe trusted issuer %s is a SPIFFE ID of its trust domain: %s followed by a path", ti.ID, prefix)
		}
	}
	if isGitHubActions(ti.Issuer) {
		if err := checkGitHubSubject(in.Subject, in.Claims); err != nil {
			return nil, err
		}
	}
	return json.Marshal(authz.FederatedCredentialConfig{TrustedIssuer: ti.ID, Subject: in.Subject, Audience: in.Audience, Claims: in.Claims})
}

// isGitHubActions reports whether issuer is GitHub Actions' OIDC issuer,
// or that of a GitHub Enterprise Cloud enterprise (the same URL followed
// by "/" and the enterprise's slug), whose sub claims take the same form.
func isGitHubActions(issuer string) bool {
	return issuer == githubActionsIssuer || strings.HasPrefix(issuer, githubActionsIssuer+"/")
}

// checkGitHubSubject refuses a GitHub Actions subject that any
// repository's workflow could match: GitHub's sub is
// "repo:OWNER/REPO:..." (or a customised template), and every account on
// github.com can create an OWNER and push a workflow there, so a wildcard
// in the OWNER part, or a leading one, trusts strangers. It is allowed
// when a claim condition pins repository_owner or repository_owner_id to
// one value, which GitHub sets from the repository itself.
func checkGitHubSubject(subject string, claims map[string]authz.ClaimCondition) error {
	for _, name := range []string{githubOwnerClaim, githubOwnerIDClaim} {
		if c, ok := claims[name]; ok && len(c.Values) == 1 {
			return nil
		}
	}
	if strings.HasPrefix(subject, "*") {
		return invalid("a GitHub Actions subject may not start with a wildcard: any repository on github.com could match it; name the owner (repo:OWNER/REPO:...), or pin claim repository_owner_id (or repository_owner) to one value")
	}
	segs := strings.Split(subject, ":")
	for i := 0; i+1 < len(segs); i++ {
		if segs[i] != "repo" {
			continue
		}
		owner, _, _ := strings.Cut(segs[i+1], "/")
		if strings.Contains(owner, "*") {
			return invalid("a GitHub Actions subject may not have a wildcard in the owner of repo:OWNER/REPO: anyone can create a matching account or organization on github.com; name the owner exactly, or pin claim repository_owner_id (or repository_owner) to one value")
		}
	}
	return nil
}

func fitsCredentialAlg(k jwks.Key) bool {
	if k.Algorithm != "" {
		return slices.Contains(CredentialAlgs, k.Algorithm) && jwks.Fits(k, k.Algorithm)
	}
	return slices.ContainsFunc(CredentialAlgs, func(alg string) bool { return jwks.Fits(k, alg) })
}

// CreateCredential adds a secretless credential to application clientID:
// public keys inline (jwks) or by https URL (jwks_uri) that verify its
// client assertions (private_key_jwt), or a federated credential that
// matches the JWTs of a trusted issuer (workload identity federation);
// optionally expiring. Needs update:applications, and the application may
// hold no management scope the actor lacks: a credential of a stronger
// application would make the actor that application. A federated
// credential's trusted issuer is read in the transaction of the insert,
// so it cannot be deleted meanwhile. At most MaxCredentialsPerApplication
// credentials, counted in the same transaction as the insert; audited in
// it. Errors: Invalid, Forbidden, NotFound, TooMany.
func (s *Service) CreateCredential(ctx context.Context, actor Actor, clientID string, in NewCredential) (authz.Credential, error) {
	if err := actor.require(authz.ScopeUpdateApplications); err != nil {
		return authz.Credential{}, err
	}
	config, err := in.check(s.AllowInsecureIssuers)
	if err != nil {
		return authz.Credential{}, err
	}
	var out authz.Credential
	err = s.manage(ctx, "application", func(t *txn) error {
		if _, err := t.GetApplication(ctx, clientID); err != nil {
			return err
		}
		if err := mayActOn(ctx, t, actor, clientID); err != nil {
			return err
		}
		existing, err := t.ListCredentials(ctx, clientID)
		if err != nil {
			return err
		}
		if len(existing) >= MaxCredentialsPerApplication {
			return tooManyCredentials()
		}
		out, err = s.insertCredential(ctx, t, actor, clientID, in, config)
		return err
	})
	return out, err
}

func tooManyCredentials() error {
	return &Error{Kind: TooMany, Detail: fmt.Sprintf("an application holds at most %d credentials; delete one first", MaxCredentialsPerApplication)}
}

// insertCredential stores credential in of application clientID in t,
// with its audit event; config is what in.check returned. A federated
// credential's trusted issuer is read, and its Config made, here.
func (s *Service) insertCredential(ctx context.Context, t *txn, actor Actor, clientID string, in NewCredential, config []byte) (authz.Credential, error) {
	id, err := authz.NewID(s.Rand, "cred_")
	if err != nil {
		return authz.Credential{}, err
	}
	now := s.now()
	c := authz.Credential{ID: id, ClientID: clientID, Type: in.Type, Config: config, CreatedAt: now}
	details := map[string]any{"credential_id": id, "type": in.Type}
	if in.ExpiresIn != nil {
		c.ExpiresAt = now.Add(time.Duration(*in.ExpiresIn) * time.Second)
		details["expires_at"] = c.ExpiresAt
	}
	switch in.Type {
	case authz.CredentialJWKSURI:
		details["jwks_uri"] = in.JWKSURI
	case authz.CredentialTLSClientAuth:
		var cfg authz.TLSClientAuthConfig
		if err := json.Unmarshal(config, &cfg); err != nil {
			return authz.Credential{}, err
		}
		for k, v := range map[string]string{"subject_dn": cfg.SubjectDN, "san_dns": cfg.SANDNS, "san_uri": cfg.SANURI, "san_ip": cfg.SANIP, "san_email": cfg.SANEmail} {
			if v != "" {
				details[k] = v
			}
		}
	case authz.CredentialFederated:
		ti, err := t.GetTrustedIssuer(ctx, in.TrustedIssuer)
		if err != nil {
			if storeErr(err, "trusted issuer").(*Error).Kind == NotFound {
				return authz.Credential{}, invalid("unknown trusted issuer %q", in.TrustedIssuer)
			}
			return authz.Credential{}, err
		}
		if c.Config, err = in.federatedConfig(ti); err != nil {
			return authz.Credential{}, err
		}
		c.TrustedIssuerID = ti.ID
		details["trusted_issuer"] = ti.ID
		details["issuer"] = ti.Issuer
		details["subject"] = in.Subject
		if in.Audience != "" {
			details["audience"] = in.Audience
		}
		if len(in.Claims) > 0 {
			details["claims"] = in.Claims
		}
	}
	if err := t.CreateCredential(ctx, c); err != nil {
		return authz.Credential{}, err
	}
	if err := t.audit(ctx, actor, "credential.create", clientID, details); err != nil {
		return authz.Credential{}, err
	}
	return c, nil
}

// ListCredentials returns the credentials of application clientID. Needs
// read:applications. Errors: NotFound.
func (s *Service) ListCredentials(ctx context.Context, actor Actor, clientID string) ([]authz.Credential, error) {
	if err := actor.require(authz.ScopeReadApplications); err != nil {
		return nil, err
	}
	if _, err := s.Store.GetApplication(ctx, clientID); err != nil {
		return nil, storeErr(err, "application")
	}
	list, err := s.Store.ListCredentials(ctx, clientID)
	return list, storeErr(err, "application")
}

// DeleteCredential removes credential id of application clientID; it
// stops working on its next use. Needs update:applications; the
// application may hold no management scope the actor lacks. The last
// administrator's last usable secret or credential cannot be deleted.
// Errors: Forbidden, NotFound, LastAdministrator.
func (s *Service) DeleteCredential(ctx context.Context, actor Actor, clientID, id string) error {
	if err := actor.require(authz.ScopeUpdateApplications); err != nil {
		return err
	}
	return s.manage(ctx, "credential", func(t *txn) error {
		if _, err := t.GetApplication(ctx, clientID); err != nil {
			return err
		}
		if err := mayActOn(ctx, t, actor, clientID); err != nil {
			return err
		}
		if err := s.keepAdministrator(ctx, t, func() error { return t.DeleteCredential(ctx, clientID, id) }); err != nil {
			return err
		}
		return t.audit(ctx, actor, "credential.delete", clientID, map[string]any{"credential_id": id})
	})
}
