package m2mclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// maxResponseBytes bounds a token endpoint response: 1 MiB.
const maxResponseBytes = 1 << 20

// maxErrorBody bounds the body an *oauth2.RetrieveError keeps (and its
// Error method prints).
const maxErrorBody = 4 << 10

// tokenJSON is a successful token response (RFC 6749 §5.1), or an error
// response (§5.2).
type tokenJSON struct {
	AccessToken      string      `json:"access_token"`
	TokenType        string      `json:"token_type"`
	ExpiresIn        json.Number `json:"expires_in"`
	Error            string      `json:"error"`
	ErrorDescription string      `json:"error_description"`
	ErrorURI         string      `json:"error_uri"`
}

// requestToken posts form to the token endpoint and returns its token,
// with Expiry from expires_in on c's clock. A refusal is an
// *oauth2.RetrieveError.
func (c Config) requestToken(ctx context.Context, form url.Values) (*oauth2.Token, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("m2mclient: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	start := c.now()
	resp, err := c.tokenClient(ctx).Do(req)
	if err != nil {
		return nil, fmt.Errorf("m2mclient: token request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("m2mclient: reading the token response: %w", err)
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("m2mclient: the token response (%s) is larger than %d bytes", resp.Status, maxResponseBytes)
	}
	return parseToken(resp, body, start)
}

// parseToken decodes a token endpoint response read at start.
func parseToken(resp *http.Response, body []byte, start time.Time) (*oauth2.Token, error) {
	var tj tokenJSON
	var raw map[string]any
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if isJSON {
		if json.Unmarshal(body, &tj) != nil || json.Unmarshal(body, &raw) != nil {
			isJSON = false
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 || tj.Error != "" {
		if len(body) > maxErrorBody {
			body = body[:maxErrorBody]
		}
		return nil, &oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: tj.Error, ErrorDescription: tj.ErrorDescription, ErrorURI: tj.ErrorURI}
	}
	// A malformed success may hold an access token: its body is never
	// put in the error.
	if !isJSON {
		return nil, errors.New("m2mclient: the token response is not JSON")
	}
	if tj.AccessToken == "" {
		return nil, errors.New("m2mclient: the token response has no access_token")
	}
	tok := &oauth2.Token{AccessToken: tj.AccessToken, TokenType: tj.TokenType}
	if tj.ExpiresIn != "" {
		secs, err := tj.ExpiresIn.Int64()
		if err != nil || secs < 0 {
			return nil, errors.New("m2mclient: the token response has an invalid expires_in")
		}
		setExpiry(tok, secs, start)
	}
	return tok.WithExtra(raw), nil
}

// setExpiry sets tok's ExpiresIn and Expiry, measured from start (before
// the request was sent, so that it errs early).
func setExpiry(tok *oauth2.Token, secs int64, start time.Time) {
	if secs <= 0 {
		return
	}
	tok.ExpiresIn = secs
	tok.Expiry = start.Add(time.Duration(secs) * time.Second)
}
