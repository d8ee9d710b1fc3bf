package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/meta/metatest"
)

// The healer over a real FSM, real chunk stores n1..n4 (az1, az2, az3,
// az1), the fake peers of the replication harness with checksums added, a
// fake Raft membership and a fake clock for liveness; n2 is the leader.

var healNodes = []meta.NodeInfo{{ID: "n1", AZ: "az1"}, {ID: "n2", AZ: "az2"}, {ID: "n3", AZ: "az3"}, {ID: "n4", AZ: "az1"}}

// crcPeers adds the checksums of the healing protocol to fakePeers.
type crcPeers struct{ *fakePeers }

func crc(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

func (p crcPeers) FetchVerified(ctx context.Context, node string, id chunkstore.ID) ([]byte, uint64, uint32, error) {
	d, v, err := p.FetchChunk(ctx, node, id)
	return d, v, crc(d), err
}

func (p crcPeers) PutVerified(ctx context.Context, node string, id chunkstore.ID, version uint64, data []byte, sum uint32) error {
	if crc(data) != sum {
		return fmt.Errorf("fake: checksum mismatch: %w", chunkstore.ErrCorrupt)
	}
	return p.PutChunk(ctx, node, id, version, data)
}

// fakeMembers is a Raft configuration that records changes.
type fakeMembers struct {
	mu     sync.Mutex
	m      map[string]bool
	ops    []string
	change func() // if set, runs at every AddMember and RemoveMember
}

func (f *fakeMembers) Members() (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for k, v := range f.m {
		out[k] = v
	}
	return out, nil
}

func (f *fakeMembers) AddMember(id, _ string, voter bool) error {
	f.changing()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[id] = voter
	f.ops = append(f.ops, fmt.Sprintf("add %s voter=%v", id, voter))
	return nil
}

func (f *fakeMembers) RemoveMember(id string) error {
	f.changing()
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, id)
	f.ops = append(f.ops, "remove "+id)
	return nil
}

func (f *fakeMembers) changing() {
	f.mu.Lock()
	fn := f.change
	f.mu.Unlock()
	if fn != nil {
		fn()
	}
}

func (f *fakeMembers) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

type healHarness struct {
	t       *testing.T
	b       *metatest.Store
	meta    *testMeta
	vol     *meta.Volume
	stores  map[string]*chunkstore.Store
	peers   *fakePeers
	clock   *fakeClock
	live    *Liveness
	members *fakeMembers
	h       *Healer
	stopped map[string]bool
}

func newHealHarness(t *testing.T, tweak func(*HealerConfig)) *healHarness {
	t.Helper()
	b := metatest.New(t, healNodes...)
	hh := &healHarness{
		t: t, b: b, meta: &testMeta{b: b}, stores: map[string]*chunkstore.Store{},
		clock:   &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)},
		members: &fakeMembers{m: map[string]bool{"n1": true, "n2": true, "n3": true, "n4": false}},
		stopped: map[string]bool{},
	}
	hh.vol = hh.volume("vol", 3)
	for _, n := range healNodes {
		cfg := chunkstore.DefaultConfig(t.TempDir())
		cfg.NoSync = true
		s, err := chunkstore.Open(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		hh.stores[n.ID] = s
	}
	hh.peers = &fakePeers{stores: hh.stores, faults: map[string]fault{}, calls: map[string]int{}}
	var err error
	if hh.live, err = NewLiveness(DefaultLivenessConfig(), hh.clock); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultHealerConfig("n2")
	cfg.RateLimit, cfg.ScanInterval = 1<<30, 10*time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if hh.h, err = NewHealer(cfg, hh.meta, hh.members, crcPeers{hh.peers}, hh.live, hh.clock, log); err != nil {
		t.Fatal(err)
	}
	hh.live.Reset(nodeIDs(healNodes))
	return hh
}

