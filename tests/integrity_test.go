package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/internal/node"
	"github.com/fsrep/fsrep/meta"
)

// integrityOptions make the integrity loops fast enough for a test: files
// older than half a second may be collected or swept.
func integrityOptions() ClusterOptions {
	return ClusterOptions{Configure: func(cfg *node.Config) {
		cfg.OrphanAge = 500 * time.Millisecond
		cfg.GCInterval = 200 * time.Millisecond
		cfg.SweepInterval = 300 * time.Millisecond
	}}
}

func integWrite(t *testing.T, cl *Client, name string, data []byte) {
	t.Helper()
	f, err := cl.Target.OpenFile(name, 0o644)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}
}

func integRead(cl *Client, name string) ([]byte, error) {
	fh, err := cl.Handle(name)
	if err != nil {
		return nil, err
	}
	return cl.ReadHandle(fh)
}

func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// chunkFilePath is the file of chunk id in node i's chunk store.
func (c *Cluster) chunkFilePath(i int, id chunkstore.ID) string {
	c.t.Helper()
	m, err := filepath.Glob(filepath.Join(c.Member(i).Cfg.DataDir, "chunks", "*", id.String()))
	if err != nil || len(m) != 1 {
		c.t.Fatalf("chunk %s on node %d: %v, %v", id, i, m, err)
	}
	return m[0]
}

// flipLastByte inverts the last byte of a chunk file: always chunk data.
func flipLastByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x5a
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// chunkOf returns the committed chunk index of file name, as node i sees it.
func (c *Cluster) chunkOf(i int, name string, index uint64) (chunkstore.ID, *meta.Chunk) {
	c.t.Helper()
	fsm := c.Node(i).FSM()
	vol, err := fsm.Volume("vol")
	if err != nil {
		c.t.Fatal(err)
	}
	n, err := fsm.Lookup(vol.ID, meta.RootIno, name)
	if err != nil {
		c.t.Fatalf("lookup %s: %v", name, err)
	}
	ch, ok, err := fsm.Chunk(vol.ID, n.Ino, index)
	if err != nil || !ok {
		c.t.Fatalf("chunk %d of %s: %v, %v", index, name, ok, err)
	}
	return chunkstore.ID{Vol: vol.ID, Ino: n.Ino, Index: index}, ch
}

// slotOf is the slot of node ID id.
func (c *Cluster) slotOf(id string) int {
	for i := 0; i < c.N(); i++ {
		if c.Member(i).Cfg.NodeID == id {
			return i
		}
	}
	c.t.Fatalf("no node %s", id)
	return -1
}

// storesMatchMetadata returns nil when the chunk stores of the running
// nodes hold exactly what the metadata (of node via, caught up) lists: no
// chunk file that no replica set lists on its node at its version (no
// orphan, no stale copy), every listed replica present at the committed
// version with every checksum sound, R replicas in distinct AZs, and no
// garbage record left.
func (c *Cluster) storesMatchMetadata(via int) error {
	n := c.Node(via)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Meta().CatchUp(ctx); err != nil {
		return err
	}
	fsm := n.FSM()
	if g, err := fsm.Garbage(0); err != nil || len(g) > 0 {
		return fmt.Errorf("%d garbage records left (%v), e.g. %+v", len(g), err, g)
	}
	azOf := map[string]string{}
	want := map[string]map[chunkstore.ID]uint64{} // node -> chunk -> version
	var problems []error
	err := fsm.ForEachChunk(nil, func(ch meta.ChunkRef) bool {
		id := chunkstore.ID{Vol: ch.Vol, Ino: ch.Ino, Index: ch.Index}
		azs := map[string]bool{}
		for _, r := range ch.Replicas {
			if want[r] == nil {
				want[r] = map[chunkstore.ID]uint64{}
			}
			want[r][id] = ch.Version
			azs[c.Member(c.slotOf(r)).Cfg.AZ] = true
		}
		if len(azs) != 3 {
			problems = append(problems, fmt.Errorf("chunk %s has replicas %v", id, ch.Replicas))
		}
		return true
	})
	if err != nil {
		return err
	}
	for i := 0; i < c.N(); i++ {
		m := c.Member(i)
		azOf[m.Cfg.NodeID] = m.Cfg.AZ
		if m.Node == nil {
			continue
		}
		st := m.Node.Store()
		ids, err := st.List()
		if err != nil {
			return err
		}
		for _, id := range ids {
			v, listed := want[m.Cfg.NodeID][id]
			if !listed {
				problems = append(problems, fmt.Errorf("%s holds %s, which no replica set lists there", m.Cfg.NodeID, id))
				continue
			}
			info, err := st.Verify(id)
			if err != nil || info.Version != v {
				problems = append(problems, fmt.Errorf("%s: %s at version %#x (%v), committed %#x", m.Cfg.NodeID, id, info.Version, err, v))
			}
		}
		for id := range want[m.Cfg.NodeID] {
			if !slices.Contains(ids, id) {
				problems = append(problems, fmt.Errorf("%s is listed for %s but has no file", m.Cfg.NodeID, id))
			}
		}
	}
	return errors.Join(problems...)
}

