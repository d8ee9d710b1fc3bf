package replication

import (
	"errors"
	"slices"
	"testing"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// TestReadDropsLocalCorruptReplica: a read through n1 whose local replica
// is damaged returns the right bytes from another replica, leaves n1 out of
// the chunk's replica set and removes n1's damaged file.
func TestReadDropsLocalCorruptReplica(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	ino := c.create("f")
	data := pattern(31, 300000)
	c.write(r1, ino, 0, data)
	id := ChunkID(c.vol.ID, ino, 0)
	v := c.chunk(ino, 0).Version
	flipData(t, chunkPath(t, c.dirs["n1"], id))

	c.wantFile(ino, data, r1)
	ch := c.chunk(ino, 0)
	if slices.Contains(ch.Replicas, "n1") || ch.Version != v {
		t.Fatalf("after the read: %+v; want n1 left out at version %#x", ch, v)
	}
	if _, _, err := c.stores["n1"].Stat(id); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("n1's damaged file survived the drop: %v", err)
	}
	if got := r1.CorruptCounts(); got != (CorruptCounts{Found: 1, Dropped: 1}) {
		t.Errorf("counts %+v, want 1 found, 1 dropped", got)
	}
	// The next read does not touch n1 and needs no repair.
	c.wantFile(ino, data, r1)
	if got := r1.CorruptCounts(); got.Found != 1 {
		t.Errorf("a second read found damage again: %+v", got)
	}
}

// TestReadDropsRemoteCorruptReplica: a gateway without chunks reads from
// n2 first (its AZ); n2's replica is damaged; the read is served by another
// replica and n2 is left out, its file left for garbage collection.
func TestReadDropsRemoteCorruptReplica(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	gw, _ := c.replicator("gw", "az2", nil)
	ino := c.create("f")
	data := pattern(32, 100000)
	c.write(r1, ino, 0, data)
	id := ChunkID(c.vol.ID, ino, 0)
	flipData(t, chunkPath(t, c.dirs["n2"], id))

	c.peers.resetCounts()
	c.wantFile(ino, data, gw)
	if c.peers.count("read", "n2") != 1 {
		t.Fatalf("the gateway read n2 %d times; the test needs it to read n2 first", c.peers.count("read", "n2"))
	}
	if got := c.chunk(ino, 0).Replicas; !slices.Equal(got, []string{"n1", "n3"}) {
		t.Fatalf("replicas after the read: %v, want [n1 n3]", got)
	}
	g, err := c.b.FSM().Garbage(0)
	if err != nil || len(g) != 1 || !slices.Equal(g[0].Replicas, []string{"n2"}) {
		t.Fatalf("garbage: %+v, %v; want n2's version", g, err)
	}
	if _, _, err := c.stores["n2"].Stat(id); err != nil {
		t.Errorf("a remote damaged file was touched by the reader: %v", err)
	}
}

// TestReadKeepsLastCorruptCopy: with the other replicas down, the damaged
// replica is not dropped and the read fails rather than return bad bytes.
func TestReadKeepsLastCorruptCopy(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	ino := c.create("f")
	data := pattern(33, 100000)
	c.write(r1, ino, 0, data)
	flipData(t, chunkPath(t, c.dirs["n1"], ChunkID(c.vol.ID, ino, 0)))
	c.peers.setFault("n2", fault{down: true})
	c.peers.setFault("n3", fault{down: true})
	if _, err := c.readAll(r1, ino); !errors.Is(err, ErrUnavailable) || !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Fatalf("read with the only reachable replica damaged: %v; want ErrUnavailable naming the corruption", err)
	}
	if got := c.chunk(ino, 0).Replicas; len(got) != 3 {
		t.Fatalf("replicas %v: the last reachable copy was dropped", got)
	}
	if got := r1.CorruptCounts(); got.Kept != 1 || got.Dropped != 0 {
		t.Errorf("counts %+v, want 1 kept", got)
	}
	// Once the others are back the read succeeds and drops n1.
	c.peers.setFault("n2", fault{})
	c.peers.setFault("n3", fault{})
	c.wantFile(ino, data, r1)
	if got := c.chunk(ino, 0).Replicas; slices.Contains(got, "n1") {
		t.Errorf("replicas %v still list the damaged n1", got)
	}
}

