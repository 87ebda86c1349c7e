package oauth

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/m2mauth/m2mauth/internal/clientcert"
)

// MaxBodyBytes bounds the body of a request to the token, introspection
// and revocation endpoints: 16384 bytes. Real requests are a few hundred.
const MaxBodyBytes = 16 << 10

// params are the body parameters of a request, from a form
// (application/x-www-form-urlencoded, RFC 6749 Appendix B) or a JSON object
// of string members (as Auth0-style clients send), in the order sent; a
// parameter sent more than once appears once per value. A token request
// has a handful, so a slice searched in full is cheaper than a map.
type params []param

// param is one parameter's name and value.
type param struct{ name, value string }

// get returns the single value of name. A parameter sent more than once is
// an invalid_request (RFC 6749 §3.2).
func (p params) get(name string) (string, *Error) {
	v, n := "", 0
	for i := range p {
		if p[i].name == name {
			v, n = p[i].value, n+1
		}
	}
	if n > 1 {
		return "", invalidRequest("parameter " + name + " is repeated")
	}
	return v, nil
}

// has reports whether name was sent, with any value.
func (p params) has(name string) bool {
	for i := range p {
		if p[i].name == name {
			return true
		}
	}
	return false
}

// values returns every value of name, in the order sent.
func (p params) values(name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range p {
			if p[i].name == name && !yield(p[i].value) {
				return
			}
		}
	}
}

// readParams reads the request body as a form or JSON object, appending
// its parameters to dst (a caller's array, so that a token request's
// parameters need no allocation of their own). Credentials in the URI are
// refused (RFC 6749 section 2.3.1); unknown parameters are ignored (RFC
// 6749 §3.2).
func readParams(w http.ResponseWriter, r *http.Request, dst params) (params, *Error) {
	// URL.Query would allocate an empty map for a URI without a query.
	if r.URL.RawQuery != "" && r.URL.Query().Has("client_secret") {
		return nil, invalidRequest("client_secret must not be sent in the URI (RFC 6749 section 2.3.1)")
	}
	mt, ok := mediaType(r.Header.Get("Content-Type"))
	if !ok {
		return nil, invalidRequest("Content-Type must be application/x-www-form-urlencoded or application/json")
	}
	body, e := readBody(w, r)
	if e != nil {
		return nil, e
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		p, ok := parseForm(dst, string(body))
		if !ok {
			return nil, invalidRequest("the body is not a valid form")
		}
		return p, nil
	case "application/json":
		return parseJSONParams(dst, body)
	}
	return nil, invalidRequest("Content-Type must be application/x-www-form-urlencoded or application/json")
}

// mediaType returns the media type of a Content-Type header, lower case,
// as mime.ParseMediaType does; ok is false if the header does not parse.
// The forms clients send are answered without ParseMediaType, which builds
// a map of the parameters on every call.
func mediaType(contentType string) (mt string, ok bool) {
	switch contentType {
	case "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "application/x-www-form-urlencoded; charset=UTF-8":
		return "application/x-www-form-urlencoded", true
	case "application/json", "application/json; charset=utf-8", "application/json; charset=UTF-8":
		return "application/json", true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return mt, err == nil
}

// readBody reads at most MaxBodyBytes of the request body into a buffer
// sized by the Content-Length. A longer body is read again through
// http.MaxBytesReader, so that the answer (a 413) and the connection's
// handling (closed after the response) are those of http.MaxBytesReader;
// the common case does without its allocation.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *Error) {
	size := 512 // io.ReadAll's first buffer, for an unknown length
	if n := r.ContentLength; n >= 0 && n <= MaxBodyBytes {
		size = int(n) + 1 // one more byte to see the EOF, or a body longer than announced
	}
	buf := make([]byte, 0, size)
	for len(buf) <= MaxBodyBytes {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf)) // doubled, as io.ReadAll would
		}
		n, err := r.Body.Read(buf[len(buf):min(cap(buf), MaxBodyBytes+1)])
		buf = buf[:len(buf)+n]
		if err == io.EOF && len(buf) <= MaxBodyBytes {
			return buf, nil
		}
		if err != nil && len(buf) <= MaxBodyBytes {
			return nil, invalidRequest("cannot read the request body")
		}
	}
	_, err := io.ReadAll(http.MaxBytesReader(w, io.NopCloser(io.MultiReader(bytes.NewReader(buf), r.Body)), MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &Error{Code: ErrInvalidRequest, Description: "request body exceeds 16384 bytes", Status: http.StatusRequestEntityTooLarge}
	}
	return nil, invalidRequest("cannot read the request body")
}

