package gateway

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	nfs "github.com/willscott/go-nfs"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
)

// The RPC front owns each client socket. It reads and bounds RPC records,
// checks call headers (RPC version, program and version), captures the
// caller's AUTH_SYS credentials, answers itself the procedures go-nfs lacks
// or gets wrong (MOUNT EXPORT, FSINFO, the argument and reply layout of
// LINK), refuses file handles longer than any fsrep mints before go-nfs
// allocates them, and spreads the rest over the connection's lanes so that
// many requests of one client are in flight at once. Replies go back as
// they complete, matched by XID as RPC allows.

// maxIO is the largest READ and WRITE the gateway advertises (FSINFO
// rtmax/wtmax); go-nfs itself would advertise 1 GiB.
const maxIO = 1 << 20

// maxRecord bounds one incoming RPC record: a maxIO WRITE plus its headers
// fits; a client claiming more is cut off before anything is allocated.
const maxRecord = maxIO + 64<<10

// maxReply bounds a reply read back from a lane (a maxIO READ plus headers).
const maxReply = maxIO + 64<<10

// maxHandle is the longest file handle accepted (NFSv3 allows 64 bytes).
const maxHandle = 64

// clientConn is one client connection and its lanes.
type clientConn struct {
	s      *Server
	nc     net.Conn
	client string

	// Replies are written in batches (write): wmu guards the fields up
	// to written, and wrote signals that sent moved.
	wmu     sync.Mutex
	wrote   *sync.Cond
	out     []byte // framed replies queued for the writer
	spare   []byte // out's previous buffer, reused
	writing bool   // a caller is writing out
	broken  bool   // a write failed: the connection is closing
	queued  uint64 // replies queued so far
	sent    uint64 // replies written so far

	lanes   chan *lane
	mu      sync.Mutex
	all     map[*lane]struct{}
	closing bool // set once serveConn tears the lanes down
	wg      sync.WaitGroup
}

func (s *Server) serveConn(nc net.Conn) {
	cc := &clientConn{s: s, nc: nc, client: nc.RemoteAddr().String(),
		lanes: make(chan *lane, s.cfg.Lanes), all: map[*lane]struct{}{}}
	cc.wrote = sync.NewCond(&cc.wmu)
	// A lane (a go-nfs loop and its buffers, over 64 KiB) is started when a
	// call first needs it, not with the connection: idle connections, and
	// a client opening many, cost little. A nil in lanes is a slot whose
	// lane is not started yet.
	for i := 0; i < s.cfg.Lanes; i++ {
		cc.lanes <- nil
	}
	defer func() {
		// Closing the lanes ends any round trip still waiting on go-nfs;
		// a round trip that fails because of it must not start a new lane.
		cc.mu.Lock()
		cc.closing = true
		for l := range cc.all {
			l.close()
		}
		cc.mu.Unlock()
		cc.wg.Wait()
		nc.Close()
	}()
	br := bufio.NewReaderSize(nc, 64<<10)
	for {
		if err := nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
			return
		}
		if s.draining.Load() {
			cc.wg.Wait() // answer the calls in flight before the lanes close
			return
		}
		rec, err := readRecord(br, maxRecord)
		if err != nil {
			if s.draining.Load() {
				cc.wg.Wait()
			}
			if errors.Is(err, errRecordTooLarge) {
				s.log.Info("closing a client that sent an oversized record", "client", cc.client, "err", err)
			}
			return
		}
		start := time.Now()
		c, err := parseCall(rec)
		if err != nil {
			// Without a sound header there is no XID to answer.
			s.log.Info("closing a client that sent a malformed call", "client", cc.client, "err", err)
			return
		}
		s.flushFor(c, rec)
		if reply := s.answer(c, rec, cc.client); reply != nil {
			cc.reply(c, start, reply)
			continue
		}
		rid := ""
		if c.prog == nfsProg && mutatingProcs[c.proc] {
			rid = requestID(cc.client, c, rec)
			if reply := s.replayReply(c, rec, rid, false); reply != nil {
				cc.reply(c, start, reply)
				continue
			}
		}
		orig := rec
		if c.prog == nfsProg && (c.proc == nfsProcLink || c.proc == nfsProcCreate) {
			if c.proc == nfsProcCreate {
				rec, err = rewriteExclusiveCreate(&c, rec)
			} else {
				rec, err = s.rewriteLink(c, rec)
			}
			if err != nil {
				cc.reply(c, start, accepted(c.xid, acceptGarbageArgs).b)
				continue
			}
		}
		if serve := fastProcs[c.proc]; serve != nil && c.prog == nfsProg {
			slot := <-cc.lanes
			cc.wg.Add(1)
			go cc.serveFast(slot, c, rec, start, serve)
			continue
		}
		c.modeHint = requestedMode(c, rec)
		l := <-cc.lanes
		if l == nil {
			l = cc.newLane() // not nil: the connection closes only after this loop
		}
		cc.wg.Add(1)
		go cc.dispatch(l, c, rec, orig, rid, start)
	}
}

