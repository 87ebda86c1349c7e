package reqlog

import (
	"context"
	"testing"
)

type otherKey struct{}

// TestContext: a Context carries its Entry as With does, and is its
// parent for everything else: values, cancellation.
func TestContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "v"))
	c := &Context{Context: parent, Entry: Entry{RequestID: "r1"}}
	SetClientID(c, "client")
	if e := From(c); e != &c.Entry || RequestID(c) != "r1" || c.Entry.ClientID != "client" {
		t.Fatalf("From = %+v", e)
	}
	if c.Value(otherKey{}) != "v" {
		t.Fatal("the parent's value is lost")
	}
	child, stop := context.WithCancel(c)
	defer stop()
	cancel()
	<-child.Done()
	if c.Err() != context.Canceled {
		t.Fatalf("Err = %v", c.Err())
	}
	if From(context.Background()) != nil || RequestID(context.Background()) != "" {
		t.Fatal("an Entry outside the middleware")
	}
}