// TestDropCorruptConditions covers the answers of DropCorrupt that reads
// and the scrubber rely on.
func TestDropCorruptConditions(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	ino := c.create("f")
	c.write(r1, ino, 0, pattern(34, 1000))
	v := c.chunk(ino, 0).Version
	ctx := t.Context()
	if dropped, err := r1.DropCorrupt(ctx, c.vol.ID, ino, 0, v+1, "n2"); dropped || !errors.Is(err, meta.ErrConflict) {
		t.Errorf("drop at another version = %v, %v; want ErrConflict", dropped, err)
	}
	if dropped, err := r1.DropCorrupt(ctx, c.vol.ID, ino, 7, v, "n2"); dropped || err != nil {
		t.Errorf("drop of a hole = %v, %v; want nothing to do", dropped, err)
	}
	if dropped, err := r1.DropCorrupt(ctx, c.vol.ID, ino, 0, v, "n9"); dropped || err != nil {
		t.Errorf("drop of a node not listed = %v, %v; want nothing to do", dropped, err)
	}
	if dropped, err := r1.DropCorrupt(ctx, c.vol.ID, ino, 0, v, "n2"); !dropped || err != nil {
		t.Fatalf("drop of n2 = %v, %v", dropped, err)
	}
	if dropped, err := r1.DropCorrupt(ctx, c.vol.ID, ino, 0, v, "n3"); !dropped || err != nil {
		t.Fatalf("drop of n3 = %v, %v", dropped, err)
	}
	// n1 is the last replica: never dropped.
	if dropped, err := r1.DropCorrupt(ctx, c.vol.ID, ino, 0, v, "n1"); dropped || !errors.Is(err, ErrLastCopy) {
		t.Fatalf("drop of the last replica = %v, %v; want ErrLastCopy", dropped, err)
	}
	if got := c.chunk(ino, 0).Replicas; !slices.Equal(got, []string{"n1"}) {
		t.Fatalf("replicas %v, want [n1]", got)
	}
}

// TestReturningNodeRefusesOldVersion: n3 misses an overwrite while down and
// comes back holding the old version. Reads never get the old bytes: n3 is
// not listed, so no reader asks it; and even listed at the new version (as
// if the metadata were wrong), it answers "version mismatch" and the read
// goes to another replica.
func TestReturningNodeRefusesOldVersion(t *testing.T) {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	r3, _ := c.replicator("n3", "az3", nil)
	ino := c.create("f")
	old := pattern(35, 200000)
	c.write(r1, ino, 0, old)
	oldVersion := c.chunk(ino, 0).Version

	c.peers.setFault("n3", fault{down: true})
	fresh := pattern(36, 200000)
	c.write(r1, ino, 0, fresh)
	c.peers.setFault("n3", fault{})
	ch := c.chunk(ino, 0)
	if slices.Contains(ch.Replicas, "n3") {
		t.Fatalf("n3 missed the write but is listed: %+v", ch)
	}
	id := ChunkID(c.vol.ID, ino, 0)
	if v, _, err := c.stores["n3"].Stat(id); err != nil || v != oldVersion {
		t.Fatalf("n3 holds %#x, %v; the test needs the old version %#x", v, err, oldVersion)
	}
	if _, err := c.stores["n3"].Read(id, ch.Version, 0, 10); !errors.Is(err, chunkstore.ErrVersionMismatch) {
		t.Fatalf("n3's store read at the committed version: %v, want ErrVersionMismatch", err)
	}
	c.wantFile(ino, fresh, r3)

	// Listed at the new version while holding the old one.
	if _, err := c.admin.Propose(t.Context(), &meta.SetReplicas{Vol: c.vol.ID, Ino: ino, Index: 0, Version: ch.Version,
		Replicas: []string{"n1", "n2", "n3"}}); err != nil {
		t.Fatal(err)
	}
	c.peers.resetCounts()
	c.wantFile(ino, fresh, r3)
	if c.peers.count("read", "n1")+c.peers.count("read", "n2") == 0 {
		t.Errorf("the read did not go past n3")
	}
	if got := r3.CorruptCounts(); got.Found != 0 {
		t.Errorf("a version mismatch was reported as damage: %+v", got)
	}
}
