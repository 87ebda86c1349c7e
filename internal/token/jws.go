package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/m2mauth/m2mauth/internal/authz"
)

// jwsKey is an active signing key ready to sign compact JWS (RFC 7515
// §7.1) directly: the protected header is encoded once per key, and the
// signature comes straight from the key's crypto.Signer. go-jose would
// marshal the header, copy the payload and encode both again for every
// token; it still parses and verifies them (Verify, rs), where its
// algorithm allow-list matters.
type jwsKey struct {
	key crypto.Signer
	// opts is crypto.SHA256 for ES256 and RS256, PSS options for PS256,
	// crypto.Hash(0) for EdDSA, which signs the input itself.
	opts crypto.SignerOpts
	// header is the base64url protected header and the dot after it.
	header string
	// sigLen is the signature's length in bytes: 64 for ES256 (r||s, RFC
	// 7518 §3.4) and EdDSA (RFC 8037 §3.1), the modulus' for RSA.
	sigLen int
	es256  bool // the signer returns ASN.1, which the JWS replaces with r||s
	// p256 signs ES256 directly, r||s with no ASN.1 and no crypto.Signer
	// call, when key is a *ecdsa.PrivateKey (p256Signer: 2x faster than
	// crypto/ecdsa, BenchmarkP256Sign); nil for any other ES256 signer
	// (OpenSSL's, an HSM's), which goes through Sign and ASN.1.
	p256 *p256Signer
	// ed signs EdDSA directly when key is an ed25519.PrivateKey
	// (ed25519Signer: the same signatures, about 18% cheaper than
	// crypto/ed25519, BenchmarkEd25519Sign); nil for any other signer.
	ed *ed25519Signer
}

// pssOptions are PS256's: SHA-256 and a salt as long as the hash (RFC 7518
// §3.5).
var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}

// newJWSKey prepares key, whose kid is kid, to sign access tokens with
// alg. The header has exactly the members go-jose gives it, in its order:
// alg, kid and typ at+jwt (RFC 9068 §2.1). Returns an error if the key
// does not fit the algorithm.
func newJWSKey(alg, kid string, key crypto.Signer) (*jwsKey, error) {
	k := &jwsKey{key: key, opts: crypto.SHA256}
	switch pub := key.Public().(type) {
	case *ecdsa.PublicKey:
		if alg != authz.ES256 || pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("token: an ECDSA key on %s cannot sign %s", pub.Curve.Params().Name, alg)
		}
		k.sigLen, k.es256 = 64, true
		if priv, ok := key.(*ecdsa.PrivateKey); ok {
			var err error
			if k.p256, err = newP256Signer(priv); err != nil {
				return nil, err
			}
		}
	case ed25519.PublicKey:
		if alg != authz.EdDSA {
			return nil, fmt.Errorf("token: an Ed25519 key cannot sign %s", alg)
		}
		k.sigLen, k.opts = ed25519.SignatureSize, crypto.Hash(0)
		if priv, ok := key.(ed25519.PrivateKey); ok {
			var err error
			if k.ed, err = newEd25519Signer(priv); err != nil {
				return nil, err
			}
		}
	case *rsa.PublicKey:
		switch alg {
		case authz.RS256:
		case authz.PS256:
			k.opts = pssOptions
		default:
			return nil, fmt.Errorf("token: an RSA key cannot sign %s", alg)
		}
		k.sigLen = pub.Size()
	default:
		return nil, fmt.Errorf("token: unsupported key type %T", pub)
	}
	h := []byte(`{"alg":`)
	h = appendJSONString(h, alg)
	h = append(h, `,"kid":`...)
	h = appendJSONString(h, kid)
	h = append(h, `,"typ":"at+jwt"}`...)
	k.header = base64.RawURLEncoding.EncodeToString(h) + "."
	return k, nil
}

