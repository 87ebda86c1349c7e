package admin

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// KeyResource is a signing key as the management API shows it: its public
// identity and its rotation times, never its private half. Unset times are
// null.
type KeyResource struct {
	KID         string     `json:"kid"`
	Alg         string     `json:"alg"`
	State       string     `json:"state"` // next, active or retired
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at"`
	RetiredAt   *time.Time `json:"retired_at"`
	// RemoveAfter is when a retired key leaves the JWKS.
	RemoveAfter *time.Time `json:"remove_after"`
	// UpdatedAt is the key's last change of state.
	UpdatedAt time.Time `json:"updated_at"`
}

// RotateKeysRequest is the optional body of POST /admin/v1/keys/rotate.
type RotateKeysRequest struct {
	Alg string `json:"alg"` // "": every algorithm in use
	// Force rotates even while the next key is younger than the JWKS
	// max-age (300 s), which is otherwise 409, and removes the oldest
	// retired keys over the cap of retired keys early. Audited.
	Force bool `json:"force,omitempty"`
}

func keyResource(k authz.SigningKey) KeyResource {
	return KeyResource{
		KID: k.KID, Alg: k.Alg, State: string(k.State), CreatedAt: k.CreatedAt,
		ActivatedAt: optTime(k.ActivatedAt), RetiredAt: optTime(k.RetiredAt), RemoveAfter: optTime(k.RemoveAfter),
		UpdatedAt: latest(k.CreatedAt, k.ActivatedAt, k.RetiredAt),
	}
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

func keyID(k authz.SigningKey) string { return k.KID }

// ListKeys serves GET /admin/v1/keys?limit=&cursor=: the signing keys,
// oldest first.
func (h *Handler) ListKeys(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	keys, err := h.Manage.ListKeys(r.Context(), *actor)
	if err != nil {
		return err
	}
	out, err := listPage(keys, keyID, keyResource, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// RotateKeys serves POST /admin/v1/keys/rotate with an optional body
// {"alg": "ES256"}: for that algorithm, or every one in use without it,
// the next key becomes active at once, the active key retires and a new
// next key is made. Answers 200 with every key; 409 conflict while the next
// key is younger than the JWKS max-age, unless {"force": true}
// (manage.Service.RotateKeys).
func (h *Handler) RotateKeys(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	var req RotateKeysRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body exceeds 1 MiB")
		}
		return invalid("reading the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := decode(w, r, &req); err != nil {
			return err
		}
	}
	if err := h.Manage.RotateKeys(r.Context(), *actor, req.Alg, req.Force); err != nil {
		return err
	}
	// The answer is the whole key list: the rotation has happened, so no
	// query parameter may turn it into an error now.
	keys, err := h.Manage.ListKeys(r.Context(), *actor)
	if err != nil {
		return err
	}
	out, _ := listPage(keys, keyID, keyResource, authz.Page{Limit: len(keys)})
	writeJSON(w, http.StatusOK, out)
	return nil
}
