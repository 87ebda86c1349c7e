package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// The floor server's one client, which compare and run use by default.
const (
	floorClientID = "floor"
	floorSecret   = "floor-secret-0123456789abcdef0123456789abcdef"
	floorAudience = "https://api.example.com/"
)

// signer is one bare signature per token: SHA-256 of the JWS signing
// input, then the key's Sign, the same call m2mauth's issuer makes
// (internal/token/jws.go), without any other JWS work.
type signer struct {
	alg  string
	key  crypto.Signer
	opts crypto.SignerOpts
}

// newSigner returns a signer with a fresh key for alg: ES256 (P-256),
// EdDSA (Ed25519), RS256 (RSA-2048) or "none" (nil, no signature).
func newSigner(alg string) (*signer, error) {
	switch alg {
	case "", "none":
		return nil, nil
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return &signer{alg, k, crypto.SHA256}, err
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return &signer{alg, k, crypto.Hash(0)}, err
	case "RS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		return &signer{alg, k, crypto.SHA256}, err
	}
	return nil, fmt.Errorf("unknown algorithm %q: want none, ES256, EdDSA or RS256", alg)
}

// sign returns the signature of input.
func (s *signer) sign(input []byte) ([]byte, error) {
	msg := input
	if s.opts.HashFunc() != 0 {
		d := sha256.Sum256(input)
		msg = d[:]
	}
	return s.key.Sign(rand.Reader, msg, s.opts)
}

// floor is the cheapest honest token endpoint: it parses the form and the
// Basic header as any server must, looks the client up in a map, compares
// the secret in constant time and writes a token response of the size
// m2mauth's has, fixed but for the jti and, with a signer, the signature.
type floor struct {
	clients map[string][]byte // client_id → secret
	sig     *signer           // nil: no signature
	header  string            // base64url JWS header and "."
	seq     atomic.Uint64
	fixed   []byte // the whole response when sig is nil
}

func newFloor(sig *signer) *floor {
	alg := "none"
	if sig != nil {
		alg = sig.alg
	}
	f := &floor{
		clients: map[string][]byte{floorClientID: []byte(floorSecret)},
		sig:     sig,
		header:  base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"`+alg+`","kid":"floor-key-0","typ":"at+jwt"}`)) + ".",
	}
	if sig == nil {
		// A signature's worth of fixed base64url, so that the floor writes
		// as many bytes as a signed token response.
		f.fixed = f.response(nil, make([]byte, 64))
	}
	return f
}

// response returns the token response whose JWS signing input is input
// and whose signature is sig.
func (f *floor) response(input, sig []byte) []byte {
	if input == nil {
		input = f.signingInput(0)
	}
	b := make([]byte, 0, 128+len(input)+base64.RawURLEncoding.EncodedLen(len(sig)))
	b = append(b, `{"access_token":"`...)
	b = append(b, input...)
	b = append(b, '.')
	b = base64.RawURLEncoding.AppendEncode(b, sig)
	b = append(b, `","token_type":"Bearer","expires_in":3600,"scope":"read:meters"}`...)
	return b
}

// signingInput returns the header and claims of token number n, base64url.
func (f *floor) signingInput(n uint64) []byte {
	c := make([]byte, 0, 256)
	c = append(c, `{"iss":"http://127.0.0.1:8080","sub":"floor","aud":"`+floorAudience+`","exp":1900000000,"iat":1899996400,"jti":"`...)
	c = fmt.Appendf(c, "%032x", n)
	c = append(c, `","client_id":"floor","scope":"read:meters"}`...)
	b := make([]byte, 0, len(f.header)+base64.RawURLEncoding.EncodedLen(len(c)))
	b = append(b, f.header...)
	return base64.RawURLEncoding.AppendEncode(b, c)
}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/oauth/token" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		// RFC 6749 §2.3.1: both are form-urlencoded inside Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		ok = err1 == nil && err2 == nil
	} else {
		id, secret, ok = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), true
	}
	want, found := f.clients[id]
	if !ok || !found || subtle.ConstantTimeCompare(want, []byte(secret)) != 1 {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	body := f.fixed
	if f.sig != nil {
		input := f.signingInput(f.seq.Add(1))
		sig, err := f.sig.sign(input)
		if err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "server_error")
			return
		}
		body = f.response(input, sig)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

func writeOAuthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, `{"error":"`+code+`"}`)
}

// runFloor is "load floor": it serves the floor on a loopback address
// until SIGINT or SIGTERM, after printing "listening on http://ADDR".
func runFloor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback `host:port` to listen on; port 0 picks one")
	alg := fs.String("sign", "none", "one bare signature per token: none, ES256, EdDSA or RS256")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopbackAddr(*addr); err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	sig, err := newSigner(*alg)
	if err != nil {
		return fmt.Errorf("--sign: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newFloor(sig), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-stop; srv.Close() }()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