// flushFor makes the buffered writes of the file a call names durable
// before the call is served (writeback.go: a node reads its own writes),
// unless the call is a WRITE or COMMIT, which order themselves.
func (s *Server) flushFor(c call, rec []byte) {
	if s.wb.nfiles.Load() == 0 || c.prog != nfsProg || c.proc == 0 || c.proc == nfsProcWrite || c.proc == nfsProcCommit {
		return
	}
	id, ok := s.firstHandle(c, rec)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.h.cfg.OpTimeout)
	defer cancel()
	_ = s.wb.syncKey(ctx, fileKey{id.Vol, id.Ino}, false) // a failure is for the file's next COMMIT
}

// newLane starts a lane, or returns nil once the connection is closing.
func (cc *clientConn) newLane() *lane {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closing {
		return nil
	}
	l := newLane(cc.s.h, cc.s.verifier, cc.client)
	cc.all[l] = struct{}{}
	return l
}

// dispatch runs one call on a lane and writes its reply. start is when
// the call's record had been read.
func (cc *clientConn) dispatch(l *lane, c call, rec, orig []byte, rid string, start time.Time) {
	defer cc.wg.Done()
	cc.s.enter()
	defer cc.s.leave()
	if reply := cc.s.quick(c, orig, rid, cc.client); reply != nil {
		cc.lanes <- l
		cc.reply(c, start, reply)
		return
	}
	reply, err := func() (reply []byte, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return l.roundTrip(c, rec, rid, cc.s.cfg.LaneTimeout)
	}()
	if err != nil {
		// The lane is in an unknown state: replace it.
		cc.s.log.Warn("lane failed", "client", cc.client, "xid", c.xid, "prog", c.prog, "proc", c.proc, "err", err)
		l.close()
		cc.mu.Lock()
		delete(cc.all, l)
		cc.mu.Unlock()
		l = nil // its slot starts a new lane when next needed
		reply = accepted(c.xid, acceptSystemErr).b
	} else if c.prog == nfsProg {
		if c.proc == nfsProcLink {
			reply = fixLinkReply(reply)
		}
		rewriteStatus(reply, l.h.lastErr)
		cc.s.fixReply(c, orig, reply)
		if at := replyStatusOffset(reply); at >= 0 {
			switch st := binary.BigEndian.Uint32(reply[at:]); {
			case st == nfs3ErrExist && c.exclusive:
				if match := cc.s.exclusiveMatch(c, orig); match != nil {
					reply = match
				}
			case st == nfs3ErrNotDir && c.proc == nfsProcMkdir && cc.s.nameTaken(c, orig):
				// go-nfs makes the directory with MkdirAll, which
				// reports a file in its place as ENOTDIR.
				binary.BigEndian.PutUint32(reply[at:], nfs3ErrExist)
			}
		}
		if rid != "" {
			if at := replyStatusOffset(reply); at >= 0 && retransmitSymptom(binary.BigEndian.Uint32(reply[at:])) {
				// Perhaps a retransmission of a call this node had not yet
				// heard was applied: look again after catching up.
				if replay := cc.s.replayReply(c, orig, rid, true); replay != nil {
					reply = replay
				}
			}
		}
	}
	cc.lanes <- l
	cc.reply(c, start, reply)
}

