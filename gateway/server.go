package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	nfs "github.com/willscott/go-nfs"

	"github.com/fsrep/fsrep/meta"
)

// FrontConfig bounds what one client can take from a gateway.
type FrontConfig struct {
	// Lanes is the number of requests one client connection may have in
	// flight at once.
	Lanes int
	// MaxConns caps client connections; further ones are closed at once.
	MaxConns int
	// MaxConnsPerClient caps the connections of one client address, so
	// that one client cannot take every slot (a Linux mount with
	// nconnect=16 uses 16).
	MaxConnsPerClient int
	// IdleTimeout closes a connection that sends nothing for this long
	// (and bounds how long one record may take to arrive).
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one reply to a client.
	WriteTimeout time.Duration
	// LaneTimeout is a backstop for one request inside go-nfs.
	LaneTimeout time.Duration
	// Metrics receives the front's request and connection counts; nil
	// (the default) records nothing.
	Metrics *Metrics
	// WriteBehind bounds the bytes of UNSTABLE writes buffered before they
	// reach the replicas (writeback.go), all files together; 0 turns the
	// write-behind off (every WRITE is then answered FILE_SYNC).
	WriteBehind int64
}

// DefaultFrontConfig returns the defaults.
func DefaultFrontConfig() FrontConfig {
	return FrontConfig{Lanes: 16, MaxConns: 1024, MaxConnsPerClient: 64, IdleTimeout: 15 * time.Minute,
		WriteTimeout: 60 * time.Second, LaneTimeout: 2 * time.Minute, WriteBehind: 256 << 20}
}

// Server serves NFSv3 and MOUNTv3 on one TCP listener through the RPC front.
type Server struct {
	h        *Handler
	cfg      FrontConfig
	verifier [8]byte // WRITE and COMMIT's (random per process: writeback.go)
	wb       *writeBack
	log      *slog.Logger
	ln       net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	perIP  map[string]int // open connections per client address
	closed bool
	wg     sync.WaitGroup
	done   chan struct{}

	draining atomic.Bool // set by Drain: read no new call

	// Refused connections, and when one was last logged (unix ns); owned
	// by acceptLoop.
	refusals, refusalLogged int64

	inFlight, maxInFlight atomic.Int64 // requests on lanes now, and the most seen at once
}

// InFlight returns the requests being served now and the most ever served
// at once (across connections), for observability and tests.
func (s *Server) InFlight() (now, most int64) { return s.inFlight.Load(), s.maxInFlight.Load() }

func (s *Server) enter() {
	n := s.inFlight.Add(1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			return
		}
	}
}

func (s *Server) leave() { s.inFlight.Add(-1) }

// quietGoNFS guards the one write to go-nfs's global logger.
var quietGoNFS sync.Once

// Serve starts serving l in the background. writeVerifier is the WRITE
// verifier all lanes share (it changes when the node restarts).
func Serve(l net.Listener, h *Handler, cfg FrontConfig, writeVerifier [8]byte) *Server {
	quietGoNFS.Do(func() {
		// go-nfs logs every failed operation through a process-wide logger
		// (its level is not synchronised, so set it once); the errors reach
		// the client, and our own packages log what operators need.
		nfs.Log.SetLevel(nfs.FatalLevel)
	})
	s := &Server{h: h, cfg: cfg, verifier: writeVerifier, log: h.log, ln: l,
		conns: map[net.Conn]struct{}{}, perIP: map[string]int{}, done: make(chan struct{})}
	volume := func(id uint32) (*meta.Volume, error) { return h.meta.FSM().VolumeByID(id) }
	s.wb = newWriteBack(h.data, volume, cfg.WriteBehind, h.cfg.OpTimeout, h.log)
	go s.acceptLoop()
	return s
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

func (s *Server) acceptLoop() {
	defer close(s.done)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Error("nfs accept failed", "err", err)
			return
		}
		ip := clientIP(c.RemoteAddr().String()).String()
		s.mu.Lock()
		if s.closed || s.draining.Load() || len(s.conns) >= s.cfg.MaxConns || s.perIP[ip] >= s.cfg.MaxConnsPerClient {
			total, mine, closed := len(s.conns), s.perIP[ip], s.closed
			s.mu.Unlock()
			if !closed && !s.draining.Load() {
				s.cfg.Metrics.connRefused(total >= s.cfg.MaxConns)
			}
			s.logRefusal(c.RemoteAddr(), total, mine)
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.perIP[ip]++
		s.wg.Add(1)
		s.mu.Unlock()
		s.cfg.Metrics.connOpened()
		go func() {
			defer s.wg.Done()
			defer s.cfg.Metrics.connClosed()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
		}()
	}
}

// logRefusal logs a refused connection: the first, then at most one a
// minute with the count so far, so that a client opening thousands of
// connections cannot fill the log (the metrics count every one).
func (s *Server) logRefusal(remote net.Addr, open, mine int) {
	s.refusals++
	now := s.h.clock.Now().UnixNano()
	if s.refusalLogged != 0 && now-s.refusalLogged < int64(time.Minute) {
		return
	}
	s.refusalLogged = now
	s.log.Warn("refusing an NFS connection", "client", remote.String(), "open", open, "limit", s.cfg.MaxConns,
		"open_from_client", mine, "client_limit", s.cfg.MaxConnsPerClient, "refused_total", s.refusals)
}

// Drain is the graceful half of a stop: the listener closes, every
// connection stops reading calls, the calls already read are answered, and
// then the connections close, so a client that moves to another node
// loses no reply it could have had (a call it had only half sent gets
// none and is retransmitted there). It returns once every connection has
// closed, or with ctx's error when ctx ends first; Close then cuts what is
// left. The node's metadata and data paths must still work while it runs.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	for c := range s.conns {
		// Ends a read in progress; serveConn checks draining after setting
		// its own deadline, so it cannot miss this.
		_ = c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	drained := make(chan struct{})
	go func() {
		<-s.done
		s.wg.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
		return ctx.Err()
	}
	// What clients wrote UNSTABLE and did not COMMIT yet reaches the
	// replicas now, so that they need not send it again elsewhere.
	s.wb.syncAll(ctx)
	return ctx.Err()
}

// Close stops accepting, closes every client connection and waits for
// their loops to end: a stopped node drops its clients, it does not leave
// them hanging.
func (s *Server) Close() error {
	// Like a crash, Close drops what is buffered: the clients' COMMITs
	// elsewhere answer another verifier, and they send it again.
	s.wb.discard()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	<-s.done
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
