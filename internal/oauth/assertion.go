package oauth

import (
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// The checks every JWT presented to authenticate a client shares, whoever
// issued it: the client itself (private_key_jwt) or a trusted issuer
// (federated_jwt, spiffe_jwt, the jwt-bearer grant).

// assertionAudienceOK reports whether aud names want, the audience the
// assertion must be for, under mode (AudienceStrict or AudienceLenient):
// strict, want is aud's sole value (RFC 7523bis, FAPI 2.0); lenient, want
// may be one of several values, and for want = issuer the token endpoint
// URL stands for it too (RFC 7523 §3 point 3, older clients).
func assertionAudienceOK(aud jwt.Audience, want, issuer, mode string) bool {
	if len(aud) == 1 && aud[0] == want {
		return true
	}
	if mode != AudienceLenient {
		return false
	}
	return aud.Contains(want) || (want == issuer && aud.Contains(issuer+PathToken))
}

// checkAssertionTimes returns the reason to refuse a verified assertion for
// its times at now, "" if none (RFC 7523 §3 points 4–6, FAPI 2.0 §5.3.2.1):
// exp is required, more than minLeft away and at most maxLifetime away;
// iat and nbf are at most AssertionClockSkew ahead.
func checkAssertionTimes(cl jwt.Claims, now time.Time, minLeft, maxLifetime time.Duration) string {
	if cl.Expiry == nil {
		return "assertion without exp"
	}
	switch left := cl.Expiry.Time().Sub(now); {
	case left <= 0 || left < minLeft:
		return "assertion expired"
	case left > maxLifetime:
		return "assertion lifetime too long"
	case cl.IssuedAt != nil && cl.IssuedAt.Time().Sub(now) > AssertionClockSkew:
		return "assertion issued in the future"
	case cl.NotBefore != nil && cl.NotBefore.Time().Sub(now) > AssertionClockSkew:
		return "assertion not yet valid"
	}
	return ""
}