// maxFormParams bounds the forms parseForm reads itself; a form with more
// parameters is read by url.ParseQuery, whose own limit (10000 by default,
// GODEBUG urlmaxqueryparams) then applies. A token request has a handful.
const maxFormParams = 32

// parseForm parses an application/x-www-form-urlencoded body (RFC 6749
// Appendix B) as url.ParseQuery does, appending to dst the same parameters
// and values (in the order sent), and ok is false wherever url.ParseQuery
// returns an error: invalid percent-encoding, a ';' in a parameter (Go's
// rule since 1.17). Repeated parameters keep every value, so params.get
// can refuse them (RFC 6749 §3.2). A value needing no unescaping is a
// substring of body. A form of more than maxFormParams parameters is read
// by url.ParseQuery itself, and only its knownParams are kept: the others
// are ignored anyway (RFC 6749 §3.2), and a 16 KB body of thousands would
// otherwise cost a slice entry each and a longer search per lookup.
// FuzzParseForm checks it against url.ParseQuery.
func parseForm(dst params, body string) (p params, ok bool) {
	if strings.Count(body, "&") >= maxFormParams {
		v, err := url.ParseQuery(body)
		if err != nil {
			return nil, false
		}
		for name, values := range v {
			if !knownParams[name] {
				continue
			}
			for _, value := range values {
				dst = append(dst, param{name, value})
			}
		}
		return dst, true
	}
	for body != "" {
		var pair string
		pair, body, _ = strings.Cut(body, "&")
		if strings.Contains(pair, ";") {
			return nil, false
		}
		if pair == "" {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		key, ok := formUnescape(key)
		if !ok {
			return nil, false
		}
		if value, ok = formUnescape(value); !ok {
			return nil, false
		}
		dst = append(dst, param{key, value})
	}
	return dst, true
}

// formUnescape is url.QueryUnescape(s), false for its error: s itself
// when it has neither '%' nor '+', which QueryUnescape would return
// unchanged after a byte-by-byte scan (two IndexByte calls are cheaper).
func formUnescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}

// parseJSONParams reads a JSON object. Members with string values become
// parameters; an array of strings counts as the parameter repeated (for
// RFC 8707 resource). Other values, null included, are refused only for
// the parameters the endpoints read; unknown members are ignored. A
// parameter the endpoints read may appear once: encoding/json would keep
// the last of two members silently, where another parser in front of this
// one may read the first (RFC 6749 §3.2: parameters MUST NOT be included
// more than once). Only the parameters the endpoints read (knownParams)
// are appended to dst.
func parseJSONParams(dst params, body []byte) (params, *Error) {
	notObject := invalidRequest("the body is not a JSON object")
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, notObject
	}
	p := dst
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, notObject
		}
		known := knownParams[name]
		if known {
			if seen[name] {
				return nil, invalidRequest("parameter " + name + " is repeated")
			}
			seen[name] = true
		}
		values, ok := stringValues(v)
		switch {
		case ok && known: // the others are ignored (RFC 6749 §3.2): not kept
			for _, value := range values {
				p = append(p, param{name, value})
			}
		case known:
			return nil, invalidRequest("parameter " + name + " must be a string")
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, notObject
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalidRequest("the body holds more than one JSON value")
	}
	return p, nil
}

