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

// checkPeers is CheckPeers over the harness: each node's real store, the
// fake network's faults.
type checkPeers struct {
	*fakePeers
	listers map[string]*FileLister
}

func newCheckPeers(c *cluster) checkPeers {
	p := checkPeers{fakePeers: c.peers, listers: map[string]*FileLister{}}
	for id, s := range c.stores {
		p.listers[id] = NewFileLister(s, c.clock)
	}
	return p
}

func (p checkPeers) StatReplica(ctx context.Context, node string, id chunkstore.ID, verify bool) (chunkstore.Info, error) {
	s, _, err := p.enter(ctx, "stat", node, id)
	if err != nil {
		return chunkstore.Info{}, err
	}
	if verify {
		return s.Verify(id)
	}
	return s.Inspect(id)
}

func (p checkPeers) ListChunks(ctx context.Context, node string, from chunkstore.ID, limit int) (ChunkPage, error) {
	if _, _, err := p.enter(ctx, "list", node, from); err != nil {
		return ChunkPage{}, err
	}
	return p.listers[node].ListChunks(from, limit)
}

func (p checkPeers) DeleteChunk(ctx context.Context, node string, id chunkstore.ID, version uint64, minAge time.Duration) error {
	s, _, err := p.enter(ctx, "delete", node, id)
	if err != nil {
		return err
	}
	return s.DeleteVersion(id, version, minAge)
}

// damageHeader flips a byte of a chunk file's version field, which fails
// the header checksum: a damage the header check (no verify) sees.
func damageHeader(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0xff}, 41); err != nil {
		t.Fatal(err)
	}
}

// checkFixture is the harness with three files written through n1 (one
// chunk each on n1, n2, n3), all of them older than the safety delay.
type checkFixture struct {
	*cluster
	r1    *Replicator
	files []uint64
}

const checkOrphanAge = time.Hour

func newCheckFixture(t *testing.T) *checkFixture {
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	f := &checkFixture{cluster: c, r1: r1}
	for i, name := range []string{"a", "b", "c"} {
		ino := c.create(name)
		c.write(r1, ino, 0, pattern(uint64(i+1), 5000))
		f.files = append(f.files, ino)
	}
	f.ageAll()
	return f
}

// ageAll makes every chunk file two safety delays old.
func (f *checkFixture) ageAll() {
	f.t.Helper()
	for node, s := range f.stores {
		ids, err := s.List()
		if err != nil {
			f.t.Fatal(err)
		}
		for _, id := range ids {
			ageFile(f.t, f.dirs[node], id, 2*checkOrphanAge)
		}
	}
}

func (f *checkFixture) id(i int) chunkstore.ID { return ChunkID(f.vol.ID, f.files[i], 0) }

func (f *checkFixture) check(opts CheckOptions) *CheckReport {
	f.t.Helper()
	cfg := DefaultCheckConfig()
	cfg.CheckOptions = opts
	cfg.OrphanAge, cfg.PageSize = checkOrphanAge, 2 // pages of two: the join crosses page ends
	rep, err := NewChecker(f.admin, newCheckPeers(f.cluster), f.r1, f.clock, f.log).Run(f.t.Context(), cfg)
	if err != nil {
		f.t.Fatalf("check: %v", err)
	}
	return rep
}

// counts is the part of a report the table compares.
type counts struct {
	chunks, healthy, under, unavailable             int
	missing, stale, corrupt, unreachable, inFlight  int
	orphans, young, garbage, problems, nodeFailures int
}

func countsOf(r *CheckReport) counts {
	c := counts{chunks: r.Chunks, healthy: r.Healthy, under: r.UnderReplicated, unavailable: r.Unavailable,
		missing: r.Missing, stale: r.Stale, corrupt: r.Corrupt, unreachable: r.Unreachable, inFlight: r.InFlight,
		orphans: r.Orphans, young: r.Young, garbage: r.Garbage, problems: r.Problems()}
	for _, n := range r.Nodes {
		if n.Error != "" {
			c.nodeFailures++
		}
	}
	return c
}

