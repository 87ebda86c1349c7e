package admin

import (
	"net/http"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
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

// maxSecretsPerApplication bounds how many secrets one application holds.
const maxSecretsPerApplication = 10

const maxExpiry = 10 * 365 * 24 * 3600 // seconds

// CreateSecret serves POST /admin/v1/applications/{client_id}/secrets: a
// new client secret, optionally expiring, and optionally an expiry for the
// others, so that a secret is replaced with an overlap and no downtime.
func (h *Handler) CreateSecret(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	var req CreateSecretRequest
	if r.ContentLength != 0 {
		if p := decode(w, r, &req); p != nil {
			return p
		}
	}
	if req.ExpiresIn != nil && (*req.ExpiresIn <= 0 || *req.ExpiresIn > maxExpiry) {
		return invalid("expires_in must be from 1 to %d seconds", maxExpiry)
	}
	if req.ExpireOthersIn != nil && (*req.ExpireOthersIn < 0 || *req.ExpireOthersIn > maxExpiry) {
		return invalid("expire_others_in must be from 0 to %d seconds", maxExpiry)
	}
	id := r.PathValue("client_id")
	existing, err := h.Store.ListSecrets(r.Context(), id)
	if err != nil {
		return storeProblem(err, "application")
	}
	if _, err := h.Store.GetApplication(r.Context(), id); err != nil {
		return storeProblem(err, "application")
	}
	if len(existing) >= maxSecretsPerApplication {
		return problem(http.StatusConflict, CodeConflict, "the application already holds 10 secrets; delete one first")
	}
	now := h.now()
	var expires time.Time
	if req.ExpiresIn != nil {
		expires = now.Add(time.Duration(*req.ExpiresIn) * time.Second)
	}
	sec, plain, p := h.newSecret(id, now, expires)
	if p != nil {
		return p
	}
	details := map[string]any{"secret_id": sec.ID}
	if req.ExpireOthersIn != nil {
		// One transaction: never a new secret without the old ones' expiry.
		at := now.Add(time.Duration(*req.ExpireOthersIn) * time.Second)
		err = h.Store.RotateSecret(r.Context(), sec, at)
		details["others_expire_at"] = at
	} else {
		err = h.Store.CreateSecret(r.Context(), sec)
	}
	if err != nil {
		return storeProblem(err, "application")
	}
	h.audit(r, actor, "secret.create", id, details)
	w.Header().Set("Location", "/admin/v1/applications/"+id+"/secrets/"+sec.ID)
	writeJSON(w, http.StatusCreated, CreatedSecret{SecretResource: secretResource(sec), ClientSecret: plain})
	return nil
}

// ListSecrets serves GET /admin/v1/applications/{client_id}/secrets:
// every secret with its prefix, dates and last use, never the secret.
func (h *Handler) ListSecrets(w http.ResponseWriter, r *http.Request, _ *Actor) *Problem {
	id := r.PathValue("client_id")
	if _, err := h.Store.GetApplication(r.Context(), id); err != nil {
		return storeProblem(err, "application")
	}
	pg, p := page(r)
	if p != nil {
		return p
	}
	secrets, err := h.Store.ListSecrets(r.Context(), id)
	if err != nil {
		return storeProblem(err, "application")
	}
	out, p := listPage(secrets, func(s authz.Secret) string { return s.ID }, secretResource, pg)
	if p != nil {
		return p
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// DeleteSecret serves DELETE /admin/v1/applications/{client_id}/secrets/{secret_id}:
// 204; the secret stops working on its next use.
func (h *Handler) DeleteSecret(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
	id, sid := r.PathValue("client_id"), r.PathValue("secret_id")
	if err := h.Store.DeleteSecret(r.Context(), id, sid); err != nil {
		return storeProblem(err, "secret")
	}
	h.audit(r, actor, "secret.delete", id, map[string]any{"secret_id": sid})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