// write sends one reply record and returns once it is written (or the
// connection failed). Replies that come while another caller is writing
// are queued and go out together in that caller's next write: with many
// calls in flight, one system call carries several replies.
func (cc *clientConn) write(body []byte) {
	if len(body) > maxBatched {
		cc.writeAlone(body)
		return
	}
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	if cc.broken {
		return
	}
	cc.out = binary.BigEndian.AppendUint32(cc.out, uint32(len(body))|1<<31)
	cc.out = append(cc.out, body...)
	cc.queued++
	me := cc.queued
	for cc.writing && cc.sent < me && !cc.broken {
		cc.wrote.Wait()
	}
	if cc.sent >= me || cc.broken {
		return
	}
	// Write what is queued until this reply is out, then hand over: a
	// waiter whose reply came meanwhile takes the next batch, so no
	// caller (the reader loop among them) keeps writing for the others.
	cc.writing = true
	for cc.sent < me && !cc.broken {
		buf, upto := cc.out, cc.queued
		cc.out = cc.spare[:0]
		cc.wmu.Unlock()
		_ = cc.nc.SetWriteDeadline(time.Now().Add(cc.s.cfg.WriteTimeout))
		_, err := cc.nc.Write(buf)
		cc.wmu.Lock()
		if err != nil {
			cc.broken = true
			cc.nc.Close() // the reader loop ends on its next read
		}
		cc.spare = nil
		if cap(buf) <= maxSpare {
			cc.spare = buf[:0]
		}
		cc.sent = upto
		cc.wrote.Broadcast()
	}
	cc.writing = false
	cc.wrote.Broadcast()
}

// writeAlone writes one reply record by itself once no batch is being
// written: a large READ reply gains nothing from sharing a system call,
// and goes out with its record mark in one writev, uncopied.
func (cc *clientConn) writeAlone(body []byte) {
	mark := binary.BigEndian.AppendUint32(nil, uint32(len(body))|1<<31)
	cc.wmu.Lock()
	for cc.writing && !cc.broken {
		cc.wrote.Wait()
	}
	if cc.broken {
		cc.wmu.Unlock()
		return
	}
	cc.writing = true
	cc.wmu.Unlock()
	_ = cc.nc.SetWriteDeadline(time.Now().Add(cc.s.cfg.WriteTimeout))
	bufs := net.Buffers{mark, body}
	_, err := bufs.WriteTo(cc.nc)
	cc.wmu.Lock()
	if err != nil {
		cc.broken = true
		cc.nc.Close()
	}
	cc.writing = false
	cc.wrote.Broadcast()
	cc.wmu.Unlock()
}

// Replies up to maxBatched bytes are batched; maxSpare bounds the reply
// buffer a connection keeps between writes.
const (
	maxBatched = 64 << 10
	maxSpare   = 2 << 20
)

