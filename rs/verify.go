package rs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
)

// verifySignature checks a JWS signature (RFC 7518 §3, RFC 8037 §3.1) over
// input, the token's "header.payload" text, with the standard library
// directly, as go-jose's verifiers do but without their copies of the
// input. known is false for a key type or alg it does not handle; the
// caller then asks go-jose. The alg has passed go-jose's allow-list at
// parse time and keyFits has matched it to the key's type and curve.
func verifySignature(key any, alg, input string, sig []byte) (ok, known bool) {
	switch pub := key.(type) {
	case *ecdsa.PublicKey:
		var size int
		var digest []byte
		switch alg {
		case "ES256":
			h := sha256.Sum256([]byte(input))
			size, digest = 32, h[:]
		case "ES384":
			h := sha512.Sum384([]byte(input))
			size, digest = 48, h[:]
		case "ES512":
			h := sha512.Sum512([]byte(input))
			size, digest = 66, h[:]
		default:
			return false, false
		}
		// RFC 7518 §3.4: R and S, each of the curve's size, big-endian.
		if len(sig) != 2*size {
			return false, true
		}
		var der [2*(2+1+66) + 3]byte
		return ecdsa.VerifyASN1(pub, digest, appendSignatureDER(der[:0], sig[:size], sig[size:])), true
	case ed25519.PublicKey:
		if alg != "EdDSA" {
			return false, false
		}
		return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, []byte(input), sig), true
	case *rsa.PublicKey:
		var h crypto.Hash
		var digest []byte
		switch alg {
		case "RS256", "PS256":
			d := sha256.Sum256([]byte(input))
			h, digest = crypto.SHA256, d[:]
		case "RS384", "PS384":
			d := sha512.Sum384([]byte(input))
			h, digest = crypto.SHA384, d[:]
		case "RS512", "PS512":
			d := sha512.Sum512([]byte(input))
			h, digest = crypto.SHA512, d[:]
		default:
			return false, false
		}
		if alg[0] == 'R' {
			return rsa.VerifyPKCS1v15(pub, h, digest, sig) == nil, true
		}
		// nil options: any salt length, as go-jose verifies PS*.
		return rsa.VerifyPSS(pub, h, digest, sig, nil) == nil, true
	}
	return false, false
}

// appendSignatureDER appends the ASN.1 DER ECDSA-Sig-Value
// SEQUENCE { r INTEGER, s INTEGER } (RFC 3279 §2.2.3) of the big-endian
// unsigned r and s, each at most 66 bytes, to b.
func appendSignatureDER(b, r, s []byte) []byte {
	body := derIntLen(r) + derIntLen(s)
	b = append(b, 0x30)
	if body >= 0x80 {
		b = append(b, 0x81)
	}
	b = append(b, byte(body))
	return appendDERInt(appendDERInt(b, r), s)
}

// derInt returns v without leading zero bytes (at least one byte) and
// whether its DER INTEGER needs a 0x00 before it to stay positive.
func derInt(v []byte) ([]byte, bool) {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	return v, v[0]&0x80 != 0
}

func derIntLen(v []byte) int {
	v, pad := derInt(v)
	n := 2 + len(v)
	if pad {
		n++
	}
	return n
}

func appendDERInt(b, v []byte) []byte {
	v, pad := derInt(v)
	n := len(v)
	if pad {
		n++
	}
	b = append(b, 0x02, byte(n))
	if pad {
		b = append(b, 0)
	}
	return append(b, v...)
}
