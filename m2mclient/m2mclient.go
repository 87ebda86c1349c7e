// Package m2mclient gets access tokens from an m2mauth server (or any OAuth
// 2.0 authorization server) with the client credentials grant (RFC 6749
// §4.4), as oauth2.TokenSource values, with each way a client can
// authenticate:
//
//   - a shared secret, client_secret_basic or client_secret_post
//     ([Config.ClientSecret]);
//   - private_key_jwt: a client assertion signed per request with a key
//     file, a crypto.Signer or a KMS-backed [Signer] (RFC 7523 §2.2,
//     [Config.PrivateKeyJWT]);
//   - a federated token the platform gives the workload, read fresh for
//     each request: a Kubernetes projected service-account token or a SPIFFE
//     JWT-SVID file ([Config.AssertionFile]), a GitHub Actions OIDC token
//     ([Config.GitHubActions]), or any other ([Config.FederatedAssertion]).
//
// With [Config.DPoP] set, the tokens are DPoP-bound (RFC 9449) to a key the
// client holds ([NewDPoPKey]), and a [DPoPTransport] sends them to
// resource servers with a fresh proof per request.
//
// Every source caches the access token until shortly before it expires
// (10 % of its lifetime early, at most 30 s; a token without expires_in is
// not cached) and is safe for concurrent use.
// Errors from the token endpoint are *oauth2.RetrieveError, whose ErrorCode
// is the RFC 6749 §5.2 error code. No error carries a secret or an
// assertion.
//
// The sources already cache: give one to an oauth2.Transport directly
// (oauth2.NewClient wraps it in a second cache, harmless but refreshing only
// 10 s before expiry).
package m2mclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// TokenPath is the path of m2mauth's token endpoint below its issuer.
const TokenPath = "/oauth/token"

// defaultTimeout bounds each HTTP exchange of the default HTTP client.
const defaultTimeout = 30 * time.Second

// Config is what every token source shares: the server, the client, and
// what the token is for.
type Config struct {
	// Issuer is the authorization server's issuer identifier, such as
	// https://auth.example.com (no trailing slash). It is the default of
	// TokenURL and AssertionAudience.
	Issuer string
	// TokenURL is the token endpoint; default Issuer + TokenPath.
	TokenURL string
	// ClientID is the application's client_id: required for secrets and
	// private_key_jwt, optional for federated assertions (the server then
	// finds the one application whose credential matches).
	ClientID string
	// Audience is the API the token is for, sent as `audience`; Resource
	// sends it as RFC 8707 `resource` instead. At most one may be set;
	// with neither, the server picks the one API granted every scope.
	Audience string
	Resource string
	// Scopes are the scopes asked for; none means every granted scope.
	Scopes []string
	// AssertionAudience is the `aud` of the client's assertions: of those
	// PrivateKeyJWT signs, and the audience a GitHub Actions token is asked
	// for. Default Issuer, the sole audience RFC 7523bis allows.
	AssertionAudience string
	// AssertionLifetime is how long a private_key_jwt assertion is valid
	// (exp - iat): default 60 s, at most 5 min.
	AssertionLifetime time.Duration
	// HTTPClient sends the requests. Default: the context's
	// oauth2.HTTPClient if any, else a client with a 30 s timeout that
	// follows no redirect (a redirect would resend the credentials
	// elsewhere).
	HTTPClient *http.Client
	// Now is the clock, for assertions and the cache; default time.Now.
	Now func() time.Time
	// DPoP, if set, binds the tokens to this key (RFC 9449 §5): each token
	// request carries a DPoP proof, retried once with the server's nonce
	// after a use_dpop_nonce error (§8), and a token whose token_type is
	// not DPoP is refused. Send the tokens with a DPoPTransport of the
	// same key.
	DPoP *DPoPKey
}

// MaxAssertionLifetime is the longest AssertionLifetime: the server's
// default maximum.
const MaxAssertionLifetime = 5 * time.Minute

// validate reports the first setting that is missing or wrong for a
// source that needs a client_id, or an assertion audience.
func (c Config) validate(needClientID, needAssertionAudience bool) error {
	if c.tokenURL() == "" {
		return errors.New("m2mclient: Issuer or TokenURL is required")
	}
	if u, err := url.Parse(c.tokenURL()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("m2mclient: token URL %q is not an http(s) URL", c.tokenURL())
	}
	if needClientID && c.ClientID == "" {
		return errors.New("m2mclient: ClientID is required")
	}
	if needAssertionAudience && c.assertionAudience() == "" {
		return errors.New("m2mclient: Issuer or AssertionAudience is required")
	}
	if c.Audience != "" && c.Resource != "" {
		return errors.New("m2mclient: set Audience or Resource, not both")
	}
	if c.AssertionLifetime < 0 || c.AssertionLifetime > MaxAssertionLifetime {
		return fmt.Errorf("m2mclient: AssertionLifetime %s is not between 0 and %s", c.AssertionLifetime, MaxAssertionLifetime)
	}
	return nil
}

func (c Config) tokenURL() string {
	if c.TokenURL != "" {
		return c.TokenURL
	}
	if c.Issuer == "" {
		return ""
	}
	return strings.TrimRight(c.Issuer, "/") + TokenPath
}

func (c Config) assertionAudience() string {
	if c.AssertionAudience != "" {
		return c.AssertionAudience
	}
	return c.Issuer
}

func (c Config) assertionLifetime() time.Duration {
	if c.AssertionLifetime == 0 {
		return time.Minute
	}
	return c.AssertionLifetime
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c Config) httpClient(ctx context.Context) *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	if hc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && hc != nil {
		return hc
	}
	return &http.Client{
		Timeout:       defaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// params are the request's parameters other than client authentication.
func (c Config) params() url.Values {
	v := url.Values{"grant_type": {"client_credentials"}}
	if len(c.Scopes) > 0 {
		v.Set("scope", strings.Join(c.Scopes, " "))
	}
	if c.Audience != "" {
		v.Set("audience", c.Audience)
	}
	if c.Resource != "" {
		v.Set("resource", c.Resource)
	}
	return v
}
