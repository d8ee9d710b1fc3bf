package workload

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

// conn is one synchronous ONC RPC connection to a gateway (MOUNT and NFS
// on one port), one call at a time, every call bounded by a deadline.
//
// go-nfs-client's own rpc.Client retransmits a call up to 100 times with
// 5 s timeouts (minutes against a frozen server) and reconnects to the same
// address by itself, which is the opposite of what an application server
// with a soft mount does; so the workload frames its calls itself and uses
// go-nfs-client only for XDR and the protocol types.
type conn struct {
	addr    string
	c       net.Conn
	r       *bufio.Reader
	auth    rpc.Auth
	timeout time.Duration
	xid     uint32
}

const (
	progMount = 100005
	progNFS   = 100003
	procMnt   = 1

	procLookup = 3
	procRead   = 6
	procWrite  = 7
	procCreate = 8

	nfsStale = 70
	fileSync = 2
)

// errStatus is an NFS (or MOUNT) status other than OK.
type errStatus struct {
	proc string
	code uint32
}

func (e *errStatus) Error() string {
	name := fmt.Sprint(e.code)
	var ne *nfsc.Error
	if err := nfsc.NFS3Error(e.code); errors.As(err, &ne) {
		name = ne.ErrorString
	} else if err != nil {
		name = err.Error()
	}
	return fmt.Sprintf("%s: status %s", e.proc, name)
}

// isStale reports whether err is NFS3ERR_STALE.
func isStale(err error) bool {
	var se *errStatus
	return errors.As(err, &se) && se.code == nfsStale
}

func dial(addr string, timeout time.Duration, xid uint32) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &conn{
		addr: addr, c: c, r: bufio.NewReader(c), timeout: timeout, xid: xid,
		auth: rpc.NewAuthUnix("fsrep-workload", 0, 0).Auth(),
	}, nil
}

func (c *conn) Close() error { return c.c.Close() }

// call sends one call and returns the reply body after an accepted,
// successful accept status.
func (c *conn) call(prog, proc uint32, args interface{}) (*bytes.Reader, error) {
	c.xid++
	var w bytes.Buffer
	w.Write(make([]byte, 4)) // record mark, filled below
	hdr := struct {
		Xid, Msgtype uint32
		rpc.Header
	}{Xid: c.xid, Header: rpc.Header{Rpcvers: 2, Prog: prog, Vers: 3, Proc: proc, Cred: c.auth, Verf: rpc.AuthNull}}
	if err := xdr.Write(&w, hdr); err != nil {
		return nil, err
	}
	if err := xdr.Write(&w, args); err != nil {
		return nil, err
	}
	b := w.Bytes()
	binary.BigEndian.PutUint32(b, uint32(len(b)-4)|1<<31)
	if err := c.c.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return nil, err
	}
	if _, err := c.c.Write(b); err != nil {
		return nil, err
	}
	for {
		body, err := c.readRecord()
		if err != nil {
			return nil, err
		}
		if len(body) < 4 || binary.BigEndian.Uint32(body) != c.xid {
			continue // a late reply to a call we gave up on
		}
		return parseReply(body)
	}
}

func (c *conn) readRecord() ([]byte, error) {
	var out []byte
	for {
		var mark [4]byte
		if _, err := io.ReadFull(c.r, mark[:]); err != nil {
			return nil, err
		}
		m := binary.BigEndian.Uint32(mark[:])
		n := m &^ (1 << 31)
		if n > 64<<20 {
			return nil, fmt.Errorf("rpc: record of %d bytes", n)
		}
		frag := make([]byte, n)
		if _, err := io.ReadFull(c.r, frag); err != nil {
			return nil, err
		}
		out = append(out, frag...)
		if m&(1<<31) != 0 {
			return out, nil
		}
	}
}

