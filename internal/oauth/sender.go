package oauth

import (
	"crypto/tls"
	"net/http"
	"slices"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/token"
)

// fapi2Methods are the client authentication methods FAPI 2.0 Security
// Profile §5.3.2.1 allows the authorization server (private_key_jwt or
// mutual TLS): no shared secret, no federated assertion.
var fapi2Methods = []string{MethodPrivateKeyJWT, MethodTLSClientAuth, MethodSelfSignedTLSClientAuth}

// bindToken applies the sender constraints and the security profile of
// api to a token about to be issued for req, whose client authenticated
// as got: a DPoP proof binds it to a key (RFC 9449, dpopBinding), a
// client certificate to the certificate (RFC 8705 §3, mtlsBinding); the
// API's policy may require either, and its FAPI 2.0 profile both limits
// the client authentication methods and requires one of them. It sets
// iss.Confirmation and writes the headers the answer needs (DPoP-Nonce).
// A refusal is an *Error; nothing is stored by a refused request.
//
// The checks that store nothing come first, so that only a request
// refused after its proof was verified has used the proof's jti: the
// profile's method and transport, the certificate binding, the presence
// of the proof the policy requires; the DPoP proof last. After bindToken,
// only the application's quota (429) or a signing failure can still
// refuse the request, and the proof is then spent (a client makes a fresh
// proof for each request anyway, RFC 9449 §4.2).
func (s *Server) bindToken(w http.ResponseWriter, r *http.Request, req tokenRequest, got authenticated, api *authz.API, iss *token.Request) error {
	fapi := api.Profile == authz.ProfileFAPI2
	if fapi {
		if e := s.fapi2Client(r, req.creds.method, got); e != nil {
			return e
		}
	}
	x5t, e := s.mtlsBinding(r, got, api)
	if e != nil {
		return e
	}
	proof := hasDPoPProof(r)
	switch {
	case !proof && api.DPoP == authz.PolicyRequired:
		// RFC 9449 §5 allows invalid_dpop_proof or invalid_request: the
		// former names what is missing, and is what DPoP clients handle.
		return &Error{Code: ErrInvalidDPoPProof, Description: "the API requires DPoP-bound tokens: send a DPoP proof (RFC 9449)", Status: http.StatusBadRequest}
	case !proof && fapi && x5t == "":
		return invalidRequest("the API's FAPI 2.0 profile requires a sender-constrained token: send a DPoP proof (RFC 9449) or use mutual TLS (RFC 8705)")
	}
	var cnf token.Confirmation
	if proof {
		jkt, err := s.dpopBinding(w, r, api)
		if err != nil {
			return err
		}
		cnf.JKT = jkt
	}
	cnf.X5TS256 = x5t
	if cnf != (token.Confirmation{}) {
		bound := cnf // on the heap only for a sender-constrained token
		iss.Confirmation = &bound
	}
	return nil
}

// fapi2Client checks what the FAPI 2.0 profile asks of the client of a
// token request (docs/fapi2.md): authentication by private_key_jwt, with
// an assertion signed PS256, ES256 or EdDSA (§5.4.1), or by mutual TLS
// (§5.3.2.1), refused as invalid_client; and TLS 1.2 or later (§5.2.1),
// on this connection or terminated by a trusted proxy in front of the
// server, refused as invalid_request.
//
// invalid_client rather than unauthorized_client: RFC 6749 §5.2 names an
// unsupported authentication method as invalid_client, and a FAPI client
// is told to switch its method, not its grant type. The client did prove
// who it is, so the description may say why.
func (s *Server) fapi2Client(r *http.Request, method string, got authenticated) *Error {
	if !slices.Contains(fapi2Methods, method) {
		return &Error{Code: ErrInvalidClient, Description: "the API's FAPI 2.0 profile allows only private_key_jwt, tls_client_auth or self_signed_tls_client_auth client authentication", Status: http.StatusUnauthorized}
	}
	if method == MethodPrivateKeyJWT && !slices.Contains(fapi2Algs, got.alg) {
		return &Error{Code: ErrInvalidClient, Description: "the API's FAPI 2.0 profile allows client assertions signed PS256, ES256 or EdDSA only", Status: http.StatusUnauthorized}
	}
	overTLS := r.TLS != nil && r.TLS.Version >= tls.VersionTLS12
	if !overTLS && !s.ClientIP.TrustsPeer(r) {
		return invalidRequest("the API's FAPI 2.0 profile requires TLS 1.2 or later")
	}
	return nil
}
