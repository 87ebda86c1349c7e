package manage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/jwks"
)

// MaxTrustedIssuers bounds how many trusted issuers the server holds.
const MaxTrustedIssuers = 100

// maxIssuerURLLen bounds a trusted issuer's issuer, jwks_uri and
// bundle_url, in bytes; maxTrustDomainLen a SPIFFE trust domain (SPIFFE ID
// specification §2.1: at most 255 bytes).
const (
	maxIssuerURLLen   = 2048
	maxTrustDomainLen = 255
)

// TrustedIssuerAlgs are the JWS algorithms a trusted issuer's inline key
// may be for (its "alg", when it has one): what Kubernetes clusters and
// SPIFFE JWT-SVID issuers sign with (RFC 7518 §3, RFC 8037). Never none,
// never HMAC.
var TrustedIssuerAlgs = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}

// NewTrustedIssuer is what CreateTrustedIssuer adds; which fields it takes
// depends on Kind:
//   - oidc: Issuer, and JWKSURI if the keys are not to be found by
//     discovery; no inline JWKS.
//   - kubernetes: Issuer, and at most one of JWKSURI and JWKS (for a
//     cluster whose issuer is not reachable).
//   - spiffe: TrustDomain and exactly one of BundleURL and JWKS (an inline
//     SPIFFE bundle); Issuer is "spiffe://"+TrustDomain, and may be left
//     out.
type NewTrustedIssuer struct {
	Name        string
	Kind        string
	Issuer      string
	JWKSURI     string
	JWKS        json.RawMessage
	TrustDomain string
	BundleURL   string
	// SingleUse makes each token's jti usable once; nil: true for oidc
	// (a fresh token per request, as GitHub Actions gives), false for
	// kubernetes and spiffe (which reuse their tokens).
	SingleUse *bool
}

// resolve validates in and returns the trusted issuer to store, without
// ID and times. allowInsecure allows http URLs to loopback hosts.
func (in NewTrustedIssuer) resolve(allowInsecure bool) (authz.TrustedIssuer, error) {
	if err := validText("name", in.Name, maxNameLen, true); err != nil {
		return authz.TrustedIssuer{}, err
	}
	inline := len(in.JWKS) != 0 && !isJSONNull(in.JWKS)
	ti := authz.TrustedIssuer{Name: in.Name, Kind: in.Kind}
	switch in.Kind {
	case authz.TrustedIssuerOIDC, authz.TrustedIssuerKubernetes:
		if in.TrustDomain != "" || in.BundleURL != "" {
			return authz.TrustedIssuer{}, invalid("trust_domain and bundle_url are for kind spiffe")
		}
		if in.Issuer == "" {
			return authz.TrustedIssuer{}, invalid("issuer is required")
		}
		if err := checkIssuerURL(in.Issuer, allowInsecure); err != nil {
			return authz.TrustedIssuer{}, err
		}
		ti.Issuer = in.Issuer
		if in.JWKSURI != "" {
			if err := checkKeyURL("jwks_uri", in.JWKSURI, allowInsecure); err != nil {
				return authz.TrustedIssuer{}, err
			}
			ti.JWKSURI = in.JWKSURI
		}
		if inline {
			if in.Kind == authz.TrustedIssuerOIDC {
				return authz.TrustedIssuer{}, invalid("an oidc trusted issuer takes no inline jwks: its keys are found by discovery, or at jwks_uri")
			}
			if in.JWKSURI != "" {
				return authz.TrustedIssuer{}, invalid("give jwks_uri or jwks, not both")
			}
			keys, err := inlineJWKS(in.JWKS)
			if err != nil {
				return authz.TrustedIssuer{}, err
			}
			ti.JWKS = keys
		}
	case authz.TrustedIssuerSPIFFE:
		if err := validTrustDomain(in.TrustDomain); err != nil {
			return authz.TrustedIssuer{}, err
		}
		ti.TrustDomain = in.TrustDomain
		ti.Issuer = "spiffe://" + in.TrustDomain
		if in.Issuer != "" && in.Issuer != ti.Issuer {
			return authz.TrustedIssuer{}, invalid("the issuer of a spiffe trusted issuer is %q (spiffe:// and its trust domain); leave it out", ti.Issuer)
		}
		if in.JWKSURI != "" {
			return authz.TrustedIssuer{}, invalid("a spiffe trusted issuer takes bundle_url (its bundle endpoint), not jwks_uri")
		}
		if (in.BundleURL == "") == !inline {
			return authz.TrustedIssuer{}, invalid("a spiffe trusted issuer takes exactly one of bundle_url and jwks (an inline bundle)")
		}
		if in.BundleURL != "" {
			if err := checkKeyURL("bundle_url", in.BundleURL, allowInsecure); err != nil {
				return authz.TrustedIssuer{}, err
			}
			ti.BundleURL = in.BundleURL
		} else {
			bundle, err := inlineBundle(in.JWKS)
			if err != nil {
				return authz.TrustedIssuer{}, err
			}
			ti.JWKS = bundle
		}
	default:
		return authz.TrustedIssuer{}, invalid("kind must be %q, %q or %q", authz.TrustedIssuerOIDC, authz.TrustedIssuerKubernetes, authz.TrustedIssuerSPIFFE)
	}
	ti.SingleUse = in.Kind == authz.TrustedIssuerOIDC
	if in.SingleUse != nil {
		ti.SingleUse = *in.SingleUse
	}
	return ti, nil
}

func isJSONNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// checkIssuerURL checks an issuer identifier as OpenID Connect Discovery
// §3 and RFC 8414 §2 define it: an https URL with no query or fragment
// (and here no user info), compared exactly, so stored as given.
func checkIssuerURL(s string, allowInsecure bool) error {
	if len(s) > maxIssuerURLLen {
		return invalid("issuer is longer than %d bytes", maxIssuerURLLen)
	}
	u, err := url.Parse(s)
	if err != nil || u.RawQuery != "" || u.ForceQuery || jwks.CheckURL(s, allowInsecure) != nil {
		return invalid("issuer must be an absolute https URL without user info, query or fragment%s", insecureHint(allowInsecure))
	}
	return nil
}

// checkKeyURL checks the URL keys are fetched from (jwks_uri, bundle_url).
func checkKeyURL(field, s string, allowInsecure bool) error {
	if len(s) > maxIssuerURLLen {
		return invalid("%s is longer than %d bytes", field, maxIssuerURLLen)
	}
	if jwks.CheckURL(s, allowInsecure) != nil {
		return invalid("%s must be an absolute https URL without user info or fragment%s", field, insecureHint(allowInsecure))
	}
	return nil
}

func insecureHint(allowInsecure bool) string {
	if allowInsecure {
		return " (or http to a loopback host)"
	}
	return ""
}

// validTrustDomain checks a SPIFFE trust domain name (SPIFFE ID
// specification §2.1): lowercase letters, digits, ".", "-" and "_", at
// most 255 bytes.
func validTrustDomain(td string) error {
	if td == "" {
		return invalid("trust_domain is required for kind spiffe")
	}
	if len(td) > maxTrustDomainLen {
		return invalid("trust_domain is longer than %d bytes", maxTrustDomainLen)
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return invalid("trust_domain %q: a SPIFFE trust domain holds only lowercase letters, digits, \".\", \"-\" and \"_\" (no spiffe:// prefix, no path)", td)
		}
	}
	return nil
}

// inlineJWKS validates an inline JWKS of a kubernetes trusted issuer and
// returns it as stored: its keys as parsed, public members only.
func inlineJWKS(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) > maxCredentialJWKSBytes {
		return nil, invalid("jwks is larger than %d bytes", maxCredentialJWKSBytes)
	}
	set, err := jwks.Parse(raw)
	if err != nil {
		return nil, invalid("jwks: %v", err)
	}
	if err := checkIssuerKeys(set.Keys, "jwks"); err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		Keys any `json:"keys"`
	}{set.Keys})
}

