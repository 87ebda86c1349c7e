package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/m2mauth/m2mauth/dpop"
	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/token"
)

// Error codes of DPoP at the token endpoint (RFC 9449 §5, §8), both 400.
const (
	ErrInvalidDPoPProof = "invalid_dpop_proof"
	ErrUseDPoPNonce     = "use_dpop_nonce"
)

// Token types of the token response (RFC 6749 §7.1) and of introspection
// (RFC 7662 §2.2): a DPoP-bound token is "DPoP" (RFC 9449 §5, §6.2); a
// bearer token, and a certificate-bound one (RFC 8705 §3), is "Bearer".
const (
	TokenTypeBearer = "Bearer"
	TokenTypeDPoP   = "DPoP"
)

// HeaderDPoPNonce is the response header that carries the server's nonce
// (RFC 9449 §8).
const HeaderDPoPNonce = "DPoP-Nonce"

// fapi2Algs are the JWS algorithms FAPI 2.0 Security Profile §5.4.1
// allows: of the client assertion and of the DPoP proof.
var fapi2Algs = []string{"PS256", "ES256", "EdDSA"}

// DPoPSigningAlgs returns the algorithms DPoP proofs may be signed with:
// DPoPAlgs, or dpop.DefaultAlgs (ES256, PS256, EdDSA, RS256) if it is
// empty. Discovery lists them as dpop_signing_alg_values_supported (RFC
// 9449 §5.1). An API under the FAPI 2.0 profile accepts only those of
// them that are PS256, ES256 or EdDSA.
func (s *Server) DPoPSigningAlgs() []string {
	if len(s.DPoPAlgs) == 0 {
		return slices.Clone(dpop.DefaultAlgs)
	}
	return slices.Clone(s.DPoPAlgs)
}

// tokenEndpointURL is the URL a token request's DPoP proof must name as
// htu (RFC 9449 §4.3 step 9): the issuer followed by the path the request
// came to, the token endpoint or its legacy alias. Built from the issuer,
// never from the Host header, which the client chooses.
func (s *Server) tokenEndpointURL(r *http.Request) string {
	path := PathToken
	if r.URL.Path == PathTokenLegacy {
		path = PathTokenLegacy
	}
	return strings.TrimSuffix(s.Issuer.URL(), "/") + path
}

// hasDPoPProof reports whether r carries a DPoP header (one or more).
func hasDPoPProof(r *http.Request) bool {
	return len(r.Header[dpopHeader]) > 0
}

// dpopHeader is the DPoP header's name (RFC 9449 §4.1) in net/http's
// canonical form, textproto.CanonicalMIMEHeaderKey("DPoP"): indexing the
// Header with it costs no canonicalization (an allocation per request
// for a name with two capitals in a row). TestDPoPHeaderKey checks it.
const dpopHeader = "Dpop"

// dpopBinding checks the DPoP proof of a token request for api (RFC 9449
// §4.3) and returns the thumbprint of its key, the cnf.jkt to bind the
// token to (§6.1). The proof is refused (400 invalid_dpop_proof) unless it
// is one well-formed proof, signed with an allowed algorithm (PS256, ES256
// or EdDSA only under the FAPI 2.0 profile) by the public key in its
// header, for POST to this endpoint, issued within the last
// dpop.DefaultMaxAge (and at most dpop.DefaultLeeway ahead), and never
// seen before: its jti is recorded in DPoPReplay, shared by every
// replica, and only once everything else held. When the API requires
// nonces, a proof without the current (or the previous) server nonce is
// refused with 400 use_dpop_nonce and the current nonce in DPoP-Nonce
// (§8); an accepted proof whose nonce is the previous one gets the
// current nonce in DPoP-Nonce (§8.2). Any other error is the server's: a
// replay store that cannot answer (it wraps the store's error), or a
// server without DPoPReplay, or without DPoPNonces for an API that
// requires nonces.
func (s *Server) dpopBinding(w http.ResponseWriter, r *http.Request, api *authz.API) (string, error) {
	if s.DPoPReplay == nil {
		return "", errors.New("a DPoP proof was sent, but the server has no DPoP replay store")
	}
	algs := s.DPoPSigningAlgs()
	if api.Profile == authz.ProfileFAPI2 {
		algs = slices.DeleteFunc(algs, func(a string) bool { return !slices.Contains(fapi2Algs, a) })
		if len(algs) == 0 {
			return "", errors.New("no DPoP algorithm allowed by the FAPI 2.0 profile is configured")
		}
	}
	var nonces *dpop.Nonces
	if api.DPoPNonce {
		if s.DPoPNonces == nil {
			return "", fmt.Errorf("API %s requires DPoP nonces, but the server has none configured", api.Identifier)
		}
		nonces = s.DPoPNonces
	}
	proof, err := dpop.Verify(r.Context(), r.Header[dpopHeader], dpop.VerifyOptions{
		Method: http.MethodPost,
		URL:    s.tokenEndpointURL(r),
		Now:    s.Now(),
		Algs:   algs,
		Nonces: nonces,
		Replay: s.DPoPReplay,
	})
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		w.Header().Set(HeaderDPoPNonce, nonces.Current())
		return "", &Error{Code: ErrUseDPoPNonce, Description: "the authorization server requires a nonce in the DPoP proof: use the DPoP-Nonce of this response (" + proofReason(err) + ")", Status: http.StatusBadRequest}
	case errors.Is(err, dpop.ErrInvalidProof):
		return "", &Error{Code: ErrInvalidDPoPProof, Description: "invalid DPoP proof: " + proofReason(err), Status: http.StatusBadRequest}
	case err != nil:
		return "", err
	}
	if nonces != nil {
		if cur := nonces.Current(); cur != proof.Nonce {
			w.Header().Set(HeaderDPoPNonce, cur)
		}
	}
	return proof.JKT, nil
}

// proofReason is dpop's reason for refusing a proof, without its prefixes:
// words safe to show the client (dpop.ErrInvalidProof), which never hold
// the proof.
func proofReason(err error) string {
	msg := err.Error()
	for _, p := range []string{dpop.ErrInvalidProof.Error() + ": ", dpop.ErrUseNonce.Error() + ": "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// tokenType is the token_type of a token with confirmation cnf (nil for
// none): DPoP when it is bound to a DPoP key, else Bearer.
func tokenType(cnf *token.Confirmation) string {
	if cnf != nil && cnf.JKT != "" {
		return TokenTypeDPoP
	}
	return TokenTypeBearer
}
