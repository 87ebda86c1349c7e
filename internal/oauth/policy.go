package oauth

import (
	"net/http"
	"strconv"
	"time"

	"github.com/m2mauth/m2mauth/internal/authz"
	"github.com/m2mauth/m2mauth/internal/quota"
)

// ReasonSourceNotAllowed is the ClientAuthFailed reason of a request whose
// source address is outside its application's allow-list
// (authz.Policy.AllowedIPs). The check runs after the secret is verified:
// the answer is the one invalid_client of every failed authentication and
// the HMAC costs the same either way, so neither the body nor the timing
// tells the caller that the secret was right, while the audit log tells the
// operator that a valid secret was used from elsewhere (a leaked secret).
const ReasonSourceNotAllowed = "source address not allowed"

// rateLimitHeaders sets the IETF rate-limit fields
// (draft-ietf-httpapi-ratelimit-headers: RateLimit-Policy, RateLimit) of
// a limited application's token response.
func (s *Server) rateLimitHeaders(w http.ResponseWriter, d quota.Decision) {
	if !d.Limited {
		return
	}
	h := w.Header()
	h["Ratelimit-Policy"] = []string{d.Policy}
	h["Ratelimit"] = []string{d.State}
}

// takeQuota counts a token request against the application's rate and
// quotas (its policy's, or the server's default) and sets the rate-limit
// headers; over a limit in enforce mode it is 429 with Retry-After.
func (s *Server) takeQuota(w http.ResponseWriter, app *authz.Application) (counted bool, err error) {
	d := s.Quota.Take(app)
	return d.Counted, s.refused(w, app, d)
}

// takeRate is takeQuota for a request answered with a reused token
// (issueOrReuse): only the application's rate applies.
func (s *Server) takeRate(w http.ResponseWriter, app *authz.Application) error {
	return s.refused(w, app, s.Quota.TakeRate(app))
}

// refused sets the rate-limit headers of decision d and returns the
// refusal it holds, if any.
func (s *Server) refused(w http.ResponseWriter, app *authz.Application, d quota.Decision) error {
	s.rateLimitHeaders(w, d)
	if !d.Refused {
		return nil
	}
	s.Log.Debug("token refused by the application's policy", "client_id", app.ClientID, "retry_after", d.RetryAfter)
	secs := int64((d.RetryAfter + time.Second - 1) / time.Second)
	return &Error{
		Code:        ErrTemporarilyUnavailable,
		Description: "the application's token rate or quota is exhausted; try again in " + strconv.FormatInt(secs, 10) + " s",
		Status:      http.StatusTooManyRequests,
		RetryAfter:  d.RetryAfter,
	}
}
