package replication

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// TestConcurrentWritersNewChunk proves that two gateways (n1 and n2, with
// distinct writer tags) writing disjoint halves of the same new chunk at the
// same time never lose an acknowledged write: each race leaves some
// replicas with one writer's new file and some with the other's, and the
// loser must wait for the winner's commit and write on top of it rather than
// overwrite it.
func TestConcurrentWritersNewChunk(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	r2, _ := c.replicator("n2", "az2", nil)
	if r1.tag == r2.tag {
		t.Fatalf("n1 and n2 share writer tag %#x", r1.tag)
	}
	const rounds = 25
	half := testChunkSize / 2
	for i := range rounds {
		ino := c.create(fmt.Sprintf("f%d", i))
		a, b := pattern(uint64(100+i), half), pattern(uint64(200+i), half)
		var errA, errB error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_, errA = r1.WriteAt(t.Context(), c.vol, ino, 0, a)
		})
		wg.Go(func() {
			<-start
			_, errB = r2.WriteAt(t.Context(), c.vol, ino, int64(half), b)
		})
		close(start)
		wg.Wait()
		if errA != nil || errB != nil {
			// Allowed only as a retryable refusal; the acknowledged one
			// must still read back below.
			t.Logf("round %d: n1: %v; n2: %v", i, errA, errB)
			for _, err := range []error{errA, errB} {
				if err != nil && !errors.Is(err, chunkstore.ErrVersionMismatch) && !errors.Is(err, meta.ErrConflict) {
					t.Fatalf("round %d: unexpected write error %v", i, err)
				}
			}
		}
		checkAcked(t, c, ino, []int64{0, int64(half)}, [][]byte{a, b}, []error{errA, errB}, r1, r2)
		ch := c.chunk(ino, 0)
		if ch == nil || len(ch.Replicas) < c.vol.WriteQuorum {
			t.Fatalf("round %d: chunk %+v", i, ch)
		}
		c.wantReplicaFiles(ino, 0, mustRead(t, c, r1, ino)[:ch.Length])
	}
	wantRaced(t, c)
}

// TestConcurrentWritersSameChunk proves the same for two gateways
// rewriting disjoint halves of one existing chunk round after round.
// Contention drops the loser's replica from the set, so later rounds run on
// two replicas, where each writer can win one of them.
func TestConcurrentWritersSameChunk(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	r2, _ := c.replicator("n2", "az2", nil)
	ino := c.create("f")
	half := int64(64 << 10)
	c.write(r1, ino, 0, make([]byte, 2*half))
	const rounds = 25
	for i := range rounds {
		a, b := pattern(uint64(300+i), int(half)), pattern(uint64(400+i), int(half))
		var errA, errB error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_, errA = r1.WriteAt(t.Context(), c.vol, ino, 0, a)
		})
		wg.Go(func() {
			<-start
			_, errB = r2.WriteAt(t.Context(), c.vol, ino, half, b)
		})
		close(start)
		wg.Wait()
		if errA != nil || errB != nil {
			t.Fatalf("round %d (replicas %v): n1: %v; n2: %v", i, c.chunk(ino, 0).Replicas, errA, errB)
		}
		checkAcked(t, c, ino, []int64{0, half}, [][]byte{a, b}, []error{errA, errB}, r1, r2)
	}
	wantRaced(t, c)
}

// wantRaced fails the test if no round made a writer reconcile (which
// inspects the replicas): then no two writes raced and nothing was proved.
func wantRaced(t *testing.T, c *cluster) {
	t.Helper()
	stats := 0
	for _, node := range allNodes {
		stats += c.peers.count("stat", node)
	}
	if stats == 0 {
		t.Errorf("no round raced")
	}
}

// checkAcked reads the file through every reader and fails the test unless
// each write whose error is nil reads back.
func checkAcked(t *testing.T, c *cluster, ino uint64, offs []int64, datas [][]byte, errs []error, rs ...*Replicator) {
	t.Helper()
	for _, r := range rs {
		got := mustRead(t, c, r, ino)
		for i, off := range offs {
			if errs[i] != nil {
				continue
			}
			end := off + int64(len(datas[i]))
			if int64(len(got)) < end {
				t.Fatalf("%s: file is %d bytes, acknowledged write [%d, %d) is cut off", r.cfg.NodeID, len(got), off, end)
			}
			if j := firstDiff(got[off:end], datas[i]); j >= 0 {
				t.Fatalf("%s: acknowledged write [%d, %d) lost: differs at %d", r.cfg.NodeID, off, end, off+int64(j))
			}
		}
	}
}

