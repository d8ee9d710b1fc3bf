package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net"

	"github.com/fsrep/fsrep/meta"
)

// Retransmissions. A client that gets no reply (its server died, the
// reply was lost) sends the same call again with the same XID, possibly to
// another node. For the procedures that change the namespace, a second
// execution would answer EEXIST or ENOENT for a change that succeeded. So
// each such call gets a request ID derived from the client and the call
// itself; the metadata change it makes carries that ID and its result is
// kept in the replicated duplicate-request table (15 minutes). A
// retransmission whose ID the table knows as applied is answered success
// from the record, on any node.

// NFSv3 procedures that change the namespace or attributes.
var mutatingProcs = map[uint32]bool{
	2:  true, // SETATTR
	8:  true, // CREATE
	9:  true, // MKDIR
	10: true, // SYMLINK
	11: true, // MKNOD
	12: true, // REMOVE
	13: true, // RMDIR
	14: true, // RENAME
	15: true, // LINK
}

// requestID identifies a call across retransmissions and nodes: the
// client's host, its AUTH_SYS identity, the XID, the procedure and the
// argument bytes.
func requestID(client string, c call, rec []byte) string {
	host, _, err := net.SplitHostPort(client)
	if err != nil {
		host = client
	}
	h := sha256.New()
	h.Write([]byte(host))
	h.Write([]byte{0})
	h.Write([]byte(c.cred.Machine))
	var b [20]byte
	binary.BigEndian.PutUint32(b[0:], c.cred.UID)
	binary.BigEndian.PutUint32(b[4:], c.cred.GID)
	binary.BigEndian.PutUint32(b[8:], c.xid)
	binary.BigEndian.PutUint32(b[12:], c.prog)
	binary.BigEndian.PutUint32(b[16:], c.proc)
	h.Write(b[:])
	h.Write(rec[c.args:])
	return "nfs-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// replayReply returns a success reply for a retransmitted call whose
// change was already applied, or nil when the call must run. When the local
// node does not know the request, it catches up with the leader first if
// catchUp is set (used after go-nfs answered a retransmission-like error).
func (s *Server) replayReply(c call, rec []byte, rid string, catchUp bool) []byte {
	res, ok, err := s.h.meta.FSM().RequestResult(rid)
	if (!ok || err != nil) && catchUp {
		ctx, cancel := context.WithTimeout(context.Background(), s.h.cfg.StaleCheckTimeout)
		cerr := s.h.meta.CatchUp(ctx)
		cancel()
		if cerr == nil {
			res, ok, err = s.h.meta.FSM().RequestResult(rid)
		}
	}
	if err != nil || !ok || res.Code != meta.CodeOK {
		return nil
	}
	w := accepted(c.xid, acceptSuccess)
	w.u32(nfs3OK)
	switch c.proc {
	case 8, 9, 10, 11: // CREATE MKDIR SYMLINK MKNOD: post_op_fh3, post_op_attr, wcc_data
		r := &xdrReader{b: rec, off: c.args}
		dir := r.opaque(maxHandle)
		id, derr := s.h.codec.Decode(dir)
		if r.err != nil || derr != nil || res.Inode == nil {
			return nil
		}
		w.u32(1)
		w.opaque(s.h.codec.Encode(FileID{Vol: id.Vol, Ino: res.Inode.Ino, Gen: res.Inode.Gen}))
		w.u32(0)
		w.u32(0)
		w.u32(0)
	case 14: // RENAME: two wcc_data
		w.u32(0)
		w.u32(0)
		w.u32(0)
		w.u32(0)
	case 15: // LINK: post_op_attr, wcc_data
		w.u32(0)
		w.u32(0)
		w.u32(0)
	default: // SETATTR REMOVE RMDIR: wcc_data
		w.u32(0)
		w.u32(0)
	}
	return w.b
}

// retransmitSymptom reports whether a failed reply status is what a
// second execution of an already applied call would produce.
func retransmitSymptom(st uint32) bool {
	return st == nfs3ErrExist || st == nfs3ErrNoEnt || st == nfs3ErrNotEmpty || st == nfs3ErrNotDir
}
