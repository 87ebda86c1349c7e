// Package connlimit bounds the connections an HTTP server holds: a total
// cap on open connections (Listener) and a cap on idle keep-alive
// connections per client address (Idle).
package connlimit

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
)

// Listener is a net.Listener that holds at most n accepted connections
// open at once. While n are open, Accept waits: further connections queue
// in the kernel's listen backlog (and are refused by the kernel once it is
// full), and are accepted as open ones close. It is
// golang.org/x/net/netutil.LimitListener, without the dependency.
type Listener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// DefaultMaxConnections and DefaultMaxIdlePerAddress are the server's
// defaults of the two caps.
const (
	DefaultMaxConnections    = 10000
	DefaultMaxIdlePerAddress = 64
)

// NewListener returns ln limited to n open connections (n > 0).
func NewListener(ln net.Listener, n int) *Listener {
	return &Listener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free place, then accepts a connection. After Close
// it returns net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &conn{Conn: c, release: func() { <-l.sem }}, nil
}

// Close closes the listener; an Accept waiting for a place returns.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Open returns how many accepted connections are open.
func (l *Listener) Open() int { return len(l.sem) }

// conn gives its place back once, at the first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Idle keeps at most max idle keep-alive connections per client address
// (the connection's peer IP: behind a reverse proxy, the proxy's). Give
// its ConnState to http.Server.ConnState: when an address has more idle
// connections than max, the ones idle longest are closed, as the server's
// IdleTimeout would close them later. Its memory is bounded by the idle
// connections, each address's entry going with its last idle connection,
// so by the number of open connections. It is safe for concurrent use.
type Idle struct {
	max int

	mu     sync.Mutex
	byAddr map[netip.Addr][]net.Conn // idle longest first
}

// NewIdle returns an Idle allowing max idle connections per address
// (max > 0).
func NewIdle(max int) *Idle {
	return &Idle{max: max, byAddr: map[netip.Addr][]net.Conn{}}
}

// ConnState follows c's state (http.Server.ConnState).
func (d *Idle) ConnState(c net.Conn, st http.ConnState) {
	addr := peer(c)
	if st != http.StateIdle {
		d.mu.Lock()
		d.remove(addr, c)
		d.mu.Unlock()
		return
	}
	d.mu.Lock()
	list := append(d.byAddr[addr], c)
	var evict []net.Conn
	if over := len(list) - d.max; over > 0 {
		evict = slices.Clone(list[:over])
		list = slices.Delete(list, 0, over)
	}
	d.byAddr[addr] = list
	d.mu.Unlock()
	// Closing outside the lock: the server's StateClosed callback for
	// them takes it.
	for _, old := range evict {
		old.Close()
	}
}

// remove drops c from addr's idle connections; d.mu is held.
func (d *Idle) remove(addr netip.Addr, c net.Conn) {
	list := d.byAddr[addr]
	if i := slices.Index(list, c); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(d.byAddr, addr)
	} else {
		d.byAddr[addr] = list
	}
}

// Addresses returns how many addresses have idle connections.
func (d *Idle) Addresses() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byAddr)
}

// IdleConns returns how many idle connections addr has.
func (d *Idle) IdleConns(addr netip.Addr) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byAddr[addr])
}

// peer is c's remote IP, the zero Addr if it has none (a Unix socket).
func peer(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok { // no allocation
		a, _ := netip.AddrFromSlice(ta.IP)
		return a.Unmap()
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
