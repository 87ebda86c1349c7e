package m2mclient

import (
	"context"
	"errors"
	"strconv"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ClientSecret returns a source of tokens for an application
// authenticated with its client secret in HTTP Basic (client_secret_basic,
// RFC 6749 §2.3.1). ctx is used for every request.
func (c Config) ClientSecret(ctx context.Context, secret string) (oauth2.TokenSource, error) {
	return c.clientSecret(ctx, secret, oauth2.AuthStyleInHeader)
}

// ClientSecretPost is ClientSecret with the credentials in the request
// body (client_secret_post).
func (c Config) ClientSecretPost(ctx context.Context, secret string) (oauth2.TokenSource, error) {
	return c.clientSecret(ctx, secret, oauth2.AuthStyleInParams)
}

func (c Config) clientSecret(ctx context.Context, secret string, style oauth2.AuthStyle) (oauth2.TokenSource, error) {
	if err := c.validate(true, false); err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, errors.New("m2mclient: the client secret is empty")
	}
	params := c.params()
	params.Del("grant_type")
	params.Del("scope")
	cc := &clientcredentials.Config{
		ClientID:       c.ClientID,
		ClientSecret:   secret,
		TokenURL:       c.tokenURL(),
		Scopes:         c.Scopes,
		EndpointParams: params,
		AuthStyle:      style,
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.tokenClient(ctx))
	return &cachingSource{now: c.now, fetch: c.checkTokenType(func() (*oauth2.Token, error) {
		start := c.now()
		// cc.Token builds a new, empty cache each time: this source's
		// cache, on its own clock, is the only one.
		tok, err := cc.Token(ctx)
		if err != nil {
			return nil, err
		}
		// clientcredentials measures Expiry on the wall clock and keeps
		// expires_in only among the raw members.
		var secs int64
		switch v := tok.Extra("expires_in").(type) {
		case float64:
			secs = int64(v)
		case string:
			secs, _ = strconv.ParseInt(v, 10, 64)
		}
		if secs > 0 {
			setExpiry(tok, secs, start)
		}
		return tok, nil
	})}, nil
}
