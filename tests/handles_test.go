package tests

import (
	"bytes"
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

// TestHandleKeyRotation rotates the file handle MAC key: LOOKUP hands out
// handles of the new key at once, while handles minted before keep working
// on every node during the grace time. A second rotation with no grace
// ends it: both older keys' handles are STALE everywhere, the newest work.
func TestHandleKeyRotation(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f, err := cl.Target.OpenFile("kept", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("contents")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	gen0, err := cl.Handle("kept")
	if err != nil {
		t.Fatal(err)
	}

	// lookup waits until node i hands out a handle other than those given.
	lookup := func(i int, not ...[]byte) []byte {
		var fh []byte
		c.Eventually(10*time.Second, fmt.Sprintf("node %d hands out handles of the new key", i+1), func() error {
			o, err := Mount(c.NFSAddr(i), "/vol")
			if err != nil {
				return err
			}
			defer o.Close()
			if fh, err = o.Handle("kept"); err != nil {
				return err
			}
			for _, n := range not {
				if bytes.Equal(fh, n) {
					return fmt.Errorf("LOOKUP still answers an older handle")
				}
			}
			return nil
		})
		return fh
	}
	read := func(i int, fh []byte) error {
		o, err := Mount(c.NFSAddr(i), "/vol")
		if err != nil {
			return err
		}
		defer o.Close()
		got, err := o.ReadHandle(fh)
		if err == nil && string(got) != "contents" {
			err = fmt.Errorf("read %q", got)
		}
		return err
	}

	if gen, _, err := c.Node(1).RotateHandleKey(t.Context(), time.Hour); err != nil || gen != 1 {
		t.Fatalf("RotateHandleKey = %d, %v", gen, err)
	}
	var gen1 []byte
	for i := 0; i < c.N(); i++ {
		gen1 = lookup(i, gen0)
		if err := read(i, gen0); err != nil {
			t.Fatalf("node %d: a handle of the previous key within the grace time: %v", i+1, err)
		}
		if err := read(i, gen1); err != nil {
			t.Fatalf("node %d: a handle of the new key: %v", i+1, err)
		}
	}

	if gen, _, err := c.Node(2).RotateHandleKey(t.Context(), 0); err != nil || gen != 2 {
		t.Fatalf("second RotateHandleKey = %d, %v", gen, err)
	}
	for i := 0; i < c.N(); i++ {
		gen2 := lookup(i, gen0, gen1)
		for name, fh := range map[string][]byte{"generation 0": gen0, "generation 1 (no grace)": gen1} {
			if err := read(i, fh); err == nil || !strings.Contains(err.Error(), "STALE") {
				t.Fatalf("node %d: a handle of %s: %v, want NFS3ERR_STALE", i+1, name, err)
			}
		}
		if err := read(i, gen2); err != nil {
			t.Fatalf("node %d: a handle of the current key: %v", i+1, err)
		}
	}
}
