package vfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin/admintest"
	"github.com/fsrep/fsrep/meta"
)

// testMeta is Metadata over a real FSM: admintest.Backend applies each
// command directly, as a single-node Raft would. Like meta.Node.Propose, it
// returns a command's failure as the error.
type testMeta struct {
	b *admintest.Backend

	mu     sync.Mutex
	before func(meta.Command) // if set, runs before each proposal
}

func (m *testMeta) Propose(ctx context.Context, cmd meta.Command) (*meta.Result, error) {
	m.mu.Lock()
	before := m.before
	m.mu.Unlock()
	if before != nil {
		before(cmd)
	}
	res, err := m.b.Propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return res, res.Err()
}

func (m *testMeta) CatchUp(context.Context) error { return nil }
func (m *testMeta) FSM() *meta.FSM                { return m.b.FSM() }

// setBefore installs a function that runs before every proposal, to let
// another client's command in between a read and a write.
func (m *testMeta) setBefore(fn func(meta.Command)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.before = fn
}

// memData is the data path kept in memory, one buffer per inode, with the
// chunk bookkeeping of the real one: every write commits new chunk versions
// and lengths through Raft (CommitWrite), so the FSM's truncate logic
// decides what reads see. A chunk's bytes past its committed length read as
// zeros, as on a replica; reads never go past the size the caller passes.
type memData struct {
	meta Metadata

	mu    sync.Mutex
	files map[uint64][]byte
}

func newMemData(m Metadata) *memData { return &memData{meta: m, files: map[uint64][]byte{}} }

func (d *memData) WriteAt(ctx context.Context, vol *meta.Volume, ino uint64, off int64, data []byte) (*meta.Inode, error) {
	if off < 0 {
		return nil, fmt.Errorf("%w: negative offset", meta.ErrInvalid)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cs, end := vol.ChunkSize, off+int64(len(data))
	cmd := &meta.CommitWrite{Vol: vol.ID, Ino: ino, Size: uint64(end)}
	type span struct{ from, to int64 }
	var stale []span // committed-away bytes of the touched chunks
	for idx := off / cs; len(data) > 0 && idx*cs < end; idx++ {
		ch, ok, err := d.meta.FSM().Chunk(vol.ID, ino, uint64(idx))
		if err != nil {
			return nil, err
		}
		w := meta.ChunkWrite{Index: uint64(idx), Version: 1, Replicas: []string{"mem"}}
		if ok {
			w.BaseVersion, w.Version, w.Length = ch.Version, ch.Version+1, ch.Length
		}
		stale = append(stale, span{idx*cs + w.Length, (idx + 1) * cs})
		w.Length = max(w.Length, min(end, (idx+1)*cs)-idx*cs)
		cmd.Chunks = append(cmd.Chunks, w)
	}
	res, err := d.meta.Propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	b := d.files[ino]
	if int64(len(b)) < end {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	for _, s := range stale {
		clear(b[min(s.from, int64(len(b))):min(s.to, int64(len(b)))])
	}
	copy(b[off:], data)
	d.files[ino] = b
	return res.Inode, nil
}

func (d *memData) Truncate(ctx context.Context, vol *meta.Volume, ino uint64, size uint64) (*meta.Inode, error) {
	res, err := d.meta.Propose(ctx, &meta.SetAttr{Vol: vol.ID, Ino: ino, Size: &size})
	if err != nil {
		return nil, err
	}
	return res.Inode, nil
}

func (d *memData) ReadAt(_ context.Context, vol *meta.Volume, ino uint64, size uint64, off int64, buf []byte) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset", meta.ErrInvalid)
	}
	if uint64(off) >= size {
		return 0, nil
	}
	want := int64(min(uint64(len(buf)), size-uint64(off)))
	chunks, err := d.meta.FSM().Chunks(vol.ID, ino)
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.files[ino]
	clear(buf[:want])
	for _, ch := range chunks {
		start := int64(ch.Index) * vol.ChunkSize
		lo := max(start, off)
		hi := min(start+ch.Length, off+want, int64(len(b)))
		if lo < hi {
			copy(buf[lo-off:hi-off], b[lo:hi])
		}
	}
	return int(want), nil
}

// fixedClock is a clock that does not move.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var testOwner = Owner{UID: 1000, GID: 100}

// env is a filesystem on a fresh volume of a real FSM.
type env struct {
	fs   *FS
	meta *testMeta
	data *memData
	vol  *meta.Volume
}

func newEnv(t *testing.T) *env {
	t.Helper()
	m := &testMeta{b: admintest.New(t)}
	res, err := m.Propose(t.Context(), &meta.CreateVolume{Name: "vol", Replicas: 1, WriteQuorum: 1,
		ChunkSize: meta.MinChunkSize, RootMode: 0o755, RootUID: testOwner.UID, RootGID: testOwner.GID})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	d := newMemData(m)
	clock := fixedClock{time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	return &env{fs: New(res.Volume.ID, m, d, clock, testOwner, 5*time.Second), meta: m, data: d, vol: res.Volume}
}

// ino resolves p or fails the test.
func (e *env) ino(t *testing.T, p string) *meta.Inode {
	t.Helper()
	n, err := e.fs.Resolve(p)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", p, err)
	}
	return n
}

// writeFile creates (or truncates) p and writes data to it.
func (e *env) writeFile(t *testing.T, p string, data string) *meta.Inode {
	t.Helper()
	f, err := e.fs.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		t.Fatalf("OpenFile(%q, O_CREATE|O_TRUNC): %v", p, err)
	}
	if n, err := f.Write([]byte(data)); err != nil || n != len(data) {
		t.Fatalf("Write(%q) = %d, %v", p, n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close(%q): %v", p, err)
	}
	return e.ino(t, p)
}

// readFile returns the contents of p read through Open.
func (e *env) readFile(t *testing.T, p string) string {
	t.Helper()
	f, err := e.fs.Open(p)
	if err != nil {
		t.Fatalf("Open(%q): %v", p, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("ReadAll(%q): %v", p, err)
	}
	return string(b)
}

// wantErr fails the test unless err matches every one of want.
func wantErr(t *testing.T, what string, err error, want ...error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded; want %v", what, want)
		return
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("%s: %v; want %v", what, err, w)
		}
	}
}

// names returns the names of a directory listing.
func names(fis []os.FileInfo) []string {
	out := make([]string, len(fis))
	for i, fi := range fis {
		out[i] = fi.Name()
	}
	return out
}