func mustRead(t *testing.T, c *cluster, r *Replicator, ino uint64) []byte {
	t.Helper()
	got, err := c.readAll(r, ino)
	if err != nil {
		t.Fatalf("%s: read ino %d: %v", r.cfg.NodeID, ino, err)
	}
	return got
}

// strandWrite has n2 write data at off of a new chunk of a new file on all
// three replicas with its commit failing, so every replica holds n2's
// uncommitted file. It returns the file and the refused commit.
func strandWrite(t *testing.T, c *cluster, r2 *Replicator, m2 *testMeta, off int64, data []byte) (uint64, *meta.CommitWrite) {
	t.Helper()
	ino := c.create("stranded")
	m2.setFail(failCommits(meta.ErrNoLeader))
	defer m2.setFail(nil)
	if _, err := r2.WriteAt(t.Context(), c.vol, ino, off, data); !errors.Is(err, meta.ErrNoLeader) {
		t.Fatalf("n2's stranded write: %v, want ErrNoLeader", err)
	}
	failed := m2.failedCommands()
	cmd, ok := failed[len(failed)-1].(*meta.CommitWrite)
	if !ok {
		t.Fatalf("refused command %T", failed[len(failed)-1])
	}
	for _, node := range allNodes {
		if v, _, err := c.stores[node].Stat(ChunkID(c.vol.ID, ino, 0)); err != nil || writerOf(v) != r2.tag {
			t.Fatalf("%s: chunk at %#x, %v; want n2's uncommitted write", node, v, err)
		}
	}
	return ino, cmd
}

// TestYoungForeignWriteNotOverwritten proves that an uncommitted write of
// ANOTHER gateway younger than StaleAfter is never overwritten: n2 stored a
// new chunk on every replica and may still be committing it. n1 writing the
// same chunk must keep refusing (and leave n2's files alone) while that
// commit is pending, and succeed on top of n2's write once it lands.
func TestYoungForeignWriteNotOverwritten(t *testing.T) {
	few := func(cfg *Config) { cfg.Attempts = 3 }
	half := int64(testChunkSize / 2)

	t.Run("never committed", func(t *testing.T) {
		c := newCluster(t)
		r1, _ := c.replicator("n1", "az1", few)
		r2, m2 := c.replicator("n2", "az2", nil)
		theirs := pattern(20, int(half))
		ino, _ := strandWrite(t, c, r2, m2, half, theirs)
		id := ChunkID(c.vol.ID, ino, 0)
		before := map[string]uint64{}
		for _, node := range allNodes {
			before[node], _, _ = c.stores[node].Stat(id)
		}

		_, err := r1.WriteAt(t.Context(), c.vol, ino, 0, pattern(21, int(half)))
		if !errors.Is(err, chunkstore.ErrVersionMismatch) {
			t.Fatalf("write over another gateway's young uncommitted chunk: %v, want ErrVersionMismatch", err)
		}
		if ch := c.chunk(ino, 0); ch != nil {
			t.Fatalf("refused write committed %+v", ch)
		}
		for _, node := range allNodes {
			data, v, err := c.stores[node].ReadAll(id)
			if err != nil || v != before[node] {
				t.Fatalf("%s: n2's write was replaced (version %#x -> %#x, %v)", node, before[node], v, err)
			}
			if firstDiff(data[half:], theirs) >= 0 {
				t.Fatalf("%s: n2's bytes changed", node)
			}
		}
	})

	t.Run("committed while n1 retries", func(t *testing.T) {
		c := newCluster(t)
		r1, m1 := c.replicator("n1", "az1", nil)
		r2, m2 := c.replicator("n2", "az2", nil)
		theirs, ours := pattern(22, int(half)), pattern(23, int(half))
		ino, pending := strandWrite(t, c, r2, m2, half, theirs)
		// n2's commit lands at n1's second catch-up: after n1 has been
		// refused at least once.
		var once sync.Once
		var calls atomic.Int32
		m1.setCatchUp(func() {
			if calls.Add(1) < 2 {
				return
			}
			once.Do(func() {
				if _, err := m2.Propose(t.Context(), pending); err != nil {
					t.Errorf("n2's delayed commit: %v", err)
				}
			})
		})
		c.write(r1, ino, 0, ours)
		var m model
		m.write(0, ours)
		m.write(half, theirs)
		c.wantFile(ino, m, r1, r2)
		c.wantReplicaFiles(ino, 0, m)
	})
}

