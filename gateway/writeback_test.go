package gateway

import (
	"bytes"
	"context"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
)

func TestCoalesce(t *testing.T) {
	b := func(c byte, n int) []byte { return bytes.Repeat([]byte{c}, n) }
	tests := []struct {
		name   string
		writes []extent
		want   []extent
	}{
		{"sequential writes merge up to the chunk boundary",
			[]extent{{0, b('a', 4)}, {4, b('b', 4)}, {8, b('c', 4)}, {12, b('d', 4)}, {16, b('e', 2)}},
			[]extent{{0, []byte("aaaabbbbccccdddd")}, {16, b('e', 2)}}},
		{"a write across a boundary is split",
			[]extent{{14, b('x', 4)}},
			[]extent{{14, b('x', 2)}, {16, b('x', 2)}}},
		{"later writes win where they overlap",
			[]extent{{0, b('a', 8)}, {2, b('b', 2)}, {6, b('c', 4)}},
			[]extent{{0, []byte("aabbaacccc")}}},
		{"an earlier write inside a later one disappears",
			[]extent{{3, b('a', 2)}, {0, b('b', 8)}},
			[]extent{{0, b('b', 8)}}},
		{"gaps stay gaps, order is by offset",
			[]extent{{10, b('a', 2)}, {0, b('b', 2)}, {5, nil}},
			[]extent{{0, b('b', 2)}, {10, b('a', 2)}}},
	}
	for _, tt := range tests {
		got := coalesce(tt.writes, 16)
		if !slices.EqualFunc(got, tt.want, func(a, b extent) bool { return a.off == b.off && bytes.Equal(a.data, b.data) }) {
			t.Errorf("%s: coalesce = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// memData keeps file contents in memory (sizes and versions through the
// FSM, as sizeOnlyData) and fails writes with fail's error when it is set.
type memData struct {
	sizeOnlyData
	mu    sync.Mutex
	files map[uint64][]byte
	fail  error
}

func (d *memData) WriteAt(ctx context.Context, vol *meta.Volume, ino uint64, off int64, data []byte) (*meta.Inode, error) {
	d.mu.Lock()
	fail := d.fail
	d.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	n, err := d.sizeOnlyData.WriteAt(ctx, vol, ino, off, data)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.files[ino]
	if need := off + int64(len(data)); int64(len(f)) < need {
		f = append(f, make([]byte, need-int64(len(f)))...)
	}
	copy(f[off:], data)
	d.files[ino] = f
	return n, nil
}

func (d *memData) content(ino uint64) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.files[ino])
}

func (d *memData) setFail(err error) {
	d.mu.Lock()
	d.fail = err
	d.mu.Unlock()
}

// TestWriteBehind checks the write-behind through the front: UNSTABLE
// writes are acknowledged UNSTABLE and reach the data paths by COMMIT at
// the latest; a GETATTR on this node sees them; a flush that fails for a
// reason that may pass keeps the data and answers COMMIT JUKEBOX until it
// succeeds; one that would recur is COMMIT's error, once.
func TestWriteBehind(t *testing.T) {
	md := &memData{files: map[uint64][]byte{}}
	s, _, file := newTestServerWith(t, DefaultFrontConfig(), func(m fuzzMeta) vfs.Data {
		md.sizeOnlyData = sizeOnlyData{m}
		return md
	})
	id, err := s.h.codec.Decode(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write := func(off uint64, data []byte) (committed uint32, verf [8]byte) {
		a := &replyWriter{}
		a.opaque(file)
		a.u64(off)
		a.u32(uint32(len(data)))
		a.u32(stableUnstable)
		a.opaque(data)
		r := nfsCall(t, c, 4, nfsProcWrite, a.b)
		if st := r.u32(); st != nfs3OK {
			t.Fatalf("UNSTABLE WRITE: status %d", st)
		}
		r.skip(4 + 24 + 4 + fattr3Size + 4) // wcc_data, count
		committed = r.u32()
		copy(verf[:], r.b[r.off:])
		return
	}
	commit := func() (st uint32, verf [8]byte) {
		a := &replyWriter{}
		a.opaque(file)
		a.u64(0)
		a.u32(0)
		r := nfsCall(t, c, 5, nfsProcCommit, a.b)
		if st = r.u32(); st == nfs3OK {
			r.skip(4 + 24 + 4 + fattr3Size)
			copy(verf[:], r.b[r.off:])
		}
		return
	}
	getattrSize := func() uint64 {
		a := &replyWriter{}
		a.opaque(file)
		r := nfsCall(t, c, 6, nfsProcGetAttr, a.b)
		if st := r.u32(); st != nfs3OK {
			t.Fatalf("GETATTR: status %d", st)
		}
		r.skip(20)
		return uint64(r.u32())<<32 | uint64(r.u32())
	}
	one, two := bytes.Repeat([]byte("1"), 5000), bytes.Repeat([]byte("2"), 3000)

	how, v0 := write(0, one)
	if how != stableUnstable {
		t.Fatalf("UNSTABLE WRITE answered committed=%d", how)
	}
	if size := getattrSize(); size != 5000 {
		t.Fatalf("GETATTR after a buffered write: size %d, want 5000", size)
	}
	if got := md.content(id.Ino); !bytes.Equal(got, one) {
		t.Fatalf("after GETATTR the data paths hold %d bytes, want the buffered 5000", len(got))
	}
	write(5000, two)
	if st, v := commit(); st != nfs3OK || v != v0 {
		t.Fatalf("COMMIT: status %d, verifier %x; want OK, %x", st, v, v0)
	}
	if got := md.content(id.Ino); !bytes.Equal(got, append(slices.Clone(one), two...)) {
		t.Fatalf("after COMMIT the data paths hold %d bytes, want 8000", len(got))
	}

	// A flush that fails for a reason that may pass: JUKEBOX, the data
	// stays buffered, and once the cluster commits again COMMIT confirms
	// it under the same verifier.
	md.setFail(meta.ErrNoLeader)
	if _, v := write(0, two); v != v0 {
		t.Fatalf("verifier changed to %x on a healthy gateway", v)
	}
	if st, _ := commit(); st != nfs3ErrJukebox {
		t.Fatalf("COMMIT while the flush cannot commit: status %d, want JUKEBOX", st)
	}
	md.setFail(nil)
	if st, v := commit(); st != nfs3OK || v != v0 {
		t.Fatalf("COMMIT once the cluster commits again: status %d, verifier %x; want OK, %x", st, v, v0)
	}
	if got := md.content(id.Ino); !bytes.Equal(got[:3000], two) {
		t.Fatal("the write buffered through the failure did not reach the data paths")
	}

	// One a resend cannot cure: COMMIT's error, once.
	md.setFail(meta.ErrQuota)
	write(0, one)
	if st, _ := commit(); st != nfs3ErrDQuot {
		t.Fatalf("COMMIT after a flush refused by the quota: status %d, want DQUOT", st)
	}
	md.setFail(nil)
	if st, _ := commit(); st != nfs3OK {
		t.Fatalf("the next COMMIT: status %d, want OK (the failure was reported)", st)
	}
}