func (hh *healHarness) volume(name string, replicas int) *meta.Volume {
	hh.t.Helper()
	res, err := hh.meta.Propose(context.Background(), &meta.CreateVolume{Name: name, Replicas: replicas,
		WriteQuorum: DefaultWriteQuorum(replicas), ChunkSize: testChunkSize, RootMode: 0o755})
	if err != nil {
		hh.t.Fatalf("CreateVolume: %v", err)
	}
	return res.Volume
}

// file creates a file of n chunks on the given replicas and returns its
// inode and the chunks' contents.
func (hh *healHarness) file(vol *meta.Volume, name string, n int, replicas ...string) (uint64, [][]byte) {
	hh.t.Helper()
	ctx := context.Background()
	res, err := hh.meta.Propose(ctx, &meta.Create{Vol: vol.ID, Parent: meta.RootIno, Name: name, Kind: meta.TypeFile, Mode: 0o644})
	if err != nil {
		hh.t.Fatalf("create %s: %v", name, err)
	}
	ino := res.Inode.Ino
	var contents [][]byte
	for i := range n {
		data := pattern(ino*100+uint64(i), testChunkSize/2+i*1000)
		contents = append(contents, data)
		hh.commit(vol, ino, uint64(i), 0, nextVersion(0, 1), data, replicas...)
	}
	return ino, contents
}

// commit stores data as chunk idx at version on the replicas and commits it.
func (hh *healHarness) commit(vol *meta.Volume, ino, idx, base, version uint64, data []byte, replicas ...string) {
	hh.t.Helper()
	id := ChunkID(vol.ID, ino, idx)
	for _, r := range replicas {
		if err := hh.stores[r].Put(id, version, data); err != nil {
			hh.t.Fatal(err)
		}
	}
	_, err := hh.meta.Propose(context.Background(), &meta.CommitWrite{Vol: vol.ID, Ino: ino, Size: (idx + 1) * testChunkSize,
		Chunks: []meta.ChunkWrite{{Index: idx, BaseVersion: base, Version: version, Length: int64(len(data)), Replicas: replicas}}})
	if err != nil {
		hh.t.Fatalf("commit chunk %d of %d: %v", idx, ino, err)
	}
}

// stop makes a node unreachable and silent.
func (hh *healHarness) stop(id string) {
	hh.stopped[id] = true
	hh.peers.setFault(id, fault{down: true})
}

// advance moves the clock in 1 s steps; the running nodes beat at each.
func (hh *healHarness) advance(d time.Duration) {
	for step := time.Duration(0); step < d; step += time.Second {
		hh.clock.Advance(min(time.Second, d-step))
		for _, n := range healNodes {
			if !hh.stopped[n.ID] {
				hh.live.Beat(Heartbeat{Node: n.ID, FreeBytes: 100 << 30, UsedBytes: 0})
			}
		}
	}
}

// pass runs one healing pass and waits for its tasks.
func (hh *healHarness) pass() Plan {
	hh.t.Helper()
	sem := make(chan struct{}, hh.h.cfg.Concurrency)
	plan, _, _, err := hh.h.Plan(context.Background())
	if err != nil {
		hh.t.Fatal(err)
	}
	if err := hh.h.pass(context.Background(), sem); err != nil {
		hh.t.Fatal(err)
	}
	hh.h.wg.Wait()
	return plan
}

func (hh *healHarness) chunk(vol *meta.Volume, ino, idx uint64) *meta.Chunk {
	hh.t.Helper()
	ch, ok, err := hh.b.FSM().Chunk(vol.ID, ino, idx)
	if err != nil || !ok {
		hh.t.Fatalf("chunk %d of %d: %v, %v", idx, ino, ok, err)
	}
	return ch
}

