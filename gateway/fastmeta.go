package gateway

import (
	"fmt"
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

const nfsProcRemove = 12

// quickNamespace answers c if it is one of these calls in its common form,
// else returns nil.
func (s *Server) quickNamespace(c call, rec []byte, rid, client string) []byte {
	if c.prog != nfsProg {
		return nil
	}
	switch c.proc {
	case nfsProcRemove:
		return s.removeFile(c, rec, rid, client)
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
	reply := s.wccReply(c, st, id.Vol, dir, after)
	if rid != "" && retransmitSymptom(st) {
		// Perhaps a retransmission of a call this node had not heard yet
		// was applied (as dispatch does for go-nfs's replies).
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
	if after == nil {
		w.u32(0)
	} else {
		w.u32(1)
		w.fattr3(vol, after)
	}
	return w.b
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