// TestOldForeignWriteReconciled proves the other half of the StaleAfter
// rule: another gateway's uncommitted write older than StaleAfter is dead
// (its writer gave up), so n1 reconciles the replicas and its write
// succeeds; n2's late commit can then no longer land on top of it.
func TestOldForeignWriteReconciled(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", func(cfg *Config) { cfg.Attempts = 3 })
	r2, m2 := c.replicator("n2", "az2", nil)
	half := int64(testChunkSize / 2)
	ino, pending := strandWrite(t, c, r2, m2, half, pattern(24, int(half)))
	id := ChunkID(c.vol.ID, ino, 0)
	c.ageChunk(t, id, r1.cfg.StaleAfter+time.Minute)

	ours := pattern(25, int(half))
	c.write(r1, ino, 0, ours)
	ch := c.chunk(ino, 0)
	if ch == nil || writerOf(ch.Version) != r1.tag || len(ch.Replicas) != 3 {
		t.Fatalf("chunk after reconciling %+v", ch)
	}
	got := mustRead(t, c, r1, ino)
	if firstDiff(got[:half], ours) >= 0 {
		t.Fatalf("n1's acknowledged write does not read back")
	}
	if _, err := m2.Propose(t.Context(), pending); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("n2's commit of its reconciled-away write: %v, want ErrConflict", err)
	}
	got2 := mustRead(t, c, r2, ino)
	if firstDiff(got2[:half], ours) >= 0 {
		t.Fatalf("n1's acknowledged write lost after n2's late commit")
	}
}

// ageChunk sets the mtime of chunk id's file on every replica age back.
func (c *cluster) ageChunk(t *testing.T, id chunkstore.ID, age time.Duration) {
	t.Helper()
	past := time.Now().Add(-age)
	for _, node := range allNodes {
		path := filepath.Join(c.dirs[node], chunkFanout(t, c.dirs[node], id), id.String())
		if err := os.Chtimes(path, past, past); err != nil {
			t.Fatal(err)
		}
		if info, err := c.stores[node].Inspect(id); err != nil || info.Age < age {
			t.Fatalf("%s: aged chunk inspects as %+v, %v", node, info, err)
		}
	}
}

// TestStrandedForeignWriteFenced proves that another gateway's uncommitted
// write older than FenceAfter (but younger than StaleAfter: its writer may
// in theory still be committing) no longer blocks the chunk: n1 first
// commits a fence version, so n2's late commit fails, then reconciles and
// writes. This is what keeps a client whose gateway died mid-write from
// stalling for StaleAfter on its next gateway.
func TestStrandedForeignWriteFenced(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	r2, m2 := c.replicator("n2", "az2", nil)
	half := int64(testChunkSize / 2)
	ino, pending := strandWrite(t, c, r2, m2, half, pattern(26, int(half)))
	id := ChunkID(c.vol.ID, ino, 0)
	c.ageChunk(t, id, (r1.cfg.FenceAfter+r1.cfg.StaleAfter)/2)

	ours := pattern(27, int(half))
	c.write(r1, ino, 0, ours)
	ch := c.chunk(ino, 0)
	if ch == nil || writerOf(ch.Version) != r1.tag || len(ch.Replicas) != 3 {
		t.Fatalf("chunk after fencing %+v", ch)
	}
	if _, err := m2.Propose(t.Context(), pending); !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("n2's commit of its fenced-out write: %v, want ErrConflict", err)
	}
	var m model
	m.write(0, ours) // n2's bytes were never acknowledged: gone
	c.wantFile(ino, m, r1, r2)
	c.wantReplicaFiles(ino, 0, m)
}

// TestFenceLosesToStrandedCommit proves the fence is a compare-and-swap:
// when the stranded write commits after all, just before n1's fence, the
// fence fails, and n1 writes on top of that (now acknowledged) write
// instead of reconciling it away.
func TestFenceLosesToStrandedCommit(t *testing.T) {
	c := newCluster(t)
	r1, m1 := c.replicator("n1", "az1", nil)
	r2, m2 := c.replicator("n2", "az2", nil)
	half := int64(testChunkSize / 2)
	theirs, ours := pattern(28, int(half)), pattern(29, int(half))
	ino, pending := strandWrite(t, c, r2, m2, half, theirs)
	c.ageChunk(t, ChunkID(c.vol.ID, ino, 0), (r1.cfg.FenceAfter+r1.cfg.StaleAfter)/2)

	var once sync.Once
	var fences atomic.Int32
	m1.setFail(func(cmd meta.Command) error {
		if cw, ok := cmd.(*meta.CommitWrite); ok && cw.Chunks[0].BaseVersion == 0 {
			fences.Add(1)
			once.Do(func() {
				if _, err := m2.Propose(t.Context(), pending); err != nil {
					t.Errorf("n2's delayed commit: %v", err)
				}
			})
		}
		return nil
	})
	c.write(r1, ino, 0, ours)
	if fences.Load() == 0 {
		t.Fatal("n1 never tried to fence the stranded write")
	}
	var m model
	m.write(0, ours)
	m.write(half, theirs)
	c.wantFile(ino, m, r1, r2)
	c.wantReplicaFiles(ino, 0, m)
}

