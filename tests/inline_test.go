package tests

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/fsrep/fsrep/meta"
)

// TestSmallFilesInlineAcrossNodes writes small files through node 1 over
// NFS: they live in the metadata (no chunk), read back byte for byte
// through nodes 2 and 3 and survive node 1's loss. One of them then grows
// past meta.InlineMax through node 2, with both FILE_SYNC and UNSTABLE +
// COMMIT writes: its first bytes move into chunk 0, and node 3 reads the
// whole file.
func TestSmallFilesInlineAcrossNodes(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	cl1, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl1.Close()
	want := map[string][]byte{}
	for i := range 20 {
		name := fmt.Sprintf("small-%02d", i)
		want[name] = randomBytes(int64(100+i), 1+i*700) // up to 13.3 KB
		integWrite(t, cl1, name, want[name])
	}
	vol, err := c.Node(0).FSM().Volume("vol")
	if err != nil {
		t.Fatal(err)
	}
	for name := range want {
		n, err := c.Node(0).FSM().Lookup(vol.ID, meta.RootIno, name)
		if err != nil {
			t.Fatal(err)
		}
		chunks, err := c.Node(0).FSM().Chunks(vol.ID, n.Ino)
		in, ierr := c.Node(0).FSM().Inline(vol.ID, n.Ino)
		if err != nil || ierr != nil || len(chunks) != 0 || in == nil || !bytes.Equal(in.Data, want[name]) {
			t.Fatalf("%s: %d chunks, inline %+v, want %d bytes; errors %v %v", name, len(chunks), in, len(want[name]), err, ierr)
		}
	}

	cl2, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	fh, err := cl2.Handle("small-03")
	if err != nil {
		t.Fatal(err)
	}
	tail := randomBytes(7, 50_000)
	if _, _, err := cl2.WriteUnstable(fh, 30_000, tail[:20_000]); err != nil {
		t.Fatal(err)
	}
	if _, err := cl2.Commit(fh); err != nil {
		t.Fatal(err)
	}
	if err := cl2.WriteHandle(fh, 50_000, tail[20_000:]); err != nil {
		t.Fatal(err)
	}
	grown := make([]byte, 80_000)
	copy(grown, want["small-03"])
	copy(grown[30_000:], tail)
	want["small-03"] = grown

	c.Stop(0)
	cl3, err := Mount(c.NFSAddr(2), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl3.Close()
	for name, data := range want {
		got, err := integRead(cl3, name)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %s through node 3 with node 1 down: %d of %d bytes, %v", name, len(got), len(data), err)
		}
	}
	n, err := c.Node(2).FSM().Lookup(vol.ID, meta.RootIno, "small-03")
	if err != nil {
		t.Fatal(err)
	}
	if in, _ := c.Node(2).FSM().Inline(vol.ID, n.Ino); in != nil {
		t.Fatal("small-03 kept inline data after growing past InlineMax")
	}
}
