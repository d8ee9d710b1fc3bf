package tests

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestManyRequestsInFlightOnOneConnection pipelines 16 WRITEs to 16 files
// on ONE TCP connection (as a Linux mount without nconnect does) and shows
// the gateway served them concurrently: go-nfs alone serves one request at
// a time per connection. Overlap is shown by the gateway's own in-flight
// high-water mark, not by a wall-clock bound.
func TestManyRequestsInFlightOnOneConnection(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 16
	var handles [][]byte
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("p%02d", i)
		f, err := cl.Target.OpenFile(name, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		fh, err := cl.Handle(name)
		if err != nil {
			t.Fatal(err)
		}
		handles = append(handles, fh)
	}
	_, before := c.Node(0).Gateway().InFlight()

	conn, err := net.Dial("tcp", c.NFSAddr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, 256<<10)
	start := time.Now()
	var batch []byte
	for i, fh := range handles {
		args := (&xdrBuf{}).opaque(fh).u32(0).u32(0).u32(uint32(len(data))).u32(2).opaque(data).b
		batch = append(batch, rpcCallHeader{xid: uint32(1000 + i), rpcvers: 2, prog: 100003, vers: 3, proc: 7}.encode(args)...)
	}
	go conn.Write(batch)
	seen := map[uint32]bool{}
	var order []uint32
	for len(seen) < n {
		var hdr [4]byte
		if _, err := readFull(conn, hdr[:]); err != nil {
			t.Fatalf("after %d replies: %v", len(seen), err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:])&^(1<<31))
		if _, err := readFull(conn, body); err != nil {
			t.Fatal(err)
		}
		xid := binary.BigEndian.Uint32(body)
		if xid < 1000 || xid >= 1000+n || seen[xid] {
			t.Fatalf("unexpected reply xid %d", xid)
		}
		// accepted + success + NFS3_OK
		if binary.BigEndian.Uint32(body[20:]) != 0 || binary.BigEndian.Uint32(body[24:]) != 0 {
			t.Fatalf("WRITE xid %d failed: %x", xid, body[:28])
		}
		seen[xid] = true
		order = append(order, xid)
	}
	_, most := c.Node(0).Gateway().InFlight()
	t.Logf("16 pipelined 256 KiB WRITEs on one connection: %v, at most %d in flight (before: %d), reply order %v",
		time.Since(start).Round(time.Millisecond), most, before, order)
	if most < 4 {
		t.Fatalf("at most %d requests were in flight at once; the front should overlap them", most)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