// inlineBundle validates an inline SPIFFE bundle (SPIFFE Trust Domain and
// Bundle §4: a JWKS whose keys have use "jwt-svid" or "x509-svid", with
// optional spiffe_sequence and spiffe_refresh_hint) and returns it as
// stored: the document as given, compacted, except that a key without a
// use gets use "jwt-svid", so that it is read like a bundle fetched from a
// bundle endpoint (jwks.ParseBundle). Its jwt-svid keys must be public
// signing keys for TrustedIssuerAlgs; x509-svid keys do not verify JWTs
// and are not checked, except that no key may be private.
func inlineBundle(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) > maxCredentialJWKSBytes {
		return nil, invalid("jwks is larger than %d bytes", maxCredentialJWKSBytes)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil || doc == nil {
		return nil, invalid("jwks: not a SPIFFE bundle (a JWKS object)")
	}
	var keys []map[string]json.RawMessage
	if err := json.Unmarshal(doc["keys"], &keys); err != nil {
		return nil, invalid("jwks: keys must be an array of JWKs")
	}
	for i, k := range keys {
		if k == nil {
			return nil, invalid("jwks: key %d is not a JWK", i)
		}
		if _, ok := k["use"]; !ok {
			k["use"] = json.RawMessage(`"` + jwks.UseJWTSVID + `"`)
		}
	}
	b, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	doc["keys"] = b
	normal, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	bundle, err := jwks.ParseBundle(normal)
	if err != nil {
		return nil, invalid("jwks: %v", err)
	}
	if err := checkIssuerKeys(bundle.Keys, "jwks "+jwks.UseJWTSVID); err != nil {
		return nil, err
	}
	return normal, nil
}

// checkIssuerKeys bounds the keys of an inline JWKS and checks each fits
// one of TrustedIssuerAlgs.
func checkIssuerKeys(keys []jwks.Key, what string) error {
	if len(keys) > maxCredentialKeys {
		return invalid("%s holds more than %d keys", what, maxCredentialKeys)
	}
	for i, k := range keys {
		ok := false
		if k.Algorithm != "" {
			ok = slices.Contains(TrustedIssuerAlgs, k.Algorithm) && jwks.Fits(k, k.Algorithm)
		} else {
			ok = slices.ContainsFunc(TrustedIssuerAlgs, func(alg string) bool { return jwks.Fits(k, alg) })
		}
		if !ok {
			return invalid("%s key %d: its alg or type fits none of %v", what, i, TrustedIssuerAlgs)
		}
	}
	return nil
}

// CreateTrustedIssuer adds a trusted issuer: an external issuer whose JWTs
// may authenticate applications through their federated credentials.
// Needs update:trusted-issuers. Validated per kind (NewTrustedIssuer);
// URLs are https, or http to a loopback host with AllowInsecureIssuers.
// At most MaxTrustedIssuers, counted in the transaction of the insert;
// audited in it as trusted_issuer.create. Errors: Invalid, Forbidden,
// Conflict (another trusted issuer has this issuer), TooMany.
func (s *Service) CreateTrustedIssuer(ctx context.Context, actor Actor, in NewTrustedIssuer) (authz.TrustedIssuer, error) {
	if err := actor.require(authz.ScopeUpdateTrustedIssuers); err != nil {
		return authz.TrustedIssuer{}, err
	}
	ti, err := in.resolve(s.AllowInsecureIssuers)
	if err != nil {
		return authz.TrustedIssuer{}, err
	}
	id, err := authz.NewID(s.Rand, "tis_")
	if err != nil {
		return authz.TrustedIssuer{}, storeErr(err, "trusted issuer")
	}
	err = s.manage(ctx, "trusted issuer", func(t *txn) error {
		list, err := t.ListTrustedIssuers(ctx)
		if err != nil {
			return err
		}
		if len(list) >= MaxTrustedIssuers {
			return &Error{Kind: TooMany, Detail: fmt.Sprintf("the server already holds %d trusted issuers; delete one first", MaxTrustedIssuers)}
		}
		for _, other := range list {
			if other.Issuer == ti.Issuer {
				return conflict("trusted issuer %s (%q) already has issuer %q", other.ID, other.Name, ti.Issuer)
			}
		}
		now := s.now()
		ti.ID, ti.CreatedAt, ti.UpdatedAt = id, now, now
		if err := t.CreateTrustedIssuer(ctx, ti); err != nil {
			return err
		}
		details := map[string]any{"name": ti.Name, "kind": ti.Kind, "issuer": ti.Issuer, "single_use": ti.SingleUse}
		if ti.JWKSURI != "" {
			details["jwks_uri"] = ti.JWKSURI
		}
		if ti.BundleURL != "" {
			details["bundle_url"] = ti.BundleURL
		}
		if len(ti.JWKS) > 0 {
			details["inline_jwks"] = true
		}
		return t.audit(ctx, actor, "trusted_issuer.create", ti.ID, details)
	})
	if err != nil {
		return authz.TrustedIssuer{}, err
	}
	return ti, nil
}

