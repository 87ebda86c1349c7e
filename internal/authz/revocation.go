package authz

import "time"

// Revoking every token of an application sets its TokensNotBefore. Tokens
// carry their issue time in "iat" as a NumericDate in whole seconds (RFC
// 7519 §2, §4.1.6), so a token issued at 12:00:00.3 and one issued at
// 12:00:00.9 both say 12:00:00: within one second, "issued before the
// revocation" cannot be told from "issued after". The rule errs on the side
// of revocation:
//
//   - the cutoff is the revocation instant rounded up to a whole second
//     (NotBeforeCutoff), so every token issued before the instant has an
//     iat below it;
//   - a token is dead if its iat is below the cutoff (Application.TokenRevoked);
//   - tokens issued between the instant and the cutoff (less than a second)
//     die too, which is why the management API answers only once the
//     cutoff has passed: a token asked for after that answer is valid.

// NotBeforeCutoff returns the TokensNotBefore that revokes every token
// issued before now: now rounded up to the next whole second (now itself if
// it is a whole second), in UTC.
func NotBeforeCutoff(now time.Time) time.Time {
	t := now.UTC()
	if f := t.Truncate(time.Second); !f.Equal(t) {
		return f.Add(time.Second)
	}
	return t
}

// TokenRevoked reports whether a token issued to the application at iat
// (NumericDate seconds) is revoked by its TokensNotBefore: iat is before
// TokensNotBefore rounded up to a whole second. A zero TokensNotBefore
// revokes nothing.
func (a *Application) TokenRevoked(iat int64) bool {
	if a.TokensNotBefore.IsZero() {
		return false
	}
	return iat < NotBeforeCutoff(a.TokensNotBefore).Unix()
}
