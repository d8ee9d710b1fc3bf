package gateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ONC RPC (RFC 5531) framing and headers, as far as the front needs them.

const (
	rpcCall  = 0
	rpcReply = 1

	msgAccepted = 0
	msgDenied   = 1

	acceptSuccess      = 0
	acceptProgUnavail  = 1
	acceptProgMismatch = 2
	acceptProcUnavail  = 3
	acceptGarbageArgs  = 4
	acceptSystemErr    = 5

	rejectRPCMismatch = 0

	authNone = 0
	authSys  = 1

	mountProg = 100005
	nfsProg   = 100003

	mountProcMnt     = 1
	mountProcDump    = 2
	mountProcUmntAll = 4
	mountProcExport  = 5
	nfsProcGetAttr   = 1
	nfsProcSetAttr   = 2
	nfsProcLookup    = 3
	nfsProcAccess    = 4
	nfsProcMknod     = 11
	nfsProcRename    = 14
	nfsProcFSStat    = 18
	nfsProcPathConf  = 20
	nfsProcCreate    = 8
	nfsProcMkdir     = 9
	createGuarded    = 1
	createExclusive  = 2
	nfsProcLink      = 15
	nfsProcFSInfo    = 19
)

var (
	errRecordTooLarge = errors.New("gateway: RPC record exceeds the size limit")
	errNotCall        = errors.New("gateway: record is not an RPC call")
)

// readRecord reads one RPC record (reassembling fragments) of at most limit
// bytes. The size is checked before anything is allocated.
func readRecord(r io.Reader, limit int) ([]byte, error) {
	var rec []byte
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if len(rec) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		h := binary.BigEndian.Uint32(hdr[:])
		size := int(h &^ (1 << 31))
		if len(rec)+size > limit {
			return nil, fmt.Errorf("%w: %d bytes", errRecordTooLarge, len(rec)+size)
		}
		start := len(rec)
		rec = append(rec, make([]byte, size)...)
		if _, err := io.ReadFull(r, rec[start:]); err != nil {
			return nil, io.ErrUnexpectedEOF
		}
		if h&(1<<31) != 0 {
			return rec, nil
		}
	}
}

// frame prefixes a record with its (single, last) fragment header.
func frame(body []byte) []byte {
	out := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(out, uint32(len(body))|1<<31)
	copy(out[4:], body)
	return out
}

// Cred is the caller's identity from an AUTH_SYS credential (AUTH_NONE
// callers are nobody: 65534).
type Cred struct {
	Flavor  uint32
	Machine string
	UID     uint32
	GID     uint32
	GIDs    []uint32
}

// call is a decoded RPC call header.
type call struct {
	xid, rpcvers, prog, vers, proc uint32
	cred                           Cred
	args                           int // offset of the procedure's arguments in the record
	// modeHint is the mode a SETATTR, CREATE or MKDIR asks for, with the
	// setuid/setgid/sticky bits go-nfs drops (-1: none).
	modeHint int64
	// exclusive is set for an EXCLUSIVE CREATE; verf is its verifier as the
	// file's atime and mtime store it (unix nanoseconds).
	exclusive bool
	verf      int64
}

// xdrReader decodes XDR from a byte slice without allocating more than
// the slice holds.
type xdrReader struct {
	b   []byte
	off int
	err error
}

func (r *xdrReader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 4 {
		r.err = io.ErrUnexpectedEOF
		return 0
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

// opaque reads a variable-length opaque of at most max bytes.
func (r *xdrReader) opaque(max int) []byte {
	n := int(r.u32())
	if r.err != nil {
		return nil
	}
	if n > max || n > len(r.b)-r.off {
		r.err = fmt.Errorf("gateway: opaque of %d bytes (limit %d, %d left)", n, max, len(r.b)-r.off)
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += (n + 3) &^ 3
	if r.off > len(r.b) {
		r.off = len(r.b)
	}
	return v
}

// parseCall decodes the call header of a record.
func parseCall(b []byte) (call, error) {
	r := &xdrReader{b: b}
	c := call{xid: r.u32()}
	if r.u32() != rpcCall || r.err != nil {
		return c, errNotCall
	}
	c.rpcvers, c.prog, c.vers, c.proc = r.u32(), r.u32(), r.u32(), r.u32()
	flavor := r.u32()
	body := r.opaque(400)
	r.u32()       // verifier flavor
	r.opaque(400) // verifier body
	if r.err != nil {
		return c, fmt.Errorf("gateway: call header: %w", r.err)
	}
	c.args = r.off
	c.cred = Cred{Flavor: flavor, UID: 65534, GID: 65534}
	if flavor == authSys {
		cr := &xdrReader{b: body}
		cr.u32() // stamp
		c.cred.Machine = string(cr.opaque(255))
		c.cred.UID, c.cred.GID = cr.u32(), cr.u32()
		n := cr.u32()
		if n > 16 {
			return c, fmt.Errorf("gateway: AUTH_SYS with %d groups", n)
		}
		for i := uint32(0); i < n; i++ {
			c.cred.GIDs = append(c.cred.GIDs, cr.u32())
		}
		if cr.err != nil {
			return c, fmt.Errorf("gateway: AUTH_SYS credential: %w", cr.err)
		}
	}
	return c, nil
}

// replyWriter builds a reply record body.
type replyWriter struct{ b []byte }

func (w *replyWriter) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *replyWriter) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *replyWriter) opaque(v []byte) {
	w.u32(uint32(len(v)))
	w.b = append(w.b, v...)
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
}

// accepted starts an accepted reply with the given accept status.
func accepted(xid, stat uint32) *replyWriter {
	w := &replyWriter{}
	w.u32(xid)
	w.u32(rpcReply)
	w.u32(msgAccepted)
	w.u32(authNone)
	w.u32(0)
	w.u32(stat)
	return w
}

// mismatch is an accepted PROG_MISMATCH reply naming the one version served.
func mismatch(xid, version uint32) []byte {
	w := accepted(xid, acceptProgMismatch)
	w.u32(version)
	w.u32(version)
	return w.b
}

// rpcMismatch is a denied reply for an RPC version other than 2.
func rpcMismatch(xid uint32) []byte {
	w := &replyWriter{}
	w.u32(xid)
	w.u32(rpcReply)
	w.u32(msgDenied)
	w.u32(rejectRPCMismatch)
	w.u32(2)
	w.u32(2)
	return w.b
}