// TestBitRotRepaired flips bytes in chunk files on disk. A read through
// NFS still returns the right bytes; the read (for a replica on the
// gateway's node) and the scrubber (for one read by nobody) find the
// damage; the damaged replicas are dropped and copied back by the healer,
// so every replica ends sound.
func TestBitRotRepaired(t *testing.T) {
	c := NewCluster(t, integrityOptions())
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	data := randomBytes(1, 3<<20+12345)
	integWrite(t, cl, "f", data)

	// The read path: node 1 reads its own replica first.
	id1, ch1 := c.chunkOf(0, "f", 1)
	flipLastByte(t, c.chunkFilePath(0, id1))
	got, err := integRead(cl, "f")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with a damaged replica on the gateway's node: %d bytes, %v; want the %d written", len(got), err, len(data))
	}
	if st := c.Node(0).ScrubStatus(); st.ReadCorrupt.Found != 1 || st.ReadCorrupt.Dropped != 1 {
		t.Fatalf("node 1 read counts %+v; want the damaged replica found and dropped", st.ReadCorrupt)
	}
	t.Logf("chunk 1 at %#x on %v; node 1's damaged replica dropped by the read", ch1.Version, ch1.Replicas)

	// The scrubber: node 2's replica of chunk 2, which reads through node
	// 1 never touch while node 1 has its own.
	id2, _ := c.chunkOf(1, "f", 2)
	flipLastByte(t, c.chunkFilePath(1, id2))
	start := time.Now()
	c.Node(1).StartScrub()
	c.Eventually(30*time.Second, "node 2's scrubber finds the damage", func() error {
		if st := c.Node(1).ScrubStatus(); st.Corrupt != 1 || st.Repaired != 1 {
			return fmt.Errorf("scrub status %+v", st)
		}
		return nil
	})
	detect := time.Since(start)
	c.Eventually(30*time.Second, "node 2's scrub pass done", func() error {
		if st := c.Node(1).ScrubStatus(); st.Passes < 2 {
			return fmt.Errorf("%d passes", st.Passes)
		}
		return nil
	})
	st := c.Node(1).ScrubStatus()
	took := st.LastPassEnded.Sub(st.PassStarted)
	t.Logf("scrub: damage found %v after StartScrub; pass of %d chunks, %d bytes in %v (%.1f MiB/s, limit %d MiB/s)",
		detect.Round(time.Millisecond), st.Scanned, st.ScannedBytes, took.Round(time.Millisecond),
		float64(st.ScannedBytes)/(1<<20)/took.Seconds(), st.RateLimit>>20)
	if got, err := integRead(cl, "f"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after the scrub: %d bytes, %v", len(got), err)
	}

	// Repair: the healer copies both chunks back to three sound replicas
	// in three AZs, and nothing damaged or unreferenced is left on disk.
	repair := time.Now()
	c.Eventually(60*time.Second, "damaged replicas re-created and garbage gone", func() error {
		return c.storesMatchMetadata(0)
	})
	t.Logf("replicas re-created, damaged files gone, %v after the scrub's report", time.Since(repair).Round(time.Millisecond))
	for _, i := range []int{0, 1, 2} {
		ncl, err := Mount(c.NFSAddr(i), "/vol")
		if err != nil {
			t.Fatal(err)
		}
		got, err := integRead(ncl, "f")
		ncl.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read through node %d after the repair: %d bytes, %v", i+1, len(got), err)
		}
	}
}

