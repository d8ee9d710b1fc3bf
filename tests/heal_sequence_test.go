package tests

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// healFiles writes n files of size bytes through cl and returns them.
func healFiles(t *testing.T, cl *Client, prefix string, n, size int, seed int64) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	rng := rand.New(rand.NewSource(seed))
	for i := range n {
		data := make([]byte, size+rng.Intn(64<<10))
		rng.Read(data)
		name := fmt.Sprintf("%s%02d.bin", prefix, i)
		if err := healPut(cl, name, data); err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	return files
}

// TestTwoAZsLoseANodeInSequence runs six nodes, two per AZ. One node of
// az1 is stopped; after healing every chunk has three replicas in three
// AZs again; then one node of az2 is stopped, and replication is restored
// once more. Every file reads back intact through a survivor each time.
func TestTwoAZsLoseANodeInSequence(t *testing.T) {
	opts := healingOptions()
	opts.Nodes = 6 // n1 n4: az1, n2 n5: az2, n3 n6: az3
	c := NewCluster(t, opts)
	cl, err := Mount(c.NFSAddr(2), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	files := healFiles(t, cl, "f", 8, 2<<20, 11)

	for _, victim := range []int{0, 1} { // n1 (az1), then n2 (az2)
		held := healHeld(healChunks(t, c, 2), c.Member(victim).Cfg.NodeID)
		start := time.Now()
		c.Stop(victim)
		c.Eventually(3*time.Minute, fmt.Sprintf("replication restored after losing n%d", victim+1), func() error {
			return c.CheckReplicas("vol")
		})
		t.Logf("n%d (held %d chunks) stopped: every chunk back to 3 replicas in 3 AZs after %v",
			victim+1, held, time.Since(start).Round(100*time.Millisecond))
		healCheckFiles(t, cl, files)
		// New writes land on the survivors too.
		for name, data := range healFiles(t, cl, fmt.Sprintf("after-n%d-", victim+1), 2, 1<<20, int64(victim)) {
			files[name] = data
		}
	}
	c.Eventually(3*time.Minute, "the files written after the losses replicated", func() error {
		return c.CheckReplicas("vol")
	})
	healCheckFiles(t, cl, files)
}

// TestAddedNodeReceivesChunks adds a fifth node to a loaded four-node
// cluster: the healer moves chunks onto it (throttled, keeping three AZs
// per chunk) and every file still reads back intact.
func TestAddedNodeReceivesChunks(t *testing.T) {
	c := NewCluster(t, healingOptions())
	cl, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	files := healFiles(t, cl, "f", 10, 2<<20, 5)

	added := c.AddNode("az2")
	id := c.Member(added).Cfg.NodeID
	start := time.Now()
	c.Eventually(3*time.Minute, "chunks moved onto the new node", func() error {
		if n := healHeld(healChunks(t, c, 1), id); n < 3 {
			return fmt.Errorf("%s holds %d chunks", id, n)
		}
		return nil
	})
	t.Logf("%s holds %d chunks %v after it joined", id, healHeld(healChunks(t, c, 1), id), time.Since(start).Round(100*time.Millisecond))
	c.Eventually(time.Minute, "every chunk with 3 identical replicas in 3 AZs", func() error {
		return c.CheckReplicas("vol")
	})
	healCheckFiles(t, cl, files)
	// The new node serves them too.
	nc, err := Mount(c.NFSAddr(added), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	healCheckFiles(t, nc, files)
}
