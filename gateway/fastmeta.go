package gateway

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
)

// Namespace calls the front answers itself on a lane's goroutine (see
// dispatch): the common case of each, through the same vfs code the
// go-nfs path runs (permissions, request IDs, error mapping), without
// go-nfs's stat calls, path walks and the lane's pipe. Anything unusual
// (an odd name) returns nil and goes to go-nfs as before.

const (
	nfsProcRemove   = 12
	createUnchecked = 0
)

// quickNamespace answers c if it is one of these calls in its common form,
// else returns nil.
func (s *Server) quickNamespace(c call, rec []byte, rid, client string) []byte {
	if c.prog != nfsProg {
		return nil
	}
	switch c.proc {
	case nfsProcRemove:
		return s.removeFile(c, rec, rid, client)
	case nfsProcCreate:
		if !c.exclusive {
			return s.createFile(c, rec, rid, client)
		}
	}
	return nil
}

// plainName reports whether name is an ordinary entry name: not empty,
// not . or .., no slash or NUL, within the length limit.
func plainName(name []byte) bool {
	n := string(name)
	return n != "" && n != "." && n != ".." && len(n) <= meta.MaxNameLen && !strings.ContainsAny(n, "/\x00")
}

// removeFile answers REMOVE3 (RFC 1813 §3.3.12): status and the
// directory's wcc_data.
func (s *Server) removeFile(c call, rec []byte, rid, client string) []byte {
	r := &xdrReader{b: rec, off: c.args}
	fh := r.opaque(maxHandle)
	name := r.opaque(1 << 16)
	if r.err != nil || !plainName(name) {
		return nil
	}
	id, dir, vol, st := s.objectVol(fh, client)
	if st != nfs3OK {
		return statusReply(c.xid, st, 2) // wcc_data: nothing before, nothing after
	}
	switch {
	case vol.Export.ReadOnly:
		return s.wccReply(c, nfs3ErrROFS, id.Vol, dir, dir)
	case dir.Type != meta.TypeDir:
		return s.wccReply(c, nfs3ErrNotDir, id.Vol, dir, dir)
	}
	fs := s.h.newFS(id.Vol)
	fs.SetOwner(squash(c.cred, vol.Export))
	fs.SetReadOnly(vol.Export.ReadOnly)
	fs.SetRequest(rid)
	fs.SetRemoveKind(vfs.RemoveFile)
	err := fs.Remove(fs.Join(append(vfs.HandlePath(dir), string(name))...))
	after, aerr := s.h.meta.FSM().Inode(id.Vol, dir.Ino)
	if aerr != nil {
		after = nil
	}
	st = nfs3OK
	if err != nil {
		st = statusOr(err, nfs3ErrIO)
	}
	return s.orReplay(c, rec, rid, st, s.wccReply(c, st, id.Vol, dir, after))
}

// orReplay returns reply, unless its status st could be the symptom of a
// retransmission of this call that was applied already (through this node
// or another): then the recorded result, as dispatch does for go-nfs's
// replies.
func (s *Server) orReplay(c call, rec []byte, rid string, st uint32, reply []byte) []byte {
	if rid != "" && retransmitSymptom(st) {
		if replay := s.replayReply(c, rec, rid, true); replay != nil {
			return replay
		}
	}
	return reply
}

// wccReply is a reply made of a status and the wcc_data of one directory:
// its attributes before (pre) and after (nil: unknown) the call.
func (s *Server) wccReply(c call, st uint32, vol uint32, pre, after *meta.Inode) []byte {
	w := accepted(c.xid, acceptSuccess)
	w.u32(st)
	w.wccAttr(pre)
	w.postOpAttr(vol, after)
	return w.b
}

// postOpAttr writes post_op_attr: n's attributes, or none when n is nil.
func (w *replyWriter) postOpAttr(vol uint32, n *meta.Inode) {
	if n == nil {
		w.u32(0)
		return
	}
	w.u32(1)
	w.fattr3(vol, n)
}

