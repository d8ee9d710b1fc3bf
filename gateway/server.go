package gateway

import (
	"context"
	"errors"
	"net"
	"sync"

	nfs "github.com/willscott/go-nfs"
)

// quietGoNFS guards the one write to go-nfs's global logger.
var quietGoNFS sync.Once

// Server serves NFSv3 and MOUNTv3 on one TCP listener.
type Server struct {
	h      *Handler
	ln     *trackingListener
	cancel context.CancelFunc
	done   chan error
}

// Serve starts serving l in the background.
func Serve(l net.Listener, h *Handler, writeVerifier [8]byte) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	tl := &trackingListener{Listener: l, conns: map[net.Conn]struct{}{}, exports: h.exportPaths, valid: h.validHandle}
	s := &Server{h: h, ln: tl, cancel: cancel, done: make(chan error, 1)}
	quietGoNFS.Do(func() {
		// go-nfs logs every failed operation through a process-wide logger
		// (its level is not synchronised, so set it once); the errors reach
		// the client, and our own packages log what operators need.
		nfs.Log.SetLevel(nfs.FatalLevel)
	})
	srv := &nfs.Server{Handler: h, ID: writeVerifier, Context: ctx}
	go func() { s.done <- srv.Serve(tl) }()
	return s
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, closes every client connection and waits for the
// accept loop to end.
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.ln.closeAll()
	if serr := <-s.done; serr != nil && !errors.Is(serr, net.ErrClosed) && err == nil {
		err = serr
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// trackingListener remembers accepted connections so that Close can end
// them: a stopped node must drop its clients, not leave them hanging.
type trackingListener struct {
	net.Listener
	exports func() []string
	valid   func([]byte) bool
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	fc := &frontConn{Conn: c, exports: l.exports, valid: l.valid, onClose: l.forget}
	l.conns[fc] = struct{}{}
	return fc, nil
}

func (l *trackingListener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[net.Conn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

func (l *trackingListener) forget(c *frontConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}
