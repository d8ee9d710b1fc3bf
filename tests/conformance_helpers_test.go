package tests

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
)

// Raw ONC RPC for the conformance test: calls with a chosen AUTH_SYS
// identity on one kept-open connection, and a strict XDR decoder that
// reports replies whose layout differs from RFC 1813's.

const (
	mountProgram = 100005
	nfsProgram   = 100003
)

// NFSv3 procedure numbers (RFC 1813 §3.3).
const (
	nfsNull = iota
	nfsGetattr
	nfsSetattr
	nfsLookup
	nfsAccess
	nfsReadlink
	nfsRead
	nfsWrite
	nfsCreate
	nfsMkdir
	nfsSymlink
	nfsMknod
	nfsRemove
	nfsRmdir
	nfsRename
	nfsLink
	nfsReaddir
	nfsReaddirplus
	nfsFsstat
	nfsFsinfo
	nfsPathconf
	nfsCommit
)

// MOUNTv3 procedure numbers (RFC 1813 §5.2).
const (
	mountNull = iota
	mountMnt
	mountDump
	mountUmnt
	mountUmntall
	mountExport
)

// NFSv3 statuses the test expects (RFC 1813 §2.6).
const (
	st3OK          = 0
	st3Perm        = 1
	st3NoEnt       = 2
	st3Acces       = 13
	st3Exist       = 17
	st3NotDir      = 20
	st3IsDir       = 21
	st3Inval       = 22
	st3ROFS        = 30
	st3NameTooLong = 63
	st3NotEmpty    = 66
	st3Stale       = 70
	st3BadHandle   = 10001
	st3NotSync     = 10002
	st3BadType     = 10007
)

// stName names an NFS status for messages.
func stName(st uint32) string { return fmt.Sprintf("%s (%d)", nfsErr(nfsc.NFS3Error(st)), st) }

// xidSource hands out XIDs unique within one test: the gateway's
// duplicate-request table would answer a reused XID with identical
// arguments from its record.
type xidSource struct{ next uint32 }

func (x *xidSource) take() uint32 { x.next++; return x.next }

// rawClient sends raw calls to one gateway as one AUTH_SYS identity.
type rawClient struct {
	t        *testing.T
	addr     string
	uid, gid uint32
	xids     *xidSource
	conn     net.Conn
}

func newRawClient(t *testing.T, addr string, uid, gid uint32, xids *xidSource) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, addr: addr, uid: uid, gid: gid, xids: xids, conn: conn}
}

// on returns a client on the same connection reporting to t.
func (r *rawClient) on(t *testing.T) *rawClient {
	c := *r
	c.t = t
	return &c
}

// call sends one call and returns the accept status (1000+reject_stat for
// a denied reply) and the bytes after it.
func (r *rawClient) call(prog, vers, proc uint32, args []byte) (uint32, []byte) {
	r.t.Helper()
	xid := r.xids.take()
	cred := (&xdrBuf{}).u32(1).opaque([]byte("fsrep-conformance")).u32(r.uid).u32(r.gid).u32(1).u32(r.gid).b
	msg := (&xdrBuf{}).u32(xid).u32(0).u32(2).u32(prog).u32(vers).u32(proc).u32(1).opaque(cred).u32(0).u32(0)
	msg.b = append(msg.b, args...)
	rec := append(binary.BigEndian.AppendUint32(nil, uint32(len(msg.b))|1<<31), msg.b...)
	if err := r.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.conn.Write(rec); err != nil {
		r.t.Fatalf("call %d.%d to %s: %v", prog, proc, r.addr, err)
	}
	acc, body, err := readReply(r.conn, xid)
	if err != nil {
		r.t.Fatalf("reply to %d.%d from %s: %v", prog, proc, r.addr, err)
	}
	return acc, body
}

// nfs sends an NFSv3 call that must be accepted with SUCCESS and returns a
// decoder of its result, positioned after the NFS status.
func (r *rawClient) nfs(what string, proc uint32, args []byte) (uint32, *xdrDec) {
	r.t.Helper()
	acc, body := r.call(nfsProgram, 3, proc, args)
	if acc != 0 {
		r.t.Fatalf("%s: accept status %d, want 0 (SUCCESS)", what, acc)
	}
	d := &xdrDec{t: r.t, what: what, b: body}
	return d.u32(), d
}

// mount sends a MOUNTv3 call that must be accepted with SUCCESS.
func (r *rawClient) mount(what string, proc uint32, args []byte) *xdrDec {
	r.t.Helper()
	acc, body := r.call(mountProgram, 3, proc, args)
	if acc != 0 {
		r.t.Fatalf("%s: accept status %d, want 0 (SUCCESS)", what, acc)
	}
	return &xdrDec{t: r.t, what: what, b: body}
}

func (x *xdrBuf) u64(v uint64) *xdrBuf { x.b = binary.BigEndian.AppendUint64(x.b, v); return x }

