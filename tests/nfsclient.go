package tests

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
	"github.com/willscott/go-nfs-client/nfs/xdr"
)

// Client is a go-nfs-client connection to one gateway, mounted on an export.
type Client struct {
	Addr   string
	rpc    *rpc.Client
	Target *nfsc.Target
	auth   rpc.Auth
}

// Mount connects to the gateway at addr (MOUNT and NFS on one port, no
// portmapper) and mounts export.
func Mount(addr, export string) (*Client, error) { return MountAs(addr, export, 0, 0) }

// MountAs is Mount with an AUTH_SYS identity.
func MountAs(addr, export string, uid, gid uint32) (*Client, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, err
	}
	rc, err := nfsc.DialServiceAtPort(host, port)
	if err != nil {
		return nil, err
	}
	auth := rpc.NewAuthUnix("fsrep-test", uid, gid).Auth()
	m := &nfsc.Mount{Client: rc}
	tgt, err := m.Mount(export, auth)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &Client{Addr: addr, rpc: rc, Target: tgt, auth: auth}, nil
}

// Close drops the connection.
func (c *Client) Close() { c.rpc.Close() }

// At returns a target on this connection rooted at a directory handle
// (possibly minted by another node): paths resolve from that directory.
func (c *Client) At(dirFH []byte) (*nfsc.Target, error) {
	return nfsc.NewTargetWithClient(c.rpc, c.auth, dirFH, "/", time.Second)
}

// Handle returns the file handle of path.
func (c *Client) Handle(path string) ([]byte, error) {
	_, fh, err := c.Target.Lookup(path)
	return fh, err
}

// GetAttr returns the attributes behind a handle.
func (c *Client) GetAttr(fh []byte) (*nfsc.Fattr, error) { return c.Target.GetAttr(fh) }

const (
	nfsProg     = 100003
	nfsVers     = 3
	procRead    = 6
	procWrite   = 7
	procCommit  = 21
	unstable    = 0
	fileSync    = 2
	maxReadSize = 1 << 20
)

func (c *Client) header(proc uint32) rpc.Header {
	return rpc.Header{Rpcvers: 2, Prog: nfsProg, Vers: nfsVers, Proc: proc, Cred: c.auth, Verf: rpc.AuthNull}
}

// ReadHandle reads a whole file by handle (READ calls until EOF).
func (c *Client) ReadHandle(fh []byte) ([]byte, error) {
	type readArgs struct {
		rpc.Header
		FH     []byte
		Offset uint64
		Count  uint32
	}
	type readRes struct {
		Attr  nfsc.PostOpAttr
		Count uint32
		EOF   uint32
		Data  []byte
	}
	var out []byte
	for {
		r, err := c.rpc.Call(&readArgs{Header: c.header(procRead), FH: fh, Offset: uint64(len(out)), Count: maxReadSize})
		if err != nil {
			return out, err
		}
		if err := status(r); err != nil {
			return out, err
		}
		var res readRes
		if err := xdr.Read(r, &res); err != nil {
			return out, err
		}
		out = append(out, res.Data...)
		if res.EOF != 0 || len(res.Data) == 0 {
			return out, nil
		}
	}
}

// WriteHandle writes data at off by handle with FILE_SYNC.
func (c *Client) WriteHandle(fh []byte, off uint64, data []byte) error {
	_, _, err := c.write(fh, off, data, fileSync)
	return err
}

// WriteUnstable writes data at off by handle asking UNSTABLE, and returns
// the stability the server committed to and its write verifier.
func (c *Client) WriteUnstable(fh []byte, off uint64, data []byte) (committed uint32, verf uint64, err error) {
	return c.write(fh, off, data, unstable)
}

// Commit sends COMMIT for the whole file and returns the write verifier.
func (c *Client) Commit(fh []byte) (uint64, error) {
	type commitArgs struct {
		rpc.Header
		FH     []byte
		Offset uint64
		Count  uint32
	}
	type commitRes struct {
		Wcc  nfsc.WccData
		Verf uint64
	}
	r, err := c.rpc.Call(&commitArgs{Header: c.header(procCommit), FH: fh})
	if err != nil {
		return 0, err
	}
	if err := status(r); err != nil {
		return 0, err
	}
	var res commitRes
	if err := xdr.Read(r, &res); err != nil {
		return 0, err
	}
	return res.Verf, nil
}

func (c *Client) write(fh []byte, off uint64, data []byte, how uint32) (committed uint32, verf uint64, err error) {
	type writeArgs struct {
		rpc.Header
		FH       []byte
		Offset   uint64
		Count    uint32
		How      uint32
		Contents []byte
	}
	type writeRes struct {
		Wcc   nfsc.WccData
		Count uint32
		How   uint32
		Verf  uint64
	}
	r, err := c.rpc.Call(&writeArgs{Header: c.header(procWrite), FH: fh, Offset: off, Count: uint32(len(data)), How: how, Contents: data})
	if err != nil {
		return 0, 0, err
	}
	if err := status(r); err != nil {
		return 0, 0, err
	}
	var res writeRes
	if err := xdr.Read(r, &res); err != nil {
		return 0, 0, err
	}
	if int(res.Count) != len(data) {
		return 0, 0, fmt.Errorf("short write: %d of %d", res.Count, len(data))
	}
	return res.How, res.Verf, nil
}

func status(r io.Reader) error {
	st, err := xdr.ReadUint32(r)
	if err != nil {
		return err
	}
	return nfsc.NFS3Error(st)
}

// MkdirStatus sends a raw MKDIR of name in the directory dirFH and returns
// the NFS status number (go-nfs-client maps unknown ones, such as JUKEBOX,
// to a generic error).
func (c *Client) MkdirStatus(dirFH []byte, name string) (uint32, error) {
	type mkdirArgs struct {
		rpc.Header
		FH                                     []byte
		Name                                   string
		SetMode, SetUID, SetGID, SetSize, A, M uint32
	}
	r, err := c.rpc.Call(&mkdirArgs{Header: c.header(procMkdir), FH: dirFH, Name: name})
	if err != nil {
		return 0, err
	}
	return xdr.ReadUint32(r)
}

const procMkdir = 9
