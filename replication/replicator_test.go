package replication

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

var allNodes = []string{"n1", "n2", "n3"}

// TestWriteReadRoundTrip proves the plain write path: a write across a chunk
// boundary lands on all three replicas, commits both chunks with all three
// listed at the version their files hold, and reads back byte for byte
// through the writer (local replica first) and through another node (remote
// replicas only). An overwrite then moves every replica to the new version.
func TestWriteReadRoundTrip(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	r2, _ := c.replicator("n2", "az2", nil)
	ino := c.create("f")

	off := int64(testChunkSize - 3000)
	data := pattern(1, 10000)
	n, err := r1.WriteAt(t.Context(), c.vol, ino, off, data)
	if err != nil {
		t.Fatalf("WriteAt: %v", err)
	}
	if want := uint64(off) + uint64(len(data)); n.Size != want || c.size(ino) != want {
		t.Fatalf("size after write: returned %d, committed %d, want %d", n.Size, c.size(ino), want)
	}
	var m model
	m.write(off, data)

	buf := make([]byte, len(data))
	if got, err := r1.ReadAt(t.Context(), c.vol, ino, c.size(ino), off, buf); err != nil || got != len(data) || !bytes.Equal(buf, data) {
		t.Fatalf("ReadAt(%d) = %d, %v; equal %v", off, got, err, bytes.Equal(buf, data))
	}
	c.wantFile(ino, m, r1, r2)

	for idx := range uint64(2) {
		ch := c.chunk(ino, idx)
		if ch == nil || !slices.Equal(ch.Replicas, allNodes) {
			t.Fatalf("chunk %d: %+v; want replicas %v", idx, ch, allNodes)
		}
		if writerOf(ch.Version) != r1.tag {
			t.Errorf("chunk %d version %#x does not carry n1's tag %#x", idx, ch.Version, r1.tag)
		}
	}
	c.wantReplicaFiles(ino, 0, m[:testChunkSize])
	c.wantReplicaFiles(ino, 1, m[testChunkSize:])

	// Overwrite inside both chunks through the other node.
	before := c.chunk(ino, 0).Version
	over := pattern(2, 2000)
	c.write(r2, ino, testChunkSize-1000, over)
	m.write(testChunkSize-1000, over)
	if v := c.chunk(ino, 0).Version; v <= before || writerOf(v) != r2.tag {
		t.Errorf("chunk 0 version %#x after an overwrite by n2 from %#x", v, before)
	}
	c.wantFile(ino, m, r1, r2)
	c.wantReplicaFiles(ino, 0, m[:testChunkSize])
	c.wantReplicaFiles(ino, 1, m[testChunkSize:])
}

// TestWriteOneReplicaDown proves that losing one replica does not stop
// writes, and that the replica that missed a write (down, or it stored the
// write but its reply was lost) is left out of the committed replica set, so
// no read ever asks it. The reader "gw" sits in az3, so it would ask n3
// first if n3 were listed; n3 answers garbage to any read.
func TestWriteOneReplicaDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    fault
	}{
		{"down", fault{down: true}},
		{"reply lost", fault{failAfter: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			r1, _ := c.replicator("n1", "az1", nil)
			r2, _ := c.replicator("n2", "az2", nil)
			gw, _ := c.replicator("gw", "az3", nil)

			// An existing file, written while all were up.
			old := c.create("old")
			var mo model
			mo.write(0, pattern(3, 5000))
			c.write(r1, old, 0, mo)
			oldVersion := c.chunk(old, 0).Version

			c.peers.setFault("n3", tc.f)
			fresh := c.create("fresh")
			var mf model
			mf.write(testChunkSize-100, pattern(4, 300)) // two new chunks
			c.write(r1, fresh, testChunkSize-100, mf[testChunkSize-100:])
			over := pattern(5, 1000)
			c.write(r1, old, 2000, over)
			mo.write(2000, over)

			for _, ch := range []*meta.Chunk{c.chunk(fresh, 0), c.chunk(fresh, 1), c.chunk(old, 0)} {
				if !slices.Equal(ch.Replicas, []string{"n1", "n2"}) {
					t.Errorf("chunk %+v: replicas %v, want [n1 n2]", ch, ch.Replicas)
				}
			}
			if v, _, err := c.stores["n3"].Stat(ChunkID(c.vol.ID, old, 0)); err != nil || v != oldVersion && !tc.f.failAfter {
				t.Errorf("n3 holds the old chunk at %#x, %v; want the version before the write %#x", v, err, oldVersion)
			}

			c.peers.setFault("n3", fault{garbage: true})
			c.peers.resetCounts()
			c.wantFile(fresh, mf, r1, r2, gw)
			c.wantFile(old, mo, r1, r2, gw)
			for _, op := range []string{"read", "fetch", "stat", "write", "put"} {
				if k := c.peers.count(op, "n3"); k > 0 {
					t.Errorf("n3 got %d %s calls after it missed the writes", k, op)
				}
			}
			if c.peers.count("read", "n1")+c.peers.count("read", "n2") == 0 {
				t.Errorf("gw read from no peer at all")
			}
		})
	}
}