// answer returns the reply to a call the front serves itself, or nil to
// pass the call on.
func (s *Server) answer(c call, rec []byte, client string) []byte {
	if c.rpcvers != 2 {
		return rpcMismatch(c.xid)
	}
	switch c.prog {
	case nfsProg, mountProg:
		if c.vers != 3 {
			return mismatch(c.xid, 3)
		}
	default:
		return accepted(c.xid, acceptProgUnavail).b
	}
	if c.prog == mountProg {
		if c.proc > mountProcExport {
			return accepted(c.xid, acceptProcUnavail).b
		}
		if c.proc == mountProcDump || c.proc == mountProcUmntAll {
			// No mount list is kept (any node serves any client): DUMP
			// answers an empty list, UMNTALL nothing.
			w := accepted(c.xid, acceptSuccess)
			if c.proc == mountProcDump {
				w.u32(0)
			}
			return w.b
		}
		if c.proc == mountProcExport {
			w := accepted(c.xid, acceptSuccess)
			for _, e := range s.h.exportPaths() {
				w.u32(1) // an export follows
				w.opaque([]byte(e))
				w.u32(0) // no groups: every client may mount
			}
			w.u32(0)
			return w.b
		}
		return nil
	}
	if c.proc > 21 {
		return accepted(c.xid, acceptProcUnavail).b
	}
	if c.proc == 0 {
		return nil
	}
	// Every NFSv3 procedure but NULL starts with a file handle; go-nfs
	// would allocate whatever length it claims.
	r := &xdrReader{b: rec, off: c.args}
	fh := r.opaque(maxHandle)
	if r.err != nil {
		return accepted(c.xid, acceptGarbageArgs).b
	}
	if !argsBounded(c.proc, r) {
		return accepted(c.xid, acceptGarbageArgs).b
	}
	r = &xdrReader{b: rec, off: c.args}
	r.opaque(maxHandle)
	switch c.proc {
	case nfsProcGetAttr:
		id, n, _, st := s.object(fh, client)
		if st != nfs3OK {
			w := accepted(c.xid, acceptSuccess)
			w.u32(st)
			return w.b
		}
		w := accepted(c.xid, acceptSuccess)
		w.u32(nfs3OK)
		w.fattr3(id.Vol, n)
		return w.b
	case nfsProcLookup:
		name := r.opaque(1 << 16)
		if r.err != nil {
			return accepted(c.xid, acceptGarbageArgs).b
		}
		if len(name) > meta.MaxNameLen {
			return statusReply(c.xid, nfs3ErrNameLong, 1)
		}
		return s.lookup(c, fh, string(name), client)
	case nfsProcLink:
		dir := r.opaque(maxHandle)
		if r.err != nil {
			return accepted(c.xid, acceptGarbageArgs).b
		}
		fid, _, _, st := s.object(fh, client)
		if st != nfs3OK {
			return statusReply(c.xid, st, 3) // post_op_attr, wcc_data
		}
		if did, err := s.h.codec.Decode(dir); err == nil && did.Vol != fid.Vol {
			return statusReply(c.xid, nfs3ErrXDev, 3)
		}
		return nil
	case nfsProcRename:
		r.opaque(1 << 16) // from name
		to := r.opaque(maxHandle)
		if r.err != nil {
			return accepted(c.xid, acceptGarbageArgs).b
		}
		from, ferr := s.h.codec.Decode(fh)
		dst, derr := s.h.codec.Decode(to)
		if ferr == nil && derr == nil && from.Vol != dst.Vol {
			return statusReply(c.xid, nfs3ErrXDev, 4) // two wcc_data
		}
		return nil
	case nfsProcMknod:
		// Device files, FIFOs and sockets are not stored (go-nfs would
		// claim success for a character device and create nothing).
		r.opaque(1 << 16) // name
		ftype := r.u32()
		if r.err != nil {
			return accepted(c.xid, acceptGarbageArgs).b
		}
		_, _, ex, st := s.object(fh, client)
		switch {
		case st != nfs3OK:
		case ex.ReadOnly:
			st = nfs3ErrROFS
		case ftype == 1 || ftype == 2 || ftype == 5: // REG, DIR, LNK: not for MKNOD
			st = nfs3ErrBadType
		default:
			st = nfs3ErrNotSupp
		}
		return statusReply(c.xid, st, 2) // MKNOD3resfail: wcc_data
	case nfsProcSetAttr:
		return s.setAttrGuard(c, rec, r, fh, client)
	case nfsProcFSStat:
		_, _, _, st := s.object(fh, client)
		if st != nfs3OK {
			return statusReply(c.xid, st, 1)
		}
		var fs nfs.FSStat
		if err := s.h.FSStat(context.Background(), nil, &fs); err != nil {
			return statusReply(c.xid, nfs3ErrIO, 1)
		}
		w := accepted(c.xid, acceptSuccess)
		w.u32(nfs3OK)
		w.u32(0) // no attributes
		for _, v := range []uint64{fs.TotalSize, fs.FreeSize, fs.AvailableSize, fs.TotalFiles, fs.FreeFiles, fs.AvailableFiles} {
			w.u64(v)
		}
		w.u32(0) // invarsec
		return w.b
	case nfsProcPathConf:
		_, _, _, st := s.object(fh, client)
		if st != nfs3OK {
			return statusReply(c.xid, st, 1)
		}
		w := accepted(c.xid, acceptSuccess)
		w.u32(nfs3OK)
		w.u32(0)          // no attributes
		w.u32(0xffffffff) // linkmax
		w.u32(meta.MaxNameLen)
		w.u32(1) // no_trunc: long names are refused
		w.u32(1) // chown_restricted: only root gives files away
		w.u32(0) // case_insensitive
		w.u32(1) // case_preserving
		return w.b
	}
	if c.proc == nfsProcReadDir || c.proc == nfsProcReadDirPlus {
		return s.readDir(c, rec, client, c.proc == nfsProcReadDirPlus)
	}
	if c.proc == nfsProcAccess {
		want := r.u32()
		if r.err != nil {
			return accepted(c.xid, acceptGarbageArgs).b
		}
		return s.access(c, fh, want, client)
	}
	if c.proc == nfsProcFSInfo {
		if _, _, _, st := s.object(fh, client); st != nfs3OK {
			return statusReply(c.xid, st, 1)
		}
		w := accepted(c.xid, acceptSuccess)
		w.u32(0) // NFS3_OK
		w.u32(0) // no post-op attributes
		for _, v := range []uint32{maxIO, maxIO, 4096, maxIO, maxIO, 4096, 64 << 10} {
			w.u32(v) // rtmax rtpref rtmult wtmax wtpref wtmult dtpref
		}
		w.u64(1 << 62) // maxfilesize
		w.u32(0)       // time_delta: 1 ns
		w.u32(1)
		w.u32(0x1 | 0x2 | 0x8 | 0x10) // LINK SYMLINK HOMOGENEOUS CANSETTIME
		return w.b
	}
	return nil
}

