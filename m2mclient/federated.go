package m2mclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"golang.org/x/oauth2"
)

// maxAssertionBytes bounds a federated assertion read from a file or
// fetched from GitHub: 64 KiB, far above any platform's JWT.
const maxAssertionBytes = 64 << 10

// FederatedAssertion returns a source of tokens for an application that
// authenticates with a token its platform gives it, presented as
// client_assertion of assertionType (AssertionTypeJWTBearer if "", or
// AssertionTypeJWTSPIFFE). fetch is called for a fresh assertion for each
// token request; it must not put the assertion in its errors. ClientID is
// optional.
func (c Config) FederatedAssertion(ctx context.Context, assertionType string, fetch func(context.Context) (string, error)) (oauth2.TokenSource, error) {
	if err := c.validate(false, false); err != nil {
		return nil, err
	}
	if fetch == nil {
		return nil, errors.New("m2mclient: no assertion fetch function")
	}
	switch assertionType {
	case "":
		assertionType = AssertionTypeJWTBearer
	case AssertionTypeJWTBearer, AssertionTypeJWTSPIFFE:
	default:
		return nil, fmt.Errorf("m2mclient: unknown assertion type %q", assertionType)
	}
	return c.assertionSource(ctx, assertionType, fetch), nil
}

// AssertionFile is FederatedAssertion with the assertion read from path
// for each token request, so that a rotated file is always read fresh: a
// Kubernetes projected service-account token
// (/var/run/secrets/tokens/...) or a SPIFFE JWT-SVID file. Surrounding
// white space is ignored.
func (c Config) AssertionFile(ctx context.Context, path, assertionType string) (oauth2.TokenSource, error) {
	if path == "" {
		return nil, errors.New("m2mclient: no assertion file")
	}
	return c.FederatedAssertion(ctx, assertionType, func(context.Context) (string, error) {
		return readAssertion(path)
	})
}

func readAssertion(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("m2mclient: reading the assertion: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAssertionBytes+1))
	if err != nil {
		return "", fmt.Errorf("m2mclient: reading the assertion: %w", err)
	}
	if len(b) > maxAssertionBytes {
		return "", fmt.Errorf("m2mclient: the assertion in %s is larger than %d bytes", path, maxAssertionBytes)
	}
	s := string(bytes.TrimSpace(b))
	if s == "" {
		return "", fmt.Errorf("m2mclient: the assertion file %s is empty", path)
	}
	return s, nil
}

// GitHubActions is FederatedAssertion with the assertion a GitHub Actions
// OIDC token, fetched for each token request from
// $ACTIONS_ID_TOKEN_REQUEST_URL with $ACTIONS_ID_TOKEN_REQUEST_TOKEN, for
// the audience AssertionAudience (default Issuer). The job needs
// `permissions: id-token: write`, without which those variables are unset.
func (c Config) GitHubActions(ctx context.Context) (oauth2.TokenSource, error) {
	reqURL, reqToken := os.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), os.Getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	if reqURL == "" || reqToken == "" {
		return nil, errors.New("m2mclient: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: give the job `permissions: id-token: write`")
	}
	u, err := url.Parse(reqURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("m2mclient: ACTIONS_ID_TOKEN_REQUEST_URL is not an http(s) URL")
	}
	aud := c.assertionAudience()
	if aud == "" {
		return nil, errors.New("m2mclient: Issuer or AssertionAudience is required")
	}
	q := u.Query()
	q.Set("audience", aud)
	u.RawQuery = q.Encode()
	return c.FederatedAssertion(ctx, AssertionTypeJWTBearer, func(ctx context.Context) (string, error) {
		return c.fetchGitHubToken(ctx, u.String(), reqToken)
	})
}

// fetchGitHubToken gets an OIDC token from GitHub Actions' token service,
// whose answer is {"value": "<jwt>"}.
func (c Config) fetchGitHubToken(ctx context.Context, reqURL, reqToken string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reqURL, nil)
	if err != nil {
		return "", fmt.Errorf("m2mclient: GitHub Actions token request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+reqToken)
	req.Header.Set("Accept", "application/json")
	resp, err := c.httpClient(ctx).Do(req)
	if err != nil {
		// The *url.Error names the URL, which holds no secret.
		return "", fmt.Errorf("m2mclient: GitHub Actions token request: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAssertionBytes+1))
	if err != nil {
		return "", fmt.Errorf("m2mclient: reading the GitHub Actions token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("m2mclient: GitHub Actions token request: %s", resp.Status)
	}
	var v struct {
		Value string `json:"value"`
	}
	if len(b) > maxAssertionBytes || json.Unmarshal(b, &v) != nil || strings.TrimSpace(v.Value) == "" {
		return "", errors.New("m2mclient: the GitHub Actions token response holds no token")
	}
	return strings.TrimSpace(v.Value), nil
}

// assertionSource is the caching source of tokens requested with a
// client assertion from fetch, of assertionType.
func (c Config) assertionSource(ctx context.Context, assertionType string, fetch func(context.Context) (string, error)) oauth2.TokenSource {
	return &cachingSource{now: c.now, fetch: c.checkTokenType(func() (*oauth2.Token, error) {
		assertion, err := fetch(ctx)
		if err != nil {
			return nil, err
		}
		form := c.params()
		form.Set("client_assertion_type", assertionType)
		form.Set("client_assertion", assertion)
		if c.ClientID != "" {
			form.Set("client_id", c.ClientID)
		}
		return c.requestToken(ctx, form)
	})}
}