// wantReplicas checks a chunk's replica set and that every replica holds
// its version with exactly content.
func (hh *healHarness) wantReplicas(vol *meta.Volume, ino, idx uint64, content []byte, want ...string) {
	hh.t.Helper()
	ch := hh.chunk(vol, ino, idx)
	if !slices.Equal(ch.Replicas, want) {
		hh.t.Fatalf("chunk %d of %d on %v, want %v", idx, ino, ch.Replicas, want)
	}
	id := ChunkID(vol.ID, ino, idx)
	for _, r := range ch.Replicas {
		data, version, err := hh.stores[r].ReadAll(id)
		if err != nil || version != ch.Version || !bytes.Equal(data, content) {
			hh.t.Fatalf("%s holds %s at version %d (committed %d), %d bytes equal=%v: %v",
				r, id, version, ch.Version, len(data), bytes.Equal(data, content), err)
		}
	}
}

// TestHealerReplacesLostNode: after the grace time every chunk of a dead
// node gets a verified copy in the AZ that lost it, the dead replica is
// left out (and recorded as garbage), and the lost voter is replaced.
func TestHealerReplacesLostNode(t *testing.T) {
	hh := newHealHarness(t, nil)
	ino, contents := hh.file(hh.vol, "f", 5, "n1", "n2", "n3")
	hh.stop("n1")

	hh.advance(30 * time.Second) // down at 10 s, 20 s into the grace time
	if p := hh.pass(); p.Queue != 0 {
		t.Fatalf("within the grace time the plan has %d tasks", p.Queue)
	}
	st := hh.h.Status()
	if st.Copied != 0 || st.Nodes[0].ID != "n1" || st.Nodes[0].State != StateDown || st.Nodes[0].Chunks != 5 {
		t.Fatalf("status within the grace time = %+v", st)
	}

	hh.advance(45 * time.Second)
	// The healer's voter changes hold the lock an operator's change takes
	// (HoldVoters), from reading the membership to the last step.
	var unlocked atomic.Int32
	hh.members.mu.Lock()
	hh.members.change = func() {
		if hh.h.votersMu.TryLock() {
			unlocked.Add(1)
			hh.h.votersMu.Unlock()
		}
	}
	hh.members.mu.Unlock()
	if p := hh.pass(); p.Queue != 5 || p.Urgent != 0 {
		t.Fatalf("plan after the grace time: queue %d urgent %d, want 5, 0", p.Queue, p.Urgent)
	}
	for i, c := range contents {
		hh.wantReplicas(hh.vol, ino, uint64(i), c, "n2", "n3", "n4")
	}
	st = hh.h.Status()
	var bytes int64
	for _, c := range contents {
		bytes += int64(len(c))
	}
	if st.Copied != 5 || st.CopiedBytes != bytes || st.Failed != 0 || st.Queue != 0 || st.InFlight != 0 {
		t.Fatalf("status after repair = %+v", st)
	}
	g, err := hh.b.FSM().Garbage(0)
	if err != nil || len(g) != 5 || !slices.Equal(g[0].Replicas, []string{"n1"}) {
		t.Fatalf("garbage = %+v, %v; want the 5 chunk versions on n1", g, err)
	}
	if ops := hh.members.log(); !slices.Equal(ops, []string{"remove n1", "add n1 voter=false", "add n4 voter=true"}) {
		t.Fatalf("membership changes = %q", ops)
	}
	if n := unlocked.Load(); n != 0 {
		t.Fatalf("%d membership changes made without the voters lock", n)
	}
	if p := hh.pass(); p.Queue != 0 {
		t.Fatalf("after the repair the plan still has %d tasks", p.Queue)
	}
}