func TestCheck(t *testing.T) {
	orphanID := func(f *checkFixture) chunkstore.ID { return ChunkID(f.vol.ID, 900, 0) }
	putOrphan := func(f *checkFixture, node string, age time.Duration) {
		if err := f.stores[node].Put(orphanID(f), 1<<16|9, pattern(9, 3000)); err != nil {
			t.Fatal(err)
		}
		if age > 0 {
			ageFile(t, f.dirs[node], orphanID(f), age)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(f *checkFixture)
		opts  CheckOptions
		want  counts
		kinds []FindingKind // the findings listed, in order
	}{
		{name: "clean", want: counts{chunks: 3, healthy: 3}},
		{name: "clean, verified", opts: CheckOptions{Verify: true}, want: counts{chunks: 3, healthy: 3}},
		{
			name: "damaged data is seen only by verify",
			setup: func(f *checkFixture) {
				flipData(t, chunkPath(t, f.dirs["n2"], f.id(1)))
				ageFile(t, f.dirs["n2"], f.id(1), 2*checkOrphanAge)
			},
			want: counts{chunks: 3, healthy: 3},
		},
		{
			name: "damaged data, verified",
			setup: func(f *checkFixture) {
				flipData(t, chunkPath(t, f.dirs["n2"], f.id(1)))
			},
			opts:  CheckOptions{Verify: true},
			want:  counts{chunks: 3, healthy: 2, under: 1, corrupt: 1, problems: 2},
			kinds: []FindingKind{FindCorrupt, FindUnderReplicated},
		},
		{
			name:  "damaged header",
			setup: func(f *checkFixture) { damageHeader(t, chunkPath(t, f.dirs["n3"], f.id(0))) },
			want:  counts{chunks: 3, healthy: 2, under: 1, corrupt: 1, problems: 2},
			kinds: []FindingKind{FindCorrupt, FindUnderReplicated},
		},
		{
			name: "missing replica",
			setup: func(f *checkFixture) {
				if err := f.stores["n3"].Delete(f.id(2)); err != nil {
					t.Fatal(err)
				}
			},
			want:  counts{chunks: 3, healthy: 2, under: 1, missing: 1, problems: 2},
			kinds: []FindingKind{FindMissing, FindUnderReplicated},
		},
		{
			name: "stale replica behind the metadata",
			setup: func(f *checkFixture) {
				ch := f.chunk(f.files[1], 0)
				old := ch.Version - 1<<tagBits
				if err := f.stores["n1"].Put(f.id(1), old, pattern(1, 5000)); err != nil {
					t.Fatal(err)
				}
			},
			want:  counts{chunks: 3, healthy: 2, under: 1, stale: 1, problems: 2},
			kinds: []FindingKind{FindStale, FindUnderReplicated},
		},
		{
			name: "a write in flight is healthy",
			setup: func(f *checkFixture) {
				ch := f.chunk(f.files[1], 0)
				if _, err := f.stores["n2"].Write(f.id(1), ch.Version, nextVersion(ch.Version, 7), ch.Length, 0, []byte("x")); err != nil {
					t.Fatal(err)
				}
			},
			want: counts{chunks: 3, healthy: 3, inFlight: 1},
		},
		{
			name: "a write that never committed, long ago, is stale",
			setup: func(f *checkFixture) {
				ch := f.chunk(f.files[1], 0)
				if _, err := f.stores["n2"].Write(f.id(1), ch.Version, nextVersion(ch.Version, 7), ch.Length, 0, []byte("x")); err != nil {
					t.Fatal(err)
				}
				ageFile(t, f.dirs["n2"], f.id(1), 2*checkOrphanAge)
			},
			want:  counts{chunks: 3, healthy: 2, under: 1, stale: 1, problems: 2},
			kinds: []FindingKind{FindStale, FindUnderReplicated},
		},
		{
			name:  "old orphan",
			setup: func(f *checkFixture) { putOrphan(f, "n2", 2*checkOrphanAge) },
			want:  counts{chunks: 3, healthy: 3, orphans: 1, problems: 1},
			kinds: []FindingKind{FindOrphan},
		},
		{
			name:  "young orphan is no problem",
			setup: func(f *checkFixture) { putOrphan(f, "n2", 0) },
			want:  counts{chunks: 3, healthy: 3, young: 1},
		},
		{
			name: "damaged orphan",
			setup: func(f *checkFixture) {
				putOrphan(f, "n1", 0)
				damageHeader(t, chunkPath(t, f.dirs["n1"], orphanID(f)))
				ageFile(t, f.dirs["n1"], orphanID(f), 2*checkOrphanAge)
			},
			want:  counts{chunks: 3, healthy: 3, orphans: 1, problems: 1},
			kinds: []FindingKind{FindOrphan},
		},
		{
			name: "a replica on a node the replica set left out is an orphan",
			setup: func(f *checkFixture) {
				ch := f.chunk(f.files[0], 0)
				if _, err := f.admin.Propose(t.Context(), &meta.SetReplicas{Vol: f.vol.ID, Ino: f.files[0], Index: 0,
					Version: ch.Version, Replicas: []string{"n1", "n2"}}); err != nil {
					t.Fatal(err)
				}
			},
			// The left-out copy is recorded as garbage: the collector's.
			want:  counts{chunks: 3, healthy: 2, under: 1, garbage: 1, problems: 1},
			kinds: []FindingKind{FindUnderReplicated},
		},
		{
			name:  "files of a deleted file await the collector",
			setup: func(f *checkFixture) { f.remove("b") },
			want:  counts{chunks: 2, healthy: 2, garbage: 3},
		},
		{
			name:  "unreachable node",
			setup: func(f *checkFixture) { f.peers.setFault("n3", fault{down: true}) },
			want:  counts{chunks: 3, healthy: 0, under: 3, unreachable: 3, problems: 4, nodeFailures: 1},
			kinds: []FindingKind{FindUnreachable, FindUnderReplicated, FindUnreachable, FindUnderReplicated, FindUnreachable, FindUnderReplicated},
		},
		{
			name: "unavailable chunk",
			setup: func(f *checkFixture) {
				for _, n := range []string{"n1", "n2", "n3"} {
					if err := f.stores[n].Delete(f.id(0)); err != nil {
						t.Fatal(err)
					}
				}
			},
			want:  counts{chunks: 3, healthy: 2, unavailable: 1, missing: 3, problems: 4},
			kinds: []FindingKind{FindMissing, FindMissing, FindMissing, FindUnavailable},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCheckFixture(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			rep := f.check(tc.opts)
			if got := countsOf(rep); got != tc.want {
				t.Errorf("counts\n got %+v\nwant %+v", got, tc.want)
			}
			var kinds []FindingKind
			for _, x := range rep.Findings {
				kinds = append(kinds, x.Kind)
			}
			if !slices.Equal(kinds, tc.kinds) {
				t.Errorf("findings %v, want %v: %+v", kinds, tc.kinds, rep.Findings)
			}
			if rep.Repaired != (CheckRepairs{}) {
				t.Errorf("a check without repair repaired: %+v", rep.Repaired)
			}
		})
	}
}

// TestCheckRepair: repair drops the damaged and missing replicas (so the
// healer copies them back) and deletes the old orphan; it keeps the young
// orphan and a damaged last copy, and deletes nothing listed.
func TestCheckRepair(t *testing.T) {
	f := newCheckFixture(t)
	damageHeader(t, chunkPath(t, f.dirs["n2"], f.id(0)))
	if err := f.stores["n3"].Delete(f.id(1)); err != nil {
		t.Fatal(err)
	}
	old, young := ChunkID(f.vol.ID, 900, 0), ChunkID(f.vol.ID, 901, 0)
	for _, id := range []chunkstore.ID{old, young} {
		if err := f.stores["n1"].Put(id, 1<<16|9, pattern(9, 3000)); err != nil {
			t.Fatal(err)
		}
	}
	ageFile(t, f.dirs["n1"], old, 2*checkOrphanAge)
	// The third file keeps one replica, damaged: its last copy.
	ch := f.chunk(f.files[2], 0)
	if _, err := f.admin.Propose(t.Context(), &meta.SetReplicas{Vol: f.vol.ID, Ino: f.files[2], Index: 0,
		Version: ch.Version, Replicas: []string{"n3"}}); err != nil {
		t.Fatal(err)
	}
	damageHeader(t, chunkPath(t, f.dirs["n3"], f.id(2)))

	rep := f.check(CheckOptions{Repair: true})
	want := counts{chunks: 3, under: 2, unavailable: 1, missing: 1, corrupt: 2, orphans: 1, young: 1, garbage: 2, problems: 7}
	if got := countsOf(rep); got != want {
		t.Errorf("counts\n got %+v\nwant %+v", got, want)
	}
	if want := (CheckRepairs{Dropped: 2, Kept: 1, Deleted: 1}); rep.Repaired != want {
		t.Errorf("repaired %+v, want %+v (findings %+v)", rep.Repaired, want, rep.Findings)
	}
	for _, x := range rep.Findings {
		if (x.Kind == FindCorrupt || x.Kind == FindMissing || x.Kind == FindOrphan) && x.Repair == "" {
			t.Errorf("finding without a repair outcome: %+v", x)
		}
	}
	if c := f.chunk(f.files[0], 0); slices.Contains(c.Replicas, "n2") {
		t.Errorf("damaged replica on n2 still listed: %v", c.Replicas)
	}
	if c := f.chunk(f.files[1], 0); slices.Contains(c.Replicas, "n3") {
		t.Errorf("missing replica on n3 still listed: %v", c.Replicas)
	}
	if c := f.chunk(f.files[2], 0); !slices.Equal(c.Replicas, []string{"n3"}) {
		t.Errorf("the last copy was dropped: %v", c.Replicas)
	}
	ids, _ := f.stores["n1"].List()
	if slices.Contains(ids, old) || !slices.Contains(ids, young) {
		t.Errorf("n1 files after repair %v: want the old orphan gone, the young one kept", ids)
	}

	// Checked again, what is left is the healer's work (and the last copy).
	rep = f.check(CheckOptions{})
	if got, want := countsOf(rep), (counts{chunks: 3, under: 2, unavailable: 1, corrupt: 1, young: 1, garbage: 3, problems: 4}); got != want {
		t.Errorf("after repair\n got %+v\nwant %+v", got, want)
	}
}

func TestCheckOptions(t *testing.T) {
	f := newCheckFixture(t)
	// Another volume's orphan is not this volume's business.
	res, err := f.admin.Propose(t.Context(), &meta.CreateVolume{Name: "other", Replicas: 3, WriteQuorum: 2, ChunkSize: testChunkSize, RootMode: 0o755})
	if err != nil {
		t.Fatal(err)
	}
	other := ChunkID(res.Volume.ID, 5, 0)
	if err := f.stores["n2"].Put(other, 1<<16|9, pattern(9, 100)); err != nil {
		t.Fatal(err)
	}
	ageFile(t, f.dirs["n2"], other, 2*checkOrphanAge)
	if got := countsOf(f.check(CheckOptions{Volume: "vol"})); got != (counts{chunks: 3, healthy: 3}) {
		t.Errorf("volume vol: %+v", got)
	}
	if got := countsOf(f.check(CheckOptions{Volume: "other"})); got != (counts{orphans: 1, problems: 1}) {
		t.Errorf("volume other: %+v", got)
	}
	if got := countsOf(f.check(CheckOptions{})); got != (counts{chunks: 3, healthy: 3, orphans: 1, problems: 1}) {
		t.Errorf("every volume: %+v", got)
	}

	ck := NewChecker(f.admin, newCheckPeers(f.cluster), nil, f.clock, nil)
	cfg := DefaultCheckConfig()
	cfg.Volume = "nope"
	if _, err := ck.Run(t.Context(), cfg); !errors.Is(err, meta.ErrNoVolume) {
		t.Errorf("unknown volume: %v", err)
	}
	cfg.Volume, cfg.Examples = "", MaxCheckExamples+1
	if _, err := ck.Run(t.Context(), cfg); !errors.Is(err, meta.ErrInvalid) {
		t.Errorf("too many examples: %v", err)
	}

	// Examples bound each kind.
	f.peers.setFault("n3", fault{down: true})
	cfg.Examples = 1
	rep, err := ck.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unreachable != 3 || len(rep.Findings) != 3 { // one unreachable, one under-replicated, one orphan
		t.Errorf("examples 1: %d unreachable, findings %+v", rep.Unreachable, rep.Findings)
	}
}

func TestFileListerPages(t *testing.T) {
	f := newCheckFixture(t)
	s := f.stores["n1"]
	l := NewFileLister(s, f.clock)
	var got []chunkstore.ID
	page, err := l.ListChunks(chunkstore.ID{}, 2)
	for err == nil {
		for _, x := range page.Files {
			got = append(got, x.ID)
			if x.Version == 0 || x.Age < checkOrphanAge {
				t.Errorf("file %+v: want its version and age", x)
			}
		}
		if page.Done {
			break
		}
		page, err = l.ListChunks(page.Next, 2)
	}
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.List()
	if !slices.Equal(got, want) || len(want) != 3 {
		t.Errorf("paged listing %v, want %v", got, want)
	}
	// A file deleted after the listing is skipped; a damaged one listed as such.
	if err := s.Delete(f.id(0)); err != nil {
		t.Fatal(err)
	}
	damageHeader(t, chunkPath(t, f.dirs["n1"], f.id(1)))
	page, err = l.ListChunks(want[0], 10)
	if err != nil || len(page.Files) != 2 || !page.Done {
		t.Fatalf("page after changes: %+v, %v", page, err)
	}
	for _, x := range page.Files {
		if x.ID == f.id(1) && (!x.Corrupt || x.Detail == "") {
			t.Errorf("damaged file listed as %+v", x)
		}
	}
}
