package gateway

import (
	"encoding/binary"
	"os"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
)

// File attributes (fattr3) as every reply carries them. The front encodes
// them from the metadata for the procedures it answers; for the ones go-nfs
// answers, fixAttrs rewrites go-nfs's attributes in place, because go-nfs
// fills fattr3 from os.FileInfo: Go's mode bits (type bits above bit 16,
// setuid/setgid/sticky at Go's positions), ctime = atime = mtime, and fsid
// 0 for every volume.

// fattr3Size is the encoded size of a fattr3: 13 fields, 84 bytes.
const fattr3Size = 84

// Offsets of the fattr3 fields the fixer reads or patches.
const (
	fattrMode   = 4
	fattrFsid   = 44
	fattrFileID = 52
)

// fattr3 writes an inode's attributes (RFC 1813 fattr3). fsid is the
// volume ID: stable on every node, distinct per volume (an export is one
// file system to the client).
func (w *replyWriter) fattr3(vol uint32, n *meta.Inode) {
	switch n.Type {
	case meta.TypeDir:
		w.u32(2)
	case meta.TypeSymlink:
		w.u32(5)
	default:
		w.u32(1)
	}
	w.u32(n.Mode & 0o7777)
	w.u32(n.Nlink)
	w.u32(n.UID)
	w.u32(n.GID)
	w.u64(n.Size)
	w.u64(used(n))
	w.u32(0) // rdev
	w.u32(0)
	w.u64(uint64(vol)) // fsid
	w.u64(n.Ino)
	for _, t := range []int64{n.Atime, n.Mtime, n.Ctime} {
		w.u32(uint32(t / 1e9))
		w.u32(uint32(t % 1e9))
	}
}

// used is the space a file takes, as du reports it: the size rounded up to
// 4 KiB blocks (replicas are not counted; FSSTAT reports raw capacity).
func used(n *meta.Inode) uint64 {
	return (n.Size + 4095) &^ 4095
}

// fixAttrs rewrites, in place, every fattr3 in a reply go-nfs gave to an
// NFS call on volume vol: from the metadata when the object still exists
// (the reply is written after the change was applied on this node), else
// with the mode bits converted and the fsid set. The layout walked is
// RFC 1813's result for each procedure; LINK's reply must already be in
// LINK3res form (fixLinkReply).
func (s *Server) fixAttrs(reply []byte, proc, vol uint32) {
	at := replyStatusOffset(reply)
	if at < 0 {
		return
	}
	r := &xdrReader{b: reply, off: at}
	status := r.u32()
	switch proc {
	case 2, 12, 13, 7, 21: // SETATTR REMOVE RMDIR WRITE COMMIT: wcc_data first
		s.fixWcc(r, vol)
	case 5, 6: // READLINK READ: post_op_attr first
		s.fixPostOp(r, vol)
	case 8, 9, 10: // CREATE MKDIR SYMLINK
		if status == nfs3OK {
			if r.u32() == 1 {
				r.opaque(maxHandle)
			}
			s.fixPostOp(r, vol)
		}
		s.fixWcc(r, vol)
	case 14: // RENAME: two wcc_data
		s.fixWcc(r, vol)
		s.fixWcc(r, vol)
	case 15: // LINK: post_op_attr, wcc_data
		s.fixPostOp(r, vol)
		s.fixWcc(r, vol)
	}
}

func (s *Server) fixWcc(r *xdrReader, vol uint32) {
	if r.u32() == 1 {
		r.off += 24 // wcc_attr: size, mtime, ctime (before the change)
	}
	s.fixPostOp(r, vol)
}

func (s *Server) fixPostOp(r *xdrReader, vol uint32) {
	if r.u32() != 1 || r.err != nil || r.off+fattr3Size > len(r.b) {
		return
	}
	s.fixFattr3(r.b[r.off:r.off+fattr3Size], vol)
	r.off += fattr3Size
}

func (s *Server) fixFattr3(b []byte, vol uint32) {
	ino := binary.BigEndian.Uint64(b[fattrFileID:])
	if n, err := s.h.meta.FSM().Inode(vol, ino); err == nil {
		w := &replyWriter{b: b[:0]}
		w.fattr3(vol, n)
		return
	}
	binary.BigEndian.PutUint32(b[fattrMode:], vfs.ToMode(os.FileMode(binary.BigEndian.Uint32(b[fattrMode:]))))
	binary.BigEndian.PutUint64(b[fattrFsid:], uint64(vol))
}

// fixReply fixes the attributes of a reply go-nfs gave to call c (rec is
// the call as the client sent it).
func (s *Server) fixReply(c call, rec []byte, reply []byte) {
	if id, ok := s.firstHandle(c, rec); ok {
		s.fixAttrs(reply, c.proc, id.Vol)
	}
}

// firstHandle decodes the file handle an NFS call's arguments start with.
func (s *Server) firstHandle(c call, rec []byte) (FileID, bool) {
	r := &xdrReader{b: rec, off: c.args}
	fh := r.opaque(maxHandle)
	if r.err != nil {
		return FileID{}, false
	}
	id, err := s.h.codec.Decode(fh)
	return id, err == nil
}

// nameTaken reports whether the directory and name a call starts with
// (MKDIR, CREATE, SYMLINK) name an existing entry.
func (s *Server) nameTaken(c call, rec []byte) bool {
	r := &xdrReader{b: rec, off: c.args}
	dir := r.opaque(maxHandle)
	name := r.opaque(meta.MaxNameLen)
	if r.err != nil {
		return false
	}
	id, parent, err := s.h.inodeFor(dir)
	if err != nil {
		return false
	}
	_, err = s.h.meta.FSM().Lookup(id.Vol, parent.Ino, string(name))
	return err == nil
}
