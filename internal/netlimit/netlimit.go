// Package netlimit bounds the connections a listener holds open: in total,
// and per client address. A connection over either bound is closed as
// soon as it is accepted, so one client opening thousands of sockets
// leaves the listener serving everyone else. (The NFS front keeps its own
// bounds, gateway.FrontConfig, and answers with RPC errors instead.)
package netlimit

import (
	"net"
	"sync"
	"sync/atomic"
)

// Listen wraps l with the bounds: at most total open connections, and at
// most perClient from one IP address. Zero means no bound.
func Listen(l net.Listener, total, perClient int) *Listener {
	return &Listener{Listener: l, total: total, perClient: perClient, by: map[string]int{}}
}

// Listener is a net.Listener with connection bounds.
type Listener struct {
	net.Listener
	total, perClient int

	mu      sync.Mutex
	open    int
	by      map[string]int
	refused atomic.Int64
}

// Refused counts the connections closed for being over a bound.
func (l *Listener) Refused() int64 { return l.refused.Load() }

// Accept returns the next connection within the bounds.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := hostOf(c.RemoteAddr())
		l.mu.Lock()
		over := l.total > 0 && l.open >= l.total || l.perClient > 0 && l.by[host] >= l.perClient
		if !over {
			l.open++
			l.by[host]++
		}
		l.mu.Unlock()
		if over {
			l.refused.Add(1)
			_ = c.Close()
			continue
		}
		return &conn{Conn: c, l: l, host: host}, nil
	}
}

func (l *Listener) release(host string) {
	l.mu.Lock()
	l.open--
	if l.by[host]--; l.by[host] <= 0 {
		delete(l.by, host)
	}
	l.mu.Unlock()
}

type conn struct {
	net.Conn
	l    *Listener
	host string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.host) })
	return err
}

func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
