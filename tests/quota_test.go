package tests

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
)

// setVolume changes a volume through node 0's admin API (PATCH
// /v1/volumes/NAME) and waits until every node has applied the change.
func setVolume(t *testing.T, c *Cluster, name string, req admin.SetVolumeRequest) *meta.Volume {
	t.Helper()
	cl := admin.NewClient(c.Node(0).AdminAddr(), c.Node(0).Token(), 10*time.Second)
	v, err := cl.SetVolume(t.Context(), name, req)
	if err != nil {
		t.Fatalf("set volume %s: %v", name, err)
	}
	c.Eventually(10*time.Second, "every node applies the volume change", func() error {
		for i := 0; i < c.N(); i++ {
			got, err := c.Node(i).FSM().Volume(name)
			if err != nil {
				return err
			}
			if got.QuotaBytes != v.QuotaBytes || got.QuotaFiles != v.QuotaFiles {
				return fmt.Errorf("node %d has quotas %d/%d, want %d/%d", i, got.QuotaBytes, got.QuotaFiles, v.QuotaBytes, v.QuotaFiles)
			}
		}
		return nil
	})
	return v
}

// pattern is n bytes that differ with their offset in the file.
func pattern(off, n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off+i)*7) ^ seed
	}
	return b
}

// TestQuotaBytes: a volume filled to its byte quota through NFS refuses the
// next growing write with NFS3ERR_DQUOT (on any gateway), keeps accepting
// writes inside its files, loses nothing, and takes more once the quota is
// raised.
func TestQuotaBytes(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	const mib = 1 << 20
	const piece = 256 << 10
	setVolume(t, c, "vol", admin.SetVolumeRequest{QuotaBytes: ptr[int64](3 * mib)})

	// Through a gateway that is not necessarily the leader.
	cl, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fh, err := cl.Target.Create("big", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 0, 4*mib)
	for off := 0; off < 3*mib; off += piece {
		data := pattern(off, piece, 1)
		if err := cl.WriteHandle(fh, uint64(off), data); err != nil {
			t.Fatalf("write at %d (within the quota): %v", off, err)
		}
		want = append(want, data...)
	}
	v, err := c.Node(1).FSM().Volume("vol")
	if err != nil || v.Bytes != 3*mib {
		t.Fatalf("usage %+v (%v), want %d bytes", v, err, 3*mib)
	}

	// Every growing write is refused, on every gateway, whatever its size.
	other, err := Mount(c.NFSAddr(2), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherFH, err := other.Handle("big")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		cl  *Client
		fh  []byte
		off int
		n   int
	}{
		{cl, fh, 3 * mib, 1},
		{cl, fh, 3*mib - 10, 20},
		{other, otherFH, 3 * mib, piece},
		{other, otherFH, 5 * mib, 1}, // past the end: a hole counts as well
	} {
		err := w.cl.WriteHandle(w.fh, uint64(w.off), pattern(w.off, w.n, 2))
		if got := nfsErr(err); got != "NFS3ERR_DQUOT" {
			t.Fatalf("write of %d bytes at %d through %s: %v (%s), want NFS3ERR_DQUOT", w.n, w.off, w.cl.Addr, err, got)
		}
	}
	// A new file can be made (no bytes yet), but not grown.
	small, err := cl.Target.Create("small", 0o644)
	if err != nil {
		t.Fatalf("create at the byte quota: %v", err)
	}
	if err := cl.WriteHandle(small, 0, []byte("x")); nfsErr(err) != "NFS3ERR_DQUOT" {
		t.Fatalf("first byte of a new file past the quota: %v, want NFS3ERR_DQUOT", err)
	}

	// Writes inside the file still pass, through both gateways.
	over := pattern(mib+100, 4096, 3)
	if err := cl.WriteHandle(fh, mib+100, over); err != nil {
		t.Fatalf("overwrite inside the file at the quota: %v", err)
	}
	copy(want[mib+100:], over)
	over = pattern(3*mib-4096, 4096, 4)
	if err := other.WriteHandle(otherFH, 3*mib-4096, over); err != nil {
		t.Fatalf("overwrite of the last bytes at the quota: %v", err)
	}
	copy(want[3*mib-4096:], over)

	// Nothing is corrupted: every gateway reads exactly what was acknowledged.
	for _, r := range []*Client{cl, other} {
		h, err := r.Handle("big")
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadHandle(h)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read through %s: %d bytes, want %d; contents differ", r.Addr, len(got), len(want))
		}
	}

	// Raising the quota lets writes continue.
	setVolume(t, c, "vol", admin.SetVolumeRequest{QuotaBytes: ptr[int64](4 * mib)})
	for off := 3 * mib; off < 4*mib; off += piece {
		data := pattern(off, piece, 5)
		if err := cl.WriteHandle(fh, uint64(off), data); err != nil {
			t.Fatalf("write at %d after raising the quota: %v", off, err)
		}
		want = append(want, data...)
	}
	if err := cl.WriteHandle(fh, 4*mib, []byte("y")); nfsErr(err) != "NFS3ERR_DQUOT" {
		t.Fatalf("write past the raised quota: %v, want NFS3ERR_DQUOT", err)
	}
	got, err := other.ReadHandle(otherFH)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read after raising the quota: %d bytes (%v), want %d", len(got), err, len(want))
	}

	// volume info shows the quota and the usage.
	vol, err := admin.NewClient(c.Node(2).AdminAddr(), c.Node(2).Token(), 10*time.Second).Volume(t.Context(), "vol")
	if err != nil || vol.QuotaBytes != 4*mib || vol.Bytes != 4*mib {
		t.Fatalf("volume info: %+v, %v", vol, err)
	}
	// Removing the quota lifts the limit.
	setVolume(t, c, "vol", admin.SetVolumeRequest{QuotaBytes: ptr[int64](0)})
	if err := cl.WriteHandle(fh, 4*mib, []byte("y")); err != nil {
		t.Fatalf("write with no quota: %v", err)
	}
}

