package pki

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"time"
)

// Listener wraps l so that every accepted connection is the server side of
// a TLS connection whose handshake must finish within timeout: a peer
// that connects and says nothing (or has no certificate) is dropped
// instead of holding a goroutine and a socket. onFail, if not nil, hears
// every failed handshake (metrics, logs).
func Listener(l net.Listener, cfg *tls.Config, timeout time.Duration, onFail func(remote net.Addr, err error)) net.Listener {
	return &listener{Listener: l, cfg: cfg, timeout: timeout, onFail: onFail}
}

type listener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration
	onFail  func(net.Addr, error)
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &serverConn{Conn: tls.Server(c, l.cfg), l: l}, nil
}

// serverConn runs the handshake, under the listener's deadline, on its
// first read or write (not in Accept, which would serialize handshakes
// behind one slow peer).
type serverConn struct {
	*tls.Conn
	l    *listener
	once sync.Once
	err  error
}

func (c *serverConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.l.timeout)
		defer cancel()
		c.err = c.Conn.HandshakeContext(ctx)
		if c.err != nil {
			if c.l.onFail != nil {
				c.l.onFail(c.RemoteAddr(), c.err)
			}
			_ = c.Conn.Close()
		}
	})
	return c.err
}

// Read reads after the handshake. A failed handshake reads as the end of
// the stream: the failure hook has heard it (rate-limited), and the server
// behind (Raft logs an ERROR for any other read error) need not.
func (c *serverConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, io.EOF
	}
	return c.Conn.Read(b)
}

func (c *serverConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// Dial runs the client side of a handshake over a connection the caller
// opened (so tests can still cut the network under it), within ctx.
func Dial(ctx context.Context, raw net.Conn, cfg *tls.Config) (net.Conn, error) {
	c := tls.Client(raw, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return c, nil
}
