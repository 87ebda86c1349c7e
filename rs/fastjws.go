package rs

import (
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// The fast path. Validate parses the common access token, a compact JWS
// whose header is {"alg","kid","typ"} and whose claims are RFC 9068's, by
// hand: a strict splitter and header reader (fastHeader) and a claims
// decoder without reflection (fastClaims). Anything else, a header with
// another member (crit, b64, jwk, ...), a duplicate member, an escape, a
// number that is not a plain integer, a claim it does not know, goes to
// go-jose's parser, which decides it as before. go-jose stays the
// reference: TestFastPathMatchesGoJOSE and FuzzFastPath check that every
// input the fast path accepts go-jose's jwt.ParseSigned accepts too, with
// the same header, payload, signature and claims.

// maxFastHeader bounds the decoded header the fast path reads: 256 bytes,
// far above {"alg":"ES256","kid":"…","typ":"at+jwt"}.
const maxFastHeader = 256

// fastJWS is a compact JWS as the fast path read it.
type fastJWS struct {
	alg   jose.SignatureAlgorithm // one of the allow-list's
	kid   string
	typOK bool   // typ is at+jwt or application/at+jwt (isAccessTokenType)
	input string // the signing input, header.payload (RFC 7515 §5.2)
	// payload and sig are the decoded payload and signature.
	payload []byte
	sig     []byte
}

// parseFast reads token, already known canonical base64url (isCanonical),
// as a compact JWS (RFC 7515 §7.1) of exactly three segments whose
// protected header is a JSON object of "alg", "kid" and "typ" strings
// only, each at most once, with an alg on the allow-list algs (never
// "none": it is on no allow-list) and an empty unprotected part. ok is
// false for any other input, which the caller then hands to go-jose; sig
// is decoded into sigBuf when it fits.
func parseFast(token string, algs []jose.SignatureAlgorithm, sigBuf []byte) (j fastJWS, ok bool) {
	h, rest, ok1 := strings.Cut(token, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(s, '.') >= 0 || h == "" || s == "" {
		return j, false
	}
	var hb [maxFastHeader]byte
	if decodedLen(len(h)) > len(hb) || decodedLen(len(s)) > cap(sigBuf) {
		return j, false
	}
	header := decodeB64(hb[:0], h)
	if !readHeader(header, algs, &j) {
		return j, false
	}
	j.input = token[:len(h)+1+len(p)]
	j.payload = decodeB64(make([]byte, 0, decodedLen(len(p))), p)
	j.sig = decodeB64(sigBuf[:0], s)
	return j, true
}

// readHeader reads a protected header into j (see parseFast).
func readHeader(b []byte, algs []jose.SignatureAlgorithm, j *fastJWS) bool {
	r := jsonReader{b: b}
	if !r.consume('{') {
		return false
	}
	var seen [3]bool
	var alg, kid, typ []byte
	for first := true; !r.consume('}'); first = false {
		if !first && !r.consume(',') {
			return false
		}
		name, ok := r.str()
		if !ok || !r.consume(':') {
			return false
		}
		value, ok := r.str()
		if !ok {
			return false
		}
		var i int
		switch string(name) {
		case "alg":
			i, alg = 0, value
		case "kid":
			i, kid = 1, value
		case "typ":
			i, typ = 2, value
		default:
			return false
		}
		if seen[i] {
			return false
		}
		seen[i] = true
	}
	if !r.end() || !seen[0] {
		return false
	}
	for _, a := range algs {
		if string(a) == string(alg) {
			j.alg = a
		}
	}
	if j.alg == "" {
		return false
	}
	j.typOK = seen[2] && isAccessTokenTypeString(string(typ))
	if seen[1] {
		j.kid = string(kid)
	}
	return true
}

// fastClaims decodes an access token's claims (RFC 9068 §2.2) as
// json.Unmarshal into claimsSet would, for a payload that is one JSON
// object of the members claimsSet has, each at most once, strings without
// escapes, dates plain non-negative integers of up to 15 digits, aud a
// string or a non-empty array of strings, cnf an object. ok is false
// otherwise; the caller then decodes with go-jose's JSON. Strings are
// substrings of one copy of the payload.
func fastClaims(payload []byte, c *claimsSet) bool {
	r := jsonReader{b: payload}
	if !r.consume('{') {
		return false
	}
	text := string(payload)
	sub := func(v []byte) string {
		off := len(payload) - len(r.b) - len(v) - 1 // v ends one byte (") before r.b
		return text[off : off+len(v)]
	}
	var seen uint16
	for first := true; !r.consume('}'); first = false {
		if !first && !r.consume(',') {
			return false
		}
		name, ok := r.str()
		if !ok || !r.consume(':') {
			return false
		}
		var bit uint16
		switch string(name) {
		case "iss", "sub", "jti", "client_id", "scope":
			v, ok := r.str()
			if !ok {
				return false
			}
			s := sub(v)
			switch string(name) {
			case "iss":
				bit, c.Issuer = 1<<0, s
			case "sub":
				bit, c.Subject = 1<<1, s
			case "jti":
				bit, c.ID = 1<<2, s
			case "client_id":
				bit, c.ClientID = 1<<3, s
			default:
				bit, c.Scope = 1<<4, s
			}
		case "exp", "nbf", "iat":
			n, ok := r.integer()
			if !ok {
				return false
			}
			d := numericDate{set: true, unix: n}
			switch string(name) {
			case "exp":
				bit, c.Expiry = 1<<5, d
			case "nbf":
				bit, c.NotBefore = 1<<6, d
			default:
				bit, c.IssuedAt = 1<<7, d
			}
		case "aud":
			bit = 1 << 8
			r.space()
			if len(r.b) > 0 && r.b[0] == '[' {
				r.b = r.b[1:]
				for i := 0; ; i++ {
					if i > 0 && r.consume(']') {
						break
					}
					if i > 0 && !r.consume(',') {
						return false
					}
					v, ok := r.str()
					if !ok {
						return false
					}
					c.Audience = append(c.Audience, sub(v))
				}
			} else {
				v, ok := r.str()
				if !ok {
					return false
				}
				c.Audience = audience{sub(v)}
			}
		case "cnf":
			bit = 1 << 9
			start := len(payload) - len(r.b)
			if !r.flatObject() {
				return false
			}
			c.Cnf = payload[start : len(payload)-len(r.b)]
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return r.end()
}

// jsonReader reads the subset of JSON (RFC 8259) the fast path accepts.
type jsonReader struct{ b []byte }

// space skips JSON whitespace (RFC 8259 §2).
func (r *jsonReader) space() {
	for len(r.b) > 0 && (r.b[0] == ' ' || r.b[0] == '\t' || r.b[0] == '\n' || r.b[0] == '\r') {
		r.b = r.b[1:]
	}
}

// consume skips whitespace and c, reporting whether c was there; if not,
// only the whitespace is skipped.
func (r *jsonReader) consume(c byte) bool {
	r.space()
	if len(r.b) > 0 && r.b[0] == c {
		r.b = r.b[1:]
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (r *jsonReader) end() bool {
	r.space()
	return len(r.b) == 0
}

// str reads a string of printable ASCII without escapes and returns its
// content, which ends one byte before r.b.
func (r *jsonReader) str() ([]byte, bool) {
	if !r.consume('"') {
		return nil, false
	}
	for i := 0; i < len(r.b); i++ {
		switch c := r.b[i]; {
		case c == '"':
			v := r.b[:i]
			r.b = r.b[i+1:]
			return v, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// integer reads 0 or a digit string of up to 15 digits without a leading
// zero: a NumericDate (RFC 7519 §2) that float64, and so go-jose, reads
// exactly.
func (r *jsonReader) integer() (int64, bool) {
	r.space()
	i := 0
	var n int64
	for i < len(r.b) && '0' <= r.b[i] && r.b[i] <= '9' {
		n = n*10 + int64(r.b[i]-'0')
		i++
	}
	if i == 0 || i > 15 || i > 1 && r.b[0] == '0' {
		return 0, false
	}
	if i < len(r.b) && (r.b[i] == '.' || r.b[i] == 'e' || r.b[i] == 'E') {
		return 0, false
	}
	r.b = r.b[i:]
	return n, true
}

// flatObject reads an object whose members are strings: a cnf claim
// (RFC 7800 §3.1) as m2mauth writes it. parseConfirmation reads it.
func (r *jsonReader) flatObject() bool {
	if !r.consume('{') {
		return false
	}
	for first := true; !r.consume('}'); first = false {
		if !first && !r.consume(',') {
			return false
		}
		if _, ok := r.str(); !ok || !r.consume(':') {
			return false
		}
		if _, ok := r.str(); !ok {
			return false
		}
	}
	return true
}

// decodedLen is the length of n characters of unpadded base64url decoded.
func decodedLen(n int) int { return n * 6 / 8 }

// b64 maps a base64url character (RFC 4648 §5) to its value.
var b64 = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range alphabet {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// decodeB64 appends the decoding of s, canonical unpadded base64url
// (isCanonicalSegment has accepted it), to dst.
func decodeB64(dst []byte, s string) []byte {
	for len(s) >= 4 {
		v := uint32(b64[s[0]])<<18 | uint32(b64[s[1]])<<12 | uint32(b64[s[2]])<<6 | uint32(b64[s[3]])
		dst = append(dst, byte(v>>16), byte(v>>8), byte(v))
		s = s[4:]
	}
	switch len(s) {
	case 2:
		v := uint32(b64[s[0]])<<18 | uint32(b64[s[1]])<<12
		dst = append(dst, byte(v>>16))
	case 3:
		v := uint32(b64[s[0]])<<18 | uint32(b64[s[1]])<<12 | uint32(b64[s[2]])<<6
		dst = append(dst, byte(v>>16), byte(v>>8))
	}
	return dst
}
