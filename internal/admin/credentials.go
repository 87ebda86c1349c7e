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
// {"keys": [...]}} or {"type": "jwks_uri", "jwks_uri": "https://..."}.
type CreateCredentialRequest struct {
	Type string `json:"type"`
	// JWKS holds public keys only (RSA of at least 2048 bits, EC P-256,
	// Ed25519) for PS256, ES256, EdDSA or RS256.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`
	// ExpiresIn sets when the credential expires, in seconds; absent:
	// never.
	ExpiresIn *int64 `json:"expires_in"`
}

// CredentialResource is a credential as the management API shows it.
type CredentialResource struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	JWKS       json.RawMessage `json:"jwks,omitempty"`
	JWKSURI    string          `json:"jwks_uri,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	ExpiresAt  *time.Time      `json:"expires_at"`
	LastUsedAt *time.Time      `json:"last_used_at"`
}

func credentialResource(c authz.Credential) CredentialResource {
	out := CredentialResource{ID: c.ID, Type: c.Type, CreatedAt: c.CreatedAt, ExpiresAt: optTime(c.ExpiresAt), LastUsedAt: optTime(c.LastUsedAt)}
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
	c, err := h.Manage.CreateCredential(r.Context(), *actor, id, manage.NewCredential{Type: req.Type, JWKS: req.JWKS, JWKSURI: req.JWKSURI, ExpiresIn: req.ExpiresIn})
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
