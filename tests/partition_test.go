package tests

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/node"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// TestPartitionHeals cuts the leader's AZ off from the other two while
// clients write on both sides. The cut-off side has no Raft majority: it
// must accept no change (every write there fails; nothing it was asked
// to do appears later), while the majority side goes on writing. After the
// cut heals, the returning node serves the majority's bytes, and every
// chunk converges to R identical replicas in distinct AZs.
func TestPartitionHeals(t *testing.T) {
	c := NewCluster(t, ClusterOptions{OpTimeout: 3 * time.Second, Configure: func(cfg *node.Config) {
		cfg.RepairGrace = 2 * time.Second
		cfg.SweepInterval = time.Second
		cfg.OrphanAge = 3 * time.Second
	}})
	cut := c.WaitLeader()
	other := (cut + 1) % 3

	minority, err := Mount(c.NFSAddr(cut), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { minority.Close() }()
	before := bytes.Repeat([]byte("before-partition."), 100_000) // 1.7 MB: two 1 MiB chunks
	writeFile(t, minority, "shared.bin", before)
	fh, err := minority.Handle("shared.bin")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, minority, "refused.bin", []byte("written before the partition"))
	refused, err := minority.Handle("refused.bin")
	if err != nil {
		t.Fatal(err)
	}

	// A read through the node before the cut: its read gate is open (the
	// first read after a start waits for the leader anyway).
	if got, err := minority.ReadHandle(fh); err != nil || !bytes.Equal(got, before) {
		t.Fatalf("read before the partition: %d bytes, %v", len(got), err)
	}

	c.Partition(cut)

	// The cut-off side refuses every change: data and namespace.
	for i := 0; i < 3; i++ {
		if err := minority.WriteHandle(refused, 0, []byte(fmt.Sprintf("minority write %d", i))); err == nil {
			t.Fatalf("write %d through the cut-off node succeeded", i)
		}
	}
	if _, err := minority.Target.Mkdir("minority-dir", 0o755); err == nil {
		t.Fatal("mkdir through the cut-off node succeeded")
	}

	// The majority elects a leader and goes on writing.
	majority, err := Mount(c.NFSAddr(other), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { majority.Close() }()
	after := bytes.Repeat([]byte("majority-side-write."), 80_000) // shorter than before
	c.Eventually(20*time.Second, "a write on the majority side", func() error {
		if err := writeHandleAll(majority, fh, after); err != nil {
			majority.Close()
			if majority, err = Mount(c.NFSAddr(other), "/vol"); err != nil {
				return err
			}
			return writeHandleAll(majority, fh, after)
		}
		return nil
	})
	writeFile(t, majority, "majority.bin", after)
	// The cut-off node may not serve the bytes the majority replaced: its
	// reads fail (JUKEBOX: retry later) until the cut heals.
	if got, err := minority.ReadHandle(fh); err == nil && !bytes.HasPrefix(got, after) {
		t.Fatalf("the cut-off node served %d old bytes after the majority overwrote them", len(got))
	}

	c.Heal()

	// The returning node serves the majority's bytes, never its own
	// older ones, and knows nothing of the refused changes.
	want := append(slices.Clone(after), before[len(after):]...)
	c.Eventually(30*time.Second, "the healed node serving the majority's bytes", func() error {
		got, err := minority.ReadHandle(fh)
		if err != nil {
			minority.Close()
			if minority, err = Mount(c.NFSAddr(cut), "/vol"); err != nil {
				return err
			}
			if got, err = minority.ReadHandle(fh); err != nil {
				return err
			}
		}
		if bytes.Equal(got, before) {
			// Heartbeats resume before the node's log catches up: a read
			// then must wait for the barrier, not serve what it held.
			t.Fatalf("the healed node served the bytes of before the partition")
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("read %d bytes through the healed node, not the majority's content", len(got))
		}
		return nil
	})
	if _, err := minority.Handle("minority-dir"); err == nil {
		t.Fatal("a mkdir refused during the partition exists after it healed")
	}
	if got, err := majority.ReadHandle(refused); err != nil || string(got) != "written before the partition" {
		t.Fatalf("a file the cut-off node was asked to change reads %q, %v", got, err)
	}

	// Replicas converge: R copies in distinct AZs, identical bytes.
	c.Eventually(60*time.Second, "every chunk back to 3 identical replicas", func() error {
		return c.CheckReplicas("vol")
	})
}

// writeHandleAll writes data at offset 0 in WRITEs of 512 KiB (the
// gateway takes at most 1 MiB per WRITE).
func writeHandleAll(cl *Client, fh []byte, data []byte) error {
	const piece = 512 << 10
	for off := 0; off < len(data); off += piece {
		if err := cl.WriteHandle(fh, uint64(off), data[off:min(off+piece, len(data))]); err != nil {
			return err
		}
	}
	return nil
}

// writeFile creates name through cl and writes data to it.
func writeFile(t *testing.T, cl *Client, name string, data []byte) {
	t.Helper()
	f, err := cl.Target.OpenFile(name, 0o644)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("write %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", name, err)
	}
}