// TestQuotaFiles: CREATE, MKDIR and SYMLINK past the file quota get
// NFS3ERR_DQUOT; removing a file or raising the quota makes room.
func TestQuotaFiles(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	v, err := c.Node(0).FSM().Volume("vol")
	if err != nil {
		t.Fatal(err)
	}
	setVolume(t, c, "vol", admin.SetVolumeRequest{QuotaFiles: ptr(v.Files + 2)})

	cl, err := Mount(c.NFSAddr(2), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Target.Create("f1", 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Target.Mkdir("d1", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Target.Create("f2", 0o644); nfsErr(err) != "NFS3ERR_DQUOT" {
		t.Fatalf("create past the file quota: %v, want NFS3ERR_DQUOT", err)
	}
	root, err := cl.Handle(".")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := cl.MkdirStatus(root, "d2"); err != nil || st != 69 {
		t.Fatalf("mkdir past the file quota: status %d, %v; want 69 (NFS3ERR_DQUOT)", st, err)
	}
	if err := cl.Target.Symlink("f1", "s1"); nfsErr(err) != "NFS3ERR_DQUOT" {
		t.Fatalf("symlink past the file quota: %v, want NFS3ERR_DQUOT", err)
	}
	// Nothing half-made: the refused names do not exist.
	for _, name := range []string{"f2", "d2", "s1"} {
		if _, err := cl.Handle(name); nfsErr(err) != "NFS3ERR_NOENT" {
			t.Errorf("%s after a refused create: %v", name, err)
		}
	}

	if err := cl.Target.Remove("f1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Target.Create("f2", 0o644); err != nil {
		t.Fatalf("create after a remove made room: %v", err)
	}
	setVolume(t, c, "vol", admin.SetVolumeRequest{QuotaFiles: ptr(v.Files + 3)})
	if _, err := cl.Target.Mkdir("d2", 0o755); err != nil {
		t.Fatalf("mkdir after raising the quota: %v", err)
	}
	got, err := c.Node(2).FSM().Volume("vol")
	if err != nil || got.Files != v.Files+3 || got.QuotaFiles != v.Files+3 {
		t.Fatalf("usage %+v (%v), want %d files of %d", got, err, v.Files+3, v.Files+3)
	}
}

func ptr[T any](v T) *T { return &v }
