package oauth

import (
	"net/http"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/clientcert"
)

// mtlsBinding returns the x5t#S256 to bind a token for api to (RFC 8705
// §3.1): the SHA-256 of the client certificate the request came with,
// base64url; "" for none. Whatever method authenticated the client, a
// request with a certificate gets a certificate-bound token: the TLS
// handshake (or the trusted proxy's) proved possession of its key, which
// is all the binding needs, so the chain is not verified here.
//
// An API whose MTLSBound is PolicyRequired refuses a request without a
// certificate with invalid_request (400): RFC 8705 defines no error of
// its own for it, and, as RFC 9449 §7.1 answers a required DPoP proof
// that is missing, what is wrong is the request (it lacks the mutual TLS
// connection), not the client's authentication, which may have succeeded
// by another method. An unreadable forwarded certificate counts as none.
func (s *Server) mtlsBinding(r *http.Request, got authenticated, api *authz.API) (string, *Error) {
	chain, _ := clientcert.FromContext(r.Context())
	if len(chain) > 0 {
		return clientcert.Thumbprint(chain[0].Raw), nil
	}
	if api != nil && api.MTLSBound == authz.PolicyRequired {
		return "", invalidRequest("the API " + api.Identifier + " requires certificate-bound tokens (RFC 8705 section 3): request the token over mutual TLS, with a client certificate")
	}
	return "", nil
}