// TestDownMarkingExpires proves the failure detection timing: a replica
// that failed is skipped when placing new chunks for DownFor by the
// injected clock (even though it is back), and used again after that.
func TestDownMarkingExpires(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	c.peers.setFault("n3", fault{down: true})
	c.write(r1, c.create("a"), 0, []byte("a"))
	c.peers.setFault("n3", fault{})

	b := c.create("b")
	c.write(r1, b, 0, []byte("b"))
	if got := c.chunk(b, 0).Replicas; !slices.Equal(got, []string{"n1", "n2"}) {
		t.Errorf("new chunk within DownFor of n3's failure placed on %v, want [n1 n2]", got)
	}
	c.clock.Advance(r1.cfg.DownFor + time.Second)
	d := c.create("d")
	c.write(r1, d, 0, []byte("d"))
	if got := c.chunk(d, 0).Replicas; !slices.Equal(got, allNodes) {
		t.Errorf("new chunk after DownFor placed on %v, want %v", got, allNodes)
	}
}

// TestWriteTwoReplicasDown proves that a write below the write quorum fails
// with ErrQuorum and commits nothing (chunk and size unchanged), both for a
// new chunk and for an existing one, whether the two replicas never got the
// write or stored it and lost the reply; and that once they are back the file
// reads as before and takes writes again.
func TestWriteTwoReplicasDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    fault
	}{
		{"down", fault{down: true}},
		{"reply lost", fault{failAfter: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			r1, _ := c.replicator("n1", "az1", nil)

			fresh := c.create("fresh")
			old := c.create("old")
			var mo model
			mo.write(0, pattern(6, 4000))
			c.write(r1, old, 0, mo)
			before := *c.chunk(old, 0)

			c.peers.setFault("n2", tc.f)
			c.peers.setFault("n3", tc.f)
			if _, err := r1.WriteAt(t.Context(), c.vol, fresh, 100, []byte("lost")); !errors.Is(err, ErrQuorum) {
				t.Errorf("write to a new chunk with two replicas down: %v, want ErrQuorum", err)
			}
			if ch := c.chunk(fresh, 0); ch != nil || c.size(fresh) != 0 {
				t.Errorf("failed write committed chunk %+v, size %d", ch, c.size(fresh))
			}
			failedOld := pattern(7, 3000)
			if _, err := r1.WriteAt(t.Context(), c.vol, old, 3000, failedOld); !errors.Is(err, ErrQuorum) {
				t.Errorf("write to an existing chunk with two replicas down: %v, want ErrQuorum", err)
			}
			if ch := c.chunk(old, 0); ch == nil || !equalChunks(*ch, before) || c.size(old) != 4000 {
				t.Errorf("failed write changed chunk %+v to %+v, size to %d", before, ch, c.size(old))
			}

			c.peers.setFault("n2", fault{})
			c.peers.setFault("n3", fault{})
			// n1 skips n2 and n3 when placing new chunks for DownFor after
			// their failure (TestDownMarkingExpires); they are back now.
			c.clock.Advance(r1.cfg.DownFor + time.Second)
			if tc.f.failAfter {
				// Every replica stored the failed write: it may show.
				got, err := c.readAll(r1, old)
				if err != nil {
					t.Fatalf("read after the failed write: %v", err)
				}
				checkFailedRange(t, got, mo, 3000, failedOld[:1000])
				mo = got
			} else {
				c.wantFile(old, mo, r1)
			}
			c.wantFile(fresh, nil, r1)

			more := pattern(8, 500)
			c.write(r1, old, 1000, more)
			mo.write(1000, more)
			c.wantFile(old, mo, r1)
			var mf model
			mf.write(50, []byte("second"))
			c.write(r1, fresh, 50, []byte("second"))
			c.wantFile(fresh, mf, r1)
			c.wantReplicasHold(old, 0, mo)
			c.wantReplicasHold(fresh, 0, mf)
		})
	}
}