// stringValues returns a JSON member's value as parameter values: a
// string, or a non-empty array of strings. ok is false for anything else,
// null included: encoding/json decodes null into a string as "" without
// an error, so a client sending "client_secret": null (a missing value in
// its configuration) would be taken as sending an empty one, and
// "scope": null as asking for none.
func stringValues(v json.RawMessage) (values []string, ok bool) {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return nil, false
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return nil, false
		}
		return []string{s}, true
	case '[':
		var list []*string // a null element decodes as nil
		if json.Unmarshal(v, &list) != nil || len(list) == 0 {
			return nil, false
		}
		values = make([]string, len(list))
		for i, s := range list {
			if s == nil {
				return nil, false
			}
			values[i] = *s
		}
		return values, true
	}
	return nil, false
}

// knownParams are the parameters the token, introspection and revocation
// endpoints read; parseJSONParams and parseForm's long-form path keep only
// these (TestKnownParamsCoverReads finds every name the package reads).
var knownParams = map[string]bool{
	"grant_type": true, "client_id": true, "client_secret": true, "scope": true,
	"audience": true, "resource": true, "token": true, "token_type_hint": true,
	"client_assertion": true, "client_assertion_type": true, "assertion": true,
}

// credentials are what a request presents to authenticate its client.
type credentials struct {
	// method is the client authentication method the credentials use
	// (MethodSecretBasic, ...), "" if none could be told.
	method   string
	clientID string
	secret   string
	// assertion is the client_assertion (private_key_jwt, federated_jwt,
	// spiffe_jwt), or the assertion of the jwt-bearer grant.
	assertion string
	// basic: the request authenticated, or tried to, with HTTP Basic
	// (client_secret_basic), so a 401 carries a Basic challenge (RFC 6749
	// §5.2).
	basic bool
	// cert is the client certificate of the request, nil if none; a
	// pointer keeps credentials comparable.
	cert *presentedCert
}

// presentedCert is the client certificate of a request
// (clientcert.FromContext).
type presentedCert struct {
	// chain is leaf first, as received: not verified.
	chain []*x509.Certificate
	// err is clientcert.ErrBadHeader for an unreadable forwarded one.
	err error
}

// readCredentials finds the client credentials in the Authorization header
// (client_secret_basic, RFC 6749 §2.3.1: id and secret form-urlencoded
// before base64) and in the body (client_secret_post). Both may be given
// only if they name the same credentials. A request with a client
// certificate (clientcert.FromContext) and a client_id in the body but no
// secret and no assertion uses mutual TLS (tls_client_auth or
// self_signed_tls_client_auth, RFC 8705 §2: client_id is required). A
// request with no client_id is an invalid_client. With an error, c.basic
// still tells whether the request has an Authorization header, for
// writeFailure's challenge.
func readCredentials(r *http.Request, p params) (c credentials, e *Error) {
	h := r.Header.Get("Authorization")
	c.basic = h != ""
	if chain, err := clientcert.FromContext(r.Context()); chain != nil || err != nil {
		c.cert = &presentedCert{chain: chain, err: err}
	}
	postID, e := p.get("client_id")
	if e != nil {
		return c, e
	}
	postSecret, e := p.get("client_secret")
	if e != nil {
		return c, e
	}
	assertion, e := p.get("client_assertion")
	if e != nil {
		return c, e
	}
	assertionType, e := p.get("client_assertion_type")
	if e != nil {
		return c, e
	}
	if assertion != "" || assertionType != "" {
		// RFC 7521 §4.2; RFC 6749 §2.3: one authentication method per request.
		if c.basic || postSecret != "" {
			return c, invalidRequest("a client secret and a client assertion in one request")
		}
		if assertion == "" || (assertionType != AssertionTypeJWTBearer && assertionType != AssertionTypeJWTSPIFFE) {
			return c, &Error{Code: ErrInvalidClient, Description: "client_assertion_type must be " + AssertionTypeJWTBearer + " or " + AssertionTypeJWTSPIFFE + ", with a client_assertion", Status: http.StatusUnauthorized}
		}
		c.clientID, c.assertion = postID, assertion
		if assertionType == AssertionTypeJWTSPIFFE {
			c.method = MethodSPIFFEJWT // client_id optional
			return c, nil
		}
		var sub string
		c.method, sub = assertionMethod(assertion, false)
		if c.method == MethodPrivateKeyJWT && c.clientID == "" {
			c.clientID = sub // RFC 7521 §4.2: the sub names the client
		}
		return c, nil
	}
	if c.basic {
		id, secret, ok := parseBasic(h)
		if !ok {
			return c, &Error{Code: ErrInvalidClient, Description: "the Authorization header is not valid HTTP Basic client authentication", Status: http.StatusUnauthorized}
		}
		if (postID != "" && postID != id) || (postSecret != "" && postSecret != secret) {
			// RFC 6749 §2.3: one authentication method per request. The
			// same credentials repeated in the body are tolerated, as one
			// published integration guide tells users to send them.
			return c, invalidRequest("the Authorization header and the body name different client credentials")
		}
		c.clientID, c.secret, c.method = id, secret, MethodSecretBasic
		return c, nil
	}
	if postID == "" {
		return c, &Error{Code: ErrInvalidClient, Description: "client authentication is required: HTTP Basic or client_id and client_secret in the body", Status: http.StatusUnauthorized}
	}
	if !p.has("client_secret") && c.cert != nil {
		// The authenticator tries the application's credentials of both
		// mutual TLS methods (TLSClientAuth).
		c.clientID, c.method = postID, MethodTLSClientAuth
		return c, nil
	}
	c.clientID, c.secret, c.method = postID, postSecret, MethodSecretPost
	return c, nil
}

