package meta

import (
	"slices"
	"testing"
)

func TestSetReplicas(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	f := h.create(v, RootIno, "f", TypeFile)
	h.write(v, f.Ino, 0, 0, 1, 100, "n1", "n2", "n3")

	// n3 is replaced by a verified copy on n4: n3's version is garbage.
	h.ok(&SetReplicas{Vol: v, Ino: f.Ino, Index: 0, Version: 1, Replicas: []string{"n1", "n2", "n4"}})
	ch, ok, err := h.fsm.Chunk(v, f.Ino, 0)
	if err != nil || !ok || ch.Version != 1 || ch.Length != 100 || !slices.Equal(ch.Replicas, []string{"n1", "n2", "n4"}) {
		t.Fatalf("chunk after SetReplicas = %+v, %v, %v", ch, ok, err)
	}
	want := map[GarbageKey][]string{{Vol: v, Ino: f.Ino, Index: 0, Version: 1}: {"n3"}}
	if got := h.garbage(); !mapsEqual(got, want) {
		t.Fatalf("garbage = %v, want %v", got, want)
	}

	// A write won the race: the healer's view is stale.
	h.write(v, f.Ino, 0, 1, 2, 100, "n1", "n2", "n4")
	h.fails(&SetReplicas{Vol: v, Ino: f.Ino, Index: 0, Version: 1, Replicas: []string{"n1", "n2"}}, ErrConflict)
	h.fails(&SetReplicas{Vol: v, Ino: f.Ino, Index: 7, Version: 1, Replicas: []string{"n1"}}, ErrNotExist)
	h.fails(&SetReplicas{Vol: v, Ino: f.Ino, Index: 0, Version: 2, Replicas: nil}, ErrInvalid)
	h.fails(&SetReplicas{Vol: v, Ino: f.Ino, Index: 0, Version: 2, Replicas: []string{"n1", "n1"}}, ErrInvalid)
	h.fails(&SetReplicas{Vol: v, Ino: f.Ino, Index: 0, Version: 2, Replicas: []string{""}}, ErrInvalid)
	if ch, _, _ := h.fsm.Chunk(v, f.Ino, 0); !slices.Equal(ch.Replicas, []string{"n1", "n2", "n4"}) {
		t.Fatalf("a refused SetReplicas changed the chunk: %+v", ch)
	}
	// Computed from another replica set than the chunk's: refused, even at
	// the same version (a concurrent change dropped n2 meanwhile).
	h.ok(&SetReplicas{Vol: v, Ino: f.Ino, Index: 0, Version: 2, Replicas: []string{"n1", "n4"}, From: []string{"n4", "n2", "n1"}})
	h.fails(&SetReplicas{Vol: v, Ino: f.Ino, Index: 0, Version: 2, Replicas: []string{"n1", "n2", "n4", "n5"},
		From: []string{"n1", "n2", "n4"}}, ErrConflict)
	if ch, _, _ := h.fsm.Chunk(v, f.Ino, 0); !slices.Equal(ch.Replicas, []string{"n1", "n4"}) {
		t.Fatalf("a SetReplicas from a stale set changed the chunk: %+v", ch)
	}

	var refs []ChunkRef
	if err := h.fsm.ForEachChunk(nil, func(r ChunkRef) bool { refs = append(refs, r); return true }); err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0].Vol != v || refs[0].Ino != f.Ino || refs[0].Version != 2 {
		t.Fatalf("ForEachChunk = %+v", refs)
	}
	// Starting after the last chunk yields nothing.
	last := refs[0]
	refs = nil
	if err := h.fsm.ForEachChunk(&last, func(r ChunkRef) bool { refs = append(refs, r); return true }); err != nil || len(refs) != 0 {
		t.Fatalf("ForEachChunk after the last chunk = %+v, %v", refs, err)
	}
}

func TestForEachChunkResumes(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	f := h.create(v, RootIno, "f", TypeFile)
	g := h.create(v, RootIno, "g", TypeFile)
	for i := uint64(0); i < 3; i++ {
		h.write(v, f.Ino, i, 0, 1, 10, "n1")
		h.write(v, g.Ino, i, 0, 1, 10, "n1")
	}
	var all []ChunkRef
	var from *ChunkRef
	for {
		var page []ChunkRef
		if err := h.fsm.ForEachChunk(from, func(r ChunkRef) bool { page = append(page, r); return len(page) < 2 }); err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		from = &page[len(page)-1]
	}
	if len(all) != 6 {
		t.Fatalf("paged ForEachChunk saw %d chunks, want 6: %+v", len(all), all)
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.Ino > b.Ino || (a.Ino == b.Ino && a.Index >= b.Index) {
			t.Fatalf("out of order or repeated: %+v then %+v", a, b)
		}
	}
}