// TestHealerLosesRaceToWrite: a write that commits while a copy is made
// wins; the healer commits nothing stale and repairs the new version on the
// next pass.
func TestHealerLosesRaceToWrite(t *testing.T) {
	hh := newHealHarness(t, nil)
	ino, _ := hh.file(hh.vol, "f", 1, "n1", "n2", "n3")
	hh.stop("n1")
	hh.advance(80 * time.Second)
	v1 := hh.chunk(hh.vol, ino, 0).Version
	v2 := nextVersion(v1, 2)
	newer := pattern(99, 1000)
	var once sync.Once
	hh.peers.setBefore(func(op, node string, id chunkstore.ID) {
		if op == "put" && node == "n4" {
			once.Do(func() { hh.commit(hh.vol, ino, 0, v1, v2, newer, "n2", "n3") })
		}
	})
	hh.pass()
	ch := hh.chunk(hh.vol, ino, 0)
	if ch.Version != v2 || !slices.Equal(ch.Replicas, []string{"n2", "n3"}) {
		t.Fatalf("after the race the chunk is %+v, want the write's version on n2, n3", ch)
	}
	if st := hh.h.Status(); st.Failed != 0 || st.Copied != 0 {
		t.Fatalf("a lost race counted as copied %d, failed %d", st.Copied, st.Failed)
	}
	hh.peers.setBefore(nil)
	hh.pass()
	hh.wantReplicas(hh.vol, ino, 0, newer, "n2", "n3", "n4")
}

// TestHealerDrainAndRemove: draining moves a node's chunks off keeping the
// AZ spread, after which it may be removed; removal is refused while the
// node holds chunks or the only available copy of one.
func TestHealerDrainAndRemove(t *testing.T) {
	hh := newHealHarness(t, nil)
	ctx := context.Background()
	ino, contents := hh.file(hh.vol, "f", 3, "n2", "n3", "n4")
	one := hh.volume("one", 1)
	single, _ := hh.file(one, "g", 1, "n3")

	if err := hh.h.CanRemove(ctx, "n4"); !errors.Is(err, ErrNotDrained) {
		t.Fatalf("CanRemove(n4) with chunks = %v, want ErrNotDrained", err)
	}
	if err := hh.h.Remove(ctx, "n3"); !errors.Is(err, ErrOnlyCopy) {
		t.Fatalf("Remove(n3) holding the only copy = %v, want ErrOnlyCopy", err)
	}
	if err := hh.h.CanRemove(ctx, "n9"); !errors.Is(err, meta.ErrNotExist) {
		t.Fatalf("CanRemove(unknown) = %v", err)
	}

	if _, err := hh.meta.Propose(ctx, &meta.SetNodeState{ID: "n4", Draining: true}); err != nil {
		t.Fatal(err)
	}
	hh.pass()
	for i, c := range contents {
		hh.wantReplicas(hh.vol, ino, uint64(i), c, "n1", "n2", "n3")
	}
	if st := hh.h.Status(); st.Nodes[3].ID != "n4" || st.Nodes[3].Chunks != 0 || !st.Nodes[3].Draining {
		t.Fatalf("n4 after the drain: %+v", st.Nodes[3])
	}
	if err := hh.h.Remove(ctx, "n4"); err != nil {
		t.Fatalf("Remove(n4) after the drain: %v", err)
	}
	if _, err := hh.b.FSM().Node("n4"); !errors.Is(err, meta.ErrNotExist) {
		t.Fatalf("n4 still registered: %v", err)
	}
	if ops := hh.members.log(); !slices.Equal(ops, []string{"remove n4"}) {
		t.Fatalf("membership changes = %q", ops)
	}

	// A dead node whose chunks have copies elsewhere may be removed; one
	// holding the only copy may not, dead or alive.
	hh.stop("n1")
	hh.stop("n3")
	hh.advance(15 * time.Second)
	if err := hh.h.CanRemove(ctx, "n1"); err != nil {
		t.Fatalf("CanRemove(dead n1 with copies elsewhere) = %v", err)
	}
	if err := hh.h.CanRemove(ctx, "n3"); !errors.Is(err, ErrOnlyCopy) {
		t.Fatalf("CanRemove(dead n3 with the only copy of %d) = %v", single, err)
	}
}

