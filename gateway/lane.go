package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5"
	nfs "github.com/willscott/go-nfs"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
)

// A lane is one go-nfs connection loop behind the front, reached through a
// net.Pipe. go-nfs serves one request at a time per connection, so the
// front gives every client connection several lanes and keeps exactly one
// request outstanding on each: write the record, read the whole reply,
// then reuse the lane. Each lane has its own handler, which carries the
// credentials of the request in flight on it (go-nfs passes none).
type lane struct {
	conn net.Conn // the front's end of the pipe
	br   *bufio.Reader
	h    *laneHandler
	ln   *pipeListener
}

func newLane(base *Handler, verifier [8]byte, client string) *lane {
	front, back := net.Pipe()
	lh := &laneHandler{h: base, client: client, fss: map[uint32]*vfs.FS{}}
	ln := &pipeListener{conn: back, closed: make(chan struct{})}
	srv := &nfs.Server{Handler: lh, ID: verifier, Context: context.Background()}
	go func() { _ = srv.Serve(ln) }()
	return &lane{conn: front, br: bufio.NewReaderSize(front, 64<<10), h: lh, ln: ln}
}

// roundTrip sends one call record and returns go-nfs's reply record.
func (l *lane) roundTrip(c call, rec []byte, rid string, timeout time.Duration) ([]byte, error) {
	// Read by go-nfs's goroutine after the pipe write below.
	l.h.cred, l.h.rid, l.h.lastErr, l.h.remove = c.cred, rid, nil, removeKindOf(c)
	l.h.modeHint = c.modeHint
	for _, f := range l.h.fss {
		f.SetRequest(rid)
		f.SetRemoveKind(l.h.remove)
		f.SetModeHint(c.modeHint)
	}
	if err := l.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if _, err := l.conn.Write(frame(rec)); err != nil {
		return nil, err
	}
	return readRecord(l.br, maxReply)
}

func (l *lane) close() {
	l.conn.Close()
	l.ln.Close()
}

// removeKindOf tells the filesystem which of REMOVE and RMDIR is running
// (go-nfs serves both with billy's Remove).
func removeKindOf(c call) vfs.RemoveKind {
	switch {
	case c.prog == nfsProg && c.proc == 12:
		return vfs.RemoveFile
	case c.prog == nfsProg && c.proc == 13:
		return vfs.RemoveDir
	}
	return vfs.RemoveAny
}

// pipeListener hands go-nfs one connection, then blocks until closed.
type pipeListener struct {
	mu     sync.Mutex
	conn   net.Conn
	closed chan struct{}
	once   sync.Once
}

func (p *pipeListener) Accept() (net.Conn, error) {
	p.mu.Lock()
	c := p.conn
	p.conn = nil
	p.mu.Unlock()
	if c != nil {
		return c, nil
	}
	<-p.closed
	return nil, net.ErrClosed
}

func (p *pipeListener) Close() error {
	p.once.Do(func() {
		close(p.closed)
		p.mu.Lock()
		if p.conn != nil {
			p.conn.Close()
		}
		p.mu.Unlock()
	})
	return nil
}

func (p *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "lane" }

// laneHandler is the nfs.Handler of one lane: the shared Handler, plus the
// lane's own filesystem views whose owner is the caller of the request in
// flight. go-nfs compares the filesystems of RENAME's two handles, so a
// lane returns the same view for one volume every time.
type laneHandler struct {
	h        *Handler
	client   string
	cred     Cred
	rid      string // request ID of the call in flight, for mutating calls
	remove   vfs.RemoveKind
	modeHint int64
	fss      map[uint32]*vfs.FS
	lastErr  error // the cause of the last failure in the request in flight
}

func (l *laneHandler) recordErr(err error) {
	if errors.Is(err, vfs.ErrPanic) {
		l.h.log.Error("recovered a panic serving a request; the client gets an I/O error", "client", l.client, "err", err)
	}
	l.lastErr = err
}

var _ nfs.Handler = (*laneHandler)(nil)

// fs returns the lane's view of a volume for the call in flight: the
// caller after the export's squashing, and read-only if the export is.
func (l *laneHandler) fs(vol uint32, ex meta.Export) *vfs.FS {
	f := l.fss[vol]
	if f == nil {
		f = l.h.newFS(vol)
		f.SetErrorHook(l.recordErr)
		f.SetRequest(l.rid)
		f.SetRemoveKind(l.remove)
		f.SetModeHint(l.modeHint)
		l.fss[vol] = f
	}
	f.SetOwner(squash(l.cred, ex))
	f.SetReadOnly(ex.ReadOnly)
	return f
}

// squash maps a caller through an export's squash option.
func squash(c Cred, ex meta.Export) vfs.Owner {
	if ex.Squash == meta.SquashAll || (ex.Squash != meta.SquashNone && c.UID == 0) {
		return vfs.Owner{UID: ex.AnonUID, GID: ex.AnonGID}
	}
	return vfs.Owner{UID: c.UID, GID: c.GID, Groups: c.GIDs}
}

// export returns a volume's export if this client may use it.
func (l *laneHandler) export(vol uint32) (meta.Export, error) {
	v, err := l.h.meta.FSM().VolumeByID(vol)
	if err != nil {
		return meta.Export{}, err
	}
	if !v.Export.Allows(clientIP(l.client)) {
		return meta.Export{}, fmt.Errorf("gateway: client %s may not use /%s: %w", l.client, v.Name, vfs.ErrAccess)
	}
	return v.Export, nil
}

func (l *laneHandler) Mount(ctx context.Context, _ net.Conn, req nfs.MountRequest) (nfs.MountStatus, billy.Filesystem, []nfs.AuthFlavor) {
	vol, ok := l.h.mountVolume(string(req.Dirpath), l.client)
	if !ok {
		return nfs.MountStatusErrNoEnt, nil, nil
	}
	ex, err := l.export(vol)
	if err != nil {
		l.h.log.Info("mount refused", "export", string(req.Dirpath), "client", l.client, "err", err)
		return nfs.MountStatusErrAcces, nil, nil
	}
	return nfs.MountStatusOk, l.fs(vol, ex), []nfs.AuthFlavor{nfs.AuthFlavorNull, nfs.AuthFlavorUnix}
}

func (l *laneHandler) Change(fs billy.Filesystem) billy.Change { return l.h.Change(fs) }

func (l *laneHandler) FSStat(ctx context.Context, fs billy.Filesystem, s *nfs.FSStat) error {
	return l.h.FSStat(ctx, fs, s)
}

func (l *laneHandler) ToHandle(fs billy.Filesystem, path []string) []byte {
	return l.h.ToHandle(fs, path)
}

func (l *laneHandler) FromHandle(fh []byte) (billy.Filesystem, []string, error) {
	vol, path, err := l.h.resolveHandle(fh)
	if err != nil {
		if errors.Is(err, meta.ErrNotExist) {
			err = fmt.Errorf("%w: %w", ErrStale, err)
		}
		l.recordErr(err)
		return nil, nil, err
	}
	ex, err := l.export(vol)
	if err != nil {
		l.recordErr(err)
		return nil, nil, err
	}
	return l.fs(vol, ex), path, nil
}

func (l *laneHandler) InvalidateHandle(fs billy.Filesystem, fh []byte) error {
	return l.h.InvalidateHandle(fs, fh)
}

func (l *laneHandler) HandleLimit() int { return l.h.HandleLimit() }