func TestNodeStateAndRemove(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"n1", "n2"} {
		h.ok(&RegisterNode{Node: NodeInfo{ID: id, AZ: "az-" + id}})
	}
	v := h.volume("v")
	f := h.create(v, RootIno, "f", TypeFile)
	h.write(v, f.Ino, 0, 0, 1, 10, "n2")
	h.ok(&SetNodeState{ID: "n2", Draining: true})
	h.fails(&SetNodeState{ID: "nope", Draining: true}, ErrNotExist)
	// A restart re-registers the node; it stays draining.
	h.ok(&RegisterNode{Node: NodeInfo{ID: "n2", AZ: "az-n2", NFSAddr: "x"}})
	n, err := h.fsm.Node("n2")
	if err != nil || !n.Draining || n.NFSAddr != "x" {
		t.Fatalf("n2 after re-register = %+v, %v", n, err)
	}

	// A new chunk is never placed on a draining node, even by a writer
	// whose view lags.
	g := h.create(v, RootIno, "g", TypeFile)
	h.fails(&CommitWrite{Vol: v, Ino: g.Ino, Size: 10, Chunks: []ChunkWrite{
		{Index: 0, BaseVersion: 0, Version: 1, Length: 10, Replicas: []string{"n1", "n2"}}}}, ErrConflict)
	h.write(v, g.Ino, 0, 0, 1, 10, "n1", "n3", "n2")
	if ch, _, _ := h.fsm.Chunk(v, g.Ino, 0); !slices.Equal(ch.Replicas, []string{"n1", "n3"}) {
		t.Fatalf("a new chunk written to a draining node lists %v", ch.Replicas)
	}
	h.fails(&RemoveNode{ID: "n2"}, ErrConflict)
	h.ok(&SetReplicas{Vol: v, Ino: f.Ino, Index: 0, Version: 1, Replicas: []string{"n1", "n2"}})
	h.ok(&RemoveNode{ID: "n2"})
	if _, err := h.fsm.Node("n2"); err == nil {
		t.Fatal("n2 still registered after RemoveNode")
	}
	h.fails(&RemoveNode{ID: "n2"}, ErrNotExist)
}

func TestRotateToken(t *testing.T) {
	h := newHarness(t)
	if gen, until, err := h.fsm.TokenGen(); err != nil || gen != 0 || until != 0 {
		t.Fatalf("TokenGen before any rotation = %d, %d, %v", gen, until, err)
	}
	r := &RotateToken{Gen: 1, Grace: 1000}
	r.Time = 5000
	h.ok(r)
	if gen, until, err := h.fsm.TokenGen(); err != nil || gen != 1 || until != 6000 {
		t.Fatalf("TokenGen after a rotation = %d, %d, %v; want 1, 6000", gen, until, err)
	}
	// Two rotations computed from generation 1: only one wins.
	h.ok(&RotateToken{Gen: 2})
	h.fails(&RotateToken{Gen: 2}, ErrConflict)
	h.fails(&RotateToken{Gen: 3, Grace: -1}, ErrInvalid)
	h.fails(&RotateToken{Gen: 3, Grace: MaxTokenGrace + 1}, ErrInvalid)
	if gen, _, _ := h.fsm.TokenGen(); gen != 2 {
		t.Fatalf("generation %d after refused rotations, want 2", gen)
	}
}

func TestRotateHandleKey(t *testing.T) {
	h := newHarness(t)
	if gen, until, err := h.fsm.HandleKeyGen(); err != nil || gen != 0 || until != 0 {
		t.Fatalf("HandleKeyGen before any rotation = %d, %d, %v", gen, until, err)
	}
	r := &RotateHandleKey{Gen: 1, Grace: 1000}
	r.Time = 5000
	h.ok(r)
	if gen, until, err := h.fsm.HandleKeyGen(); err != nil || gen != 1 || until != 6000 {
		t.Fatalf("HandleKeyGen after a rotation = %d, %d, %v; want 1, 6000", gen, until, err)
	}
	h.ok(&RotateHandleKey{Gen: 2})
	h.fails(&RotateHandleKey{Gen: 2}, ErrConflict)
	h.fails(&RotateHandleKey{Gen: 3, Grace: -1}, ErrInvalid)
	h.fails(&RotateHandleKey{Gen: 3, Grace: MaxHandleKeyGrace + 1}, ErrInvalid)
	if gen, _, _ := h.fsm.HandleKeyGen(); gen != 2 {
		t.Fatalf("generation %d after refused rotations, want 2", gen)
	}
	// The admin token's generation is a separate counter.
	if gen, _, _ := h.fsm.TokenGen(); gen != 0 {
		t.Fatalf("token generation %d after handle key rotations", gen)
	}
}