// TestHealerDrainsSingleCopy: the only replica of an R=1 chunk on a
// draining node is copied from that node before it is let go.
func TestHealerDrainsSingleCopy(t *testing.T) {
	hh := newHealHarness(t, nil)
	one := hh.volume("one", 1)
	ino, contents := hh.file(one, "g", 2, "n3")
	if _, err := hh.meta.Propose(context.Background(), &meta.SetNodeState{ID: "n3", Draining: true}); err != nil {
		t.Fatal(err)
	}
	hh.pass()
	for i, c := range contents {
		ch := hh.chunk(one, ino, uint64(i))
		if len(ch.Replicas) != 1 || ch.Replicas[0] == "n3" {
			t.Fatalf("chunk %d on %v after draining n3", i, ch.Replicas)
		}
		hh.wantReplicas(one, ino, uint64(i), c, ch.Replicas...)
	}
}

// TestHealerPause: a paused healer plans (the queue shows) but copies
// nothing.
func TestHealerPause(t *testing.T) {
	hh := newHealHarness(t, nil)
	ino, contents := hh.file(hh.vol, "f", 2, "n1", "n2", "n3")
	hh.stop("n1")
	hh.advance(80 * time.Second)
	hh.h.Pause(true)
	hh.pass()
	if st := hh.h.Status(); !st.Paused || st.Queue != 2 || st.Copied != 0 {
		t.Fatalf("paused status = %+v", st)
	}
	if ch := hh.chunk(hh.vol, ino, 0); !slices.Equal(ch.Replicas, []string{"n1", "n2", "n3"}) {
		t.Fatalf("a paused healer changed %v", ch.Replicas)
	}
	hh.h.Pause(false)
	hh.pass()
	for i, c := range contents {
		hh.wantReplicas(hh.vol, ino, uint64(i), c, "n2", "n3", "n4")
	}
}

// TestHealerRebalance: chunks move onto a node that holds clearly fewer
// than the others, in its own AZ.
func TestHealerRebalance(t *testing.T) {
	hh := newHealHarness(t, nil)
	ino, contents := hh.file(hh.vol, "f", 8, "n1", "n2", "n3")
	hh.pass() // counts the load
	hh.pass() // moves
	onN4 := 0
	for i, c := range contents {
		ch := hh.chunk(hh.vol, ino, uint64(i))
		if slices.Contains(ch.Replicas, "n4") {
			onN4++
			hh.wantReplicas(hh.vol, ino, uint64(i), c, "n2", "n3", "n4")
		}
	}
	// Load 8, 8, 8, 0: average 6, margin 2; moves stop once n1 (only n1,
	// in n4's AZ, may give) is within the margin of n4: 5 and 3.
	if onN4 != 3 {
		t.Fatalf("%d chunks moved onto n4, want 3", onN4)
	}
	if p := hh.pass(); p.Queue != 0 {
		t.Fatalf("balanced cluster still plans %d moves", p.Queue)
	}
}

// TestHealerRateLimit: copies are throttled to the configured bandwidth.
func TestHealerRateLimit(t *testing.T) {
	hh := newHealHarness(t, func(c *HealerConfig) { c.RateLimit = 1 << 20 })
	hh.file(hh.vol, "f", 4, "n1", "n2", "n3") // 4 chunks of about 0.5 MiB
	hh.stop("n1")
	hh.advance(80 * time.Second)
	start := time.Now()
	hh.pass()
	// 2 MiB at 1 MiB/s with a 1 MiB burst: at least about a second.
	if el := time.Since(start); el < 700*time.Millisecond {
		t.Fatalf("copying 2 MiB at 1 MiB/s took %v", el)
	}
	if st := hh.h.Status(); st.Copied != 4 {
		t.Fatalf("copied %d chunks, want 4", st.Copied)
	}
}