// lookup answers LOOKUP from the local metadata: the child's handle and
// attributes, and the directory's attributes (go-nfs would report Go's mode
// bits and ctime = mtime).
func (s *Server) lookup(c call, fh []byte, name, client string) []byte {
	id, dir, ex, st := s.object(fh, client)
	if st != nfs3OK {
		return statusReply(c.xid, st, 1)
	}
	fail := func(st uint32) []byte { return statusAttrReply(c.xid, st, id.Vol, dir) }
	if dir.Type != meta.TypeDir {
		return fail(nfs3ErrNotDir)
	}
	if !squash(c.cred, ex).May(dir, vfs.MayExec) {
		return fail(nfs3ErrAcces)
	}
	var child *meta.Inode
	var err error
	switch name {
	case ".":
		child = dir
	case "..":
		child, err = s.h.meta.FSM().Inode(id.Vol, dir.Parent)
	default:
		if strings.ContainsRune(name, 0) || strings.ContainsRune(name, '/') || name == "" {
			return fail(nfs3ErrNoEnt)
		}
		child, err = s.h.meta.FSM().Lookup(id.Vol, dir.Ino, name)
	}
	if err != nil {
		return fail(nfsStatusOr(err, nfs3ErrIO))
	}
	w := accepted(c.xid, acceptSuccess)
	w.u32(nfs3OK)
	w.opaque(s.h.codec.Encode(FileID{Vol: id.Vol, Ino: child.Ino, Gen: child.Gen}))
	w.u32(1)
	w.fattr3(id.Vol, child)
	w.u32(1)
	w.fattr3(id.Vol, dir)
	return w.b
}

// requestedMode returns the mode in the sattr3 of a SETATTR, CREATE
// (UNCHECKED or GUARDED) or MKDIR call, or -1.
func requestedMode(c call, rec []byte) int64 {
	if c.prog != nfsProg {
		return -1
	}
	r := &xdrReader{b: rec, off: c.args}
	r.opaque(maxHandle)
	switch c.proc {
	case nfsProcSetAttr:
	case nfsProcCreate:
		r.opaque(1 << 16)
		if how := r.u32(); how == createExclusive {
			return -1
		}
	case 9: // MKDIR
		r.opaque(1 << 16)
	default:
		return -1
	}
	if r.u32() != 1 {
		return -1
	}
	m := r.u32()
	if r.err != nil {
		return -1
	}
	return int64(m & 0o7777)
}