// quick runs quickNamespace, answering a panic in it with a system error
// as serveFast does.
func (s *Server) quick(c call, rec []byte, rid, client string) (reply []byte) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic serving an NFS call", "client", client, "xid", c.xid, "proc", c.proc,
				"err", fmt.Errorf("%w: %v", vfs.ErrPanic, p), "stack", string(debug.Stack()))
			reply = accepted(c.xid, acceptSystemErr).b
		}
	}()
	return s.quickNamespace(c, rec, rid, client)
}

// createArgs parses CREATE3args for the front: it reports ok only for an
// UNCHECKED or GUARDED create whose sattr3 sets at most the mode (and
// times to the server's clock, which a new file has anyway).
func createArgs(c call, rec []byte) (fh, name []byte, how uint32, mode int64, ok bool) {
	r := &xdrReader{b: rec, off: c.args}
	fh = r.opaque(maxHandle)
	name = r.opaque(1 << 16)
	how = r.u32()
	if how != createUnchecked && how != createGuarded {
		return nil, nil, 0, 0, false
	}
	mode = -1
	if r.u32() == 1 {
		mode = int64(r.u32() & 0o7777)
	}
	for range 3 { // uid, gid, size
		if r.u32() != 0 {
			return nil, nil, 0, 0, false
		}
	}
	for range 2 { // atime, mtime: DONT_CHANGE or SET_TO_SERVER_TIME
		if r.u32() > 1 {
			return nil, nil, 0, 0, false
		}
	}
	return fh, name, how, mode, r.err == nil && plainName(name)
}

// createFile answers CREATE3 (RFC 1813 §3.3.8) of a new regular file:
// the handle and attributes of the file and the directory's wcc_data. A
// name that exists goes to go-nfs for an UNCHECKED create (which opens the
// file) and is EXIST for a GUARDED one.
func (s *Server) createFile(c call, rec []byte, rid, client string) []byte {
	fh, name, how, mode, ok := createArgs(c, rec)
	if !ok {
		return nil
	}
	id, dir, vol, st := s.objectVol(fh, client)
	if st != nfs3OK {
		return statusReply(c.xid, st, 2)
	}
	switch {
	case vol.Export.ReadOnly:
		return s.wccReply(c, nfs3ErrROFS, id.Vol, dir, dir)
	case dir.Type != meta.TypeDir:
		return s.wccReply(c, nfs3ErrNotDir, id.Vol, dir, dir)
	}
	if _, err := s.h.meta.FSM().Lookup(id.Vol, dir.Ino, string(name)); err == nil {
		if how == createUnchecked {
			return nil
		}
		return s.orReplay(c, rec, rid, nfs3ErrExist, s.wccReply(c, nfs3ErrExist, id.Vol, dir, dir))
	}
	fs := s.h.newFS(id.Vol)
	fs.SetOwner(squash(c.cred, vol.Export))
	fs.SetReadOnly(false)
	fs.SetRequest(rid)
	fs.SetModeHint(mode)
	path := fs.Join(append(vfs.HandlePath(dir), string(name))...)
	_, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil && how == createUnchecked && errors.Is(err, meta.ErrExist) {
		err = nil // created meanwhile by another call: UNCHECKED opens it
	}
	var n *meta.Inode
	if err == nil {
		n, err = s.h.meta.FSM().Lookup(id.Vol, dir.Ino, string(name))
	}
	if err == nil && n.Type != meta.TypeFile {
		err = meta.ErrExist // UNCHECKED opens a file, not what took its name
	}
	after, aerr := s.h.meta.FSM().Inode(id.Vol, dir.Ino)
	if aerr != nil {
		after = nil
	}
	if err != nil {
		st := statusOr(err, nfs3ErrIO)
		return s.orReplay(c, rec, rid, st, s.wccReply(c, st, id.Vol, dir, after))
	}
	w := accepted(c.xid, acceptSuccess)
	w.u32(nfs3OK)
	w.u32(1)
	w.opaque(s.h.codec.Encode(FileID{Vol: id.Vol, Ino: n.Ino, Gen: n.Gen}))
	w.postOpAttr(id.Vol, n)
	w.wccAttr(dir)
	w.postOpAttr(id.Vol, after)
	return w.b
}
