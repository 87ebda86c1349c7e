package m2mclient_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"golang.org/x/oauth2"

	"github.com/m2mauth/m2mauth/m2mclient"
)

// The sources cache their token: give one to an oauth2.Transport, and every
// request carries "Authorization: Bearer …".
func ExampleConfig_ClientSecret() {
	ctx := context.Background()
	cfg := m2mclient.Config{
		Issuer:   "https://auth.example.com",
		ClientID: os.Getenv("CLIENT_ID"),
		Audience: "https://usage.example.com",
		Scopes:   []string{"read:meters"},
	}
	ts, err := cfg.ClientSecret(ctx, os.Getenv("CLIENT_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: &oauth2.Transport{Source: ts}}
	resp, err := client.Get("https://usage.example.com/meters")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
}

func ExampleConfig_PrivateKeyJWT() {
	ctx := context.Background()
	// openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem
	signer, err := m2mclient.LoadSigner("key.pem", "billing-2026-12")
	if err != nil {
		log.Fatal(err)
	}
	cfg := m2mclient.Config{Issuer: "https://auth.example.com", ClientID: "3kq4…", Audience: "https://usage.example.com"}
	ts, err := cfg.PrivateKeyJWT(ctx, signer)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		log.Fatal(err)
	}
	_ = tok.AccessToken
}

// A KMS-backed key implements Signer; its Sign calls the KMS.
type kmsKey struct{ keyName string }

func (k kmsKey) Alg() string   { return "ES256" }
func (k kmsKey) KeyID() string { return k.keyName }
func (k kmsKey) Sign(ctx context.Context, signingInput []byte) ([]byte, error) {
	// Ask the KMS to sign the SHA-256 of signingInput, and turn its ASN.1
	// signature into R || S.
	panic("call the KMS here")
}

func ExampleSigner() {
	cfg := m2mclient.Config{Issuer: "https://auth.example.com", ClientID: "3kq4…"}
	ts, err := cfg.PrivateKeyJWT(context.Background(), kmsKey{keyName: "projects/p/keys/m2mauth/1"})
	if err != nil {
		log.Fatal(err)
	}
	_ = ts
}

// In a Kubernetes pod, with a projected service-account token whose
// audience is the m2mauth issuer; no client_id is needed when one
// application's federated credential matches.
func ExampleConfig_AssertionFile() {
	cfg := m2mclient.Config{Issuer: "https://auth.example.com", Audience: "https://usage.example.com"}
	ts, err := cfg.AssertionFile(context.Background(), "/var/run/secrets/tokens/m2mauth", m2mclient.AssertionTypeJWTBearer)
	if err != nil {
		log.Fatal(err)
	}
	_ = ts
}

// A SPIFFE JWT-SVID written to a file by spiffe-helper.
func ExampleConfig_AssertionFile_spiffe() {
	cfg := m2mclient.Config{Issuer: "https://auth.example.com", Audience: "https://usage.example.com"}
	ts, err := cfg.AssertionFile(context.Background(), "/run/spiffe/jwt_svid.token", m2mclient.AssertionTypeJWTSPIFFE)
	if err != nil {
		log.Fatal(err)
	}
	_ = ts
}

// In a GitHub Actions job with `permissions: id-token: write`.
func ExampleConfig_GitHubActions() {
	cfg := m2mclient.Config{Issuer: "https://auth.example.com", Audience: "https://usage.example.com"}
	ts, err := cfg.GitHubActions(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	_ = ts
}
