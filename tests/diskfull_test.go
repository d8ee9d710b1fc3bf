package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/internal/node"
	"github.com/fsrep/fsrep/internal/testutil"
	"github.com/fsrep/fsrep/replication"
)

// chunkDisk is one node's chunk disk in TestDiskFull: a real small tmpfs
// (the kernel's ENOSPC) when this process may mount one, else a free-space
// figure the chunk store is told instead of statfs (node.Config
// ChunkFreeSpace).
type chunkDisk struct {
	mount string       // tmpfs mount point ("" when injected)
	free  atomic.Int64 // injected free space
}

func (d *chunkDisk) fill(t *testing.T) {
	t.Helper()
	if d.mount == "" {
		d.free.Store(0)
		return
	}
	testutil.Fill(t, filepath.Join(d.mount, "ballast"))
}

func (d *chunkDisk) release(t *testing.T) {
	t.Helper()
	if d.mount == "" {
		d.free.Store(1 << 40)
		return
	}
	if err := os.Remove(filepath.Join(d.mount, "ballast")); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFull: each node's chunk directory is a 16 MiB file system. With
// one node's disk full, writes go on without it (new chunks are not placed
// there, an existing chunk drops it); with all full, WRITE answers
// NFS3ERR_NOSPC (not JUKEBOX: clients would retry forever), on every
// gateway, FILE_SYNC or through COMMIT; every file still reads byte for
// byte, and the check finds nothing corrupt, missing or stale; once space
// is freed, writes resume without a restart and the cluster heals back to
// a clean check.
func TestDiskFull(t *testing.T) {
	disks := map[string]*chunkDisk{}
	for _, id := range []string{"n1", "n2", "n3"} {
		d := &chunkDisk{}
		d.free.Store(1 << 40)
		if dir, ok := testutil.SmallFS(t, 16<<20); ok {
			d.mount = dir
		}
		disks[id] = d
	}
	if disks["n1"].mount == "" {
		t.Log("no tmpfs: the full disks are injected free-space figures")
	}
	c := NewCluster(t, ClusterOptions{Configure: func(cfg *node.Config) {
		d := disks[cfg.NodeID]
		cfg.ChunkReserve = 1 << 20
		cfg.HeartbeatInterval = 200 * time.Millisecond
		if d.mount == "" {
			cfg.ChunkFreeSpace = func() (int64, error) { return d.free.Load(), nil }
			return
		}
		// <data-dir>/chunks is a link to the small file system.
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(d.mount, "chunks"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(d.mount, "chunks"), filepath.Join(cfg.DataDir, "chunks")); err != nil {
			t.Fatal(err)
		}
	}})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	other, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	files := map[string][]byte{"a": randomBytes(21, 3<<20+100)} // four chunks
	integWrite(t, cl, "a", files["a"])
	readAll := func(when string) {
		t.Helper()
		for _, r := range []*Client{cl, other} {
			for name, want := range files {
				got, err := integRead(r, name)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: read %s through %s: %d bytes, %v; want the %d bytes written", when, name, r.Addr, len(got), err, len(want))
				}
			}
		}
	}
	fullNodes := func() []string {
		var out []string
		for _, h := range c.Node(0).RepairStatus().Nodes {
			if h.Full {
				out = append(out, h.ID)
			}
		}
		slices.Sort(out)
		return out
	}

	// n3 full: writes go on, without it.
	disks["n3"].fill(t)
	c.Eventually(10*time.Second, "n3 reported full", func() error {
		if got := fullNodes(); !slices.Equal(got, []string{"n3"}) {
			return fmt.Errorf("full nodes %v", got)
		}
		return nil
	})
	files["b"] = randomBytes(22, 2<<20)
	integWrite(t, cl, "b", files["b"])
	for idx := range uint64(2) {
		if _, ch := c.chunkOf(0, "b", idx); slices.Contains(ch.Replicas, "n3") || len(ch.Replicas) != 2 {
			t.Errorf("chunk %d of b, written with n3 full: replicas %v", idx, ch.Replicas)
		}
	}
	patch := randomBytes(23, 5000)
	fhA, err := cl.Handle("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.WriteHandle(fhA, 1<<20+10, patch); err != nil {
		t.Fatalf("overwrite in a with n3 full: %v", err)
	}
	copy(files["a"][1<<20+10:], patch)
	if _, ch := c.chunkOf(0, "a", 1); slices.Contains(ch.Replicas, "n3") {
		t.Errorf("n3 refused the write but is still a replica of chunk 1 of a: %v", ch.Replicas)
	}
	readAll("n3 full")

	// All full: NOSPC, on both gateways, and nothing changes.
	disks["n1"].fill(t)
	disks["n2"].fill(t)
	sizes := map[string]uint64{}
	for name, data := range files {
		sizes[name] = uint64(len(data))
	}
	newFH, err := cl.Target.Create("c", 0o644)
	if err != nil {
		t.Fatalf("create with every disk full (metadata only): %v", err)
	}
	for _, w := range []struct {
		what string
		cl   *Client
		fh   []byte
		off  uint64
		n    int
	}{
		{"new file", cl, newFH, 0, 100 << 10},
		{"append to a", cl, fhA, uint64(len(files["a"])), 64 << 10},
		{"new chunk of a", cl, fhA, 6 << 20, 64 << 10},
	} {
		err := w.cl.WriteHandle(w.fh, w.off, randomBytes(24, w.n))
		if got := nfsErr(err); got != "NFS3ERR_NOSPC" {
			t.Fatalf("%s with every disk full: %v (%s), want NFS3ERR_NOSPC", w.what, err, got)
		}
	}
	fhB, err := other.Handle("b")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.WriteHandle(fhB, 2<<20, randomBytes(25, 64<<10)); nfsErr(err) != "NFS3ERR_NOSPC" {
		t.Fatalf("append to b through another gateway with every disk full: %v, want NFS3ERR_NOSPC", err)
	}
	// Buffered (UNSTABLE) writes are accepted into memory; their COMMIT
	// reports the lack of space.
	if _, _, err := cl.WriteUnstable(newFH, 0, randomBytes(26, 100<<10)); err != nil {
		t.Fatalf("UNSTABLE write with every disk full: %v", err)
	}
	if _, err := cl.Commit(newFH); nfsErr(err) != "NFS3ERR_NOSPC" {
		t.Fatalf("COMMIT of a buffered write with every disk full: %v, want NFS3ERR_NOSPC", err)
	}
	readAll("every disk full")
	for name, size := range sizes {
		fh, err := cl.Handle(name)
		if err != nil {
			t.Fatal(err)
		}
		if attr, err := cl.GetAttr(fh); err != nil || uint64(attr.Filesize) != size {
			t.Fatalf("%s after refused writes: %+v, %v; want size %d", name, attr, err, size)
		}
	}
	if fh, _ := cl.Handle("c"); fh == nil {
		t.Fatal("c is gone")
	} else if attr, err := cl.GetAttr(fh); err != nil || attr.Filesize != 0 {
		t.Fatalf("c after refused writes: %+v, %v; want empty", attr, err)
	}
	ac := admin.NewClient(c.Node(0).AdminAddr(), c.Node(0).Token(), time.Minute)
	rep, err := ac.Check(t.Context(), replication.CheckOptions{Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("check with every disk full: %d chunks, %d under-replicated, %d problems", rep.Chunks, rep.UnderReplicated, rep.Problems())
	if rep.Corrupt+rep.Missing+rep.Stale+rep.Unavailable+rep.Orphans != 0 || rep.Chunks != 6 {
		t.Fatalf("check with every disk full: %+v", rep)
	}

	// Space freed: writes resume, nothing restarted.
	for _, d := range disks {
		d.release(t)
	}
	files["c"] = randomBytes(27, 1<<20+300)
	c.Eventually(20*time.Second, "a write after space was freed", func() error {
		for off := 0; off < len(files["c"]); off += 256 << 10 {
			if err := cl.WriteHandle(newFH, uint64(off), files["c"][off:min(off+256<<10, len(files["c"]))]); err != nil {
				return err
			}
		}
		return nil
	})
	more := randomBytes(28, 64<<10)
	if err := other.WriteHandle(fhB, 2<<20, more); err != nil {
		t.Fatalf("append to b after space was freed: %v", err)
	}
	files["b"] = append(files["b"], more...)
	readAll("after space was freed")
	c.Eventually(10*time.Second, "no node reported full", func() error {
		if got := fullNodes(); len(got) != 0 {
			return fmt.Errorf("full nodes %v", got)
		}
		return nil
	})
	c.Eventually(60*time.Second, "a clean check after healing", func() error {
		rep, err := ac.Check(t.Context(), replication.CheckOptions{Verify: true})
		if err != nil {
			return err
		}
		if rep.Problems() != 0 {
			return fmt.Errorf("%d problems: %+v", rep.Problems(), rep.Findings)
		}
		return nil
	})
	readAll("after healing")
}
