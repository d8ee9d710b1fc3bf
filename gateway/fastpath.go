package gateway

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"

	"github.com/fsrep/fsrep/internal/fault"
)

// The front serves READ and WRITE itself: go-nfs would stat, open, seek,
// read or write, close and stat the file again for every call (several
// metadata reads, and the payload copied through a lane's pipe twice);
// here one metadata read finds the inode, the data paths read into the
// reply's buffer or write from the call's, and the reply carries the
// attributes of that same inode (for WRITE: before, and as committed).

// fastProcs are the procedures the front answers off the connection's
// reader loop, many at once per connection like the lanes.
var fastProcs = map[uint32]func(*Server, call, []byte, string) []byte{
	nfsProcRead:   (*Server).read,
	nfsProcWrite:  (*Server).write,
	nfsProcCommit: (*Server).commit,
}

// serveFast answers call c with serve on its own goroutine. slot is a lane
// taken from the connection's pool, only as a token: it bounds the calls
// in flight per connection, fast or not, at the number of lanes.
func (cc *clientConn) serveFast(slot *lane, c call, rec []byte, start time.Time, serve func(*Server, call, []byte, string) []byte) {
	defer cc.wg.Done()
	cc.s.enter()
	defer cc.s.leave()
	reply := func() (reply []byte) {
		defer func() {
			if p := recover(); p != nil {
				cc.s.log.Error("panic serving an NFS call", "client", cc.client, "xid", c.xid, "proc", c.proc,
					"err", fmt.Errorf("%w: %v", vfs.ErrPanic, p), "stack", string(debug.Stack()))
				reply = accepted(c.xid, acceptSystemErr).b
			}
		}()
		return serve(cc.s, c, rec, cc.client)
	}()
	cc.lanes <- slot
	cc.reply(c, start, reply)
}

// read answers READ3 (RFC 1813 §3.3.6): at most maxIO bytes (FSINFO's
// rtmax), the file's attributes, and eof when the data reaches its end.
// Access is checked as a local open for reading is, with knfsd's owner
// override (vfs.Owner.MayData); a directory is ISDIR, a symlink INVAL.
func (s *Server) read(c call, rec []byte, client string) []byte {
	r := &xdrReader{b: rec, off: c.args}
	fh := r.opaque(maxHandle)
	off := uint64(r.u32())<<32 | uint64(r.u32())
	count := r.u32()
	if r.err != nil {
		return accepted(c.xid, acceptGarbageArgs).b
	}
	id, n, vol, st := s.objectVol(fh, client)
	if st != nfs3OK {
		return statusReply(c.xid, st, 1) // READ3resfail: post_op_attr
	}
	ex := vol.Export
	fail := func(st uint32) []byte { return statusAttrReply(c.xid, st, id.Vol, n) }
	switch n.Type {
	case meta.TypeFile:
	case meta.TypeDir:
		return fail(nfs3ErrIsDir)
	default:
		return fail(nfs3ErrInval)
	}
	if !squash(c.cred, ex).MayData(n, vfs.MayRead) {
		return fail(nfs3ErrAcces)
	}
	if off > 1<<62 {
		return fail(nfs3ErrInval)
	}
	// The reply is built around the data: the header with room for count,
	// eof and the data's length, then the data read straight into it (no
	// separate buffer and copy of up to 1 MiB per READ).
	want := min(count, maxIO)
	w := accepted(c.xid, acceptSuccess)
	w.u32(nfs3OK)
	w.u32(1)
	w.fattr3(id.Vol, n)
	at := len(w.b)
	w.u32(0) // count
	w.u32(0) // eof
	w.u32(0) // data length
	w.b = slices.Grow(w.b, int(want)+3)
	buf := w.b[len(w.b) : len(w.b)+int(want)]
	ctx, cancel := context.WithTimeout(context.Background(), s.h.cfg.OpTimeout)
	defer cancel()
	got, err := s.h.data.ReadAt(ctx, vol, id.Ino, n.Size, int64(off), buf)
	if err != nil {
		s.log.Warn("READ failed", "client", client, "vol", id.Vol, "ino", id.Ino, "off", off, "count", count, "err", err)
		return fail(statusOr(err, nfs3ErrIO))
	}
	eof := uint32(0)
	if off+uint64(got) >= n.Size {
		eof = 1
	}
	binary.BigEndian.PutUint32(w.b[at:], uint32(got))
	binary.BigEndian.PutUint32(w.b[at+4:], eof)
	binary.BigEndian.PutUint32(w.b[at+8:], uint32(got))
	w.b = w.b[:len(w.b)+got]
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
	return w.b
}

// statusAttrReply is a reply of status st whose body starts with
// post_op_attr and stops there (the resfail of LOOKUP, READ and others),
// with n's attributes.
func statusAttrReply(xid, st, vol uint32, n *meta.Inode) []byte {
	w := accepted(xid, acceptSuccess)
	w.u32(st)
	w.u32(1)
	w.fattr3(vol, n)
	return w.b
}

// statusOr is nfsStatus(err), or def when it has no answer.
func statusOr(err error, def uint32) uint32 {
	if st := nfsStatus(err); st != 0 {
		return st
	}
	return def
}

// WRITE3's stable_how: UNSTABLE writes are buffered by the write-behind
// (writeback.go) when it is on; everything else is replicated to the write
// quorum and committed through Raft before the reply, and answered
// FILE_SYNC (RFC 1813 lets a server commit more than asked).
const (
	stableUnstable = 0
	stableFileSync = 2
)

