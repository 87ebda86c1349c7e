package oauth

import (
	"crypto/sha256"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// ErrTemporarilyUnavailable is the error code of a refused authentication
// attempt (429): the failed-authentication limiter (internal/limits) holds
// the client_id or the source address back for a while. RFC 6749 §5.2
// defines no code for it at the token endpoint; invalid_client would tell
// a well-behaved client its credentials are wrong and make it give up, and
// slow_down (RFC 8628 §3.5) asks a device-flow poller to lengthen its
// interval. temporarily_unavailable (RFC 6749 §4.1.2.1, in the OAuth
// Extensions Error Registry) says what holds: try again later, as
// Retry-After says.
const ErrTemporarilyUnavailable = "temporarily_unavailable"

// tooManyFailures is the answer to an authentication the limiter refuses:
// 429 with Retry-After, before any hash or store work.
func tooManyFailures(retryAfter time.Duration) *Error {
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	return &Error{
		Code:        ErrTemporarilyUnavailable,
		Description: "too many failed client authentications; try again in " + strconv.FormatInt(secs, 10) + " s",
		Status:      http.StatusTooManyRequests,
		RetryAfter:  retryAfter,
	}
}

// dummyHash is what a secret is compared with when there is no stored
// hash to compare it with (an unknown client_id or secret id): the same
// HMAC is computed as for a wrong secret, so the answer's timing does not
// tell whether the client_id exists.
var dummyHash = make([]byte, sha256.Size)

// verify compares secret with hash (dummyHash when there is none), counting
// each comparison for HashesComputed.
func (s *Server) verify(secret string, hash []byte) bool {
	s.hashes.Add(1)
	return s.Hasher.Verify(secret, hash)
}

// HashesComputed returns how many client secrets have been hashed to be
// compared: tests use it to show that a refused attempt costs no hash.
func (s *Server) HashesComputed() uint64 { return s.hashes.Load() }

// ReasonLimited is the ClientAuthFailed reason of an attempt the limiter
// refused; its client_id is "" (the attempt is counted against its address
// only, so that random client_ids cannot grow the audit log).
const ReasonLimited = "too many failures (429)"

// addrText is a as the audit log shows it, "" if unknown.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
