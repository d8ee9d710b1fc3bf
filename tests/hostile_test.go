package tests

import (
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestHostileRPC sends malformed and hostile RPC to a gateway through real
// sockets. Each gets a clear error reply or a closed connection, memory
// stays bounded, and the node keeps serving other clients.
func TestHostileRPC(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	addr := c.NFSAddr(0)
	good, err := Mount(addr, "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	root, err := good.Handle(".")
	if err != nil {
		t.Fatal(err)
	}
	f, err := good.Target.OpenFile("f", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fileFH, err := good.Handle("f")
	if err != nil {
		t.Fatal(err)
	}

	// Claims of huge records and handles: closed or refused before
	// anything that size is allocated.
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 5; i++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// A record header claiming 2 GiB, then a few bytes.
		conn.Write([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 16)); err == nil {
			t.Fatal("a 2 GiB record claim got a reply instead of a closed connection")
		}
		conn.Close()
	}
	hugeHandle := (&xdrBuf{}).u32(0xffffffff).b // GETATTR whose handle claims 4 GiB
	for i := 0; i < 5; i++ {
		acc, _, err := rawCall(addr, uint32(100+i), 1, hugeHandle)
		if err != nil || acc != 4 {
			t.Fatalf("GETATTR with a 4 GiB handle claim: accept %d, %v; want 4 (GARBAGE_ARGS)", acc, err)
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 256<<20 {
		t.Fatalf("heap grew by %d MiB answering size claims", grew>>20)
	}

	// Truncated arguments: a LOOKUP whose name is cut off.
	trunc := (&xdrBuf{}).opaque(root).u32(100).b // name claims 100 bytes, none follow
	if acc, body, err := rawCall(addr, 200, 3, trunc); err != nil || (acc == 0 && binary.BigEndian.Uint32(body) == 0) {
		t.Fatalf("truncated LOOKUP: accept %d, %v: want an error", acc, err)
	}

	// Wrong versions and programs.
	if acc, _, err := rawCallTo(addr, rpcCallHeader{xid: 300, rpcvers: 3, prog: 100003, vers: 3, proc: 0}, nil); err != nil || acc != 1000 {
		t.Fatalf("RPC version 3: %d, %v; want MSG_DENIED RPC_MISMATCH", acc, err)
	}
	if acc, _, err := rawCallTo(addr, rpcCallHeader{xid: 301, rpcvers: 2, prog: 100003, vers: 4, proc: 0}, nil); err != nil || acc != 2 {
		t.Fatalf("NFSv4 call: %d, %v; want PROG_MISMATCH", acc, err)
	}
	if acc, _, err := rawCallTo(addr, rpcCallHeader{xid: 302, rpcvers: 2, prog: 100021, vers: 4, proc: 0}, nil); err != nil || acc != 1 {
		t.Fatalf("NLM call: %d, %v; want PROG_UNAVAIL", acc, err)
	}
	if acc, _, err := rawCallTo(addr, rpcCallHeader{xid: 303, rpcvers: 2, prog: 100003, vers: 3, proc: 99}, nil); err != nil || acc != 3 {
		t.Fatalf("NFS procedure 99: %d, %v; want PROC_UNAVAIL", acc, err)
	}

	// WRITE at an offset near 2^63.
	write := (&xdrBuf{}).opaque(fileFH).u32(0x7fffffff).u32(0xfffffff0).u32(4).u32(2).opaque([]byte("boom")).b
	if acc, body, err := rawCall(addr, 400, 7, write); err != nil || acc != 0 || binary.BigEndian.Uint32(body) == 0 {
		t.Fatalf("WRITE near 2^63: accept %d, %v: want an NFS error status", acc, err)
	}

	// Names with '/', NUL or more than 255 bytes.
	for _, name := range []string{"a/b", "nul\x00name", strings.Repeat("x", 256)} {
		args := (&xdrBuf{}).opaque(root).opaque([]byte(name)).u32(0).u32(0).u32(0).u32(0).u32(0).u32(0).u32(0).b
		acc, body, err := rawCall(addr, 500, 8, args)
		if err != nil || acc != 0 || binary.BigEndian.Uint32(body) == 0 {
			t.Fatalf("CREATE %q: accept %d, %v: want an NFS error status", name, acc, err)
		}
	}

	// Garbage that is not RPC at all: the connection is closed.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte{0x80, 0, 0, 8, 'g', 'a', 'r', 'b', 'a', 'g', 'e', '!'})
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conn); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("garbage record: %v, want the connection closed", err)
	}
	conn.Close()

	// The good client on its own connection was never disturbed.
	if _, err := good.GetAttr(fileFH); err != nil {
		t.Fatalf("the node stopped serving: %v", err)
	}
	if _, err := good.Target.Mkdir("after-the-storm", 0o755); err != nil {
		t.Fatalf("the node stopped serving: %v", err)
	}
}
