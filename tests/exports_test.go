package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/meta"
)

func setExport(t *testing.T, c *Cluster, vol string, ex meta.Export) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Node(0).Propose(ctx, &meta.SetExport{Name: vol, Export: ex})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < c.N(); i++ {
		if err := c.Node(i).Meta().WaitApplied(ctx, res.Index); err != nil {
			t.Fatal(err)
		}
	}
}

// TestExportsAndIdentity: root is squashed by default, callers own what
// they create, mode bits are enforced, a client outside the allowed
// networks cannot mount, and a read-only export refuses writes with EROFS
// — on every gateway, since exports are replicated.
func TestExportsAndIdentity(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})

	// Root is squashed to 65534 by default; a user keeps its uid.
	root, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.Target.Mkdir("by-root", 0o755); err != nil {
		t.Fatal(err)
	}
	rootAttr, err := root.GetAttr(mustHandle(t, root, "by-root"))
	if err != nil {
		t.Fatal(err)
	}
	if rootAttr.UID != 65534 || rootAttr.GID != 65534 {
		t.Fatalf("a directory root created is owned by %d:%d, want the anonymous 65534:65534", rootAttr.UID, rootAttr.GID)
	}

	alice, err := MountAs(c.NFSAddr(1), "/vol", 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if _, err := alice.Target.Mkdir("alice", 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := alice.GetAttr(mustHandle(t, alice, "alice"))
	if err != nil || a.UID != 1000 || a.GID != 1000 {
		t.Fatalf("alice's directory: %+v, %v; want owned by 1000:1000", a, err)
	}
	// Bob, on node 3, may not create in alice's 0755 directory, nor remove
	// it. (Node 3 first catches up: a follower may lag by a commit.)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Node(2).Meta().CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	bob, err := MountAs(c.NFSAddr(2), "/vol", 1001, 1001)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if _, err := bob.Target.Create("alice/intruder", 0o644); nfsErr(err) != "NFS3ERR_ACCES" {
		t.Fatalf("bob creating in alice's directory: %v, want NFS3ERR_ACCES", err)
	}
	if err := bob.Target.RmDir("alice"); nfsErr(err) != "NFS3ERR_PERM" {
		t.Fatalf("bob removing alice's directory from the sticky root: %v, want NFS3ERR_PERM", err)
	}
	// ACCESS tells bob the truth too.
	bits, err := bob.Target.Access("alice", 0x3f)
	if err != nil || bits&0x04 != 0 || bits&0x02 == 0 {
		t.Fatalf("ACCESS for bob on alice's directory = %#x, %v: want lookup, no modify", bits, err)
	}

	// A read-only export: EROFS on every gateway.
	setExport(t, c, "vol", meta.Export{ReadOnly: true, Squash: meta.SquashRoot, AnonUID: 65534, AnonGID: 65534})
	for i := 0; i < 3; i++ {
		cl, err := MountAs(c.NFSAddr(i), "/vol", 1000, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Target.Mkdir("alice/ro", 0o755); nfsErr(err) != "NFS3ERR_ROFS" {
			t.Fatalf("node %d: mkdir on a read-only export: %v, want NFS3ERR_ROFS", i+1, err)
		}
		cl.Close()
	}

	rootFH := mustHandle(t, alice, ".")
	// Client networks: 127.0.0.1 is outside 10.9.9.0/24.
	setExport(t, c, "vol", meta.Export{Clients: []string{"10.9.9.0/24"}, Squash: meta.SquashRoot, AnonUID: 65534, AnonGID: 65534})
	if cl, err := Mount(c.NFSAddr(0), "/vol"); err == nil || !strings.Contains(err.Error(), "ACCES") {
		if cl != nil {
			cl.Close()
		}
		t.Fatalf("mount from outside the allowed networks: %v, want MNT3ERR_ACCES", err)
	}
	// An already mounted client is cut off too (its handles stop working).
	if _, err := alice.GetAttr(rootFH); err == nil {
		t.Fatal("a client outside the allowed networks still gets attributes")
	}
}

func mustHandle(t *testing.T, cl *Client, p string) []byte {
	t.Helper()
	fh, err := cl.Handle(p)
	if err != nil {
		t.Fatalf("lookup %s: %v", p, err)
	}
	return fh
}
