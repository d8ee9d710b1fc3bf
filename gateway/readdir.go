package gateway

import (
	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
)

// READDIR and READDIRPLUS are answered by the front: go-nfs re-reads and
// re-sorts the whole directory for every page (O(n^2) for a big
// directory). Here a page seeks straight to its cookie in the metadata
// store, where entries are kept in cookie order (meta.DirCookie), so a
// listing costs O(n) and resumes on any node. "." and ".." come first with
// cookies 1 and 2. The cookie verifier is always zero: cookies stay valid
// while the directory changes.

const (
	nfsProcReadDir     = 16
	nfsProcReadDirPlus = 17

	nfs3ErrTooSmall = 10005
	cookieDot       = 1
	cookieDotDot    = 2
)

// readDir answers READDIR (plus=false) or READDIRPLUS.
func (s *Server) readDir(c call, rec []byte, client string, plus bool) []byte {
	r := &xdrReader{b: rec, off: c.args}
	fh := r.opaque(maxHandle)
	cookie := uint64(r.u32())<<32 | uint64(r.u32())
	r.u32() // cookie verifier, ignored: cookies are stable
	r.u32()
	dircount := r.u32()
	maxcount := dircount
	if plus {
		maxcount = r.u32()
	}
	if r.err != nil {
		return accepted(c.xid, acceptGarbageArgs).b
	}
	fail := func(st uint32) []byte { return statusReply(c.xid, st, 1) } // resfail: post_op_attr
	id, dir, ex, st := s.object(fh, client)
	if st != nfs3OK {
		return fail(st)
	}
	w := accepted(c.xid, acceptSuccess)
	if dir.Type != meta.TypeDir {
		return fail(nfs3ErrNotDir)
	}
	if !squash(c.cred, ex).May(dir, vfs.MayRead) {
		return fail(nfs3ErrAcces)
	}

	type entry struct {
		name   string
		cookie uint64
		n      *meta.Inode
	}
	var ents []entry
	if cookie < cookieDot {
		ents = append(ents, entry{".", cookieDot, dir})
	}
	if cookie < cookieDotDot {
		parent := dir
		if p, err := s.h.meta.FSM().Inode(id.Vol, dir.Parent); err == nil {
			parent = p
		}
		ents = append(ents, entry{"..", cookieDotDot, parent})
	}
	// Fetch a little more than can fit: the smallest entry takes 24 bytes
	// of dircount.
	limit := min(int(dircount)/24+2, 8192)
	from := cookie
	if from < cookieDotDot {
		from = 0
	}
	list, inodes, err := s.h.meta.FSM().ReadDir(id.Vol, dir.Ino, from, limit)
	if err != nil {
		return fail(nfsStatusOr(err, nfs3ErrIO))
	}
	for i := range list {
		ents = append(ents, entry{list[i].Name, list[i].Cookie, &inodes[i]})
	}

	w.u32(nfs3OK)
	w.u32(1)
	w.fattr3(id.Vol, dir)
	w.u64(0)             // cookie verifier
	const rpcHeader = 24 // xid .. accept status: not part of the result
	dirUsed, n := 0, 0
	for _, e := range ents {
		nameLen := (len(e.name) + 3) &^ 3
		dirSize := 8 + 4 + nameLen + 8
		size := 4 + dirSize
		var handle []byte
		if plus {
			handle = s.h.codec.Encode(FileID{Vol: id.Vol, Ino: e.n.Ino, Gen: e.n.Gen})
			size += 4 + fattr3Size + 4 + 4 + len(handle)
		}
		// maxcount bounds the whole result, the end of the list
		// (value_follows 0, eof) included; dircount the names and cookies.
		if dirUsed+dirSize > int(dircount) || len(w.b)-rpcHeader+size+8 > int(maxcount) {
			break
		}
		w.u32(1)
		w.u64(e.n.Ino)
		w.opaque([]byte(e.name))
		w.u64(e.cookie)
		if plus {
			w.u32(1)
			w.fattr3(id.Vol, e.n)
			w.u32(1)
			w.opaque(handle)
		}
		dirUsed += dirSize
		n++
	}
	if n == 0 && len(ents) > 0 {
		return fail(nfs3ErrTooSmall)
	}
	w.u32(0)
	eof := n == len(ents) && len(list) < limit
	if eof {
		w.u32(1)
	} else {
		w.u32(0)
	}
	return w.b
}

// nfsStatusOr maps err, or returns def when nfsStatus has no better answer.
func nfsStatusOr(err error, def uint32) uint32 {
	if st := nfsStatus(err); st != 0 {
		return st
	}
	return def
}
