// Package reqlog carries, in a request's context, what its access log line
// says that only a handler learns: the client_id it authenticated and the
// client's resolved address. The server's middleware creates the Entry and
// logs it; handlers set it.
package reqlog

import (
	"context"
	"net/netip"
)

// Entry is what handlers report about one request. It is set and read on
// the request's goroutine (the middleware reads it after the handler
// returned), so it needs no lock.
type Entry struct {
	RequestID string // the X-Request-Id of the request, given or generated
	ClientID  string // the authenticated client, "" for none
	// ClientAddr is the client's address through the trusted-proxy rule
	// (clientip.Resolver.Addr), once a handler resolved it: the access
	// log reuses it rather than parsing RemoteAddr again. Invalid (the
	// zero netip.Addr) until then.
	ClientAddr netip.Addr
}

type key struct{}

// Context is a context.Context that carries an Entry, what With returns,
// as a value: a caller that embeds it in a struct it allocates anyway (the
// server's middleware, once per request) carries the Entry without an
// allocation of its own. Set Context to the parent. Cancellation, deadline
// and every other value are the parent's.
type Context struct {
	context.Context
	Entry Entry
}

// Value returns the Entry for the key From uses, else the parent's value.
func (c *Context) Value(k any) any {
	if k == (key{}) {
		return &c.Entry
	}
	return c.Context.Value(k)
}

// With returns ctx carrying e.
func With(ctx context.Context, e *Entry) context.Context {
	return context.WithValue(ctx, key{}, e)
}

// From returns the Entry of ctx, or nil outside the middleware.
func From(ctx context.Context) *Entry {
	e, _ := ctx.Value(key{}).(*Entry)
	return e
}

// SetClientID records the client_id a handler authenticated; without an
// Entry in ctx it does nothing.
func SetClientID(ctx context.Context, clientID string) {
	if e := From(ctx); e != nil {
		e.ClientID = clientID
	}
}

// SetClientAddr records the client's resolved address for the access log,
// if ctx carries an Entry.
func SetClientAddr(ctx context.Context, addr netip.Addr) {
	if e := From(ctx); e != nil {
		e.ClientAddr = addr
	}
}

// RequestID returns the request id of ctx, "" outside the middleware.
func RequestID(ctx context.Context) string {
	if e := From(ctx); e != nil {
		return e.RequestID
	}
	return ""
}
