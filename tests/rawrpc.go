package tests

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// xdrBuf builds raw XDR for calls go-nfs-client cannot make (a chosen XID).
type xdrBuf struct{ b []byte }

func (x *xdrBuf) u32(v uint32) *xdrBuf { x.b = binary.BigEndian.AppendUint32(x.b, v); return x }
func (x *xdrBuf) opaque(v []byte) *xdrBuf {
	x.u32(uint32(len(v)))
	x.b = append(x.b, v...)
	for len(x.b)%4 != 0 {
		x.b = append(x.b, 0)
	}
	return x
}

// rawCall sends one NFSv3 call with the given XID and AUTH_SYS identity
// (uid 0) on a fresh connection and returns the reply's accept status and
// the bytes after it.
func rawCall(addr string, xid, proc uint32, args []byte) (uint32, []byte, error) {
	return rawCallTo(addr, rpcCallHeader{xid: xid, rpcvers: 2, prog: 100003, vers: 3, proc: proc}, args)
}

type rpcCallHeader struct{ xid, rpcvers, prog, vers, proc uint32 }

func (h rpcCallHeader) encode(args []byte) []byte {
	cred := (&xdrBuf{}).u32(1).opaque([]byte("fsrep-test")).u32(0).u32(0).u32(0).b
	msg := (&xdrBuf{}).u32(h.xid).u32(0).u32(h.rpcvers).u32(h.prog).u32(h.vers).u32(h.proc).u32(1).opaque(cred).u32(0).u32(0)
	msg.b = append(msg.b, args...)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(msg.b))|1<<31), msg.b...)
}

// rawCallTo is rawCall with every header field chosen.
func rawCallTo(addr string, h rpcCallHeader, args []byte) (uint32, []byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := conn.Write(h.encode(args)); err != nil {
		return 0, nil, err
	}
	return readReply(conn, h.xid)
}

// readReply reads one reply record and returns, for an accepted reply, the
// accept status and the bytes after it; for a denied one, 1000+reject_stat.
func readReply(conn net.Conn, xid uint32) (uint32, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:])&^(1<<31))
	if _, err := io.ReadFull(conn, body); err != nil {
		return 0, nil, err
	}
	if len(body) < 16 || binary.BigEndian.Uint32(body) != xid {
		return 0, nil, fmt.Errorf("bad reply of %d bytes", len(body))
	}
	if binary.BigEndian.Uint32(body[8:]) == 1 { // MSG_DENIED
		return 1000 + binary.BigEndian.Uint32(body[12:]), body[16:], nil
	}
	if len(body) < 24 {
		return 0, nil, fmt.Errorf("bad reply of %d bytes", len(body))
	}
	vlen := binary.BigEndian.Uint32(body[16:])
	off := 20 + int((vlen+3)&^3)
	if len(body) < off+4 {
		return 0, nil, fmt.Errorf("short reply")
	}
	return binary.BigEndian.Uint32(body[off:]), body[off+4:], nil
}
