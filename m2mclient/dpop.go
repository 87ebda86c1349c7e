package m2mclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/m2mauth/m2mauth/dpop"
)

// TokenTypeDPoP is the token_type of a DPoP-bound access token (RFC 9449
// §5), and the Authorization scheme it is sent with (§7.1).
const TokenTypeDPoP = "DPoP"

// DPoPKey is a client's DPoP key (RFC 9449): it signs a fresh proof for
// each request and remembers the latest DPoP-Nonce each origin (scheme and
// host) sent (§8, §9). Set it as Config.DPoP so that tokens are bound to
// it, and as DPoPTransport.Key so that they are sent with proofs. Safe for
// concurrent use.
type DPoPKey struct {
	signer *dpop.Signer

	mu     sync.Mutex
	nonces map[string]string // origin → latest DPoP-Nonce
}

// maxNonceOrigins bounds the origins whose nonce a DPoPKey remembers.
const maxNonceOrigins = 1024

// NewDPoPKey returns a DPoP key of key, or of a new ECDSA P-256 key if key
// is nil. key may be any crypto.Signer (a KMS or HSM key, say) with an
// ECDSA P-256 or P-384, Ed25519 or RSA (at least 2048 bits) public key; the
// proofs are signed ES256, ES384, EdDSA or PS256. now is the clock of the
// proofs' iat (default time.Now); use the Config's.
func NewDPoPKey(key crypto.Signer, now func() time.Time) (*DPoPKey, error) {
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("m2mclient: generating a DPoP key: %w", err)
		}
		key = k
	}
	s, err := dpop.NewSigner(key, rand.Reader, now)
	if err != nil {
		return nil, fmt.Errorf("m2mclient: DPoP key: %w", err)
	}
	return &DPoPKey{signer: s, nonces: map[string]string{}}, nil
}

// Thumbprint returns the key's RFC 7638 thumbprint: the cnf.jkt of the
// tokens bound to it.
func (k *DPoPKey) Thumbprint() string { return k.signer.Thumbprint() }

// Proof returns a DPoP proof for a request with method to rawURL carrying
// accessToken ("" for none; the proof then has no ath), with the latest
// nonce rawURL's origin sent, if any.
func (k *DPoPKey) Proof(method, rawURL, accessToken string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("m2mclient: DPoP proof: %w", err)
	}
	return k.proof(method, u, accessToken)
}

func (k *DPoPKey) proof(method string, u *url.URL, accessToken string) (string, error) {
	p, err := k.signer.Proof(method, htu(u), accessToken, k.nonce(u))
	if err != nil {
		return "", fmt.Errorf("m2mclient: DPoP proof: %w", err)
	}
	return p, nil
}

// htu is the htu of a request to u: no query, fragment or user (RFC 9449
// §4.2).
func htu(u *url.URL) string {
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return v.String()
}

func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

func (k *DPoPKey) nonce(u *url.URL) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.nonces[origin(u)]
}

// rememberNonce keeps the DPoP-Nonce of resp, if any, for u's origin.
func (k *DPoPKey) rememberNonce(u *url.URL, h http.Header) string {
	n := h.Get("DPoP-Nonce")
	if n == "" || len(n) > 1024 {
		return ""
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	o := origin(u)
	if _, ok := k.nonces[o]; !ok && len(k.nonces) >= maxNonceOrigins {
		clear(k.nonces)
	}
	k.nonces[o] = n
	return n
}

// requestURL is the URL of req as the server sees it: with req.Host as its
// host if set (the Host header).
func requestURL(req *http.Request) *url.URL {
	u := *req.URL
	if req.Host != "" {
		u.Host = req.Host
	}
	return &u
}

// tokenClient is the HTTP client of token requests: httpClient, whose
// requests carry a DPoP proof when c.DPoP is set.
func (c Config) tokenClient(ctx context.Context) *http.Client {
	hc := c.httpClient(ctx)
	if c.DPoP == nil {
		return hc
	}
	w := *hc
	w.Transport = &dpopTokenTransport{key: c.DPoP, base: hc.Transport}
	return &w
}

// checkTokenType refuses a token that is not DPoP-bound when c.DPoP is
// set: the server ignored the proof (it does not support DPoP).
func (c Config) checkTokenType(fetch func() (*oauth2.Token, error)) func() (*oauth2.Token, error) {
	if c.DPoP == nil {
		return fetch
	}
	return func() (*oauth2.Token, error) {
		tok, err := fetch()
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(tok.TokenType, TokenTypeDPoP) {
			return nil, fmt.Errorf("m2mclient: the server issued a %q token, not a DPoP-bound one: does it support DPoP?", safeType(tok.TokenType))
		}
		return tok, nil
	}
}

func safeType(s string) string {
	if len(s) > 20 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return "?"
	}
	return s
}

// dpopTokenTransport adds a DPoP proof to each token request, and retries
// once with the server's nonce after a use_dpop_nonce error (RFC 9449 §8).
type dpopTokenTransport struct {
	key  *DPoPKey
	base http.RoundTripper
}