// ListTrustedIssuers returns every trusted issuer, oldest first. Needs
// read:trusted-issuers.
func (s *Service) ListTrustedIssuers(ctx context.Context, actor Actor) ([]authz.TrustedIssuer, error) {
	if err := actor.require(authz.ScopeReadTrustedIssuers); err != nil {
		return nil, err
	}
	list, err := s.Store.ListTrustedIssuers(ctx)
	if err != nil {
		return nil, storeErr(err, "trusted issuer")
	}
	if list == nil {
		list = []authz.TrustedIssuer{}
	}
	return list, nil
}

// GetTrustedIssuer returns trusted issuer id. Needs read:trusted-issuers.
// Errors: Forbidden, NotFound.
func (s *Service) GetTrustedIssuer(ctx context.Context, actor Actor, id string) (authz.TrustedIssuer, error) {
	if err := actor.require(authz.ScopeReadTrustedIssuers); err != nil {
		return authz.TrustedIssuer{}, err
	}
	ti, err := s.Store.GetTrustedIssuer(ctx, id)
	return ti, storeErr(err, "trusted issuer")
}

// DeleteTrustedIssuer removes trusted issuer id. Needs
// update:trusted-issuers. Refused while a federated credential names it:
// removing the issuer would strand those credentials, and deleting them
// is a change to their applications, which update:applications decides.
// Audited as trusted_issuer.delete. Errors: Forbidden, NotFound, Conflict.
func (s *Service) DeleteTrustedIssuer(ctx context.Context, actor Actor, id string) error {
	if err := actor.require(authz.ScopeUpdateTrustedIssuers); err != nil {
		return err
	}
	return s.manage(ctx, "trusted issuer", func(t *txn) error {
		ti, err := t.GetTrustedIssuer(ctx, id)
		if err != nil {
			return err
		}
		creds, err := t.ListFederatedCredentials(ctx, id)
		if err != nil {
			return err
		}
		if len(creds) > 0 {
			return inUse(ti, creds)
		}
		if err := t.DeleteTrustedIssuer(ctx, id); err != nil {
			return err
		}
		return t.audit(ctx, actor, "trusted_issuer.delete", id, map[string]any{"name": ti.Name, "kind": ti.Kind, "issuer": ti.Issuer})
	})
}

// inUse is the Conflict of deleting ti while creds name it.
func inUse(ti authz.TrustedIssuer, creds []authz.Credential) error {
	var apps []string
	for _, c := range creds {
		if !slices.Contains(apps, c.ClientID) {
			apps = append(apps, c.ClientID)
		}
	}
	shown := apps
	more := ""
	if len(shown) > 5 {
		shown, more = shown[:5], fmt.Sprintf(" and %d more", len(apps)-5)
	}
	return conflict("trusted issuer %s is named by %d federated credentials (applications %v%s); delete those credentials first", ti.ID, len(creds), shown, more)
}
