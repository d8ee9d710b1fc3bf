package replication

import (
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
)

// wantNoSpace fails unless err is what the gateway answers NFS3ERR_NOSPC
// for: ErrNoSpace, matching syscall.ENOSPC, and not ErrQuorum (JUKEBOX,
// which makes clients retry forever).
func wantNoSpace(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, chunkstore.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("%s: %v, want ErrNoSpace matching ENOSPC", what, err)
	}
	if errors.Is(err, ErrQuorum) {
		t.Fatalf("%s: %v also matches ErrQuorum", what, err)
	}
}

// TestWriteNoSpace: with two of three replicas out of space, writes to new
// and existing chunks fail with ErrNoSpace (not ErrQuorum) and commit
// nothing, while every file still reads; with one out of space, writes
// pass without it (it leaves the existing chunk's replica set, and new
// chunks are not placed on it); once space is freed, writes resume at
// once, without waiting for the full marks to expire.
func TestWriteNoSpace(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)

	old := c.create("old")
	var mo model
	mo.write(0, pattern(1, 5000))
	c.write(r1, old, 0, mo)
	before := *c.chunk(old, 0)

	// Two full: no quorum for lack of space.
	c.peers.setFault("n2", fault{noSpace: true})
	c.peers.setFault("n3", fault{noSpace: true})
	fresh := c.create("fresh")
	_, err := r1.WriteAt(t.Context(), c.vol, fresh, 0, pattern(2, 3000))
	wantNoSpace(t, "new chunk with two replicas full", err)
	_, err = r1.WriteAt(t.Context(), c.vol, old, 4000, pattern(3, 3000))
	wantNoSpace(t, "existing chunk with two replicas full", err)
	if ch := c.chunk(fresh, 0); ch != nil || c.size(fresh) != 0 {
		t.Errorf("refused write committed chunk %+v, size %d", ch, c.size(fresh))
	}
	if ch := c.chunk(old, 0); !equalChunks(*ch, before) || c.size(old) != 5000 {
		t.Errorf("refused write changed chunk %+v to %+v, size %d", before, *ch, c.size(old))
	}
	// Full nodes still serve reads, and are not taken for down: n1 reads
	// from n2 when its own replica is gone.
	c.wantFile(old, mo, r1)
	if r1.isDown("n2") || r1.isDown("n3") {
		t.Error("a node that answered no space is marked down")
	}
	if !r1.isFull("n2") || !r1.isFull("n3") || r1.isFull("n1") {
		t.Errorf("full marks: n1 %v n2 %v n3 %v, want n2 and n3", r1.isFull("n1"), r1.isFull("n2"), r1.isFull("n3"))
	}

	// n2 freed: its write passes although it is still marked full (the
	// fallback asks full nodes when too few others are left).
	c.peers.setFault("n2", fault{})
	more := pattern(4, 3000)
	c.write(r1, old, 4000, more)
	mo.write(4000, more)
	if ch := c.chunk(old, 0); !slices.Equal(ch.Replicas, []string{"n1", "n2"}) {
		t.Errorf("existing chunk after a write with n3 full: replicas %v, want [n1 n2]", ch.Replicas)
	}
	c.write(r1, fresh, 0, pattern(5, 3000))
	if ch := c.chunk(fresh, 0); !slices.Equal(ch.Replicas, []string{"n1", "n2"}) {
		t.Errorf("new chunk with n3 full: replicas %v, want [n1 n2]", ch.Replicas)
	}
	if r1.isFull("n2") {
		t.Error("n2 still marked full after it stored a write")
	}
	// n3 marked full: no new chunk goes there (not even asked).
	c.peers.setFault("n3", fault{})
	c.peers.resetCounts()
	other := c.create("other")
	c.write(r1, other, 0, pattern(6, 100))
	if ch := c.chunk(other, 0); !slices.Equal(ch.Replicas, []string{"n1", "n2"}) || c.peers.count("write", "n3") != 0 {
		t.Errorf("new chunk while n3 is marked full: replicas %v, %d writes to n3; want [n1 n2], none",
			ch.Replicas, c.peers.count("write", "n3"))
	}
	c.wantFile(old, mo, r1)

	// The mark expires: n3 gets new chunks again.
	c.clock.Advance(r1.cfg.DownFor + time.Second)
	last := c.create("last")
	c.write(r1, last, 0, pattern(7, 100))
	if ch := c.chunk(last, 0); !slices.Equal(ch.Replicas, []string{"n1", "n2", "n3"}) {
		t.Errorf("new chunk after the full mark expired: replicas %v, want all three", ch.Replicas)
	}
}

// fakeFullView is a LivenessView with heartbeat-reported full disks.
type fakeFullView struct{ full map[string]bool }

func (v fakeFullView) NodeState(string) NodeState { return StateUp }
func (v fakeFullView) FreeBytes(string) int64     { return -1 }
func (v fakeFullView) Full(id string) bool        { return v.full[id] }

// TestPlaceAvoidsReportedFull: a node whose heartbeat says its disk is
// full gets no new chunk while enough others are left, and is asked again
// once too few are (then its own answer decides).
func TestPlaceAvoidsReportedFull(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	r1.SetLiveness(fakeFullView{full: map[string]bool{"n2": true}})
	for i := range 8 { // different seeds, different orders
		ino := c.create("f" + string(rune('a'+i)))
		c.write(r1, ino, 0, pattern(uint64(i), 100))
		if ch := c.chunk(ino, 0); slices.Contains(ch.Replicas, "n2") || len(ch.Replicas) != 2 {
			t.Errorf("chunk %d: replicas %v with n2 reported full", i, ch.Replicas)
		}
	}
	r1.SetLiveness(fakeFullView{full: map[string]bool{"n2": true, "n3": true}})
	ino := c.create("both")
	c.write(r1, ino, 0, pattern(9, 100))
	if ch := c.chunk(ino, 0); !slices.Equal(ch.Replicas, []string{"n1", "n2", "n3"}) {
		t.Errorf("with two reported full (but with room after all): replicas %v, want all three", ch.Replicas)
	}
}

// TestHeartbeatCarriesFull: a node's "full" heartbeat reaches every view
// through the leader's reply, and the next beat without it clears it.
func TestHeartbeatCarriesFull(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	l, err := NewLiveness(DefaultLivenessConfig(), clock)
	if err != nil {
		t.Fatal(err)
	}
	l.Track([]string{"n1", "n2"})
	v := NewView(clock, 10*time.Second)
	l.Beat(Heartbeat{Node: "n2", FreeBytes: 1 << 20, UsedBytes: 0, Full: true})
	v.Update(l.Reply("n1"))
	if !v.Full("n2") || v.Full("n1") {
		t.Fatalf("view after n2's full beat: n1 %v, n2 %v", v.Full("n1"), v.Full("n2"))
	}
	if h := l.Health(testNodes[:2], nil); !h[1].Full || h[0].Full {
		t.Fatalf("health after n2's full beat: %+v", h)
	}
	l.Beat(Heartbeat{Node: "n2", FreeBytes: 1 << 30})
	v.Update(l.Reply("n1"))
	if v.Full("n2") {
		t.Fatal("n2 still full in the view after a beat with room")
	}
}