// TestHealerRun: the leader loop starts every node as seen (no false
// alarm), then repairs once a node is down past the grace time, and stops
// with its context.
func TestHealerRun(t *testing.T) {
	hh := newHealHarness(t, nil)
	ino, contents := hh.file(hh.vol, "f", 3, "n1", "n2", "n3")
	hh.stop("n1")
	hh.clock.Advance(time.Hour) // under a previous leader n1 looked dead long ago
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		hh.h.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(10 * time.Second)
	for hh.h.Status().LastPass.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("no pass within 10 s")
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
	if st := hh.h.Status(); st.Leader != "n2" || st.Nodes[0].State != StateUp || st.Queue != 0 {
		t.Fatalf("status after the new leader's first pass = %+v", st)
	}
	hh.advance(80 * time.Second)
	for {
		ch := hh.chunk(hh.vol, ino, 2)
		if slices.Equal(ch.Replicas, []string{"n2", "n3", "n4"}) && hh.h.Status().InFlight == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not repaired within 10 s: %v", ch.Replicas)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
	for i, c := range contents {
		hh.wantReplicas(hh.vol, ino, uint64(i), c, "n2", "n3", "n4")
	}
}

// TestHealerReconcilesAheadChunk: a write that reached n2 and n3 and never
// committed (its gateway was cut off from the majority before its commit)
// leaves them ahead of the metadata, with n1, the one replica at the
// committed version, gone. No copy can be made from replicas ahead of the
// metadata, and nobody else touches the chunk: the healer has it
// reconciled, but only once that write is older than StaleAfter (its
// gateway may still commit it before), and then copies it back to R.
func TestHealerReconcilesAheadChunk(t *testing.T) {
	for _, tc := range []struct {
		name       string
		staleAfter time.Duration
		reconciled bool
	}{
		{"young write respected", time.Hour, false},
		{"old write reconciled", 50 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hh := newHealHarness(t, nil)
			cfg := DefaultConfig("n2", "az2")
			cfg.ReplicaTimeout, cfg.StaleAfter = 10*time.Millisecond, tc.staleAfter
			cfg.FenceAfter = min(cfg.FenceAfter, tc.staleAfter)
			log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
			r, err := New(cfg, hh.meta, hh.peers, hh.stores["n2"], hh.clock, log)
			if err != nil {
				t.Fatal(err)
			}
			hh.h.SetReconciler(r)

			ino, _ := hh.file(hh.vol, "f", 1, "n1", "n2", "n3")
			committed := hh.chunk(hh.vol, ino, 0).Version
			id := ChunkID(hh.vol.ID, ino, 0)
			ahead := pattern(99, testChunkSize/2)
			aheadVersion := nextVersion(committed, writerTag("cut-off-gateway"))
			for _, n := range []string{"n2", "n3"} {
				if err := hh.stores[n].Put(id, aheadVersion, ahead); err != nil {
					t.Fatal(err)
				}
			}
			hh.stop("n1")
			hh.advance(75 * time.Second) // n1 down past the grace time

			if !tc.reconciled {
				for range 3 {
					hh.pass()
				}
				if ch := hh.chunk(hh.vol, ino, 0); ch.Version != committed || !slices.Equal(ch.Replicas, []string{"n1", "n2", "n3"}) {
					t.Fatalf("a young uncommitted write was overridden: chunk %+v", ch)
				}
				return
			}
			deadline := time.Now().Add(10 * time.Second)
			for hh.chunk(hh.vol, ino, 0).Version == committed {
				if time.Now().After(deadline) {
					t.Fatalf("chunk still at the committed version %d with every reachable replica ahead", committed)
				}
				hh.pass() // polls: the write ages in real time
			}
			// Reconciled to the content furthest ahead (the failed write's
			// bytes, as a read would), then copied to n4 in n1's AZ.
			for range 3 {
				hh.pass()
			}
			hh.wantReplicas(hh.vol, ino, 0, ahead, "n2", "n3", "n4")
		})
	}
}
