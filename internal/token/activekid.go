package token

// ActiveKID returns the kid of the key that signs tokens of alg now (the
// active key, RFC 7515 §4.1.4), or "" if alg has none. The token
// endpoint's token reuse compares it with the kid a cached token was
// signed with, so that a key rotation ends the reuse of tokens the old key
// signed.
func (i *Issuer) ActiveKID(alg string) string {
	if sk := i.keys.cur.Load().active[alg]; sk != nil {
		return sk.meta.KID
	}
	return ""
}