// appendSignature appends the JWS signature of input, raw, to b; r is the
// randomness of the signer (the PSS salt; for ES256 the 32 bytes that
// hedge p256Signer's nonce, or ECDSA's nonce as far as crypto/ecdsa reads
// it). The SHA-256 digest goes through b too, so that nothing but the
// signer itself allocates. input may lie in b.
func (k *jwsKey) appendSignature(b []byte, r io.Reader, input []byte) ([]byte, error) {
	if k.p256 != nil {
		d := sha256.Sum256(input)
		return k.p256.appendSignDigest(b, r, d[:])
	}
	if k.ed != nil {
		return k.ed.appendSign(b, input), nil
	}
	msg := input
	if k.opts.HashFunc() != 0 {
		d := sha256.Sum256(input)
		at := len(b)
		b = append(b, d[:]...)
		msg = b[at:]
		b = b[:at]
	}
	sig, err := k.key.Sign(r, msg, k.opts)
	if err != nil {
		return b, err
	}
	if k.es256 {
		return appendRS(b, sig, 32)
	}
	if len(sig) != k.sigLen {
		return b, fmt.Errorf("token: a %d-byte signature, want %d", len(sig), k.sigLen)
	}
	return append(b, sig...), nil
}

var errECDSASignature = errors.New("token: malformed ECDSA signature")

// appendRS appends the ASN.1 ECDSA signature der (SEQUENCE of the INTEGERs
// r and s, RFC 3279 §2.2.3) as JWS wants it: r and s as big-endian
// unsigned integers of size bytes each, r first (RFC 7518 §3.4).
func appendRS(b, der []byte, size int) ([]byte, error) {
	// A P-256 signature is at most 72 bytes: every length is short-form.
	if len(der) < 2 || der[0] != 0x30 || int(der[1]) != len(der)-2 || der[1] >= 0x80 {
		return b, errECDSASignature
	}
	rest := der[2:]
	for range 2 {
		if len(rest) < 2 || rest[0] != 0x02 || rest[1] >= 0x80 || int(rest[1]) > len(rest)-2 {
			return b, errECDSASignature
		}
		n := rest[2 : 2+int(rest[1])]
		rest = rest[2+int(rest[1]):]
		for len(n) > 0 && n[0] == 0 {
			n = n[1:]
		}
		if len(n) > size {
			return b, errECDSASignature
		}
		for range size - len(n) {
			b = append(b, 0)
		}
		b = append(b, n...)
	}
	if len(rest) != 0 {
		return b, errECDSASignature
	}
	return b, nil
}

// appendClaims appends c's JSON to b as encoding/json would marshal it,
// without reflection: Claims' members in declaration order, scope and cnf
// omitted when empty, jti last (endsWithJTI). issSub is `{"iss":<iss>,
// "sub":` for the issuer (issSubPrefix).
func appendClaims(b []byte, issSub string, c *Claims) []byte {
	b = append(b, issSub...)
	b = appendJSONString(b, c.Subject)
	b = append(b, `,"aud":`...)
	b = appendJSONString(b, c.Audience)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, c.ClientID)
	if c.Scope != "" {
		b = append(b, `,"scope":`...)
		b = appendJSONString(b, c.Scope)
	}
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, c.IssuedAt, 10)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, c.Expiry, 10)
	if cnf := c.Confirmation; cnf != nil {
		b = append(b, `,"cnf":{`...)
		if cnf.JKT != "" {
			b = append(b, `"jkt":`...)
			b = appendJSONString(b, cnf.JKT)
		}
		if cnf.X5TS256 != "" {
			if cnf.JKT != "" {
				b = append(b, ',')
			}
			b = append(b, `"x5t#S256":`...)
			b = appendJSONString(b, cnf.X5TS256)
		}
		b = append(b, '}')
	}
	b = append(b, `,"jti":`...)
	b = appendJSONString(b, c.JTI)
	return append(b, '}')
}

// issSubPrefix returns the start of the claims of iss's tokens, which
// appendClaims continues with sub.
func issSubPrefix(iss string) string {
	return string(append(appendJSONString([]byte(`{"iss":`), iss), `,"sub":`...))
}

// appendJSONString appends s to b as a JSON string (RFC 8259 §7), escaped
// exactly as encoding/json escapes it: quotation mark, reverse solidus and
// control characters, <, > and & (as \u003c, \u003e, \u0026), U+2028 and
// U+2029, and invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
