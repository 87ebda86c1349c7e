package connlimit

import (
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// fakeConn is a net.Conn with a remote address that counts its closes.
type fakeConn struct {
	net.Conn
	remote net.Addr
	closed atomic.Int32
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error         { c.closed.Add(1); return nil }

// TestIdleClosesOldestPerAddress: past max idle connections an address's
// oldest idle ones are closed, others' are not; an active connection is
// not idle; the map holds only addresses with idle connections, so it
// empties as they close.
func TestIdleClosesOldestPerAddress(t *testing.T) {
	d := NewIdle(2)
	const addrs, per = 500, 5
	conns := make([][]*fakeConn, addrs)
	for a := range addrs {
		ip := netip.AddrFrom4([4]byte{10, 0, byte(a >> 8), byte(a)})
		for i := range per {
			c := &fakeConn{remote: &net.TCPAddr{IP: ip.AsSlice(), Port: 1000 + i}}
			conns[a] = append(conns[a], c)
			d.ConnState(c, http.StateNew)
			d.ConnState(c, http.StateActive)
			d.ConnState(c, http.StateIdle)
		}
	}
	if n := d.Addresses(); n != addrs {
		t.Fatalf("%d addresses tracked, want %d", n, addrs)
	}
	for a, list := range conns {
		for i, c := range list {
			if want := int32(0); i < per-2 {
				want = 1
				if c.closed.Load() != want {
					t.Fatalf("address %d conn %d closed %d times, want %d", a, i, c.closed.Load(), want)
				}
			} else if c.closed.Load() != 0 {
				t.Fatalf("address %d conn %d (among the newest idle) closed", a, i)
			}
		}
	}
	// The server reports the closes; an idle connection taking a request
	// is no longer idle.
	ip := netip.AddrFrom4([4]byte{10, 0, 0, 0})
	for i, c := range conns[0] {
		if i < per-2 {
			d.ConnState(c, http.StateClosed)
		}
	}
	d.ConnState(conns[0][per-2], http.StateActive)
	if n := d.IdleConns(ip); n != 1 {
		t.Errorf("%d idle connections for %v, want 1", n, ip)
	}
	for _, list := range conns {
		for _, c := range list {
			d.ConnState(c, http.StateClosed)
		}
	}
	if n := d.Addresses(); n != 0 {
		t.Errorf("%d addresses tracked after every connection closed, want 0", n)
	}
}

// TestListenerCap: with n connections open, Accept waits; a close lets the
// next one in; Close ends a waiting Accept.
func TestListenerCap(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, 2)
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	for i := range 4 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
	}
	var open []net.Conn
	for range 2 {
		select {
		case c := <-accepted:
			open = append(open, c)
		case <-time.After(5 * time.Second):
			t.Fatal("the first two connections were not accepted")
		}
	}
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two are open")
	case <-time.After(200 * time.Millisecond):
	}
	if l.Open() != 2 {
		t.Errorf("Open() = %d, want 2", l.Open())
	}
	open[0].Close()
	open[0].Close() // a second close gives nothing back twice
	select {
	case c := <-accepted:
		open[0] = c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted after one closed")
	}
	select {
	case <-accepted:
		t.Fatal("a double close let two connections in")
	case <-time.After(200 * time.Millisecond):
	}
	l.Close()
	select {
	case _, ok := <-accepted:
		if ok {
			t.Fatal("accepted after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
	for _, c := range open {
		c.Close()
	}
	if l.Open() != 0 {
		t.Errorf("Open() = %d after every close, want 0", l.Open())
	}
}
