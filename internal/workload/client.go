package workload

import (
	"fmt"
	"time"
)

// Client is a synchronous NFSv3 client of one export through one gateway,
// every call bounded by a deadline: for tests that write and read whole
// files through gateways that may die under them (go-nfs-client can hang
// for minutes there: its receive loop blocks for good when a reply comes
// in just as the caller's 5 s timeout fires).
type Client struct {
	c    *conn
	root []byte
}

// Dial mounts export through the gateway at addr.
func Dial(addr, export string, timeout time.Duration) (*Client, error) {
	c, err := dial(addr, timeout, uint32(time.Now().UnixNano()))
	if err != nil {
		return nil, err
	}
	root, err := c.mount(export)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &Client{c: c, root: root}, nil
}

// Close drops the connection.
func (cl *Client) Close() error { return cl.c.Close() }

// maxIO is the size of each WRITE and READ.
const maxIO = 256 << 10

// WriteFile creates name in the export's root (an existing file is kept)
// and writes data from offset 0 with FILE_SYNC WRITEs: nil means every
// byte was acknowledged durable.
func (cl *Client) WriteFile(name string, data []byte) error {
	fh, err := cl.c.create(cl.root, name)
	if err != nil {
		return err
	}
	for off := 0; off < len(data); off += maxIO {
		if err := cl.c.write(fh, uint64(off), data[off:min(off+maxIO, len(data))]); err != nil {
			return err
		}
	}
	return nil
}

// ReadFile reads name in the export's root whole.
func (cl *Client) ReadFile(name string) ([]byte, error) {
	fh, err := cl.c.lookup(cl.root, name)
	if err != nil {
		return nil, err
	}
	var out []byte
	for {
		b, eof, err := cl.c.read(fh, uint64(len(out)), maxIO)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		if eof {
			return out, nil
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("READ of %s at %d: no data and no EOF", name, len(out))
		}
	}
}
