package replication

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/meta/metatest"
)

// The harness: one real meta.FSM (commands applied directly, as a
// single-node Raft would), three real chunk stores n1, n2, n3 in az1..az3,
// and fakes for the internode RPC and the metadata node that can fail at
// the points a crash or a partition would hit.

const testChunkSize = 1 << 20

// errUnreachable stands for rpc.ErrUnreachable: the peer did not answer.
var errUnreachable = errors.New("fake rpc: peer unreachable")

// testMeta is Metadata over the shared FSM. Like meta.Node.Propose it
// returns a command's failure as the error. Each Replicator gets its own, so
// a fault can hit one node's proposals only.
type testMeta struct {
	b *metatest.Store

	mu      sync.Mutex
	fail    func(meta.Command) error // non-nil result: Propose returns it WITHOUT applying
	lost    func(meta.Command) error // non-nil result: Propose applies, then returns it (reply lost)
	catchUp func()                   // if set, runs at every CatchUp
	failed  []meta.Command           // commands refused by fail, in order
}

func (m *testMeta) Propose(ctx context.Context, cmd meta.Command) (*meta.Result, error) {
	m.mu.Lock()
	fail, lost := m.fail, m.lost
	m.mu.Unlock()
	if fail != nil {
		if err := fail(cmd); err != nil {
			m.mu.Lock()
			m.failed = append(m.failed, cmd)
			m.mu.Unlock()
			return nil, err
		}
	}
	res, err := m.b.Propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if lost != nil {
		if err := lost(cmd); err != nil {
			return nil, err
		}
	}
	return res, res.Err()
}

func (m *testMeta) CatchUp(context.Context) error {
	m.mu.Lock()
	fn := m.catchUp
	m.mu.Unlock()
	if fn != nil {
		fn()
	}
	return nil
}

func (m *testMeta) FSM() *meta.FSM { return m.b.FSM() }

func (m *testMeta) setFail(fn func(meta.Command) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = fn
}

func (m *testMeta) setLost(fn func(meta.Command) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lost = fn
}

func (m *testMeta) setCatchUp(fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.catchUp = fn
}

func (m *testMeta) failedCommands() []meta.Command {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.failed)
}

// failCommits makes every CommitWrite fail with err without being applied.
func failCommits(err error) func(meta.Command) error {
	return func(cmd meta.Command) error {
		if _, ok := cmd.(*meta.CommitWrite); ok {
			return err
		}
		return nil
	}
}

// fault is what a fake peer does wrong.
type fault struct {
	down      bool // every call fails unreachable, nothing is applied
	failAfter bool // writes (WriteChunk, PutChunk) are applied, then the reply is lost
	garbage   bool // reads (ReadChunk, FetchChunk) answer bytes that were never written
	// frozen: every call hangs (a SIGSTOPped peer whose TCP never resets)
	// until the caller gives up, then fails unreachable; with failAfter
	// too, a write is applied once the caller gave up (the frozen peer
	// ran the request when it thawed) and the caller still sees a failure.
	frozen bool
	// noSpace: writes (WriteChunk, PutChunk) are refused as by a full
	// chunk disk (chunkstore.ErrNoSpace), nothing is applied; reads work.
	noSpace bool
}

// fakePeers routes internode calls straight to the target node's store.
type fakePeers struct {
	stores map[string]*chunkstore.Store // fixed after setup

	mu     sync.Mutex
	hung   map[string]int           // calls hanging on a frozen node, by node
	thaw   map[string]chan struct{} // closed when a frozen node thaws
	faults map[string]fault
	before func(op, node string, id chunkstore.ID) // if set, runs before each call
	calls  map[string]int                          // "op node" -> count
}

func (p *fakePeers) setFault(node string, f fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hung == nil {
		p.hung, p.thaw = map[string]int{}, map[string]chan struct{}{}
	}
	switch was := p.faults[node].frozen; {
	case f.frozen && !was:
		p.thaw[node] = make(chan struct{})
	case !f.frozen && was:
		close(p.thaw[node]) // calls hanging on the node go through
	}
	p.faults[node] = f
}

func (p *fakePeers) setBefore(fn func(op, node string, id chunkstore.ID)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before = fn
}

func (p *fakePeers) count(op, node string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[op+" "+node]
}

