package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

// CreateCredentialRequest is the body of POST
// /admin/v1/applications/{client_id}/credentials: {"type": "jwks", "jwks":
// {"keys": [...]}}, {"type": "jwks_uri", "jwks_uri": "https://..."} or
// {"type": "federated", "trusted_issuer": "tis_...", "subject": "...",
// "audience": "...", "claims": {"name": "value" | ["v1", "v2"]}},
// {"type": "tls_client_auth", "subject_dn" | "san_dns" | "san_uri" |
// "san_ip" | "san_email": "..."} (exactly one; RFC 8705 §2.1) or {"type":
// "self_signed_tls_client_auth", "jwks": {"keys": [...]}} whose keys carry
// x5c or x5t#S256 (RFC 8705 §2.2).
type CreateCredentialRequest struct {
	Type string `json:"type"`
	// JWKS holds public keys only (RSA of at least 2048 bits, EC P-256,
	// Ed25519) for PS256, ES256, EdDSA or RS256.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`
	// TrustedIssuer is the id of the trusted issuer whose JWTs a
	// federated credential matches.
	TrustedIssuer string `json:"trusted_issuer,omitempty"`
	// Subject is the sub expected: exact, or with "*" matching any run of
	// characters other than ":" (at most 8).
	Subject string `json:"subject,omitempty"`
	// Audience is the aud expected; absent or "": this server's issuer
	// identifier.
	Audience string `json:"audience,omitempty"`
	// Claims are further conditions: claim name (dots reach into nested
	// objects) → the value it must have, or a list of values it must be
	// one of.
	Claims map[string]authz.ClaimCondition `json:"claims,omitempty"`
	// SubjectDN is the subject a tls_client_auth client certificate must
	// have, as an RFC 4514 string (compared RDN by RDN, attribute values
	// without regard to case or extra spaces).
	SubjectDN string `json:"subject_dn,omitempty"`
	// SANDNS, SANURI, SANIP and SANEmail are a subjectAltName entry of
	// that type the tls_client_auth client certificate must hold, exactly
	// (a DNS name without regard to case). A san_uri that is a SPIFFE ID
	// also accepts X.509-SVIDs of its trust domain's spiffe trusted issuer.
	SANDNS   string `json:"san_dns,omitempty"`
	SANURI   string `json:"san_uri,omitempty"`
	SANIP    string `json:"san_ip,omitempty"`
	SANEmail string `json:"san_email,omitempty"`
	// ExpiresIn sets when the credential expires, in seconds; absent:
	// never.
	ExpiresIn *int64 `json:"expires_in"`
}

func (c CreateCredentialRequest) input() manage.NewCredential {
	return manage.NewCredential{Type: c.Type, JWKS: c.JWKS, JWKSURI: c.JWKSURI, TrustedIssuer: c.TrustedIssuer,
		Subject: c.Subject, Audience: c.Audience, Claims: c.Claims, ExpiresIn: c.ExpiresIn,
		SubjectDN: c.SubjectDN, SANDNS: c.SANDNS, SANURI: c.SANURI, SANIP: c.SANIP, SANEmail: c.SANEmail}
}

// CredentialResource is a credential as the management API shows it.
// The federated fields are those of a federated credential; audience is
// absent when it is this server's issuer identifier. subject_dn and the
// san_ fields are those of a tls_client_auth credential (one of them).
type CredentialResource struct {
	ID            string                          `json:"id"`
	Type          string                          `json:"type"`
	JWKS          json.RawMessage                 `json:"jwks,omitempty"`
	JWKSURI       string                          `json:"jwks_uri,omitempty"`
	TrustedIssuer string                          `json:"trusted_issuer,omitempty"`
	Subject       string                          `json:"subject,omitempty"`
	Audience      string                          `json:"audience,omitempty"`
	Claims        map[string]authz.ClaimCondition `json:"claims,omitempty"`
	SubjectDN     string                          `json:"subject_dn,omitempty"`
	SANDNS        string                          `json:"san_dns,omitempty"`
	SANURI        string                          `json:"san_uri,omitempty"`
	SANIP         string                          `json:"san_ip,omitempty"`
	SANEmail      string                          `json:"san_email,omitempty"`
	CreatedAt     time.Time                       `json:"created_at"`
	ExpiresAt     *time.Time                      `json:"expires_at"`
	LastUsedAt    *time.Time                      `json:"last_used_at"`
}

func credentialResource(c authz.Credential) CredentialResource {
	out := CredentialResource{ID: c.ID, Type: c.Type, CreatedAt: c.CreatedAt, ExpiresAt: optTime(c.ExpiresAt), LastUsedAt: optTime(c.LastUsedAt)}
	// Stored configs are JSON manage wrote; an unreadable one shows as
	// none rather than failing the read.
	if c.Type == authz.CredentialFederated {
		var cfg authz.FederatedCredentialConfig
		if json.Unmarshal(c.Config, &cfg) == nil {
			out.TrustedIssuer, out.Subject, out.Audience, out.Claims = cfg.TrustedIssuer, cfg.Subject, cfg.Audience, cfg.Claims
		}
		if out.TrustedIssuer == "" {
			out.TrustedIssuer = c.TrustedIssuerID
		}
		return out
	}
	if c.Type == authz.CredentialTLSClientAuth {
		var cfg authz.TLSClientAuthConfig
		if json.Unmarshal(c.Config, &cfg) == nil {
			out.SubjectDN, out.SANDNS, out.SANURI, out.SANIP, out.SANEmail = cfg.SubjectDN, cfg.SANDNS, cfg.SANURI, cfg.SANIP, cfg.SANEmail
		}
		return out
	}
	var cfg authz.KeyCredentialConfig
	if json.Unmarshal(c.Config, &cfg) == nil {
		out.JWKS, out.JWKSURI = cfg.JWKS, cfg.JWKSURI
	}
	return out
}

// CreateCredential serves POST
// /admin/v1/applications/{client_id}/credentials: 201 with the new
// credential.
func (h *Handler) CreateCredential(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	var req CreateCredentialRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	id := r.PathValue("client_id")
	c, err := h.Manage.CreateCredential(r.Context(), *actor, id, req.input())
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/applications/"+id+"/credentials/"+c.ID)
	writeJSON(w, http.StatusCreated, credentialResource(c))
	return nil
}

// ListCredentials serves GET /admin/v1/applications/{client_id}/credentials.
func (h *Handler) ListCredentials(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	list, err := h.Manage.ListCredentials(r.Context(), *actor, r.PathValue("client_id"))
	if err != nil {
		return err
	}
	out, err := listPage(list, func(c authz.Credential) string { return c.ID }, credentialResource, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// DeleteCredential serves DELETE
// /admin/v1/applications/{client_id}/credentials/{credential_id}: 204; the
// credential stops working on its next use.
func (h *Handler) DeleteCredential(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	if err := h.Manage.DeleteCredential(r.Context(), *actor, r.PathValue("client_id"), r.PathValue("credential_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
