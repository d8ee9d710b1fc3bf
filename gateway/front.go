package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// frontConn sits between a client socket and go-nfs. It reassembles the
// client's RPC records so that it can answer the procedures go-nfs lacks
// itself (today: MOUNT EXPORT, which libnfs and showmount call after MNT),
// and it bounds record sizes before go-nfs allocates anything. Outgoing
// records are tracked so that a reply of ours never lands inside one of
// go-nfs's replies, which go-nfs may write in several pieces.
//
// This is the seed of the RPC front the design calls for; the procedures
// it answers and the checks it makes grow here.
type frontConn struct {
	net.Conn
	exports func() []string // export paths for MOUNT EXPORT
	valid   func(fh []byte) bool
	onClose func(*frontConn)

	in  bytes.Buffer // whole records waiting for go-nfs
	hdr [4]byte

	recMu    sync.Mutex // held while one outgoing record is being written
	outState outRecord
	broken   bool // a write failed: the stream is unusable (guarded by recMu)
	once     sync.Once
}

type outRecord struct {
	hdr       []byte // partial fragment header
	remaining uint32 // body bytes left in the current fragment
	last      bool   // the current fragment ends the record
	open      bool   // a record is in progress (recMu held)
}

// maxIO is the largest READ and WRITE the gateway advertises (FSINFO
// rtmax/wtmax); go-nfs itself would advertise 1 GiB.
const maxIO = 1 << 20

var _ net.Conn = (*frontConn)(nil)

// maxRecord bounds one incoming RPC record: a maxIO WRITE plus its headers
// fits; a client claiming more is cut off before anything is allocated.
const maxRecord = maxIO + 64<<10

// RPC constants used by the front.
const (
	rpcCall        = 0
	rpcReply       = 1
	mountProg      = 100005
	mountVers3     = 3
	mountProcExpor = 5
	nfsProg        = 100003
	nfsVers3       = 3
	nfsProcFSInfo  = 19
)

var errRecordTooLarge = errors.New("gateway: RPC record exceeds the size limit")

func (c *frontConn) Read(p []byte) (int, error) {
	for c.in.Len() == 0 {
		if err := c.readRecord(); err != nil {
			// go-nfs keeps a connection open after a read error other than
			// EOF; close it so the client sees the end and the slot is freed.
			c.Close()
			return 0, err
		}
	}
	return c.in.Read(p)
}

