package admin

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/manage"
)

// CreateTrustedIssuerRequest is the body of POST /admin/v1/trusted-issuers.
// oidc takes issuer (and jwks_uri if its keys are not found by discovery);
// kubernetes takes issuer and at most one of jwks_uri and jwks; spiffe
// takes trust_domain and exactly one of bundle_url and jwks (an inline
// SPIFFE bundle), and its issuer, if given, must be "spiffe://" followed
// by the trust domain.
type CreateTrustedIssuerRequest struct {
	Name string `json:"name"`
	// Kind is "oidc", "kubernetes" or "spiffe".
	Kind string `json:"kind"`
	// Issuer is the iss of the issuer's tokens, compared exactly: an
	// https URL without query or fragment.
	Issuer  string `json:"issuer,omitempty"`
	JWKSURI string `json:"jwks_uri,omitempty"`
	// JWKS holds public keys only (kubernetes), or is a SPIFFE bundle
	// (spiffe: keys with use jwt-svid verify JWT-SVIDs; the x5c
	// certificates of those with use x509-svid are the roots of
	// X.509-SVIDs for tls_client_auth).
	JWKS        json.RawMessage `json:"jwks,omitempty"`
	TrustDomain string          `json:"trust_domain,omitempty"`
	BundleURL   string          `json:"bundle_url,omitempty"`
	// SingleUse makes each token's jti usable once (tokens without a jti
	// are then refused); absent: true for oidc, false for kubernetes and
	// spiffe.
	SingleUse *bool `json:"single_use,omitempty"`
}

// TrustedIssuerResource is a trusted issuer as the management API shows
// it.
type TrustedIssuerResource struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	Issuer      string          `json:"issuer"`
	JWKSURI     string          `json:"jwks_uri,omitempty"`
	JWKS        json.RawMessage `json:"jwks,omitempty"`
	TrustDomain string          `json:"trust_domain,omitempty"`
	BundleURL   string          `json:"bundle_url,omitempty"`
	SingleUse   bool            `json:"single_use"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

func trustedIssuerResource(ti authz.TrustedIssuer) TrustedIssuerResource {
	return TrustedIssuerResource{
		ID: ti.ID, Name: ti.Name, Kind: ti.Kind, Issuer: ti.Issuer, JWKSURI: ti.JWKSURI, JWKS: ti.JWKS,
		TrustDomain: ti.TrustDomain, BundleURL: ti.BundleURL, SingleUse: ti.SingleUse,
		CreatedAt: ti.CreatedAt, UpdatedAt: ti.UpdatedAt,
	}
}

// CreateTrustedIssuer serves POST /admin/v1/trusted-issuers: 201 with the
// trusted issuer and its Location.
func (h *Handler) CreateTrustedIssuer(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	var req CreateTrustedIssuerRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	ti, err := h.Manage.CreateTrustedIssuer(r.Context(), *actor, manage.NewTrustedIssuer{
		Name: req.Name, Kind: req.Kind, Issuer: req.Issuer, JWKSURI: req.JWKSURI, JWKS: req.JWKS,
		TrustDomain: req.TrustDomain, BundleURL: req.BundleURL, SingleUse: req.SingleUse,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/v1/trusted-issuers/"+ti.ID)
	writeJSON(w, http.StatusCreated, trustedIssuerResource(ti))
	return nil
}

// ListTrustedIssuers serves GET /admin/v1/trusted-issuers, oldest first.
func (h *Handler) ListTrustedIssuers(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	list, err := h.Manage.ListTrustedIssuers(r.Context(), *actor)
	if err != nil {
		return err
	}
	out, err := listPage(list, func(ti authz.TrustedIssuer) string { return ti.ID }, trustedIssuerResource, pg)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GetTrustedIssuer serves GET /admin/v1/trusted-issuers/{id}.
func (h *Handler) GetTrustedIssuer(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	ti, err := h.Manage.GetTrustedIssuer(r.Context(), *actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, trustedIssuerResource(ti))
	return nil
}

// DeleteTrustedIssuer serves DELETE /admin/v1/trusted-issuers/{id}: 204;
// 409 while a federated credential names it.
func (h *Handler) DeleteTrustedIssuer(w http.ResponseWriter, r *http.Request, actor *Actor) error {
	if err := h.Manage.DeleteTrustedIssuer(r.Context(), *actor, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
