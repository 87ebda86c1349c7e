package m2mclient_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/m2mauth/m2mauth/m2mclient"
)

// DPoP-bound tokens (RFC 9449): the token request carries a proof of a key
// the client holds, and every request to the API carries the token with a
// fresh proof. A stolen token is useless without the key.
func ExampleDPoPTransport() {
	ctx := context.Background()
	key, err := m2mclient.NewDPoPKey(nil, nil) // a new ECDSA P-256 key
	if err != nil {
		log.Fatal(err)
	}
	cfg := m2mclient.Config{
		Issuer:   "https://auth.example.com",
		ClientID: os.Getenv("CLIENT_ID"),
		Audience: "https://usage.example.com",
		DPoP:     key,
	}
	ts, err := cfg.ClientSecret(ctx, os.Getenv("CLIENT_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: &m2mclient.DPoPTransport{Source: ts, Key: key}}
	resp, err := client.Get("https://usage.example.com/meters")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
}