// readRecord reads one fragment from the socket and either answers it or
// queues it for go-nfs.
func (c *frontConn) readRecord() error {
	if _, err := io.ReadFull(c.Conn, c.hdr[:]); err != nil {
		return err
	}
	h := binary.BigEndian.Uint32(c.hdr[:])
	size := h &^ (1 << 31)
	if size > maxRecord {
		return fmt.Errorf("%w: %d bytes", errRecordTooLarge, size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(c.Conn, body); err != nil {
		return err
	}
	if h&(1<<31) != 0 && c.answer(body) {
		return nil
	}
	if err := checkCall(body); err != nil {
		return err
	}
	c.in.Write(c.hdr[:])
	c.in.Write(body)
	return nil
}

// answer handles a complete call the front serves itself; false passes it on.
func (c *frontConn) answer(body []byte) bool {
	if len(body) < 24 {
		return false
	}
	u := func(i int) uint32 { return binary.BigEndian.Uint32(body[i:]) }
	xid, mtype, rpcvers, prog, vers, proc := u(0), u(4), u(8), u(12), u(16), u(20)
	if mtype != rpcCall || rpcvers != 2 {
		return false
	}
	var r bytes.Buffer
	w := func(v uint32) { _ = binary.Write(&r, binary.BigEndian, v) }
	w(0) // fragment header, filled below
	w(xid)
	w(rpcReply)
	w(0) // MSG_ACCEPTED
	w(0) // verifier AUTH_NONE
	w(0) // verifier length
	w(0) // SUCCESS
	switch {
	case prog == mountProg && vers == mountVers3 && proc == mountProcExpor:
		for _, e := range c.exports() {
			w(1) // an export follows
			w(uint32(len(e)))
			r.WriteString(e)
			for pad := (4 - len(e)%4) % 4; pad > 0; pad-- {
				r.WriteByte(0)
			}
			w(0) // no groups: every client may mount
		}
		w(0) // end of the list
	case prog == nfsProg && vers == nfsVers3 && proc == nfsProcFSInfo:
		fh, ok := callArgHandle(body)
		if !ok || !c.valid(fh) {
			return false // go-nfs answers the error
		}
		w(0) // NFS3_OK
		w(0) // no post-op attributes
		for _, v := range []uint32{maxIO, maxIO, 4096, maxIO, maxIO, 4096, 64 << 10} {
			w(v) // rtmax rtpref rtmult wtmax wtpref wtmult dtpref
		}
		w(1 << 30) // maxfilesize 2^62, high word
		w(0)
		w(0) // time_delta: 1 ns
		w(1)
		w(0x1 | 0x2 | 0x8 | 0x10) // LINK SYMLINK HOMOGENEOUS CANSETTIME
	default:
		return false
	}
	out := r.Bytes()
	binary.BigEndian.PutUint32(out, uint32(len(out)-4)|1<<31)
	c.recMu.Lock()
	defer c.recMu.Unlock()
	if !c.broken {
		if _, err := c.Conn.Write(out); err != nil {
			c.broken = true
			c.Conn.Close()
		}
	}
	return true
}

// checkCall refuses an NFSv3 call whose leading file handle claims more
// than 64 bytes or more than the record holds: go-nfs would allocate the
// claimed size before reading it (a 60-byte call could claim 4 GiB).
func checkCall(b []byte) error {
	if len(b) < 24 {
		return nil
	}
	u := func(i int) uint32 { return binary.BigEndian.Uint32(b[i:]) }
	if u(4) != rpcCall || u(12) != nfsProg || u(20) == 0 {
		return nil
	}
	if _, ok := callArgHandle(b); !ok {
		return fmt.Errorf("gateway: NFS call %d with a malformed or oversized file handle", u(20))
	}
	return nil
}

// callArgHandle returns the file handle that starts the arguments of a
// call whose body is b (after the credential and verifier).
func callArgHandle(b []byte) ([]byte, bool) {
	off := 24
	for i := 0; i < 2; i++ { // credential, verifier: flavor, length, body
		if len(b) < off+8 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint32(b[off+4:]))
		if n > 400 {
			return nil, false
		}
		off += 8 + (n+3)&^3
	}
	if len(b) < off+4 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint32(b[off:]))
	if n > 64 || len(b) < off+4+n {
		return nil, false
	}
	return b[off+4 : off+4+n], true
}

// Write passes go-nfs's output through, holding recMu from the first byte
// of a record to its last so that answer never interleaves.
func (c *frontConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		s := &c.outState
		if !s.open {
			c.recMu.Lock()
			if c.broken {
				c.recMu.Unlock()
				return written, net.ErrClosed
			}
			s.open = true
		}
		if s.remaining == 0 && len(s.hdr) < 4 {
			n := min(4-len(s.hdr), len(p))
			s.hdr = append(s.hdr, p[:n]...)
			if err := c.raw(p[:n]); err != nil {
				return written, err
			}
			written += n
			p = p[n:]
			if len(s.hdr) == 4 {
				h := binary.BigEndian.Uint32(s.hdr)
				s.remaining, s.last = h&^(1<<31), h&(1<<31) != 0
				s.hdr = s.hdr[:0]
				c.endFragment()
			}
			continue
		}
		n := min(int(s.remaining), len(p))
		if err := c.raw(p[:n]); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
		s.remaining -= uint32(n)
		c.endFragment()
	}
	return written, nil
}

// endFragment releases recMu when the last fragment of a record is done.
func (c *frontConn) endFragment() {
	s := &c.outState
	if s.remaining == 0 && len(s.hdr) == 0 && s.last {
		s.open, s.last = false, false
		c.recMu.Unlock()
	}
}

// raw writes to the socket. On an error the record can never be completed:
// the connection is closed and recMu released, so that answer (and Close)
// cannot wait forever for the end of a record that will not come.
func (c *frontConn) raw(p []byte) error {
	_, err := c.Conn.Write(p)
	if err != nil {
		c.broken = true
		c.outState = outRecord{}
		c.recMu.Unlock()
		c.Conn.Close()
	}
	return err
}

func (c *frontConn) Close() error {
	c.once.Do(func() { c.onClose(c) })
	return c.Conn.Close()
}
