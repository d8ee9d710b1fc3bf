package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/node"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// Self-healing end to end (docs/healing.md): four nodes over three AZs,
// az1 holding two (n1 and n4), with failure detection and the repair
// grace time shortened so that a test sees them act.

// healingOptions: a node is down 2 s after its last heartbeat and its
// chunks are re-replicated 2 s after that.
func healingOptions() ClusterOptions {
	return ClusterOptions{Nodes: 4, OpTimeout: 20 * time.Second, Configure: func(cfg *node.Config) {
		cfg.HeartbeatInterval = 100 * time.Millisecond
		cfg.SuspectAfter = time.Second
		cfg.DownAfter = 2 * time.Second
		cfg.RepairGrace = 2 * time.Second
		cfg.RepairRate = 256 << 20
	}}
}

// healPut writes a whole file through NFS.
func healPut(cl *Client, name string, data []byte) error {
	f, err := cl.Target.OpenFile(name, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

// healCheckFiles reads every file back through cl and compares.
func healCheckFiles(t *testing.T, cl *Client, files map[string][]byte) {
	t.Helper()
	for name, want := range files {
		fh, err := cl.Handle(name)
		if err != nil {
			t.Fatalf("lookup %s through %s: %v", name, cl.Addr, err)
		}
		got, err := cl.ReadHandle(fh)
		if err != nil {
			t.Fatalf("read %s through %s: %v", name, cl.Addr, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s reads %d bytes through %s, differing from the %d written", name, len(got), cl.Addr, len(want))
		}
	}
}

// healSlot is the cluster slot of node ID "n<i+1>".
func healSlot(t *testing.T, id string) int {
	var i int
	if _, err := fmt.Sscanf(id, "n%d", &i); err != nil {
		t.Fatalf("node ID %q: %v", id, err)
	}
	return i - 1
}

// healChunks returns every chunk of the metadata as node slot i has applied it.
func healChunks(t *testing.T, c *Cluster, i int) []meta.ChunkRef {
	t.Helper()
	var out []meta.ChunkRef
	err := replication.ScanChunks(context.Background(), c.Node(i).FSM(), 256, func(r meta.ChunkRef) bool {
		out = append(out, r)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// healHeld counts the chunks whose replica set lists node id.
func healHeld(chunks []meta.ChunkRef, id string) int {
	n := 0
	for _, ch := range chunks {
		if slices.Contains(ch.Replicas, id) {
			n++
		}
	}
	return n
}

// TestReplaceLostNode stops a node holding replicas of a 50 MiB file set
// and waits until every chunk is back to three replicas in three AZs, none
// on the stopped node; each replica is then read from its node's chunk
// store and compared by CRC32C with the others, and every file is read
// back through NFS.
func TestReplaceLostNode(t *testing.T) {
	c := NewCluster(t, healingOptions())
	cl, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	files := map[string][]byte{}
	rng := rand.New(rand.NewSource(4))
	for i := range 10 {
		data := make([]byte, 5<<20+rng.Intn(64<<10))
		rng.Read(data)
		name := fmt.Sprintf("f%02d.bin", i)
		if err := healPut(cl, name, data); err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}

	// The victim: n1, az1's Raft voter, usually the leader as well. Its AZ
	// keeps n4, the only place its replicas may go to keep three AZs.
	before := healChunks(t, c, 1)
	held := healHeld(before, "n1")
	if held == 0 {
		t.Fatalf("n1 holds none of the %d chunks", len(before))
	}
	t.Logf("%d chunks; n1 holds %d, n4 %d", len(before), held, healHeld(before, "n4"))
	stopped := time.Now()
	c.Stop(0)

	var firstCopy time.Time
	var leader int
	c.Eventually(3*time.Minute, "every chunk back to 3 replicas in 3 AZs without n1", func() error {
		leader = c.Leader()
		if leader < 0 {
			return errors.New("no leader")
		}
		if firstCopy.IsZero() {
			if st := c.Node(leader).RepairStatus(); st.Copied > 0 || st.InFlight > 0 {
				firstCopy = time.Now()
			}
		}
		nodes, err := c.Node(leader).FSM().Nodes()
		if err != nil {
			return err
		}
		azOf := map[string]string{}
		for _, n := range nodes {
			azOf[n.ID] = n.AZ
		}
		for _, ch := range healChunks(t, c, leader) {
			azs := map[string]bool{}
			for _, r := range ch.Replicas {
				azs[azOf[r]] = true
			}
			if len(ch.Replicas) != 3 || len(azs) != 3 || slices.Contains(ch.Replicas, "n1") {
				return fmt.Errorf("chunk %d/%d/%d on %v", ch.Vol, ch.Ino, ch.Index, ch.Replicas)
			}
		}
		return nil
	})
	healed := time.Since(stopped)
	st := c.Node(leader).RepairStatus()
	rate := "n/a"
	if !firstCopy.IsZero() && st.CopiedBytes > 0 {
		rate = fmt.Sprintf("%.1f MB/s", float64(st.CopiedBytes)/1e6/time.Since(firstCopy).Seconds())
	}
	t.Logf("node stopped to full replication: %v (down after 2 s, grace 2 s); copied %d chunks, %.1f MB, first copy seen %v after the stop; %s",
		healed.Round(10*time.Millisecond), st.Copied, float64(st.CopiedBytes)/1e6, firstCopy.Sub(stopped).Round(10*time.Millisecond), rate)
	if st.Failed != 0 {
		t.Logf("repair status: %+v", st)
	}

	// Every replica, read from its own node's chunk store, holds the
	// committed version and the same bytes as the others.
	table := crc32.MakeTable(crc32.Castagnoli)
	for _, ch := range healChunks(t, c, leader) {
		var first uint32
		for i, r := range ch.Replicas {
			n := c.Node(healSlot(t, r))
			if n == nil {
				t.Fatalf("chunk %d/%d on stopped node %s", ch.Ino, ch.Index, r)
			}
			data, version, err := n.Store().ReadAll(replication.ChunkID(ch.Vol, ch.Ino, ch.Index))
			if err != nil {
				t.Fatalf("%s: chunk %d/%d: %v", r, ch.Ino, ch.Index, err)
			}
			if version != ch.Version || int64(len(data)) < ch.Length {
				t.Fatalf("%s holds chunk %d/%d at version %d with %d bytes; committed %d with %d",
					r, ch.Ino, ch.Index, version, len(data), ch.Version, ch.Length)
			}
			sum := crc32.Checksum(data, table)
			if i == 0 {
				first = sum
			} else if sum != first {
				t.Fatalf("chunk %d/%d: %s has CRC32C %08x, %s %08x", ch.Ino, ch.Index, r, sum, ch.Replicas[0], first)
			}
		}
	}

	cl3, err := Mount(c.NFSAddr(2), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl3.Close()
	healCheckFiles(t, cl3, files)
}

// TestDrainAndRemove drains a node while files are being written (none
// fails, the node ends with no chunk), then removes it; a node holding the
// only copy of a chunk cannot be removed.
func TestDrainAndRemove(t *testing.T) {
	c := NewCluster(t, healingOptions())
	c.CreateVolume("one", 1, 1<<20)
	ctx := context.Background()
	cl, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	files := map[string][]byte{}
	for i := range 8 {
		name := fmt.Sprintf("before%d", i)
		files[name] = make([]byte, 2<<20)
		rand.New(rand.NewSource(int64(i))).Read(files[name])
		if err := healPut(cl, name, files[name]); err != nil {
			t.Fatal(err)
		}
	}
	one, err := Mount(c.NFSAddr(1), "/one")
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	single := bytes.Repeat([]byte("only copy "), 100000)
	if err := healPut(one, "single", single); err != nil {
		t.Fatal(err)
	}

	n2 := c.Node(1) // every call goes through n2, forwarded to the leader as needed
	if held := healHeld(healChunks(t, c, 1), "n4"); held == 0 {
		t.Fatal("n4 holds no chunk to drain")
	}
	// Paused, the drain cannot finish before the refusal is checked.
	n2.PauseRepair(true)
	if err := n2.DrainNode(ctx, "n4", true); err != nil {
		t.Fatal(err)
	}
	if err := n2.RemoveNode(ctx, "n4"); !errors.Is(err, replication.ErrNotDrained) {
		t.Fatalf("removing n4 before its drain finished: %v, want ErrNotDrained", err)
	}

	// The workload through n3 until the drain is over: new files, and
	// overwrites inside the files written before, whose chunks the drain
	// is moving (a write commit and a replica-set change race).
	wl, err := Mount(c.NFSAddr(2), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer wl.Close()
	stop := make(chan struct{})
	var mu sync.Mutex
	var werr error
	written := map[string][]byte{}
	for name, data := range files {
		written[name] = bytes.Clone(data)
	}
	newFiles, overwrites := 0, 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(42))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 1 {
				name := fmt.Sprintf("before%d", rng.Intn(8))
				off := rng.Intn(2<<20 - 64<<10)
				patch := make([]byte, 64<<10)
				rng.Read(patch)
				fh, err := wl.Handle(name)
				if err == nil {
					err = wl.WriteHandle(fh, uint64(off), patch)
				}
				mu.Lock()
				if err != nil {
					werr = errors.Join(werr, fmt.Errorf("overwrite %s at %d: %w", name, off, err))
				} else {
					copy(written[name][off:], patch)
					overwrites++
				}
				mu.Unlock()
				continue
			}
			data := make([]byte, 256<<10+rng.Intn(1<<20))
			rng.Read(data)
			name := fmt.Sprintf("during%03d", i)
			err := healPut(wl, name, data)
			mu.Lock()
			if err != nil {
				werr = errors.Join(werr, err)
			} else {
				written[name] = data
				newFiles++
			}
			mu.Unlock()
		}
	}()
	drainStart := time.Now()
	n2.PauseRepair(false)
	c.Eventually(3*time.Minute, "n4 drained", func() error {
		leader := c.Leader()
		if leader < 0 {
			return errors.New("no leader")
		}
		mu.Lock()
		n := newFiles
		mu.Unlock()
		if held := healHeld(healChunks(t, c, leader), "n4"); held > 0 || n < 3 {
			return fmt.Errorf("n4 still holds %d chunks; %d files written meanwhile", held, n)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatalf("writes failed during the drain: %v", werr)
	}
	t.Logf("drained n4 in %v while %d new files were written and %d overwrites done", time.Since(drainStart).Round(10*time.Millisecond),
		newFiles, overwrites)

	if err := n2.RemoveNode(ctx, "n4"); err != nil {
		t.Fatalf("removing the drained n4: %v", err)
	}
	leader := c.WaitLeader()
	if _, err := c.Node(leader).FSM().Node("n4"); !errors.Is(err, meta.ErrNotExist) {
		t.Fatalf("n4 still registered: %v", err)
	}
	members, err := c.Node(leader).Meta().Members()
	if _, member := members["n4"]; err != nil || member {
		t.Fatalf("n4 still in the Raft configuration: %v, %v", members, err)
	}
	for name, data := range written {
		files[name] = data
	}
	healCheckFiles(t, cl, files)

	// The single copy's node may not be removed.
	var holder string
	for _, ch := range healChunks(t, c, leader) {
		if vol, err := c.Node(leader).FSM().VolumeByID(ch.Vol); err == nil && vol.Name == "one" {
			holder = ch.Replicas[0]
		}
	}
	if holder == "" || holder == "n4" {
		t.Fatalf("the single-copy chunk is on %q", holder)
	}
	if err := n2.RemoveNode(ctx, holder); !errors.Is(err, replication.ErrOnlyCopy) {
		t.Fatalf("removing %s, which holds the only copy of a chunk: %v, want ErrOnlyCopy", holder, err)
	}
	got, err := one.ReadHandle(mustHealHandle(t, one, "single"))
	if err != nil || !bytes.Equal(got, single) {
		t.Fatalf("single-copy file after the drain: %d bytes, %v", len(got), err)
	}
}

func mustHealHandle(t *testing.T, cl *Client, name string) []byte {
	t.Helper()
	fh, err := cl.Handle(name)
	if err != nil {
		t.Fatal(err)
	}
	return fh
}