// write answers WRITE3 (RFC 1813 §3.3.7) with the checks of a local open
// for writing (read-only export: ROFS; a directory: ISDIR; not a regular
// file: INVAL; no write permission, knfsd's owner override aside: ACCES),
// the volume quota checked early from the local metadata (the commit
// remains the judge), and wcc_data: before, from the inode as this node
// knows it with the file's buffered writes; after, as committed or, for a
// buffered write, as it will be.
func (s *Server) write(c call, rec []byte, client string) []byte {
	r := &xdrReader{b: rec, off: c.args}
	fh := r.opaque(maxHandle)
	off := uint64(r.u32())<<32 | uint64(r.u32())
	count := r.u32()
	stable := r.u32()
	data := r.opaque(maxIO)
	if r.err != nil {
		return accepted(c.xid, acceptGarbageArgs).b
	}
	id, n, vol, st := s.objectVol(fh, client)
	if st != nfs3OK {
		return statusReply(c.xid, st, 2) // WRITE3resfail: wcc_data, no attributes
	}
	ex := vol.Export
	k := fileKey{id.Vol, id.Ino}
	pre := s.wb.attrs(k, n)
	reply := func(st uint32, after *meta.Inode) *replyWriter {
		w := accepted(c.xid, acceptSuccess)
		w.u32(st)
		w.wccAttr(pre)
		w.u32(1)
		w.fattr3(id.Vol, after)
		return w
	}
	fail := func(st uint32) []byte { return reply(st, pre).b }
	switch {
	case ex.ReadOnly:
		return fail(nfs3ErrROFS)
	case n.Type == meta.TypeDir:
		return fail(nfs3ErrIsDir)
	case n.Type != meta.TypeFile:
		return fail(nfs3ErrInval)
	case count > uint32(len(data)):
		return fail(nfs3ErrInval) // fewer bytes than the count says
	case !squash(c.cred, ex).MayData(n, vfs.MayWrite):
		return fail(nfs3ErrAcces)
	case off > 1<<62:
		return fail(nfs3ErrFBig)
	}
	data = data[:count]
	ok := func(after *meta.Inode, committed uint32, verf [8]byte) []byte {
		w := reply(nfs3OK, after)
		w.u32(uint32(len(data)))
		w.u32(committed)
		w.b = append(w.b, verf[:]...)
		return w.b
	}
	if len(data) == 0 {
		return ok(pre, stableFileSync, s.verifier)
	}
	// As vfs does: refuse from the local metadata a write the commit
	// would refuse, before sending the data to the replicas.
	if growth := int64(off) + int64(len(data)) - int64(pre.Size); vol.QuotaExceeded(growth) {
		return fail(nfs3ErrDQuot)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.h.cfg.OpTimeout)
	defer cancel()
	if stable == stableUnstable && s.wb.on() {
		verf := s.verifier
		now := s.h.clock.Now().UnixNano()
		if end, buffered := s.wb.buffer(ctx, k, vol.ChunkSize, int64(off), data, now); buffered {
			after := *pre
			after.Size = max(after.Size, end)
			after.Mtime, after.Ctime = now, now
			return ok(&after, stableUnstable, verf)
		}
	}
	// Written now, after what the file has buffered: if that cannot be
	// flushed yet, neither can this be written without overtaking it.
	if err := s.wb.syncKey(ctx, k, false); err != nil && retryable(err) {
		return fail(nfs3ErrJukebox)
	}
	after, err := s.h.data.WriteAt(ctx, vol, id.Ino, int64(off), data)
	if err == nil {
		err = fault.Point(fault.BeforeReply)
	}
	if err != nil {
		s.log.Warn("WRITE failed", "client", client, "vol", id.Vol, "ino", id.Ino, "off", off, "count", count, "err", err)
		return fail(statusOr(err, nfs3ErrIO))
	}
	return ok(after, stableFileSync, s.verifier)
}

// commit answers COMMIT3 (RFC 1813 §3.3.21): the file's buffered writes
// are flushed (all of them: offset and count only narrow what the client
// needs), then the write verifier is answered. A flush that fails for a
// reason that may pass, or still runs after the operation timeout, is
// JUKEBOX (the client retries; the data stays buffered); one that cannot
// succeed is the error it met, once.
func (s *Server) commit(c call, rec []byte, client string) []byte {
	r := &xdrReader{b: rec, off: c.args}
	fh := r.opaque(maxHandle)
	r.u32() // offset
	r.u32()
	r.u32() // count
	if r.err != nil {
		return accepted(c.xid, acceptGarbageArgs).b
	}
	id, n, _, st := s.object(fh, client)
	if st != nfs3OK {
		return statusReply(c.xid, st, 2) // COMMIT3resfail: wcc_data
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.h.cfg.OpTimeout)
	defer cancel()
	err := s.wb.syncKey(ctx, fileKey{id.Vol, id.Ino}, true)
	after := n
	if m, ierr := s.h.meta.FSM().Inode(id.Vol, id.Ino); ierr == nil {
		after = m
	}
	switch {
	case err == nil:
		st = nfs3OK
	case retryable(err):
		st = nfs3ErrJukebox
	default:
		st = statusOr(err, nfs3ErrIO)
	}
	w := accepted(c.xid, acceptSuccess)
	w.u32(st)
	w.wccAttr(n)
	w.u32(1)
	w.fattr3(id.Vol, after)
	if st == nfs3OK {
		verf := s.verifier
		w.b = append(w.b, verf[:]...)
	}
	return w.b
}

// wccAttr writes pre_op_attr: present, with n's size, mtime and ctime.
func (w *replyWriter) wccAttr(n *meta.Inode) {
	w.u32(1)
	w.u64(n.Size)
	for _, t := range []int64{n.Mtime, n.Ctime} {
		w.u32(uint32(t / 1e9))
		w.u32(uint32(t % 1e9))
	}
}