// chunkFanout finds the subdirectory of dir holding chunk id's file.
func chunkFanout(t *testing.T, dir string, id chunkstore.ID) string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*", id.String()))
	if err != nil || len(matches) != 1 {
		t.Fatalf("chunk file %s under %s: %v, %v", id, dir, matches, err)
	}
	return filepath.Base(filepath.Dir(matches[0]))
}

// TestVersions proves the version layout the StaleAfter rule depends on:
// the writer's tag in the low 16 bits, a counter above it that increases
// with every write whoever writes, and writerOf recovering the tag.
func TestVersions(t *testing.T) {
	if writerTag("n1") == writerTag("n2") {
		t.Errorf("n1 and n2 share a tag")
	}
	for _, id := range []string{"", "n1", "n2", "a-very-long-node-id-0123456789"} {
		if tag := writerTag(id); tag >= 1<<tagBits || tag != writerTag(id) {
			t.Errorf("writerTag(%q) = %#x: not a stable 16-bit tag", id, tag)
		}
	}
	tests := []struct {
		base, tag, want uint64
	}{
		{0, 0, 1 << 16},
		{0, 0xabcd, 1<<16 | 0xabcd},
		{1<<16 | 0xabcd, 0x1234, 2<<16 | 0x1234},
		{1<<16 | 0xffff, 0, 2 << 16},
		{5<<16 | 7, 7, 6<<16 | 7},
		{1, 2, 1<<16 | 2}, // a base with no counter (an old-style version) still moves on
	}
	for _, tt := range tests {
		got := nextVersion(tt.base, tt.tag)
		if got != tt.want {
			t.Errorf("nextVersion(%#x, %#x) = %#x, want %#x", tt.base, tt.tag, got, tt.want)
		}
		if got <= tt.base {
			t.Errorf("nextVersion(%#x, %#x) = %#x does not increase", tt.base, tt.tag, got)
		}
		if w := writerOf(got); w != tt.tag {
			t.Errorf("writerOf(nextVersion(%#x, %#x)) = %#x", tt.base, tt.tag, w)
		}
	}
	// A chain of writes by alternating writers keeps increasing.
	v := uint64(0)
	for i := range 1000 {
		tag := writerTag(fmt.Sprint("n", i%3))
		next := nextVersion(v, tag)
		if next <= v || writerOf(next) != tag || next>>tagBits != v>>tagBits+1 {
			t.Fatalf("step %d: nextVersion(%#x, %#x) = %#x", i, v, tag, next)
		}
		v = next
	}
}

