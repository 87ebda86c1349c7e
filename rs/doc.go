// Package rs protects Go HTTP APIs with access tokens issued by m2mauth.
//
// A resource server builds one Validator at start-up and puts its Middleware
// in front of the handlers it protects:
//
//	v, err := rs.New(ctx, rs.Config{
//		Issuer:   "https://auth.example.com",
//		Audience: "https://api.example.com/",
//	})
//	if err != nil {
//		return err
//	}
//	mux.Handle("GET /meters", v.Middleware(rs.RequireScope("read:meters")(listMeters)))
//
// Handlers read the verified token with ClaimsFromContext, and a custom
// claim (set per grant in m2mauth, such as tenant_id) with Claims.Claim:
//
//	func listMeters(w http.ResponseWriter, r *http.Request) {
//		claims, _ := rs.ClaimsFromContext(r.Context())
//		var tenant string
//		if ok, err := claims.Claim("tenant_id", &tenant); err != nil || !ok {
//			http.Error(w, "no tenant", http.StatusForbidden)
//			return
//		}
//		// ... the meters of tenant
//	}
//
// Tokens are JWT access tokens per RFC 9068, signed with an asymmetric
// algorithm (ES256, EdDSA, RS256 or PS256 by default). The Validator finds
// the issuer's JWKS through RFC 8414 discovery and keeps the keys in memory.
// It refreshes them when the JWKS response's Cache-Control max-age runs out
// (5 min without one, at most 24 h), and refetches them, at most once per
// Config.MinRefreshInterval, when a token names a key it does not know; that
// is how signing-key rotation is followed.
//
// Validation is local: a token stays valid until it expires even if the
// issuer revokes it or disables its client. APIs that need revocation to take
// effect within seconds set Config.Introspection: each token is then also
// introspected (RFC 7662), with the answer cached for a few seconds, and
// refused if the issuer cannot be asked (fail closed).
//
// Sender-constrained tokens are checked too. A DPoP-bound token (cnf.jkt,
// RFC 9449) is accepted only as "Authorization: DPoP <token>" with a DPoP
// proof by its key for this request (htm, htu, ath, a recent iat, a jti not
// seen before, and with Config.DPoP.Nonces a server nonce); a
// certificate-bound token (cnf.x5t#S256, RFC 8705 §3) only over a
// connection with its client certificate, from the TLS handshake or, with
// Config.MTLS, from a header set by a trusted proxy. Config.Policy
// SenderConstrained, or Validator.WithPolicy per route, refuses bearer
// tokens altogether:
//
//	strict := v.WithPolicy(rs.SenderConstrained)
//	mux.Handle("GET /meters/export", strict.Middleware(export))
//
// The API publishes RFC 9728 protected resource metadata with
// MetadataHandler, and Config.ResourceMetadataURL puts its URL in every
// 401 challenge (resource_metadata, §5.1):
//
//	path, _ := rs.MetadataPath("https://api.example.com/")
//	mux.Handle("GET "+path, rs.MetadataHandler(v.Metadata()))
//
// Requests without a valid token are refused as RFC 6750 §3 and RFC 9449
// §7.1 describe: WWW-Authenticate challenges (Bearer, when a token can be
// accepted under it, and DPoP with its algs) and a JSON body
// {"error": "...", "error_description": "..."}. Error messages and logs never
// contain the token.
package rs
