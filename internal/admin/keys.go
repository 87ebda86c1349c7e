package admin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/token"
)

// KeyManager lists and rotates the signing keys.
type KeyManager interface {
	// List returns every signing key, without private material, as the
	// store holds them now.
	List(ctx context.Context) ([]authz.SigningKey, error)
	// Rotate rotates the keys of alg ("" for every algorithm in use) at
	// once and returns the rotations made. Returns an error wrapping
	// authz.ErrInvalid for an unsupported alg, authz.ErrNotFound for an
	// algorithm no key is in use for.
	Rotate(ctx context.Context, alg string) ([]token.Rotation, error)
}

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
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func keyResource(k authz.SigningKey) KeyResource {
	return KeyResource{
		KID: k.KID, Alg: k.Alg, State: string(k.State), CreatedAt: k.CreatedAt,
		ActivatedAt: optionalTime(k.ActivatedAt), RetiredAt: optionalTime(k.RetiredAt), RemoveAfter: optionalTime(k.RemoveAfter),
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

// ListKeys serves GET /admin/v1/keys?limit=&cursor=: the signing keys,
// oldest first.
func (h *Handler) ListKeys(w http.ResponseWriter, r *http.Request, _ *Actor) *Problem {
	pg, p := page(r)
	if p != nil {
		return p
	}
	keys, err := h.SigningKeys.List(r.Context())
	if err != nil {
		return storeProblem(err, "signing keys")
	}
	out, p := listPage(keys, keyID, keyResource, pg)
	if p != nil {
		return p
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func keyID(k authz.SigningKey) string { return k.KID }

// RotateKeys serves POST /admin/v1/keys/rotate with an optional body
// {"alg": "ES256"}: for that algorithm, or every one in use without it,
// the next key becomes active at once, the active key retires and a new
// next key is made. Answers 200 with every key. Resource servers that
// have not yet fetched the former next key do so on its unknown kid.
func (h *Handler) RotateKeys(w http.ResponseWriter, r *http.Request, actor *Actor) *Problem {
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
		if p := decode(w, r, &req); p != nil {
			return p
		}
		if req.Alg != "" && !authz.ValidSigningAlg(req.Alg) {
			return invalid("alg must be one of ES256, EdDSA, RS256, PS256")
		}
	}
	rotations, err := h.SigningKeys.Rotate(r.Context(), req.Alg)
	for _, rot := range rotations { // audit what happened, even if another algorithm failed
		h.audit(r, actor, "key.rotate", rot.Alg, map[string]any{
			"alg": rot.Alg, "retired": rot.Retired, "activated": rot.Activated, "next": rot.Next,
			"remove_after": rot.RemoveAfter.UTC().Format(time.RFC3339),
		})
	}
	if err != nil {
		if errors.Is(err, authz.ErrNotFound) {
			return notFound("signing keys for " + req.Alg)
		}
		return storeProblem(err, "signing keys")
	}
	// The answer is the whole key list: the rotation has happened, so no
	// query parameter may turn it into an error now.
	keys, err := h.SigningKeys.List(r.Context())
	if err != nil {
		return storeProblem(err, "signing keys")
	}
	out, _ := listPage(keys, keyID, keyResource, authz.Page{Limit: len(keys)})
	writeJSON(w, http.StatusOK, out)
	return nil
}