// TestConcurrentWritersSplitReplicas proves that two gateways whose
// concurrent writes to a two-replica chunk each land on one replica (so
// neither reaches the write quorum of 2, and each finds the other's young
// write on the remaining replica) do not lock each other out until
// StaleAfter: one of them must win, and both writes must end up
// acknowledged and readable.
func TestConcurrentWritersSplitReplicas(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	r2, _ := c.replicator("n2", "az2", nil)
	ino := c.create("f")
	half := int64(64 << 10)
	c.peers.setFault("n3", fault{down: true})
	c.write(r1, ino, 0, make([]byte, 2*half))
	c.peers.setFault("n3", fault{})
	base := c.chunk(ino, 0)
	if !slices.Equal(base.Replicas, []string{"n1", "n2"}) {
		t.Fatalf("setup: replicas %v", base.Replicas)
	}
	id := ChunkID(c.vol.ID, ino, 0)

	// Each writer's first write to the other's replica waits until the
	// other's local write is there, so each wins exactly its own replica.
	var once1, once2 sync.Once
	waitFor := func(node string, tag uint64) {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if v, _, err := c.stores[node].Stat(id); err == nil && v != base.Version && writerOf(v) == tag {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Errorf("%s never got the write of tag %#x", node, tag)
	}
	// Only one of them may copy over the other's young write: with both,
	// their copies interleave and the one that commits can end up listed on
	// a replica the other overwrote. The one with the lower writer tag must
	// yield. Peer calls to n1 come from n2 and vice versa.
	callerTag := map[string]uint64{"n1": r2.tag, "n2": r1.tag}
	var overwrote sync.Once
	c.peers.setBefore(func(op, node string, got chunkstore.ID) {
		if got != id {
			return
		}
		if op == "put" {
			info, err := c.stores[node].Inspect(id)
			if w := writerOf(info.Version); err == nil && w != callerTag[node] && w > callerTag[node] && info.Age < r1.cfg.StaleAfter {
				overwrote.Do(func() { t.Errorf("writer %#x copied over writer %#x's young write on %s", callerTag[node], w, node) })
			}
		}
		if op != "write" {
			return
		}
		switch node {
		case "n2": // from n1
			once1.Do(func() { waitFor("n2", r2.tag) })
		case "n1": // from n2
			once2.Do(func() { waitFor("n1", r1.tag) })
		}
	})

	a, b := pattern(500, int(half)), pattern(501, int(half))
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { _, errA = r1.WriteAt(t.Context(), c.vol, ino, 0, a) })
	wg.Go(func() { _, errB = r2.WriteAt(t.Context(), c.vol, ino, half, b) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("split writes: n1: %v; n2: %v", errA, errB)
	}
	var m model
	m.write(0, a)
	m.write(half, b)
	c.wantFile(ino, m, r1, r2)
	c.wantReplicasHold(ino, 0, m)
}

// TestWritesToDifferentChunksOverlap proves that one node's writes to
// different chunks of one file run at once (a sequential writer with many
// requests in flight keeps several chunks busy): the write to chunk 0 is
// held at its first remote replica until the write to chunk 1 has reached
// a remote replica too. With one lock per file, the second write could
// not start and the hold would time out.
func TestWritesToDifferentChunksOverlap(t *testing.T) {
	c := newCluster(t)
	r, _ := c.replicator("n1", "az1", nil)
	ino := c.create("f")
	second := make(chan struct{})
	var once sync.Once
	var timedOut atomic.Bool
	c.peers.setBefore(func(op, node string, id chunkstore.ID) {
		if op != "write" || id.Ino != ino {
			return
		}
		switch id.Index {
		case 0:
			select {
			case <-second:
			case <-time.After(10 * time.Second):
				timedOut.Store(true)
			}
		case 1:
			once.Do(func() { close(second) })
		}
	})
	a, b := pattern(600, testChunkSize), pattern(601, testChunkSize/2)
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { _, errA = r.WriteAt(t.Context(), c.vol, ino, 0, a) })
	// The first write is under way (held in the hook) before the second starts.
	deadline := time.Now().Add(10 * time.Second)
	for c.peers.count("write", "n2")+c.peers.count("write", "n3") == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // poll interval
	}
	wg.Go(func() { _, errB = r.WriteAt(t.Context(), c.vol, ino, testChunkSize, b) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("writes: %v; %v", errA, errB)
	}
	if timedOut.Load() {
		t.Fatal("the write to chunk 1 did not start while the write to chunk 0 was in flight")
	}
	var m model
	m.write(0, a)
	m.write(testChunkSize, b)
	c.wantFile(ino, m, r)
}

// TestFileLocks checks the lock a truncate and the writes of one node
// share: a write's chunks exclude the truncate of their file (so a write
// in flight cannot commit after a truncate and bring cut bytes back) and
// another write to the same chunk, not writes to other chunks or files.
func TestFileLocks(t *testing.T) {
	var l fileLocks
	l.m = map[fileKey]*fileLock{}
	f, g := fileKey{1, 10}, fileKey{1, 11}
	unlock := l.lockChunks(f, 3, 1, 3)
	fl := l.m[f]
	if fl.rw.TryLock() {
		t.Fatal("a truncate could take a file whose chunks are being written")
	}
	if fl.chunks[1].mu.TryLock() || fl.chunks[3].mu.TryLock() {
		t.Fatal("a second write could take a chunk being written")
	}
	unlock2 := l.lockChunks(f, 2) // another chunk of the same file
	unlock3 := l.lockFile(g)      // another file
	unlock3()
	unlock2()
	unlock()
	if len(l.m) != 0 {
		t.Fatalf("locks left after every unlock: %v", l.m)
	}
	unlock = l.lockFile(f)
	if fl := l.m[f]; fl.rw.TryRLock() {
		t.Fatal("a write could start on a file being truncated")
	}
	unlock()
	if len(l.m) != 0 {
		t.Fatalf("locks left after every unlock: %v", l.m)
	}
}