// skipSattr3 reads past an sattr3: mode, uid, gid (a u32 each if set),
// size (a u64 if set), atime and mtime (an nfstime3 if SET_TO_CLIENT_TIME).
// It reports whether the sattr3 sets the size.
func skipSattr3(r *xdrReader) (setsSize bool) {
	for i := 0; i < 3; i++ {
		if r.u32() == 1 {
			r.u32()
		}
	}
	if r.u32() == 1 {
		setsSize = true
		r.u32()
		r.u32()
	}
	for i := 0; i < 2; i++ {
		if r.u32() == 2 {
			r.u32()
			r.u32()
		}
	}
	return setsSize
}

// argsBounded checks every length-prefixed argument after the leading
// file handle against the bytes the record holds, before go-nfs allocates
// what a client claims (a 40-byte MKDIR could claim an 800 MB name). r is
// positioned after the handle.
func argsBounded(proc uint32, r *xdrReader) bool {
	name := func() { r.opaque(1 << 16) }
	switch proc {
	case 3, 9, 11, 12, 13: // LOOKUP MKDIR MKNOD REMOVE RMDIR: a name first
		name()
	case 8: // CREATE: name, how
		name()
	case 10: // SYMLINK: name, sattr3, path
		name()
		skipSattr3(r)
		r.opaque(1 << 16)
	case 14: // RENAME: name, to handle, to name
		name()
		r.opaque(maxHandle)
		name()
	case 15: // LINK: directory handle, name
		r.opaque(maxHandle)
		name()
	case 7: // WRITE: offset, count, stable, data
		r.u32()
		r.u32()
		r.u32()
		r.u32()
		r.opaque(maxIO)
	}
	return r.err == nil
}

// setAttrGuard checks a SETATTR's ctime guard against the real ctime (go-nfs
// compares against a ctime it derives from mtime) and strips it before
// go-nfs sees the call. It returns a NOT_SYNC reply, or nil to pass on.
func (s *Server) setAttrGuard(c call, rec []byte, r *xdrReader, fh []byte, client string) []byte {
	setsSize := skipSattr3(r)
	guardAt := r.off
	var sec, nsec uint32
	check := r.u32()
	if check != 0 {
		sec, nsec = r.u32(), r.u32()
	}
	if r.err != nil {
		return nil // go-nfs answers malformed arguments
	}
	_, n, ex, st := s.object(fh, client)
	if st != nfs3OK {
		return nil
	}
	if setsSize && !ex.ReadOnly {
		// As knfsd: a size is for regular files only.
		switch n.Type {
		case meta.TypeDir:
			return statusReply(c.xid, nfs3ErrIsDir, 2)
		case meta.TypeSymlink:
			return statusReply(c.xid, nfs3ErrInval, 2)
		}
	}
	if check == 0 {
		return nil
	}
	if int64(sec)*1e9+int64(nsec) != n.Ctime {
		return statusReply(c.xid, nfs3ErrNotSync, 2) // wcc_data
	}
	// The guard holds: clear it in place (check = 0, nfstime dropped) by
	// marking the record's arguments as ending at the check word.
	binary.BigEndian.PutUint32(rec[guardAt:], 0)
	return nil
}

// statusReply is a failed NFS reply: the status, then `empty` zero words
// (each an absent post_op_attr or half of an empty wcc_data).
func statusReply(xid, st uint32, empty int) []byte {
	w := accepted(xid, acceptSuccess)
	w.u32(st)
	for i := 0; i < empty; i++ {
		w.u32(0)
	}
	return w.b
}

// object resolves a handle for a call the front answers: its inode and
// volume export, or the NFS status to answer instead.
func (s *Server) object(fh []byte, client string) (FileID, *meta.Inode, meta.Export, uint32) {
	id, n, v, st := s.objectVol(fh, client)
	if st != nfs3OK {
		return id, nil, meta.Export{}, st
	}
	return id, n, v.Export, st
}

