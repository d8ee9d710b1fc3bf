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
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	cred := (&xdrBuf{}).u32(1).opaque([]byte("fsrep-test")).u32(0).u32(0).u32(0).b
	msg := (&xdrBuf{}).u32(xid).u32(0).u32(2).u32(100003).u32(3).u32(proc).u32(1).opaque(cred).u32(0).u32(0)
	msg.b = append(msg.b, args...)
	rec := binary.BigEndian.AppendUint32(nil, uint32(len(msg.b))|1<<31)
	if _, err := conn.Write(append(rec, msg.b...)); err != nil {
		return 0, nil, err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:])&^(1<<31))
	if _, err := io.ReadFull(conn, body); err != nil {
		return 0, nil, err
	}
	if len(body) < 24 || binary.BigEndian.Uint32(body) != xid {
		return 0, nil, fmt.Errorf("bad reply of %d bytes", len(body))
	}
	vlen := binary.BigEndian.Uint32(body[16:])
	off := 20 + int((vlen+3)&^3)
	if len(body) < off+4 {
		return 0, nil, fmt.Errorf("short reply")
	}
	return binary.BigEndian.Uint32(body[off:]), body[off+4:], nil
}
