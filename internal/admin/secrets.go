package admin

import (
	"net/http"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

// CreateSecretRequest is the body of POST
// /admin/v1/applications/{client_id}/secrets. Both fields are in seconds.
type CreateSecretRequest struct {
	// ExpiresIn sets when the new secret expires; absent: never.
	ExpiresIn *int64 `json:"expires_in"`
	// ExpireOthersIn sets when the application's other secrets expire
	// ("keep the old one 24 h"): 0 expires them now; absent leaves them.
	// An earlier expiry already set is kept.
	ExpireOthersIn *int64 `json:"expire_others_in"`
}

// CreatedSecret is the answer to POST …/secrets: the only time the secret
// is shown.
type CreatedSecret struct {
	SecretResource
	ClientSecret string `json:"client_secret"`
}

// CreateSecret serves POST /admin/v1/applications/{client_id}/secrets: a
// new client secret, optionally expiring, and optionally an expiry for the
// others.
func (h *Handler) CreateSecret(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	var req CreateSecretRequest
	if r.ContentLength != 0 {
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	id := r.PathValue("client_id")
	created, err := h.Manage.CreateSecret(r.Context(), *actor, id, manage.NewSecret{ExpiresIn: req.ExpiresIn, ExpireOthersIn: req.ExpireOthersIn})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/applications/"+id+"/secrets/"+created.Secret.ID)
	writeJSON(w, http.StatusCreated, CreatedSecret{SecretResource: secretResource(created.Secret), ClientSecret: created.ClientSecret})
	return nil
}

// ListSecrets serves GET /admin/v1/applications/{client_id}/secrets:
// every secret with its prefix, dates and last use, never the secret.
func (h *Handler) ListSecrets(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	secrets, err := h.Manage.ListSecrets(r.Context(), *actor, r.PathValue("client_id"))
	if err != nil {
		return err
	}
	out, err := listPage(secrets, func(s authz.Secret) string { return s.ID }, secretResource, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// DeleteSecret serves DELETE /admin/v1/applications/{client_id}/secrets/{secret_id}:
// 204; the secret stops working on its next use.
func (h *Handler) DeleteSecret(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	if err := h.Manage.DeleteSecret(r.Context(), *actor, r.PathValue("client_id"), r.PathValue("secret_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
