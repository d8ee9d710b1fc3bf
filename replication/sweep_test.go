package replication

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// ageFile sets a chunk file's modification time d in the past.
func ageFile(t *testing.T, dir string, id chunkstore.ID, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(chunkPath(t, dir, id), old, old); err != nil {
		t.Fatal(err)
	}
}

// sweepMeta is SweepMetadata over the harness whose CatchUp can fail.
type sweepMeta struct {
	*testMeta
	err    error
	during func() // runs inside each CatchUp (a barrier that takes time)
}

func (m *sweepMeta) CatchUp(ctx context.Context) error {
	if m.err != nil {
		return m.err
	}
	if m.during != nil {
		m.during()
	}
	return m.testMeta.CatchUp(ctx)
}

// TestSweep puts every kind of chunk file on n3 and checks what one pass
// deletes: old unreferenced files (of a deleted file, of a chunk that
// moved on without n3, of a write that never committed, damaged ones),
// and nothing young, live, ahead of the committed version, or damaged
// but listed.
func TestSweep(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	dir, store := c.dirs["n3"], c.stores["n3"]
	const hour = time.Hour
	file := func(name string, seed uint64) uint64 {
		ino := c.create(name)
		c.write(r1, ino, 0, pattern(seed, 5000))
		return ino
	}
	live := file("live", 1)
	deleted := file("deleted", 2)
	deletedYoung := file("deleted-young", 3)
	stale := file("stale", 4)
	ahead := file("ahead", 5)
	corruptListed := file("corrupt-listed", 6)
	c.remove("deleted")
	c.remove("deleted-young")
	// n3 misses an overwrite of "stale" and is left out of it.
	c.peers.setFault("n3", fault{down: true})
	c.write(r1, stale, 0, pattern(7, 5000))
	c.peers.setFault("n3", fault{})
	// A write that reached n3 and never committed.
	aheadCh := c.chunk(ahead, 0)
	aheadID := ChunkID(c.vol.ID, ahead, 0)
	if _, err := store.Write(aheadID, aheadCh.Version, nextVersion(aheadCh.Version, 9), aheadCh.Length, 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Orphans: a new chunk whose write never committed, old and young, and
	// an old one whose header is damaged.
	orphan, orphanYoung, orphanCorrupt := ChunkID(c.vol.ID, 900, 0), ChunkID(c.vol.ID, 901, 0), ChunkID(c.vol.ID, 902, 0)
	for _, id := range []chunkstore.ID{orphan, orphanYoung, orphanCorrupt} {
		if err := store.Put(id, 1<<16|9, pattern(8, 3000)); err != nil {
			t.Fatal(err)
		}
	}
	// Damaged headers (a flipped byte of the version field fails the
	// header checksum): an orphan, and a listed replica. Damaged data the
	// sweep does not see: it reads headers only, blocks are the scrubber's.
	for _, id := range []chunkstore.ID{orphanCorrupt, ChunkID(c.vol.ID, corruptListed, 0)} {
		f, err := os.OpenFile(chunkPath(t, dir, id), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte{0xff}, 41); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}

	for _, ino := range []uint64{live, deleted, stale, ahead, corruptListed} {
		ageFile(t, dir, ChunkID(c.vol.ID, ino, 0), 2*hour)
	}
	for _, id := range []chunkstore.ID{orphan, orphanCorrupt} {
		ageFile(t, dir, id, 2*hour)
	}

	m := &sweepMeta{testMeta: &testMeta{b: c.b}}
	cfg := DefaultSweepConfig("n3")
	cfg.OrphanAge = hour
	s, err := NewSweeper(cfg, m, store, nil, newStepClock(), c.log)
	if err != nil {
		t.Fatal(err)
	}
	m.err = meta.ErrNoLeader
	if err := s.Pass(t.Context()); !errors.Is(err, meta.ErrNoLeader) {
		t.Fatalf("pass without a leader: %v; want refused", err)
	}
	if n, _ := store.List(); len(n) != 9 {
		t.Fatalf("a refused pass touched files: %d left of 9", len(n))
	}
	m.err = nil
	if err := s.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}

	has := func(id chunkstore.ID) bool {
		ids, err := store.List()
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(ids, id)
	}
	id := func(ino uint64) chunkstore.ID { return ChunkID(c.vol.ID, ino, 0) }
	for name, want := range map[chunkstore.ID]bool{
		id(live): true, id(deleted): false, id(deletedYoung): true, id(stale): false, aheadID: true,
		id(corruptListed): true, orphan: false, orphanYoung: true, orphanCorrupt: false,
	} {
		if has(name) != want {
			t.Errorf("%s: present %v after the sweep, want %v", name, !want, want)
		}
	}
	st := s.Status()
	want := SweepStatus{Node: "n3", OrphanAge: hour, Passes: 1, LastPass: st.LastPass, Files: 9, Live: 1, Young: 2,
		Ahead: 1, Corrupt: 1, Deleted: 4}
	if st != want {
		t.Errorf("status %+v, want %+v", st, want)
	}
	// The files the other nodes hold are untouched: the sweep is local.
	if !c.holds("n1", deleted, 0) {
		t.Errorf("n1's file was deleted by n3's sweep")
	}
}