// readBearerGrant finds the credentials of a jwt-bearer grant request
// (RFC 7523 §2.1): its assertion, which authenticates the client as a
// client_assertion would (RFC 7521 §4.1: client authentication is then
// optional, and here it is the assertion alone). Another client
// authentication in the same request is an invalid_request; a client_id,
// if sent, must name the application the assertion authenticates.
func readBearerGrant(r *http.Request, p params) (c credentials, e *Error) {
	c.basic = r.Header.Get("Authorization") != ""
	assertion, e := p.get("assertion")
	if e != nil {
		return c, e
	}
	for _, name := range []string{"client_secret", "client_assertion", "client_assertion_type"} {
		if p.has(name) {
			return c, invalidRequest("the jwt-bearer grant is authenticated by its assertion alone; do not send " + name)
		}
	}
	if c.basic {
		return c, invalidRequest("the jwt-bearer grant is authenticated by its assertion alone; do not send an Authorization header")
	}
	if assertion == "" {
		return c, invalidRequest("assertion is required (RFC 7523 section 2.1)")
	}
	if c.clientID, e = p.get("client_id"); e != nil {
		return c, e
	}
	c.assertion = assertion
	var sub string
	c.method, sub = assertionMethod(assertion, true)
	if c.method == MethodPrivateKeyJWT && c.clientID == "" {
		c.clientID = sub
	}
	return c, nil
}

// parseBasic decodes "Basic base64(urlencode(id):urlencode(secret))".
func parseBasic(h string) (id, secret string, ok bool) {
	scheme, rest, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return "", "", false
	}
	encID, encSecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(encID); err != nil || id == "" {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(encSecret); err != nil {
		return "", "", false
	}
	return id, secret, true
}

// parseScope splits a scope parameter (RFC 6749 §3.3) into its distinct
// scope-tokens in request order. ok is false if a token has a character
// outside NQCHAR.
func parseScope(s string) (scopes []string, ok bool) {
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }) {
		for i := 0; i < len(tok); i++ {
			// NQCHAR = %x21 / %x23-5B / %x5D-7E
			if c := tok[i]; c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return nil, false
			}
		}
		dup := false
		for _, have := range scopes {
			if have == tok {
				dup = true
				break
			}
		}
		if !dup {
			scopes = append(scopes, tok)
		}
	}
	return scopes, true
}