// TestReturningNodeNeverServesStale stops a node, overwrites, truncates and
// deletes files through another one, and restarts it: reads through its
// own gateway never return the old bytes (before it can catch up with the
// leader they fail; after, they return the new bytes), and the
// garbage collector, the sweep and the healer leave every node's chunk
// store exactly as the metadata describes it (no orphan, no stale copy).
func TestReturningNodeNeverServesStale(t *testing.T) {
	c := NewCluster(t, integrityOptions())
	cl1, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl1.Close()
	oldA, oldB, oldC := randomBytes(2, 2<<20+100), randomBytes(3, 1<<20+5), randomBytes(4, 3<<20)
	integWrite(t, cl1, "a", oldA)
	integWrite(t, cl1, "b", oldB)
	integWrite(t, cl1, "c", oldC)
	cl3, err := Mount(c.NFSAddr(2), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := integRead(cl3, "a"); err != nil || !bytes.Equal(got, oldA) {
		t.Fatalf("read of a through node 3 before the stop: %v", err)
	}
	cl3.Close()

	c.Stop(2)
	newA := randomBytes(5, len(oldA))
	integWrite(t, cl1, "a", newA) // in place: same chunks, new versions
	if err := cl1.Target.Remove("b"); err != nil {
		t.Fatal(err)
	}
	fhC, err := cl1.Handle("c")
	if err != nil {
		t.Fatal(err)
	}
	// c: rewritten from 1 MiB on, then cut to 1.5 MiB.
	newC := slices.Concat(oldC[:1<<20], randomBytes(6, 1<<19))
	if err := cl1.WriteHandle(fhC, 1<<20, newC[1<<20:]); err != nil {
		t.Fatal(err)
	}
	// The cut goes through the metadata, as a SETATTR of the size does.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vol, _ := c.Node(0).FSM().Volume("vol")
	cIno, _ := c.Node(0).FSM().Lookup(vol.ID, meta.RootIno, "c")
	size := uint64(len(newC))
	if _, err := c.Node(0).Propose(ctx, &meta.SetAttr{Vol: vol.ID, Ino: cIno.Ino, Size: &size}); err != nil {
		t.Fatal(err)
	}

	// The node returns cut off from the others: its metadata is what it
	// had when it stopped, which lists it for a's chunks at the versions
	// it holds. Its gateway must not serve them: a read fails (no leader
	// to catch up with) rather than return old bytes.
	c.Partition(2)
	c.Start(2)
	var cl3b *Client
	c.Eventually(30*time.Second, "mount on the returning node", func() error {
		var err error
		cl3b, err = Mount(c.NFSAddr(2), "/vol")
		return err
	})
	got, err := integRead(cl3b, "a")
	if bytes.Equal(got, oldA) || (len(got) > 0 && bytes.Equal(got, oldA[:len(got)])) {
		t.Fatalf("the returning node served the old bytes of a before catching up (%d bytes)", len(got))
	}
	if err == nil {
		t.Fatalf("the returning node answered a read without a leader to catch up with: %d bytes", len(got))
	}
	t.Logf("read through the returning node before it caught up: %v", err)
	cl3b.Close()
	c.Heal()
	c.WaitReady(2)
	cl3, err = Mount(c.NFSAddr(2), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl3.Close()
	if got, err := integRead(cl3, "a"); err != nil || !bytes.Equal(got, newA) {
		old := len(got) == len(oldA) && bytes.Equal(got, oldA)
		t.Fatalf("read of a through the returning node: %d bytes, %v (old bytes: %v)", len(got), err, old)
	}
	c.Eventually(10*time.Second, "b gone and c cut on the returning node", func() error {
		if _, err := cl3.Handle("b"); err == nil {
			return errors.New("b still there")
		}
		got, err := integRead(cl3, "c")
		if err != nil {
			return err
		}
		if !bytes.Equal(got, newC) {
			return fmt.Errorf("c reads %d bytes, not the %d new ones", len(got), len(newC))
		}
		return nil
	})

	c.Eventually(60*time.Second, "every chunk store matches the metadata", func() error {
		return c.storesMatchMetadata(2)
	})
	for _, i := range []int{0, 1, 2} {
		if st := c.Node(i).SweepStatus(); st.Passes == 0 {
			t.Errorf("node %d never swept", i+1)
		}
	}
	gcNode := c.Leader()
	t.Logf("GC on node %d: %+v; sweep on node 3: %+v", gcNode+1, c.Node(gcNode).GCStatus(), c.Node(2).SweepStatus())
}