// objectVol is object with the whole volume (the data paths need its
// chunk size), read once.
func (s *Server) objectVol(fh []byte, client string) (FileID, *meta.Inode, *meta.Volume, uint32) {
	id, n, err := s.h.inodeFor(fh)
	var v *meta.Volume
	if err == nil {
		if v, err = s.h.meta.FSM().VolumeByID(id.Vol); err == nil && !v.Export.Allows(clientIP(client)) {
			err = vfs.ErrAccess
		}
	}
	if err != nil {
		st := nfsStatus(err)
		if st == 0 || st == nfs3ErrNoEnt {
			st = nfs3ErrStale
		}
		return id, nil, nil, st
	}
	return id, n, v, nfs3OK
}

// ACCESS3 bits (RFC 1813 §3.3.4).
const (
	accessRead    = 0x01
	accessLookup  = 0x02
	accessModify  = 0x04
	accessExtend  = 0x08
	accessDelete  = 0x10
	accessExecute = 0x20
)

// access answers ACCESS from the object's mode and the caller after the
// export's squashing (go-nfs grants everything).
func (s *Server) access(c call, fh []byte, want uint32, client string) []byte {
	_, n, ex, st := s.object(fh, client)
	if st != nfs3OK {
		return statusReply(c.xid, st, 1)
	}
	w := accepted(c.xid, acceptSuccess)
	o := squash(c.cred, ex)
	var got uint32
	if o.May(n, vfs.MayRead) {
		got |= accessRead
	}
	writable := !ex.ReadOnly && o.May(n, vfs.MayWrite)
	if n.Type == meta.TypeDir {
		if o.May(n, vfs.MayExec) {
			got |= accessLookup
		}
		if writable {
			got |= accessModify | accessExtend | accessDelete
		}
	} else {
		if writable {
			got |= accessModify | accessExtend
		}
		if o.May(n, vfs.MayExec) {
			got |= accessExecute
		}
	}
	w.u32(nfs3OK)
	w.u32(0) // no attributes
	w.u32(got & want)
	return w.b
}

func clientIP(client string) net.IP {
	host, _, err := net.SplitHostPort(client)
	if err != nil {
		host = client
	}
	return net.ParseIP(host)
}

// rewriteStatus replaces the generic status go-nfs gave a failed call
// (mostly EIO) with the one the recorded cause maps to.
func rewriteStatus(reply []byte, cause error) {
	if cause == nil {
		return
	}
	at := replyStatusOffset(reply)
	if at < 0 {
		return
	}
	st := binary.BigEndian.Uint32(reply[at:])
	if st == nfs3OK || !genericStatus(st) {
		return
	}
	if mapped := nfsStatus(cause); mapped != 0 {
		binary.BigEndian.PutUint32(reply[at:], mapped)
	}
}

// rewriteExclusiveCreate turns an EXCLUSIVE CREATE (which go-nfs refuses)
// into a GUARDED one that stores the verifier as the new file's atime and
// mtime, as knfsd does. A retransmission with the same XID is answered from
// the replicated duplicate-request table; one with a new XID (the client
// lost the reply and the DRC entry aged out, or it never reached this
// node) finds the name taken and is told success when the file's times
// still hold its verifier (exclusiveMatch). The client follows a
// successful exclusive create with a SETATTR of the real mode and times.
// Other creates pass unchanged.
func rewriteExclusiveCreate(c *call, rec []byte) ([]byte, error) {
	r := &xdrReader{b: rec, off: c.args}
	r.opaque(maxHandle) // directory
	r.opaque(4096)      // name (its length is checked where it is used)
	modeAt := r.off
	mode := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	if mode != createExclusive {
		return rec, nil
	}
	sec, nsec := r.u32(), r.u32()
	if r.err != nil {
		return nil, r.err
	}
	c.exclusive = true
	c.verf = time.Unix(int64(sec), int64(nsec)).UnixNano()
	w := &replyWriter{b: append([]byte(nil), rec[:modeAt]...)}
	w.u32(createGuarded)
	for i := 0; i < 4; i++ {
		w.u32(0) // mode, uid, gid, size: not set
	}
	for i := 0; i < 2; i++ {
		w.u32(2) // atime, mtime: SET_TO_CLIENT_TIME
		w.u32(sec)
		w.u32(nsec)
	}
	return w.b, nil
}