func (t *dpopTokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	u := requestURL(req)
	resp, err := t.send(req, u, req.Body)
	if err != nil {
		return nil, err
	}
	nonce := t.key.rememberNonce(u, resp.Header)
	if resp.StatusCode != http.StatusBadRequest || nonce == "" || !replayable(req) {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error != "use_dpop_nonce" {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	b, err := getBody(req)
	if err != nil {
		return nil, err
	}
	resp, err = t.send(req, u, b)
	if err != nil {
		return nil, err
	}
	t.key.rememberNonce(u, resp.Header)
	return resp, nil
}

// replayable reports whether req's body can be sent again.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// getBody returns a new copy of req's body.
func getBody(req *http.Request) (io.ReadCloser, error) {
	if req.GetBody == nil {
		return req.Body, nil // nil or http.NoBody
	}
	return req.GetBody()
}

func (t *dpopTokenTransport) send(req *http.Request, u *url.URL, body io.ReadCloser) (*http.Response, error) {
	p, err := t.key.proof(req.Method, u, "")
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("DPoP", p)
	return base(t.base).RoundTrip(r)
}

func base(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}

// DPoPTransport sends requests to resource servers with a DPoP-bound
// access token (Authorization: DPoP, RFC 9449 §7.1) and a fresh proof
// carrying its ath, and retries a request once, with the nonce, when the
// server answers 401 with a use_dpop_nonce challenge and a DPoP-Nonce (§9).
// A request whose body cannot be replayed (GetBody nil) is not retried, but
// the nonce is used from the next request on. It is the DPoP counterpart
// of oauth2.Transport.
type DPoPTransport struct {
	// Source gives DPoP-bound tokens: a source of a Config with DPoP set to
	// Key. Required.
	Source oauth2.TokenSource
	// Key is the key the tokens are bound to. Required.
	Key *DPoPKey
	// Base sends the requests; default http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *DPoPTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	closeBody := func() {
		if req.Body != nil {
			req.Body.Close()
		}
	}
	if t.Source == nil || t.Key == nil {
		closeBody()
		return nil, errors.New("m2mclient: DPoPTransport needs Source and Key")
	}
	tok, err := t.Source.Token()
	if err != nil {
		closeBody()
		return nil, err
	}
	if !strings.EqualFold(tok.TokenType, TokenTypeDPoP) {
		closeBody()
		return nil, fmt.Errorf("m2mclient: DPoPTransport got a %q token, not a DPoP-bound one", safeType(tok.TokenType))
	}
	u := requestURL(req)
	resp, err := t.send(req, u, req.Body, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	nonce := t.Key.rememberNonce(u, resp.Header)
	if resp.StatusCode != http.StatusUnauthorized || nonce == "" || !useDPoPNonce(resp.Header.Values("WWW-Authenticate")) || !replayable(req) {
		return resp, nil
	}
	body, err := getBody(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	resp, err = t.send(req, u, body, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	t.Key.rememberNonce(u, resp.Header)
	return resp, nil
}

func (t *DPoPTransport) send(req *http.Request, u *url.URL, body io.ReadCloser, token string) (*http.Response, error) {
	p, err := t.Key.proof(req.Method, u, token)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", TokenTypeDPoP+" "+token)
	r.Header.Set("DPoP", p)
	return base(t.Base).RoundTrip(r)
}

// useDPoPNonce reports whether the WWW-Authenticate values hold a DPoP
// challenge with error="use_dpop_nonce" (RFC 9449 §9, RFC 9110 §11.6.1).
func useDPoPNonce(values []string) bool {
	for _, v := range values {
		for _, ch := range parseChallenges(v) {
			if strings.EqualFold(ch.scheme, TokenTypeDPoP) && ch.params["error"] == "use_dpop_nonce" {
				return true
			}
		}
	}
	return false
}

type challenge struct {
	scheme string
	params map[string]string // names in lower case
}

// parseChallenges parses a WWW-Authenticate value (RFC 9110 §11.6.1):
// challenges of a scheme and auth-params (a token68 is skipped), separated
// by commas. It stops at the first thing it cannot parse.
func parseChallenges(s string) []challenge {
	var out []challenge
	p := &headerParser{s: s}
	for len(out) < 16 {
		p.skipSpaceComma()
		scheme := p.token()
		if scheme == "" {
			return out
		}
		ch := challenge{scheme: scheme, params: map[string]string{}}
		for first := true; ; first = false {
			p.skipSpace()
			save := p.i
			name := p.token()
			if name == "" {
				break
			}
			p.skipSpace()
			if !p.consume('=') {
				if !first {
					p.i = save // the next challenge's scheme
				}
				break // else a token68 without padding
			}
			p.skipSpace()
			if p.i >= len(p.s) || p.s[p.i] == '=' || p.s[p.i] == ',' {
				// A token68's padding (or an empty value).
				for p.i < len(p.s) && (p.s[p.i] == '=' || p.s[p.i] == ' ') {
					p.i++
				}
				break
			}
			var val string
			if p.s[p.i] == '"' {
				var ok bool
				if val, ok = p.quoted(); !ok {
					return append(out, ch)
				}
			} else if val = p.token(); val == "" {
				return append(out, ch)
			}
			ch.params[strings.ToLower(name)] = val
			p.skipSpace()
			if !p.consume(',') {
				break
			}
		}
		out = append(out, ch)
	}
	return out
}

type headerParser struct {
	s string
	i int
}

func (p *headerParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *headerParser) skipSpaceComma() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

func (p *headerParser) consume(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// token reads an RFC 9110 token (tchar), or a token68's characters.
func (p *headerParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func isTChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~/", c) >= 0
}

// quoted reads a quoted-string, undoing quoted-pairs.
func (p *headerParser) quoted() (string, bool) {
	p.i++ // the opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String(), true
		case '\\':
			if p.i >= len(p.s) {
				return "", false
			}
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}