// TestSweepBehindReplica: a replica listed at a version its file does not
// hold (a disk rolled back) is left out for the healer, never deleted.
func TestSweepBehindReplica(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	r3, _ := c.replicator("n3", "az3", nil)
	ino := c.create("f")
	c.write(r1, ino, 0, pattern(11, 5000))
	id := ChunkID(c.vol.ID, ino, 0)
	old, _, err := c.stores["n3"].ReadAll(id)
	if err != nil {
		t.Fatal(err)
	}
	oldVersion := c.chunk(ino, 0).Version
	c.write(r1, ino, 0, pattern(12, 5000))
	// Roll n3 back to the first version behind the store's back.
	if err := c.stores["n3"].Put(id, oldVersion, old); err != nil {
		t.Fatal(err)
	}
	ageFile(t, c.dirs["n3"], id, 2*time.Hour)
	cfg := DefaultSweepConfig("n3")
	s, err := NewSweeper(cfg, &testMeta{b: c.b}, c.stores["n3"], r3, newStepClock(), c.log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Behind != 1 || st.Deleted != 0 {
		t.Fatalf("status %+v; want 1 behind, nothing deleted", st)
	}
	if got := c.chunk(ino, 0).Replicas; slices.Contains(got, "n3") {
		t.Errorf("replicas %v still list n3, which holds an old version", got)
	}
}

// TestSweepRunSchedule: the first pass comes OrphanAge after the start,
// the next ones every Interval.
func TestSweepRunSchedule(t *testing.T) {
	c := newCluster(t)
	clock := newStepClock()
	s, err := NewSweeper(SweepConfig{NodeID: "n1", Interval: time.Hour, OrphanAge: 10 * time.Minute},
		&testMeta{b: c.b}, c.stores["n1"], nil, clock, c.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	if took := drive(t, clock, 24*time.Hour, "first pass", func() bool { return s.Status().Passes == 1 }); took != 10*time.Minute {
		t.Errorf("first pass after %v, want 10m", took)
	}
	if took := drive(t, clock, 24*time.Hour, "second pass", func() bool { return s.Status().Passes == 2 }); took != time.Hour {
		t.Errorf("second pass after %v, want 1h", took)
	}
}

// TestSweepLongBarrier: commits made while the read barrier waits (no
// leader yet, a log to replay) may be missing from the metadata the sweep
// reads, so a file must be OrphanAge old at the barrier's start, not at
// its end. Here the barrier takes 2 hours of the clock: a healer's copy
// made 90 minutes ago, whose commit this node has not applied, survives
// (OrphanAge 1 hour); a file of 4 hours ago goes.
func TestSweepLongBarrier(t *testing.T) {
	c := newCluster(t)
	store, dir := c.stores["n3"], c.dirs["n3"]
	copied, old := ChunkID(c.vol.ID, 900, 0), ChunkID(c.vol.ID, 901, 0)
	for _, id := range []chunkstore.ID{copied, old} {
		if err := store.Put(id, 1<<16, pattern(9, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	ageFile(t, dir, copied, 90*time.Minute)
	ageFile(t, dir, old, 4*time.Hour)
	clock := newStepClock()
	m := &sweepMeta{testMeta: &testMeta{b: c.b}, during: func() { clock.Advance(2 * time.Hour) }}
	s, err := NewSweeper(SweepConfig{NodeID: "n3", Interval: time.Hour, OrphanAge: time.Hour}, m, store, nil, clock, c.log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	ids, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []chunkstore.ID{copied}) {
		t.Fatalf("files left %v, want only %s", ids, copied)
	}
	if st := s.Status(); st.Young != 1 || st.Deleted != 1 {
		t.Errorf("status %+v", st)
	}
}