// exclusiveMatch answers an EXCLUSIVE CREATE that found its name taken:
// success with the file's handle when the file holds the call's verifier
// (an earlier copy of this create made it), else nil.
func (s *Server) exclusiveMatch(c call, rec []byte) []byte {
	r := &xdrReader{b: rec, off: c.args}
	dir := r.opaque(maxHandle)
	name := r.opaque(meta.MaxNameLen)
	if r.err != nil {
		return nil
	}
	id, parent, err := s.h.inodeFor(dir)
	if err != nil {
		return nil
	}
	holds := func() (*meta.Inode, bool) {
		n, err := s.h.meta.FSM().Lookup(id.Vol, parent.Ino, string(name))
		return n, err == nil && n.Type == meta.TypeFile && n.Mtime == c.verf && n.Atime == c.verf
	}
	n, ok := holds()
	if !ok {
		// This node may not yet have applied the times the first copy
		// set (it ran elsewhere): catch up and look again.
		ctx, cancel := context.WithTimeout(context.Background(), s.h.cfg.StaleCheckTimeout)
		err := s.h.meta.CatchUp(ctx)
		cancel()
		if err != nil {
			return nil
		}
		if n, ok = holds(); !ok {
			return nil
		}
	}
	w := accepted(c.xid, acceptSuccess)
	w.u32(nfs3OK)
	w.u32(1)
	w.opaque(s.h.codec.Encode(FileID{Vol: id.Vol, Ino: n.Ino, Gen: n.Gen}))
	w.u32(1)
	w.fattr3(id.Vol, n)
	w.u32(0) // wcc_data: no pre-op attributes
	w.u32(1)
	w.fattr3(id.Vol, parent)
	return w.b
}

// rewriteLink turns a LINK3args call (file handle, then the directory and
// name of the new link) into the layout go-nfs v0.0.4 parses for LINK
// (directory, name, sattr3, target path), with the target given as the
// inode token of the file.
func (s *Server) rewriteLink(c call, rec []byte) ([]byte, error) {
	if c.proc != nfsProcLink {
		return rec, nil
	}
	r := &xdrReader{b: rec, off: c.args}
	file := r.opaque(maxHandle)
	dir := r.opaque(maxHandle)
	name := r.opaque(4096)
	if r.err != nil {
		return nil, r.err
	}
	ino, ok := s.h.handleInode(file)
	if !ok {
		// An unknown file: let go-nfs report the directory or name error,
		// and link to a target that does not resolve.
		ino = 0
	}
	w := &replyWriter{b: append([]byte(nil), rec[:c.args]...)}
	w.opaque(dir)
	w.opaque(name)
	for i := 0; i < 6; i++ {
		w.u32(0) // sattr3: set nothing
	}
	w.opaque([]byte(vfs.Token(ino)))
	return w.b, nil
}

// fixLinkReply turns go-nfs's LINK reply (laid out like SYMLINK's: status,
// post_op_fh3, post_op_attr, wcc_data) into LINK3res (status, post_op_attr,
// wcc_data), and adds the post_op_attr its error replies lack.
func fixLinkReply(b []byte) []byte {
	r := &xdrReader{b: b}
	r.u32() // xid
	r.u32() // reply
	if r.u32() != msgAccepted {
		return b
	}
	r.u32()       // verifier flavor
	r.opaque(400) // verifier
	if r.u32() != acceptSuccess || r.err != nil {
		return b
	}
	statusAt := r.off
	status := r.u32()
	if r.err != nil {
		return b
	}
	rest := r.off
	out := append([]byte(nil), b[:statusAt]...)
	out = binary.BigEndian.AppendUint32(out, status)
	if status != 0 {
		out = binary.BigEndian.AppendUint32(out, 0) // no file attributes
		return append(out, b[rest:]...)
	}
	if r.u32() == 1 {
		r.opaque(maxHandle) // the handle go-nfs added
	}
	if r.err != nil {
		return b
	}
	return append(out, b[r.off:]...)
}