func equalChunks(a, b meta.Chunk) bool {
	return a.Index == b.Index && a.Version == b.Version && a.Length == b.Length && slices.Equal(a.Replicas, b.Replicas)
}

// TestCommitFails proves the fault point between the replica acks and the
// Raft commit: every replica stored the write but the commit failed
// (ErrNoLeader, not applied). The write must error; afterwards the file must
// stay readable (old or new bytes in the failed range, never an error,
// through the writer or through another node) and writable, and every byte
// the failed write did not touch must read as committed.
func TestCommitFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		read   bool // read before the next write
		reader string
	}{
		{"read by writer then write", true, "n1"},
		{"read by other node then write", true, "n2"},
		{"write at once", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			r1, m1 := c.replicator("n1", "az1", nil)
			r2, _ := c.replicator("n2", "az2", nil)
			readers := map[string]*Replicator{"n1": r1, "n2": r2}
			ino := c.create("f")

			var m model
			m.write(0, pattern(10, testChunkSize+5000)) // chunks 0 and 1
			c.write(r1, ino, 0, m)
			versions := []uint64{c.chunk(ino, 0).Version, c.chunk(ino, 1).Version}

			// The failed write spans both chunks and would grow the file.
			failOff, failed := int64(testChunkSize-2000), pattern(11, 10000)
			m1.setFail(failCommits(meta.ErrNoLeader))
			if _, err := r1.WriteAt(t.Context(), c.vol, ino, failOff, failed); !errors.Is(err, meta.ErrNoLeader) {
				t.Fatalf("write whose commit failed: %v, want ErrNoLeader", err)
			}
			m1.setFail(nil)
			for i, v := range versions {
				if got := c.chunk(ino, uint64(i)).Version; got != v {
					t.Fatalf("chunk %d moved from %#x to %#x though the commit failed", i, v, got)
				}
			}
			if c.size(ino) != uint64(len(m)) {
				t.Fatalf("size %d after a failed commit, want %d", c.size(ino), len(m))
			}
			// Every replica really holds the uncommitted write.
			for _, node := range allNodes {
				v, _, err := c.stores[node].Stat(ChunkID(c.vol.ID, ino, 0))
				if err != nil || v == versions[0] {
					t.Fatalf("%s: chunk 0 at %#x, %v: the failed write did not reach it", node, v, err)
				}
			}

			if tc.read {
				got, err := c.readAll(readers[tc.reader], ino)
				if err != nil {
					t.Fatalf("%s: read after a failed commit: %v", tc.reader, err)
				}
				checkFailedRange(t, got, m, failOff, failed)
				if tc.reader == "n1" {
					// The writer's own leftover is no one's pending write:
					// its read reconciles the replicas and commits that,
					// so later reads take the fast path.
					if v := c.chunk(ino, 0).Version; v == versions[0] {
						t.Errorf("chunk 0 still at %#x after the writer read it: not repaired", v)
					}
					c.wantReplicasHold(ino, 0, got[:testChunkSize])
				}
			}

			next := pattern(12, 3000)
			nextOff := int64(testChunkSize + 4000) // overlaps the failed write's tail, grows the file
			c.write(r1, ino, nextOff, next)
			m.write(nextOff, next)
			for _, r := range []*Replicator{r1, r2} {
				got, err := c.readAll(r, ino)
				if err != nil {
					t.Fatalf("%s: read after the next write: %v", r.cfg.NodeID, err)
				}
				// The failed range may hold either content, except where the
				// next write overwrote it.
				lo, hi := failOff, min(failOff+int64(len(failed)), nextOff)
				checkFailedRange(t, got[:hi], m[:hi], lo, failed[:hi-lo])
				if i := firstDiff(got[hi:], m[hi:]); i >= 0 {
					t.Fatalf("%s: bytes from %d on differ at %d", r.cfg.NodeID, hi, hi+int64(i))
				}
			}
		})
	}
}

