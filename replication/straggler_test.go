package replication

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// writeBounded runs r.WriteAt and fails the test if it has not returned
// within limit: only the straggler wait can end a write to a frozen
// replica, the replica timeout being far longer.
func writeBounded(t *testing.T, c *cluster, r *Replicator, ino uint64, off int64, data []byte, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := r.WriteAt(context.Background(), c.vol, ino, off, data)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		c.peers.setFault("n2", fault{}) // let the write end before the test does
		c.peers.setFault("n3", fault{})
		<-done
		t.Fatalf("%s: WriteAt still waiting after %v: it waits for a frozen replica", r.cfg.NodeID, limit)
		return nil
	}
}

// stragglerConfig makes the straggler wait the only bound a frozen replica
// meets: the replica timeout is an hour.
func stragglerConfig(wait time.Duration) func(*Config) {
	return func(cfg *Config) {
		cfg.StragglerWait = wait
		cfg.ReplicaTimeout = time.Hour
		cfg.StaleAfter = 2 * time.Hour
	}
}

// TestWriteFrozenReplica proves that a replica that hangs (a paused peer
// never answers nor resets) costs a write the straggler wait once the
// write quorum has answered, not the replica timeout; that the frozen
// replica is left out of the committed replica set like a failed one,
// whether its copy of the write never lands or lands after the cut; that
// no call is left hanging on it after the write returns; and that new
// chunks avoid it afterwards.
func TestWriteFrozenReplica(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    fault
	}{
		{"frozen", fault{frozen: true}},
		{"frozen, applied after the cut", fault{frozen: true, failAfter: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			gw, _ := c.replicator("gw", "az3", stragglerConfig(20*time.Millisecond))
			r1, _ := c.replicator("n1", "az1", nil)
			r2, _ := c.replicator("n2", "az2", nil)

			old := c.create("old")
			var mo model
			mo.write(0, pattern(11, 6000))
			c.write(gw, old, 0, mo)

			c.peers.setFault("n3", tc.f)
			over := pattern(12, 2000)
			if err := writeBounded(t, c, gw, old, 1000, over, 30*time.Second); err != nil {
				t.Fatalf("write with n3 frozen: %v", err)
			}
			mo.write(1000, over)
			if got := c.chunk(old, 0).Replicas; !slices.Equal(got, []string{"n1", "n2"}) {
				t.Errorf("replicas after a write with n3 frozen: %v, want [n1 n2]", got)
			}
			if k := c.peers.hanging("n3"); k != 0 {
				t.Errorf("%d calls still hang on n3 after the write returned", k)
			}
			if !gw.isDown("n3") {
				t.Errorf("n3, cut short, is not marked down")
			}

			// A new chunk is placed without n3 (no call reaches it).
			fresh := c.create("fresh")
			writes := c.peers.count("write", "n3")
			var mf model
			mf.write(0, pattern(13, 3000))
			if err := writeBounded(t, c, gw, fresh, 0, mf, 30*time.Second); err != nil {
				t.Fatalf("write of a new chunk with n3 frozen: %v", err)
			}
			if got := c.chunk(fresh, 0).Replicas; !slices.Equal(got, []string{"n1", "n2"}) {
				t.Errorf("new chunk placed on %v with n3 frozen, want [n1 n2]", got)
			}
			if k := c.peers.count("write", "n3") - writes; k != 0 {
				t.Errorf("%d writes reached n3 after it was cut short", k)
			}

			// n3 thaws answering garbage: no read may ask it.
			c.peers.setFault("n3", fault{garbage: true})
			c.wantFile(old, mo, gw, r1, r2)
			c.wantFile(fresh, mf, gw, r1, r2)
			c.wantReplicasHold(old, 0, mo)
			c.wantReplicasHold(fresh, 0, mf)
		})
	}
}