// hanging returns how many calls wait on frozen node now.
func (p *fakePeers) hanging(node string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hung[node]
}

func (p *fakePeers) resetCounts() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.calls)
}

// enter records a call, runs the hook and returns the target's store and
// faults, or the error of a peer that cannot be reached.
func (p *fakePeers) enter(ctx context.Context, op, node string, id chunkstore.ID) (*chunkstore.Store, fault, error) {
	p.mu.Lock()
	p.calls[op+" "+node]++
	before, f := p.before, p.faults[node]
	p.mu.Unlock()
	if before != nil {
		before(op, node, id)
	}
	p.mu.Lock()
	f = p.faults[node] // the hook may have changed it
	p.mu.Unlock()
	s := p.stores[node]
	switch {
	case s == nil:
		return nil, f, fmt.Errorf("%w: unknown node %q", errUnreachable, node)
	case f.down:
		return nil, f, fmt.Errorf("%w: %s: connection refused", errUnreachable, node)
	case f.frozen:
		p.mu.Lock()
		p.hung[node]++
		thawed := p.thaw[node]
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-thawed:
		}
		p.mu.Lock()
		p.hung[node]--
		p.mu.Unlock()
		if ctx.Err() == nil {
			return p.enter(ctx, op, node, id) // thawed in time: the call goes through (counted twice)
		}
		if f.failAfter && (op == "write" || op == "put") {
			return s, f, nil // the write applies, its caller has gone (see WriteChunk)
		}
		return nil, f, fmt.Errorf("%w: %s: %w", errUnreachable, node, ctx.Err())
	case ctx.Err() != nil:
		return nil, f, fmt.Errorf("%w: %s: %w", errUnreachable, node, ctx.Err())
	}
	return s, f, nil
}

func lostReply(node string) error {
	return fmt.Errorf("%w: %s: connection reset after the request was sent", errUnreachable, node)
}

func (p *fakePeers) WriteChunk(ctx context.Context, node string, id chunkstore.ID, base, version uint64, baseLen, off int64, data []byte) (int64, error) {
	s, f, err := p.enter(ctx, "write", node, id)
	if err != nil {
		return 0, err
	}
	if f.noSpace {
		return 0, fmt.Errorf("%s: chunkstore: write %s: %w", node, id, chunkstore.ErrNoSpace)
	}
	n, err := s.Write(id, base, version, baseLen, off, data)
	if f.frozen {
		return 0, fmt.Errorf("%w: %s: %w", errUnreachable, node, ctx.Err())
	}
	if err == nil && f.failAfter {
		return 0, lostReply(node)
	}
	p.mu.Lock()
	p.calls["wrote "+node]++ // answered: count("wrote", node)
	p.mu.Unlock()
	return n, err
}

func (p *fakePeers) ReadChunk(ctx context.Context, node string, id chunkstore.ID, version uint64, off int64, length int) ([]byte, error) {
	s, f, err := p.enter(ctx, "read", node, id)
	if err != nil {
		return nil, err
	}
	if f.garbage {
		return bytes.Repeat([]byte{0xEE}, length), nil
	}
	return s.Read(id, version, off, length)
}

func (p *fakePeers) FetchChunk(ctx context.Context, node string, id chunkstore.ID) ([]byte, uint64, error) {
	s, f, err := p.enter(ctx, "fetch", node, id)
	if err != nil {
		return nil, 0, err
	}
	d, v, err := s.ReadAll(id)
	if err == nil && f.garbage {
		d = bytes.Repeat([]byte{0xEE}, len(d))
	}
	return d, v, err
}

func (p *fakePeers) PutChunk(ctx context.Context, node string, id chunkstore.ID, version uint64, data []byte) error {
	s, f, err := p.enter(ctx, "put", node, id)
	if err != nil {
		return err
	}
	if f.noSpace {
		return fmt.Errorf("%s: chunkstore: put %s: %w", node, id, chunkstore.ErrNoSpace)
	}
	err = s.Put(id, version, data)
	if f.frozen {
		return fmt.Errorf("%w: %s: %w", errUnreachable, node, ctx.Err())
	}
	if err == nil && f.failAfter {
		return lostReply(node)
	}
	return err
}