// checkFailedRange fails the test unless got equals want outside
// [off, off+len(failed)) and, inside, each chunk's part of that range holds
// entirely the committed bytes or entirely the failed write's.
func checkFailedRange(t *testing.T, got, want []byte, off int64, failed []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d bytes, want %d", len(got), len(want))
	}
	end := off + int64(len(failed))
	if i := firstDiff(got[:off], want[:off]); i >= 0 {
		t.Fatalf("byte %d, before the failed write, differs", i)
	}
	if end < int64(len(want)) {
		if i := firstDiff(got[end:], want[end:]); i >= 0 {
			t.Fatalf("byte %d, after the failed write, differs", end+int64(i))
		}
	}
	for lo := off; lo < min(end, int64(len(want))); {
		hi := min((lo/testChunkSize+1)*testChunkSize, end, int64(len(want)))
		g, o, n := got[lo:hi], want[lo:hi], failed[lo-off:hi-off]
		if !bytes.Equal(g, o) && !bytes.Equal(g, n) {
			t.Fatalf("bytes [%d, %d) hold neither the committed nor the failed write's content", lo, hi)
		}
		lo = hi
	}
}

// TestCommitReplyLost proves the other side of the commit fault point: the
// commit was applied but its reply was lost. The write reports an error,
// yet what it wrote is committed, readable everywhere, and the file takes
// the next write.
func TestCommitReplyLost(t *testing.T) {
	c := newCluster(t)
	r1, m1 := c.replicator("n1", "az1", nil)
	r2, _ := c.replicator("n2", "az2", nil)
	ino := c.create("f")
	var m model
	m.write(0, pattern(13, 6000))
	c.write(r1, ino, 0, m)

	m1.setLost(failCommits(meta.ErrNoLeader))
	data := pattern(14, 3000)
	if _, err := r1.WriteAt(t.Context(), c.vol, ino, 5000, data); !errors.Is(err, meta.ErrNoLeader) {
		t.Fatalf("write whose commit reply was lost: %v, want ErrNoLeader", err)
	}
	m1.setLost(nil)
	m.write(5000, data)
	c.wantFile(ino, m, r1, r2)
	more := pattern(15, 100)
	c.write(r2, ino, 10, more)
	m.write(10, more)
	c.wantFile(ino, m, r1, r2)
	c.wantReplicaFiles(ino, 0, m)
}

// TestReadCorruptReplica proves the read path verifies checksums and fails
// over: with a data byte of n1's chunk file flipped on disk, the writer's
// own (local, first-choice) replica is corrupt, and ReadAt must still return
// the right bytes from another replica.
func TestReadCorruptReplica(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	ino := c.create("f")
	data := pattern(16, 200000)
	c.write(r1, ino, 0, data)

	id := ChunkID(c.vol.ID, ino, 0)
	var path string
	err := filepath.WalkDir(c.dirs["n1"], func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == id.String() {
			path = p
		}
		return err
	})
	if err != nil || path == "" {
		t.Fatalf("chunk file %s not found under n1's store: %v", id, err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The data is the file's last len(data) bytes; flip one in the second
	// checksum block.
	pos := len(raw) - len(data) + 70000
	raw[pos] ^= 0x40
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.stores["n1"].Read(id, c.chunk(ino, 0).Version, 0, len(data)); !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Fatalf("n1's flipped chunk reads %v, want ErrCorrupt: the corruption missed the data", err)
	}

	c.peers.resetCounts()
	c.wantFile(ino, data, r1)
	if c.peers.count("read", "n2")+c.peers.count("read", "n3") == 0 {
		t.Errorf("the read never went to another replica")
	}
	// A read that misses the corrupt block is served locally.
	c.peers.resetCounts()
	buf := make([]byte, 1000)
	if n, err := r1.ReadAt(t.Context(), c.vol, ino, c.size(ino), 0, buf); err != nil || n != 1000 || !bytes.Equal(buf, data[:1000]) {
		t.Errorf("read of the intact first block: %d, %v", n, err)
	}
}
