package replication

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// fakeDeleter sends the collector's deletes through the fake peers, with
// their faults.
type fakeDeleter struct{ p *fakePeers }

func (d fakeDeleter) DeleteChunk(ctx context.Context, node string, id chunkstore.ID, version uint64, minAge time.Duration) error {
	s, _, err := d.p.enter(ctx, "delete", node, id)
	if err != nil {
		return err
	}
	return s.DeleteVersion(id, version, minAge)
}

func newTestGC(t *testing.T, c *cluster, tweak func(*GCConfig)) *GC {
	t.Helper()
	cfg := DefaultGCConfig()
	cfg.MinAge = 0
	if tweak != nil {
		tweak(&cfg)
	}
	g, err := NewGC(cfg, c.admin, fakeDeleter{c.peers}, newStepClock(), c.log)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// holds reports whether node has a file for chunk index of ino.
func (c *cluster) holds(node string, ino, index uint64) bool {
	c.t.Helper()
	_, _, err := c.stores[node].Stat(ChunkID(c.vol.ID, ino, index))
	if err != nil && !errors.Is(err, chunkstore.ErrNotFound) {
		c.t.Fatalf("Stat on %s: %v", node, err)
	}
	return err == nil
}

func (c *cluster) remove(name string) {
	c.t.Helper()
	if _, err := c.admin.Propose(c.t.Context(), &meta.Remove{Vol: c.vol.ID, Parent: meta.RootIno, Name: name}); err != nil {
		c.t.Fatalf("remove %s: %v", name, err)
	}
}

func (c *cluster) garbage() []meta.Garbage {
	c.t.Helper()
	g, err := c.b.FSM().Garbage(0)
	if err != nil {
		c.t.Fatal(err)
	}
	return g
}

// TestGCWaitsForDownNode: the chunks of a deleted file are deleted on the
// nodes that are up; a down node keeps its records (costing each pass at
// most NodeFailures calls) until it returns; then everything is collected.
func TestGCWaitsForDownNode(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	ino := c.create("f")
	c.write(r1, ino, 0, pattern(41, 3*testChunkSize))
	keep := c.create("keep")
	c.write(r1, keep, 0, pattern(42, testChunkSize))
	c.remove("f")
	if n := len(c.garbage()); n != 3 {
		t.Fatalf("%d garbage records after deleting a 3-chunk file, want 3", n)
	}
	g := newTestGC(t, c, func(cfg *GCConfig) { cfg.NodeFailures = 2 })

	c.peers.setFault("n3", fault{down: true})
	c.peers.resetCounts()
	res, err := g.Pass(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Collected != 0 || res.Pending != 3 || !slices.Equal(res.Blocked, []string{"n3"}) {
		t.Fatalf("pass with n3 down: %+v; want 3 pending, n3 blocked", res)
	}
	if calls := c.peers.count("delete", "n3"); calls != 2 {
		t.Errorf("%d delete calls to the down node, want NodeFailures = 2", calls)
	}
	for i := range uint64(3) {
		if c.holds("n1", ino, i) || c.holds("n2", ino, i) || !c.holds("n3", ino, i) {
			t.Fatalf("chunk %d: n1 %v, n2 %v, n3 %v; want only n3 (down) holding it", i,
				c.holds("n1", ino, i), c.holds("n2", ino, i), c.holds("n3", ino, i))
		}
	}
	// A second pass does not call the nodes already clean again.
	c.peers.resetCounts()
	if _, err := g.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := c.peers.count("delete", "n2"); n != 0 {
		t.Errorf("%d calls to n2, already clean", n)
	}

	c.peers.setFault("n3", fault{})
	res, err = g.Pass(t.Context())
	if err != nil || res.Collected != 3 || res.Pending != 0 || len(res.Blocked) != 0 {
		t.Fatalf("pass with n3 back: %+v, %v; want all 3 collected", res, err)
	}
	for i := range uint64(3) {
		if c.holds("n3", ino, i) {
			t.Errorf("chunk %d still on n3", i)
		}
	}
	if g := c.garbage(); len(g) != 0 {
		t.Errorf("garbage left: %+v", g)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if !c.holds(n, keep, 0) {
			t.Errorf("the live file's chunk was deleted on %s", n)
		}
	}
	if st := g.Status(); st.Collected != 3 || st.Pending != 0 || st.Failed != 4 || st.Deleted != 9 {
		t.Errorf("status %+v; want 3 collected, 2 failed calls in each of 2 passes, 9 files deleted", st)
	}
}

// TestGCDropsForgottenNode: a record waiting for a node the cluster
// removed is done without it.
func TestGCDropsForgottenNode(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	ino := c.create("f")
	c.write(r1, ino, 0, pattern(43, 1000))
	c.remove("f")
	c.peers.setFault("n3", fault{down: true})
	g := newTestGC(t, c, nil)
	if res, err := g.Pass(t.Context()); err != nil || res.Pending != 1 {
		t.Fatalf("pass with n3 down: %+v, %v", res, err)
	}
	if _, err := c.admin.Propose(t.Context(), &meta.RemoveNode{ID: "n3"}); err != nil {
		t.Fatal(err)
	}
	if res, err := g.Pass(t.Context()); err != nil || res.Collected != 1 {
		t.Fatalf("pass after n3 was removed: %+v, %v; want the record collected", res, err)
	}
}

// TestGCSparesLiveReplica: a replica left out and then copied back to the
// same node (the healer) must survive the collection of the old record;
// a node that holds another version than the garbage keeps its file too.
func TestGCSparesLiveReplica(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	ino := c.create("f")
	c.write(r1, ino, 0, pattern(44, 1000))
	ch := c.chunk(ino, 0)
	set := func(replicas ...string) {
		t.Helper()
		if _, err := c.admin.Propose(t.Context(), &meta.SetReplicas{Vol: c.vol.ID, Ino: ino, Index: 0,
			Version: ch.Version, Replicas: replicas}); err != nil {
			t.Fatal(err)
		}
	}
	set("n1", "n2")       // n3 left out: garbage (n3, version)
	set("n1", "n2", "n3") // and copied back
	g := newTestGC(t, c, nil)
	c.peers.resetCounts()
	if res, err := g.Pass(t.Context()); err != nil || res.Collected != 1 || res.Deleted != 0 {
		t.Fatalf("pass: %+v, %v; want the record collected without deleting", res, err)
	}
	if !c.holds("n3", ino, 0) || c.peers.count("delete", "n3") != 0 {
		t.Fatalf("the live replica on n3 was deleted or asked to be")
	}

	// n2 left out, but holding another version by then (an uncommitted
	// write reached it): not this garbage, kept for the sweep to judge.
	set("n1", "n3")
	id := ChunkID(c.vol.ID, ino, 0)
	if _, err := c.stores["n2"].Write(id, ch.Version, ch.Version+1, ch.Length, 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if res, err := g.Pass(t.Context()); err != nil || res.Collected != 1 || res.Deleted != 0 {
		t.Fatalf("pass: %+v, %v; want the record collected, the other version kept", res, err)
	}
	if !c.holds("n2", ino, 0) {
		t.Errorf("n2's file of another version was deleted")
	}
}

// TestGCSafetyDelay: files younger than MinAge are kept and their records
// wait, without counting as failures.
func TestGCSafetyDelay(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	ino := c.create("f")
	c.write(r1, ino, 0, pattern(45, 1000))
	c.remove("f")
	g := newTestGC(t, c, func(cfg *GCConfig) { cfg.MinAge = time.Hour })
	res, err := g.Pass(t.Context())
	if err != nil || res.Pending != 1 || res.Deleted != 0 || len(res.Blocked) != 0 {
		t.Fatalf("pass over young files: %+v, %v", res, err)
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		if !c.holds(n, ino, 0) {
			t.Errorf("young file deleted on %s", n)
		}
	}
	if st := g.Status(); st.Failed != 0 {
		t.Errorf("young files counted as failures: %+v", st)
	}
}

// TestGCRunsAsLeaderLoop: Run collects at once and then every Interval of
// the clock, and stops when its context ends.
func TestGCRunsAsLeaderLoop(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	ino := c.create("f")
	c.write(r1, ino, 0, pattern(46, 1000))
	clock := newStepClock()
	g, err := NewGC(GCConfig{Interval: time.Minute, Scan: 10, CallTimeout: time.Minute, NodeFailures: 1},
		c.admin, fakeDeleter{c.peers}, clock, c.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
		if g.Status().Running {
			t.Errorf("still running after its context ended")
		}
	}()
	eventually(t, "first pass", func() bool { return !g.Status().LastPass.IsZero() })
	if !g.Status().Running {
		t.Errorf("not running")
	}
	c.remove("f")
	took := drive(t, clock, time.Hour, "garbage collected", func() bool { return len(c.garbage()) == 0 })
	if took != time.Minute {
		t.Errorf("collected %v after the delete, want the next pass a minute later (status %+v)", took, g.Status())
	}
}