// CheckReplicas returns nil when every chunk of the volume has the volume's
// R replicas on running nodes in distinct AZs (as far as the cluster has
// AZs), each holding the chunk's committed version with the same bytes. It
// reads the metadata of the first running node after it caught up.
func (c *Cluster) CheckReplicas(volume string) error {
	var n0 int = -1
	for i := 0; i < c.N(); i++ {
		if c.Node(i) != nil {
			n0 = i
			break
		}
	}
	if n0 < 0 {
		return fmt.Errorf("no node running")
	}
	fsm := c.Node(n0).FSM()
	vol, err := fsm.Volume(volume)
	if err != nil {
		return err
	}
	azs := map[string]bool{}
	az := map[string]string{}
	slot := map[string]int{}
	for i := 0; i < c.N(); i++ {
		m := c.Member(i)
		azs[m.Cfg.AZ] = true
		az[m.Cfg.NodeID] = m.Cfg.AZ
		slot[m.Cfg.NodeID] = i
	}
	wantAZs := min(vol.Replicas, len(azs))
	var refs []meta.ChunkRef
	if err := fsm.ForEachChunk(nil, func(r meta.ChunkRef) bool {
		if r.Vol == vol.ID {
			refs = append(refs, r)
		}
		return true
	}); err != nil {
		return err
	}
	for _, r := range refs {
		if len(r.Replicas) != vol.Replicas {
			return fmt.Errorf("inode %d chunk %d has replicas %v, want %d", r.Ino, r.Index, r.Replicas, vol.Replicas)
		}
		spread := map[string]bool{}
		var sum uint32
		for k, id := range r.Replicas {
			spread[az[id]] = true
			i, ok := slot[id]
			if !ok || c.Node(i) == nil {
				return fmt.Errorf("inode %d chunk %d has a replica on %s, which is not running", r.Ino, r.Index, id)
			}
			data, version, err := c.Node(i).Store().ReadAll(replication.ChunkID(r.Vol, r.Ino, r.Index))
			if err != nil {
				return fmt.Errorf("inode %d chunk %d on %s: %w", r.Ino, r.Index, id, err)
			}
			if version != r.Version {
				return fmt.Errorf("inode %d chunk %d on %s is at version %d, metadata says %d", r.Ino, r.Index, id, version, r.Version)
			}
			if int64(len(data)) < r.Length {
				return fmt.Errorf("inode %d chunk %d on %s holds %d bytes, metadata says %d", r.Ino, r.Index, id, len(data), r.Length)
			}
			s := crc32.Checksum(data[:r.Length], crc32.MakeTable(crc32.Castagnoli))
			if k == 0 {
				sum = s
			} else if s != sum {
				return fmt.Errorf("inode %d chunk %d: replica on %s differs from the one on %s", r.Ino, r.Index, id, r.Replicas[0])
			}
		}
		if len(spread) < wantAZs {
			return fmt.Errorf("inode %d chunk %d has replicas %v in %d AZs, want %d", r.Ino, r.Index, r.Replicas, len(spread), wantAZs)
		}
	}
	return nil
}
