package tests

import (
	"context"
	"encoding/binary"
	"testing"
	"time"
)

// TestRetransmittedCreateAcrossNodes sends a GUARDED CREATE, stops the node
// that served it, and sends the very same call (same XID) to another node,
// as a client does after a failover when the first reply was lost. Both get
// success and exactly one file exists; a new call (another XID) for the
// same name still gets EEXIST.
func TestRetransmittedCreateAcrossNodes(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	cl, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	root, err := cl.Handle(".")
	if err != nil {
		t.Fatal(err)
	}
	args := (&xdrBuf{}).opaque(root).opaque([]byte("once")).u32(1). // GUARDED
									u32(0).u32(0).u32(0).u32(0).u32(0).u32(0).b
	status := func(node int, xid uint32) uint32 {
		t.Helper()
		acc, body, err := rawCall(c.NFSAddr(node), xid, 8, args)
		if err != nil || acc != 0 || len(body) < 4 {
			t.Fatalf("CREATE through node %d: accept %d, %v", node+1, acc, err)
		}
		return binary.BigEndian.Uint32(body)
	}
	if st := status(0, 0x5eed0001); st != 0 {
		t.Fatalf("first CREATE: status %d", st)
	}
	c.Stop(0)
	// Let node 3 apply the create first, so that the retransmission meets
	// an existing name (a lagging node would dedup in the metadata layer).
	c.WaitLeader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Node(2).Meta().CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if st := status(2, 0x5eed0001); st != 0 {
		t.Fatalf("retransmitted CREATE through another node: status %d, want 0", st)
	}
	if st := status(2, 0x5eed0002); st != 17 {
		t.Fatalf("a new CREATE of the same name: status %d, want 17 (EEXIST)", st)
	}
	ents, err := cl.Target.ReadDirPlus(".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if e.Name() == "once" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d entries named once, want 1", n)
	}
}

// TestExclusiveCreate: EXCLUSIVE CREATE (go-nfs alone refuses it) creates
// the file; its retransmission (same XID and verifier) through another node
// is success; another client's EXCLUSIVE create of the name is EEXIST.
func TestExclusiveCreate(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	root := mustHandle(t, cl, ".")
	args := func(verf uint32) []byte {
		return (&xdrBuf{}).opaque(root).opaque([]byte("excl")).u32(2).u32(verf).u32(verf).b
	}
	status := func(node int, xid, verf uint32) uint32 {
		t.Helper()
		acc, body, err := rawCall(c.NFSAddr(node), xid, 8, args(verf))
		if err != nil || acc != 0 || len(body) < 4 {
			t.Fatalf("EXCLUSIVE CREATE through node %d: accept %d, %v", node+1, acc, err)
		}
		return binary.BigEndian.Uint32(body)
	}
	if st := status(0, 0xe0001, 7); st != 0 {
		t.Fatalf("EXCLUSIVE CREATE: status %d, want 0", st)
	}
	if _, err := cl.Handle("excl"); err != nil {
		t.Fatalf("the file is not there: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Node(1).Meta().CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if st := status(1, 0xe0001, 7); st != 0 {
		t.Fatalf("retransmitted EXCLUSIVE CREATE through another node: status %d, want 0", st)
	}
	if st := status(1, 0xe0002, 8); st != 17 {
		t.Fatalf("another client's EXCLUSIVE CREATE of the name: status %d, want 17 (EEXIST)", st)
	}
}
