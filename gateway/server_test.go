package gateway

import (
	"net"
	"testing"
	"time"
)

// nullOn sends an NFS NULL call on c and reports whether a reply came.
func nullOn(c net.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	null := &replyWriter{}
	for _, v := range []uint32{0xbeef, rpcCall, 2, 100003, 3, 0, authNone, 0, authNone, 0} {
		null.u32(v)
	}
	if _, err := c.Write(frame(null.b)); err != nil {
		return err
	}
	_, err := readRecord(c, maxReply)
	return err
}

// One client address may hold MaxConnsPerClient connections; the next is
// closed, and a slot frees when one of its connections ends.
func TestConnectionsPerClient(t *testing.T) {
	cfg := DefaultFrontConfig()
	cfg.MaxConnsPerClient = 2
	addr, _, _ := newTestServer(t, cfg)
	var conns []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := nullOn(c); err != nil {
			t.Fatalf("connection %d within the limit: %v", i+1, err)
		}
		conns = append(conns, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if err := nullOn(extra); err == nil {
		t.Fatal("a third connection from one client was served with a limit of 2")
	}
	conns[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		err = nullOn(c)
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot freed after a connection closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	if err := nullOn(conns[1]); err != nil {
		t.Fatalf("the connection within the limit stopped answering: %v", err)
	}
}
