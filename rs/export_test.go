package rs

// CountVerifications makes v add one to *n after each full verification
// of a token (a verified-token cache miss). Set it before v is shared.
func CountVerifications(v *Validator, n interface{ Add(int64) int64 }) {
	v.verified = func() { n.Add(1) }
}

// CachedTokens is the number of entries in v's verified-token cache.
func CachedTokens(v *Validator) int {
	if v.tokens == nil {
		return 0
	}
	return v.tokens.len()
}
