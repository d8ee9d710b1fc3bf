package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/vfs"
)

// TestHostileHandlesAndNames sends forged, truncated and stale handles and a
// name that imitates an inode token through a real socket: each gets an
// error and the node keeps serving.
func TestHostileHandlesAndNames(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	cl, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f, err := cl.Target.OpenFile("victim", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("secret bytes")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fh, err := cl.Handle("victim")
	if err != nil {
		t.Fatal(err)
	}

	// Every single-byte change of a valid handle is refused.
	for i := range fh {
		bad := append([]byte(nil), fh...)
		bad[i] ^= 0x40
		if _, err := cl.GetAttr(bad); err == nil {
			t.Fatalf("GETATTR with byte %d flipped succeeded", i)
		}
	}
	for _, bad := range [][]byte{nil, fh[:4], fh[:len(fh)-4], append(append([]byte(nil), fh...), 0, 0, 0, 0)} {
		if _, err := cl.GetAttr(bad); err == nil {
			t.Fatalf("GETATTR with a %d-byte handle succeeded", len(bad))
		}
	}

	// A name that looks like the gateway's inode token does not reach the inode.
	attr, err := cl.GetAttr(fh)
	if err != nil {
		t.Fatal(err)
	}
	if attr.Fileid < 2 {
		t.Fatalf("fileid %d is not the file's inode number", attr.Fileid)
	}
	token := vfs.Token(attr.Fileid)
	if _, _, err := cl.Target.Lookup(token); err == nil {
		t.Fatalf("LOOKUP of the token name for inode %d succeeded", attr.Fileid)
	}

	// A deleted file's handle is stale, on this node and on another.
	if err := cl.Target.Remove("victim"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.GetAttr(fh); err == nil || !strings.Contains(err.Error(), "STALE") {
		t.Fatalf("GETATTR of a deleted file's handle: %v, want NFS3ERR_STALE", err)
	}
	other, err := Mount(c.NFSAddr(2), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Another node answers GETATTR from its own metadata, which may lag
	// the remove's commit by the time it takes to apply it
	// (docs/consistency.md): STALE within that bound.
	c.Eventually(5*time.Second, "STALE for a deleted file's handle on another node", func() error {
		if _, err := other.GetAttr(fh); err == nil || !strings.Contains(err.Error(), "STALE") {
			return fmt.Errorf("GETATTR: %v, want NFS3ERR_STALE", err)
		}
		return nil
	})

	// The node still serves.
	if _, err := cl.Target.Mkdir("still-here", 0o755); err != nil {
		t.Fatalf("node stopped serving: %v", err)
	}
}