// TestWriteSlowReplicaWaited proves the other side of the straggler wait:
// a replica that answers after the quorum but within the wait is kept in
// the replica set.
func TestWriteSlowReplicaWaited(t *testing.T) {
	c := newCluster(t)
	gw, _ := c.replicator("gw", "az3", stragglerConfig(time.Hour))
	ino := c.create("f")
	c.peers.setFault("n3", fault{frozen: true})
	done := make(chan error, 1)
	go func() {
		_, err := gw.WriteAt(context.Background(), c.vol, ino, 0, []byte("slow third replica"))
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for c.peers.count("wrote", "n1") < 1 || c.peers.count("wrote", "n2") < 1 || c.peers.hanging("n3") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the write did not reach n1, n2 and n3 within 30s")
		}
		time.Sleep(time.Millisecond) // poll interval
	}
	c.peers.setFault("n3", fault{}) // it answers now, after the quorum
	if err := <-done; err != nil {
		t.Fatalf("WriteAt: %v", err)
	}
	if got := c.chunk(ino, 0).Replicas; !slices.Equal(got, allNodes) {
		t.Errorf("replicas %v, want %v: a replica answering within the straggler wait was dropped", got, allNodes)
	}
	c.wantReplicaFiles(ino, 0, []byte("slow third replica"))
}

// TestWriteFrozenNoQuorum proves that the straggler wait never shortens a
// write below its quorum: with two replicas frozen the write waits for the
// replica timeout and fails with ErrQuorum, committing nothing.
func TestWriteFrozenNoQuorum(t *testing.T) {
	c := newCluster(t)
	gw, _ := c.replicator("gw", "az3", func(cfg *Config) {
		cfg.StragglerWait = time.Millisecond
		cfg.ReplicaTimeout = 200 * time.Millisecond
	})
	ino := c.create("f")
	c.peers.setFault("n2", fault{frozen: true})
	c.peers.setFault("n3", fault{frozen: true})
	start := time.Now()
	err := writeBounded(t, c, gw, ino, 0, []byte("lost"), 30*time.Second)
	if !errors.Is(err, ErrQuorum) {
		t.Fatalf("write with two replicas frozen: %v, want ErrQuorum", err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("the write gave up after %v, before the replica timeout", took)
	}
	if ch := c.chunk(ino, 0); ch != nil || c.size(ino) != 0 {
		t.Errorf("a write without its quorum committed %+v, size %d", ch, c.size(ino))
	}
}

// staticView is a LivenessView with fixed verdicts.
type staticView map[string]NodeState

func (v staticView) NodeState(id string) NodeState { return v[id] }
func (v staticView) FreeBytes(string) int64        { return -1 }

// TestPlacementOutlivesLocalMarks: when this node has marked so many
// replicas down itself (failed calls, stragglers cut short under load)
// that fewer than the write quorum remain for a new chunk, it places the
// chunk on them anyway unless the leader reports them down or suspect:
// otherwise every create fails until the marks expire (seen under the
// load of make bench-anchors: JUKEBOX for every new file).
func TestPlacementOutlivesLocalMarks(t *testing.T) {
	c := newCluster(t)
	r, _ := c.replicator("n1", "az1", nil)
	r.markDown("n2")
	r.markDown("n3")
	ino := c.create("f")
	c.write(r, ino, 0, pattern(700, 4096))
	if ch := c.chunk(ino, 0); ch == nil || len(ch.Replicas) != 3 {
		t.Fatalf("new chunk with n2 and n3 marked down locally: %+v, want 3 replicas", ch)
	}

	r.SetLiveness(staticView{"n2": StateDown, "n3": StateSuspect})
	ino2 := c.create("g")
	if _, err := r.WriteAt(t.Context(), c.vol, ino2, 0, pattern(701, 4096)); !errors.Is(err, ErrQuorum) {
		t.Fatalf("new chunk with n2 down and n3 suspect by the leader: %v, want ErrQuorum", err)
	}
}