func (p *fakePeers) StatChunk(ctx context.Context, node string, id chunkstore.ID) (chunkstore.Info, error) {
	s, _, err := p.enter(ctx, "stat", node, id)
	if err != nil {
		return chunkstore.Info{}, err
	}
	return s.Inspect(id)
}

// fakeClock is the Replicators' clock; it moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// cluster is the harness.
type cluster struct {
	t      *testing.T
	b      *metatest.Store
	admin  *testMeta // for the test's own proposals
	vol    *meta.Volume
	stores map[string]*chunkstore.Store
	dirs   map[string]string
	peers  *fakePeers
	clock  *fakeClock
	log    *slog.Logger
}

var testNodes = []meta.NodeInfo{{ID: "n1", AZ: "az1"}, {ID: "n2", AZ: "az2"}, {ID: "n3", AZ: "az3"}}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	b := metatest.New(t, testNodes...)
	c := &cluster{
		t: t, b: b, admin: &testMeta{b: b},
		stores: map[string]*chunkstore.Store{}, dirs: map[string]string{},
		clock: &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)},
		log:   slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	res, err := c.admin.Propose(t.Context(), &meta.CreateVolume{Name: "vol", Replicas: 3, WriteQuorum: 2,
		ChunkSize: testChunkSize, RootMode: 0o755})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	c.vol = res.Volume
	for _, n := range testNodes {
		dir := t.TempDir()
		cfg := chunkstore.DefaultConfig(dir)
		cfg.NoSync = true
		s, err := chunkstore.Open(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		c.stores[n.ID], c.dirs[n.ID] = s, dir
	}
	c.peers = &fakePeers{stores: c.stores, faults: map[string]fault{}, calls: map[string]int{}}
	return c
}

// replicator builds the data path of node id (its local store is that
// node's, or a fresh one for a gateway that stores no chunks), with its own
// Metadata over the shared FSM.
func (c *cluster) replicator(id, az string, tweak func(*Config)) (*Replicator, *testMeta) {
	c.t.Helper()
	cfg := DefaultConfig(id, az)
	cfg.InlineMax = 0 // these tests are about chunks; inline_test.go turns it on
	if tweak != nil {
		tweak(&cfg)
	}
	local := c.stores[id]
	if local == nil {
		s, err := chunkstore.Open(chunkstore.Config{Dir: c.t.TempDir(), BlockSize: 64 << 10, MaxChunkSize: 64 << 20, NoSync: true}, nil)
		if err != nil {
			c.t.Fatal(err)
		}
		local = s
	}
	m := &testMeta{b: c.b}
	r, err := New(cfg, m, c.peers, local, c.clock, c.log.With("node", id))
	if err != nil {
		c.t.Fatalf("New(%s): %v", id, err)
	}
	return r, m
}

// create makes an empty file in the volume root.
func (c *cluster) create(name string) uint64 {
	c.t.Helper()
	res, err := c.admin.Propose(c.t.Context(), &meta.Create{Vol: c.vol.ID, Parent: meta.RootIno, Name: name,
		Kind: meta.TypeFile, Mode: 0o644})
	if err != nil {
		c.t.Fatalf("create %s: %v", name, err)
	}
	return res.Inode.Ino
}

func (c *cluster) size(ino uint64) uint64 {
	c.t.Helper()
	n, err := c.b.FSM().Inode(c.vol.ID, ino)
	if err != nil {
		c.t.Fatalf("Inode(%d): %v", ino, err)
	}
	return n.Size
}

// chunk returns the committed chunk, or nil for a hole.
func (c *cluster) chunk(ino, index uint64) *meta.Chunk {
	c.t.Helper()
	ch, ok, err := c.b.FSM().Chunk(c.vol.ID, ino, index)
	if err != nil {
		c.t.Fatalf("Chunk(%d, %d): %v", ino, index, err)
	}
	if !ok {
		return nil
	}
	return ch
}

// write writes through r and fails the test on an error.
func (c *cluster) write(r *Replicator, ino uint64, off int64, data []byte) {
	c.t.Helper()
	if _, err := r.WriteAt(c.t.Context(), c.vol, ino, off, data); err != nil {
		c.t.Fatalf("%s: WriteAt(ino %d, off %d, %d bytes): %v", r.cfg.NodeID, ino, off, len(data), err)
	}
}