// fixed appends fixed-length opaque data (its length is a multiple of 4).
func (x *xdrBuf) fixed(v []byte) *xdrBuf { x.b = append(x.b, v...); return x }

// dirop appends diropargs3.
func (x *xdrBuf) dirop(dir []byte, name string) *xdrBuf { return x.opaque(dir).opaque([]byte(name)) }

// noSattr appends an sattr3 that sets nothing.
func (x *xdrBuf) noSattr() *xdrBuf { return x.u32(0).u32(0).u32(0).u32(0).u32(0).u32(0) }

// sattrMode appends an sattr3 that sets only the mode.
func (x *xdrBuf) sattrMode(mode uint32) *xdrBuf {
	return x.u32(1).u32(mode).u32(0).u32(0).u32(0).u32(0).u32(0)
}

// sattrSize appends an sattr3 that sets only the size.
func (x *xdrBuf) sattrSize(size uint64) *xdrBuf {
	return x.u32(0).u32(0).u32(0).u32(1).u64(size).u32(0).u32(0)
}

type nfstime struct{ Sec, Nsec uint32 }

// fattr3 (RFC 1813 §2.5).
type fattr3 struct {
	Type, Mode, Nlink, UID, GID uint32
	Size, Used                  uint64
	Rdev                        [2]uint32
	FSID, FileID                uint64
	Atime, Mtime, Ctime         nfstime
}

// xdrDec decodes a reply strictly: a short reply, a bad boolean or bytes
// left over fail the test, naming the call.
type xdrDec struct {
	t    *testing.T
	what string
	b    []byte
	off  int
	bad  bool
}

func (d *xdrDec) fail(format string, args ...any) {
	d.t.Helper()
	if !d.bad {
		d.t.Errorf("%s: reply layout: %s (reply %x)", d.what, fmt.Sprintf(format, args...), d.b)
	}
	d.bad = true
}

func (d *xdrDec) u32() uint32 {
	d.t.Helper()
	if len(d.b)-d.off < 4 {
		d.fail("short at byte %d", d.off)
		d.off = len(d.b)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

func (d *xdrDec) u64() uint64 {
	d.t.Helper()
	return uint64(d.u32())<<32 | uint64(d.u32())
}

func (d *xdrDec) bool() bool {
	d.t.Helper()
	switch v := d.u32(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("boolean %d at byte %d", v, d.off-4)
		return false
	}
}

func (d *xdrDec) fixed(n int) []byte {
	d.t.Helper()
	if len(d.b)-d.off < n {
		d.fail("short at byte %d (want %d bytes)", d.off, n)
		d.off = len(d.b)
		return make([]byte, n)
	}
	v := append([]byte(nil), d.b[d.off:d.off+n]...)
	d.off += (n + 3) &^ 3
	if d.off > len(d.b) {
		d.fail("missing padding")
		d.off = len(d.b)
	}
	return v
}

func (d *xdrDec) opaque() []byte {
	d.t.Helper()
	n := d.u32()
	if int(n) > len(d.b)-d.off {
		d.fail("opaque of %d bytes with %d left", n, len(d.b)-d.off)
		d.off = len(d.b)
		return nil
	}
	return d.fixed(int(n))
}

func (d *xdrDec) time() nfstime {
	d.t.Helper()
	return nfstime{d.u32(), d.u32()}
}

func (d *xdrDec) fattr() fattr3 {
	d.t.Helper()
	var a fattr3
	a.Type, a.Mode, a.Nlink, a.UID, a.GID = d.u32(), d.u32(), d.u32(), d.u32(), d.u32()
	a.Size, a.Used = d.u64(), d.u64()
	a.Rdev = [2]uint32{d.u32(), d.u32()}
	a.FSID, a.FileID = d.u64(), d.u64()
	a.Atime, a.Mtime, a.Ctime = d.time(), d.time(), d.time()
	return a
}

// postOpAttr decodes post_op_attr; nil when absent.
func (d *xdrDec) postOpAttr() *fattr3 {
	d.t.Helper()
	if !d.bool() {
		return nil
	}
	a := d.fattr()
	return &a
}

// wcc decodes wcc_data and returns the post-operation attributes.
func (d *xdrDec) wcc() *fattr3 {
	d.t.Helper()
	if d.bool() { // pre_op_attr: size, mtime, ctime
		d.u64()
		d.time()
		d.time()
	}
	return d.postOpAttr()
}

// postOpFH decodes post_op_fh3; nil when absent.
func (d *xdrDec) postOpFH() []byte {
	d.t.Helper()
	if !d.bool() {
		return nil
	}
	return d.opaque()
}

// end checks that the whole reply was consumed.
func (d *xdrDec) end() {
	d.t.Helper()
	if d.off != len(d.b) {
		d.fail("%d bytes left over after byte %d", len(d.b)-d.off, d.off)
	}
}
