package rs_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/m2mauth/m2mauth/rs"
)

// threadCPU is the calling thread's CPU time in ns
// (CLOCK_THREAD_CPUTIME_ID), which time spent preempted by other
// processes does not count.
func threadCPU() int64 {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// BenchmarkValidateVsBare runs, in each iteration, one Validate
// (verified-token cache off) and one bare verify (BenchmarkBareVerify's
// code) of the same token, alternating which goes first, and times each
// with the thread's CPU clock. Its "ratio" metric, Validate's CPU over the
// bare verify's, is the figure to read on a shared machine: both halves
// run under the same load, interleaved. ns/op is the sum of both.
func BenchmarkValidateVsBare(b *testing.B) {
	iss := newFullIssuer(b)
	v := iss.validator(func(c *rs.Config) { c.TokenCacheEntries = -1 })
	ctx := context.Background()
	for _, kid := range []string{"es", "ed", "rs"} {
		alg := iss.private[kid].Algorithm
		token := iss.token(kid, alg, "at+jwt", iss.claims("read:meters create:meters"))
		dot := strings.LastIndexByte(token, '.')
		input := []byte(token[:dot])
		sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
		if err != nil {
			b.Fatal(err)
		}
		pub := iss.private[kid].Key.(crypto.Signer).Public()
		bare := func() {
			var ok bool
			switch k := pub.(type) {
			case *ecdsa.PublicKey:
				h := sha256.Sum256(input)
				ok = ecdsa.Verify(k, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
			case ed25519.PublicKey:
				ok = ed25519.Verify(k, input, sig)
			case *rsa.PublicKey:
				h := sha256.Sum256(input)
				ok = rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil
			}
			if !ok {
				b.Fatal("signature does not verify")
			}
		}
		validate := func() {
			if _, err := v.Validate(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(alg, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var validateNS, bareNS int64
			i := 0
			for b.Loop() {
				if i%2 == 0 {
					t0 := threadCPU()
					bare()
					t1 := threadCPU()
					validate()
					t2 := threadCPU()
					bareNS, validateNS = bareNS+t1-t0, validateNS+t2-t1
				} else {
					t0 := threadCPU()
					validate()
					t1 := threadCPU()
					bare()
					t2 := threadCPU()
					validateNS, bareNS = validateNS+t1-t0, bareNS+t2-t1
				}
				i++
			}
			b.ReportMetric(float64(validateNS)/float64(i), "validate-cpu-ns/op")
			b.ReportMetric(float64(bareNS)/float64(i), "bare-cpu-ns/op")
			b.ReportMetric(float64(validateNS)/float64(bareNS), "ratio")
		})
	}
}