func parseReply(body []byte) (*bytes.Reader, error) {
	r := bytes.NewReader(body[4:])
	mtype, _ := xdr.ReadUint32(r)
	stat, err := xdr.ReadUint32(r)
	if err != nil || mtype != 1 {
		return nil, fmt.Errorf("rpc: malformed reply")
	}
	if stat != 0 {
		return nil, fmt.Errorf("rpc: call denied (%d)", stat)
	}
	if _, err := xdr.ReadUint32(r); err != nil { // verifier flavour
		return nil, err
	}
	if _, err := xdr.ReadOpaque(r); err != nil {
		return nil, err
	}
	accept, err := xdr.ReadUint32(r)
	if err != nil {
		return nil, err
	}
	if accept != 0 {
		return nil, fmt.Errorf("rpc: accept status %d", accept)
	}
	return r, nil
}

// nfsCall is call for NFS procedures: it also reads the NFS status.
func (c *conn) nfsCall(name string, proc uint32, args interface{}) (*bytes.Reader, error) {
	r, err := c.call(progNFS, proc, args)
	if err != nil {
		return nil, err
	}
	st, err := xdr.ReadUint32(r)
	if err != nil {
		return nil, err
	}
	if st != 0 {
		return nil, &errStatus{proc: name, code: st}
	}
	return r, nil
}

// mount returns the root handle of export.
func (c *conn) mount(export string) ([]byte, error) {
	r, err := c.call(progMount, procMnt, struct{ Dirpath string }{export})
	if err != nil {
		return nil, err
	}
	st, err := xdr.ReadUint32(r)
	if err != nil {
		return nil, err
	}
	if st != 0 {
		return nil, &errStatus{proc: "MOUNT", code: st}
	}
	return xdr.ReadOpaque(r)
}

type dirOpArgs struct {
	FH   []byte
	Name string
}

func (c *conn) lookup(dir []byte, name string) ([]byte, error) {
	r, err := c.nfsCall("LOOKUP", procLookup, dirOpArgs{dir, name})
	if err != nil {
		return nil, err
	}
	return xdr.ReadOpaque(r)
}

// create makes name in dir (UNCHECKED: an existing file is kept as is) and
// returns its handle.
func (c *conn) create(dir []byte, name string) ([]byte, error) {
	args := struct {
		Where dirOpArgs
		Mode  uint32 // UNCHECKED
		Attr  nfsc.Sattr3
	}{Where: dirOpArgs{dir, name}, Attr: nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o644}}}
	r, err := c.nfsCall("CREATE", procCreate, args)
	if err != nil {
		return nil, err
	}
	var fh nfsc.PostOpFH3
	if err := xdr.Read(r, &fh); err != nil {
		return nil, err
	}
	if !fh.IsSet {
		return c.lookup(dir, name)
	}
	return fh.FH, nil
}

// write writes data at off with FILE_SYNC: success means durable.
func (c *conn) write(fh []byte, off uint64, data []byte) error {
	args := struct {
		FH       []byte
		Offset   uint64
		Count    uint32
		How      uint32
		Contents []byte
	}{fh, off, uint32(len(data)), fileSync, data}
	r, err := c.nfsCall("WRITE", procWrite, args)
	if err != nil {
		return err
	}
	var res struct {
		Wcc   nfsc.WccData
		Count uint32
		How   uint32
		Verf  uint64
	}
	if err := xdr.Read(r, &res); err != nil {
		return err
	}
	if int(res.Count) != len(data) {
		return fmt.Errorf("WRITE: short write: %d of %d", res.Count, len(data))
	}
	return nil
}

// read reads up to n bytes at off.
func (c *conn) read(fh []byte, off uint64, n uint32) ([]byte, bool, error) {
	args := struct {
		FH     []byte
		Offset uint64
		Count  uint32
	}{fh, off, n}
	r, err := c.nfsCall("READ", procRead, args)
	if err != nil {
		return nil, false, err
	}
	var res struct {
		Attr  nfsc.PostOpAttr
		Count uint32
		EOF   uint32
		Data  []byte
	}
	if err := xdr.Read(r, &res); err != nil {
		return nil, false, err
	}
	return res.Data, res.EOF != 0, nil
}