// readAll reads the whole file through r, at the committed size.
func (c *cluster) readAll(r *Replicator, ino uint64) ([]byte, error) {
	size := c.size(ino)
	buf := make([]byte, size)
	n, err := r.ReadAt(c.t.Context(), c.vol, ino, size, 0, buf)
	if err != nil {
		return nil, err
	}
	if uint64(n) != size {
		return nil, fmt.Errorf("ReadAt returned %d bytes of a %d-byte file", n, size)
	}
	return buf, nil
}

// wantFile fails the test unless the file reads exactly as want through
// every one of rs.
func (c *cluster) wantFile(ino uint64, want []byte, rs ...*Replicator) {
	c.t.Helper()
	for _, r := range rs {
		got, err := c.readAll(r, ino)
		if err != nil {
			c.t.Fatalf("%s: read ino %d: %v", r.cfg.NodeID, ino, err)
		}
		if i := firstDiff(got, want); i >= 0 {
			c.t.Fatalf("%s: ino %d reads %d bytes differing from the %d expected at offset %d",
				r.cfg.NodeID, ino, len(got), len(want), i)
		}
	}
}

// wantReplicaFiles checks that every replica listed for the chunk holds its
// committed version with exactly content (the chunk's first Length bytes).
func (c *cluster) wantReplicaFiles(ino, index uint64, content []byte) {
	c.t.Helper()
	ch := c.chunk(ino, index)
	if ch == nil {
		c.t.Fatalf("chunk %d of ino %d is not committed", index, ino)
	}
	if ch.Length != int64(len(content)) {
		c.t.Fatalf("chunk %d of ino %d: committed length %d, want %d", index, ino, ch.Length, len(content))
	}
	id := ChunkID(c.vol.ID, ino, index)
	for _, node := range ch.Replicas {
		data, version, err := c.stores[node].ReadAll(id)
		if err != nil {
			c.t.Fatalf("%s: ReadAll(%s): %v", node, id, err)
		}
		if version != ch.Version {
			c.t.Errorf("%s holds %s at version %#x, committed %#x", node, id, version, ch.Version)
		}
		if i := firstDiff(data, content); i >= 0 {
			c.t.Errorf("%s: %s (%d bytes) differs from the committed content (%d bytes) at %d",
				node, id, len(data), len(content), i)
		}
	}
}

// wantReplicasHold checks, after faults, that every replica listed for the
// chunk holds its committed version and committed length, that they all
// hold the same bytes, and that those begin with prefix (what the file must
// read as; a failed write may have left bytes past the file's end).
func (c *cluster) wantReplicasHold(ino, index uint64, prefix []byte) {
	c.t.Helper()
	ch := c.chunk(ino, index)
	if ch == nil {
		c.t.Fatalf("chunk %d of ino %d is not committed", index, ino)
	}
	id := ChunkID(c.vol.ID, ino, index)
	var first []byte
	for i, node := range ch.Replicas {
		data, version, err := c.stores[node].ReadAll(id)
		if err != nil {
			c.t.Fatalf("%s: ReadAll(%s): %v", node, id, err)
		}
		if version != ch.Version || int64(len(data)) != ch.Length {
			c.t.Errorf("%s holds %s at version %#x, %d bytes; committed %#x, %d bytes",
				node, id, version, len(data), ch.Version, ch.Length)
		}
		if i == 0 {
			first = data
		} else if !bytes.Equal(data, first) {
			c.t.Errorf("%s and %s hold different bytes for %s at version %#x", ch.Replicas[0], node, id, ch.Version)
		}
		if len(data) < len(prefix) || firstDiff(data[:len(prefix)], prefix) >= 0 {
			c.t.Errorf("%s: %s does not begin with the %d bytes the file reads as", node, id, len(prefix))
		}
	}
}

// firstDiff is the first offset where a and b differ, or -1.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// pattern returns n reproducible pseudo-random bytes, different per seed.
func pattern(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// model is the expected content of a file.
type model []byte

func (m *model) write(off int64, data []byte) {
	if end := int(off) + len(data); end > len(*m) {
		*m = append(*m, make([]byte, end-len(*m))...)
	}
	copy((*m)[off:], data)
}

// testWriter sends log output to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
