package token

// Publishes reports whether kid names a key of the JWKS, one whose tokens
// Verify still accepts (RFC 7517 §4.5). The introspection endpoint's cache
// of verified tokens asks it on every hit, so that removing a signing key
// ends its tokens at once, as Verify would.
func (i *Issuer) Publishes(kid string) bool { return i.keys.publicKey(kid) != nil }
