package replication

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/fsrep/fsrep/meta"
)

func inlineOn(c *Config) { c.InlineMax = meta.InlineMax }

func (c *cluster) inline(ino uint64) ([]byte, bool) {
	c.t.Helper()
	in, err := c.b.FSM().Inline(c.vol.ID, ino)
	if err != nil {
		c.t.Fatalf("Inline(%d): %v", ino, err)
	}
	if in == nil {
		return nil, false
	}
	return in.Data, true
}

// TestSmallFileInline: writes that end within InlineMax to a file without
// chunk 0 go into the metadata (no chunk, no replica file) and read back
// through every node; a write to another chunk leaves them there; the
// first write to chunk 0 past InlineMax moves the inline bytes into chunk
// 0 with it, after which chunk 0 is a chunk for good, small writes
// included.
func TestSmallFileInline(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", inlineOn)
	r2, _ := c.replicator("n2", "az2", inlineOn)
	ino := c.create("f")
	var m model
	for _, w := range []struct {
		off int64
		n   int
	}{{0, 4096}, {6000, 100}, {10, 20}} {
		data := pattern(uint64(w.off), w.n)
		c.write(r1, ino, w.off, data)
		m.write(w.off, data)
	}
	if ch := c.chunk(ino, 0); ch != nil {
		t.Fatalf("a 6100-byte file has chunk 0: %+v", ch)
	}
	if data, ok := c.inline(ino); !ok || firstDiff(data, m) >= 0 {
		t.Fatalf("inline data: %d bytes (%v), want the file's %d", len(data), ok, len(m))
	}
	c.wantFile(ino, m, r1, r2)
	// A read past the inline data and within the size reads zeros.
	size := uint64(meta.InlineMax + 50)
	if _, err := r2.Truncate(t.Context(), c.vol, ino, size); err != nil {
		t.Fatal(err)
	}
	m.write(int64(size)-1, []byte{0})
	c.wantFile(ino, m, r1, r2)

	// A write to another chunk leaves chunk 0 inline.
	far := pattern(8, 700)
	c.write(r1, ino, testChunkSize+10, far)
	m.write(testChunkSize+10, far)
	if _, ok := c.inline(ino); !ok {
		t.Fatal("a write to chunk 1 moved chunk 0's inline bytes")
	}
	c.wantFile(ino, m, r1, r2)

	big := pattern(7, 3000)
	c.write(r2, ino, 100_000, big)
	m.write(100_000, big)
	if _, ok := c.inline(ino); ok {
		t.Fatal("inline data kept after a write past InlineMax")
	}
	c.wantFile(ino, m, r1, r2)
	c.wantReplicaFiles(ino, 0, m[:100_000+3000])

	small := pattern(9, 50)
	c.write(r1, ino, 0, small)
	m.write(0, small)
	if _, ok := c.inline(ino); ok {
		t.Fatal("a small write to a file in chunks went inline")
	}
	c.wantFile(ino, m, r1, r2)
	c.wantReplicaFiles(ino, 0, m[:100_000+3000])
}

// TestSpillRetriesAfterInlineWrite: an inline write that commits while
// another node moves the file's inline bytes to chunk 0 makes that move's
// commit fail (its bytes are no longer the file's), and the writer retries
// with the new bytes: nothing written is lost.
func TestSpillRetriesAfterInlineWrite(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", inlineOn)
	r2, m2 := c.replicator("n2", "az2", inlineOn)
	ino := c.create("f")
	var m model
	first := pattern(1, 1000)
	c.write(r1, ino, 0, first)
	m.write(0, first)

	racer := pattern(2, 500)
	var raced atomic.Bool
	m2.setFail(func(cmd meta.Command) error {
		if cw, ok := cmd.(*meta.CommitWrite); ok && cw.Spill != nil && raced.CompareAndSwap(false, true) {
			c.write(r1, ino, 200, racer) // commits before the spill
		}
		return nil
	})
	big := pattern(3, 40_000)
	c.write(r2, ino, 5000, big)
	m.write(200, racer)
	m.write(5000, big)
	if !raced.Load() {
		t.Fatal("the write never moved the inline bytes to chunks")
	}
	c.wantFile(ino, m, r1, r2)
	c.wantReplicaFiles(ino, 0, m)
}

// TestStrandedSpillFenced: n2 moved a small file's inline bytes into chunk
// 0 on every replica and died before its commit. n1, writing chunk 0 past
// InlineMax once that is older than FenceAfter, fences it out by moving
// the inline generation (the stranded commit can never land), then writes:
// the file reads as its inline bytes plus n1's write; n2's bytes were
// never acknowledged and are gone.
func TestStrandedSpillFenced(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", inlineOn)
	r2, m2 := c.replicator("n2", "az2", inlineOn)
	ino := c.create("f")
	small := pattern(40, 3000)
	c.write(r1, ino, 0, small)

	m2.setFail(failCommits(meta.ErrNoLeader))
	if _, err := r2.WriteAt(t.Context(), c.vol, ino, 10_000, pattern(41, 50_000)); !errors.Is(err, meta.ErrNoLeader) {
		t.Fatalf("n2's stranded move: %v, want ErrNoLeader", err)
	}
	m2.setFail(nil)
	failed := m2.failedCommands()
	pending, ok := failed[len(failed)-1].(*meta.CommitWrite)
	if !ok || pending.Spill == nil {
		t.Fatalf("n2's refused command %+v is not a move of inline data", failed[len(failed)-1])
	}
	id := ChunkID(c.vol.ID, ino, 0)
	c.ageChunk(t, id, (r1.cfg.FenceAfter+r1.cfg.StaleAfter)/2)

	ours := pattern(42, 30_000)
	c.write(r1, ino, 20_000, ours)
	if _, err := m2.Propose(t.Context(), pending); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("n2's commit of its fenced-out move: %v, want ErrConflict", err)
	}
	var m model
	m.write(0, small)
	m.write(20_000, ours)
	c.wantFile(ino, m, r1, r2)
	c.wantReplicaFiles(ino, 0, m)
	if _, ok := c.inline(ino); ok {
		t.Fatal("inline data kept after chunk 0 was written")
	}
}
