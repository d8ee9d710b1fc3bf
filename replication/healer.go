package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"

	faultpoint "github.com/fsrep/fsrep/internal/fault"
)

// The healer runs on the Raft leader only (under a context cancelled on
// step-down). Each pass it reads every chunk from the metadata in pages,
// asks the Planner what to do, and carries out the tasks: copy a chunk
// from a replica to a new node (leader-mediated, checksummed end to end),
// then commit the new replica set with SetReplicas at the version it
// copied. A write that commits meanwhile makes SetReplicas fail with
// ErrConflict; the next pass plans again from the new state. Nothing of a
// pass survives a leader change but the metadata, which is all it needs:
// the next leader's first pass finds the same work.

// HealerConfig configures the healer.
type HealerConfig struct {
	NodeID string
	// Grace is how long a node must have been down before its replicas
	// are re-created elsewhere (a restart or a short partition should not
	// move terabytes). Settable per cluster: the leader's value applies.
	Grace time.Duration
	// RateLimit bounds the copy bandwidth in bytes per second (repair,
	// drain and rebalance share it).
	RateLimit int64
	// Concurrency bounds the copies in flight.
	Concurrency int
	// ScanInterval is the time between passes when nothing wakes the
	// healer earlier.
	ScanInterval time.Duration
	// ReplanAfter stops dispatching a pass's tasks after this long: later
	// tasks are planned again from fresher state.
	ReplanAfter time.Duration
	// PageSize is how many chunks one metadata read transaction returns:
	// a pass never holds a read transaction for long.
	PageSize int
	// CopyTimeout bounds one task (fetch, put and commit), on top of the
	// time the bandwidth limit makes it wait.
	CopyTimeout time.Duration
	// MaxVoters bounds the Raft voters the healer keeps (see PlanVoters).
	MaxVoters int
	Plan      PlanConfig
}

// DefaultHealerConfig returns the defaults: a 60 s grace (after the 10 s it
// takes to declare a node down), 64 MiB/s, two copies at a time.
func DefaultHealerConfig(nodeID string) HealerConfig {
	return HealerConfig{
		NodeID: nodeID, Grace: 60 * time.Second, RateLimit: 64 << 20, Concurrency: 2,
		ScanInterval: 5 * time.Second, ReplanAfter: time.Minute, PageSize: 512,
		CopyTimeout: 2 * time.Minute, MaxVoters: 5, Plan: DefaultPlanConfig(),
	}
}

// Validate checks the configuration.
func (c HealerConfig) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("replication: the healer needs the node ID")
	case c.Grace < 0:
		return errors.New("replication: the repair grace time must not be negative")
	case c.RateLimit <= 0:
		return errors.New("replication: the repair rate limit must be positive")
	case c.Concurrency < 1:
		return errors.New("replication: the repair concurrency must be at least 1")
	case c.ScanInterval <= 0 || c.ReplanAfter <= 0 || c.CopyTimeout <= 0:
		return errors.New("replication: the scan interval, replan time and copy timeout must be positive")
	case c.PageSize < 1:
		return errors.New("replication: the page size must be at least 1")
	case c.MaxVoters < 1:
		return errors.New("replication: at least one voter is needed")
	}
	return nil
}

// HealMeta is what the healer needs from the metadata node.
type HealMeta interface {
	Propose(ctx context.Context, cmd meta.Command) (*meta.Result, error)
	FSM() *meta.FSM
}

// Membership is the Raft configuration, changed on the leader.
type Membership interface {
	Members() (map[string]bool, error)
	// AddMember adds a node, or promotes a non-voter when voter is set.
	AddMember(id, raftAddr string, voter bool) error
	RemoveMember(id string) error
}

// CopyPeers moves whole chunks between nodes with their checksum.
//
// FetchVerified returns a node's chunk, its version and the CRC32C the
// node computed over the bytes it read (after its chunk store checked its
// block checksums); the bytes received are checked against it.
// PutVerified stores a chunk on a node, which checks the bytes it received
// against crc before storing them and the bytes it stored against crc
// after: an error means the copy must not be committed.
type CopyPeers interface {
	FetchVerified(ctx context.Context, node string, id chunkstore.ID) (data []byte, version uint64, crc uint32, err error)
	PutVerified(ctx context.Context, node string, id chunkstore.ID, version uint64, data []byte, crc uint32) error
}

// ChunkReconciler repairs a chunk whose reachable replicas are all past
// its committed version (Replicator.RepairChunk): a write reached them and
// never committed, e.g. its gateway was cut off before its commit. It
// refuses while another gateway's such write is younger than StaleAfter
// (that gateway may still commit it).
type ChunkReconciler interface {
	RepairChunk(ctx context.Context, vol uint32, ino, index uint64) error
}

var (
	// ErrOnlyCopy refuses to remove a node that holds the only copy of a
	// chunk on a node that is not down.
	ErrOnlyCopy = errors.New("replication: the node holds the only available copy of a chunk")
	// ErrNotDrained refuses to remove a node that is not down and still
	// holds chunks: drain it first.
	ErrNotDrained = errors.New("replication: the node still holds chunks; drain it first")
	// errStale: the chunk changed since the task was planned; the next
	// pass looks again. Not a failure.
	errStale = errors.New("replication: chunk changed since it was planned")
)

// Healer re-replicates, drains and rebalances chunks and keeps the Raft
// voters spread over AZs. Run it on the leader only.
type Healer struct {
	cfg     HealerConfig
	meta    HealMeta
	members Membership
	peers   CopyPeers
	live    *Liveness
	clock   Clock
	log     *slog.Logger
	limiter *rate.Limiter
	kick    chan struct{}

	runMu sync.Mutex // one Run at a time (a new term may start before the old one ends)
	// votersMu serialises changes of the Raft voters: the healer's
	// (adjustVoters) and the operator's (HoldVoters), each of which reads
	// the membership, plans, then applies several steps. Interleaved, a
	// plan made from a membership the other is changing can leave an AZ
	// with two voters or none.
	votersMu sync.Mutex
	wg       sync.WaitGroup // tasks in flight

	mu         sync.Mutex
	reconciler ChunkReconciler // optional (SetReconciler)
	paused     bool
	leading    bool
	inflight   map[ChunkKey]bool
	load       map[string]int // replicas per node at the last pass
	loadGen    uint64         // counts the passes that replaced load
	last       Plan           // counts of the last pass (Tasks dropped)
	queue      int            // tasks of the last pass not dispatched yet
	urgent     int
	lastPass   time.Time
	copied     int64
	bytes      int64
	failed     int64
}

// NewHealer builds a healer. members may be nil (no voter management).
func NewHealer(cfg HealerConfig, m HealMeta, members Membership, peers CopyPeers, live *Liveness, clock Clock, log *slog.Logger) (*Healer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Bursts of at most 1 MiB: a chunk is charged in steps, so the rate
	// holds over any second, whatever the chunk size.
	lim := rate.NewLimiter(rate.Limit(cfg.RateLimit), 1<<20)
	return &Healer{cfg: cfg, meta: m, members: members, peers: peers, live: live, clock: clock, log: log,
		limiter: lim, kick: make(chan struct{}, 1), inflight: map[ChunkKey]bool{}}, nil
}

// SetReconciler lets the healer reconcile chunks that every source holds
// ahead of the metadata. Without one such a chunk waits until a write or a
// read through a gateway reconciles it, however long that takes.
func (h *Healer) SetReconciler(rc ChunkReconciler) {
	h.mu.Lock()
	h.reconciler = rc
	h.mu.Unlock()
}

// Kick starts the next pass now (a drain was requested, a node removed).
func (h *Healer) Kick() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Pause stops dispatching copies and replica-set changes (tasks in flight
// finish); passes still run, so the status keeps counting the queue.
func (h *Healer) Pause(paused bool) {
	h.mu.Lock()
	h.paused = paused
	h.mu.Unlock()
	if !paused {
		h.Kick()
	}
}

// Resume is Pause(false).
func (h *Healer) Resume() { h.Pause(false) }

func (h *Healer) isPaused() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.paused
}

// Run heals until ctx ends (step-down or shutdown). It starts every
// registered node as seen now (see Liveness.Reset) and waits for its
// tasks before returning.
func (h *Healer) Run(ctx context.Context) {
	h.runMu.Lock()
	defer h.runMu.Unlock()
	if nodes, err := h.meta.FSM().Nodes(); err == nil {
		h.live.Reset(nodeIDs(nodes))
	}
	h.mu.Lock()
	h.leading, h.copied, h.bytes, h.failed, h.load = true, 0, 0, 0, nil
	h.mu.Unlock()
	h.log.Info("healer started", "grace", h.cfg.Grace, "rate", h.cfg.RateLimit)
	defer func() {
		h.wg.Wait()
		h.mu.Lock()
		h.leading, h.queue, h.urgent = false, 0, 0
		h.mu.Unlock()
	}()
	sem := make(chan struct{}, h.cfg.Concurrency)
	for {
		if err := h.pass(ctx, sem); err != nil && ctx.Err() == nil {
			h.log.Warn("healing pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
		case <-time.After(h.cfg.ScanInterval):
		}
	}
}

func nodeIDs(nodes []meta.NodeInfo) []string {
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	return ids
}

// topology snapshots the registered nodes with the leader's verdicts.
func (h *Healer) topology() ([]meta.NodeInfo, *Topology, error) {
	nodes, err := h.meta.FSM().Nodes()
	if err != nil {
		return nil, nil, err
	}
	h.live.Track(nodeIDs(nodes))
	return nodes, NewTopology(nodes, h.live.Peer, h.cfg.Grace), nil
}

// Plan runs the planning half of a pass: it reads every chunk and returns
// what should be done, without doing it.
func (h *Healer) Plan(ctx context.Context) (Plan, *Topology, []meta.NodeInfo, error) {
	nodes, topo, err := h.topology()
	if err != nil {
		return Plan{}, nil, nil, err
	}
	h.mu.Lock()
	topo.Load = maps.Clone(h.load) // tasks in flight update h.load
	h.mu.Unlock()
	fsm := h.meta.FSM()
	want, err := volumeReplicas(fsm)
	if err != nil {
		return Plan{}, nil, nil, err
	}
	planner := NewPlanner(topo, h.cfg.Plan)
	err = ScanChunks(ctx, fsm, h.cfg.PageSize, func(ch meta.ChunkRef) bool {
		if r, ok := want[ch.Vol]; ok {
			planner.Add(ch, r)
		}
		return true
	})
	if err != nil {
		return Plan{}, nil, nil, err
	}
	return planner.Result(), topo, nodes, nil
}

func (h *Healer) pass(ctx context.Context, sem chan struct{}) error {
	plan, topo, nodes, err := h.Plan(ctx)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.load = plan.Load
	h.loadGen++
	gen := h.loadGen
	h.last = plan
	h.last.Tasks = nil
	h.queue, h.urgent = plan.Queue, plan.Urgent
	h.lastPass = h.clock.Now()
	h.mu.Unlock()
	if plan.Queue > 0 || plan.Unavailable > 0 || plan.Unplaceable > 0 {
		h.log.Debug("healing pass", "chunks", plan.Chunks, "queue", plan.Queue, "urgent", plan.Urgent,
			"unavailable", plan.Unavailable, "unplaceable", plan.Unplaceable)
	}
	if err := h.adjustVoters(topo, nodes); err != nil && ctx.Err() == nil {
		h.log.Warn("adjusting the Raft voters failed", "err", err)
	}
	start := h.clock.Now()
	for _, t := range plan.Tasks {
		if ctx.Err() != nil || h.isPaused() || h.clock.Now().Sub(start) > h.cfg.ReplanAfter {
			return nil
		}
		if !h.claim(t) {
			continue // a copy of this chunk is in flight already
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			h.release(t.Key())
			return nil
		}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			defer func() { <-sem }()
			defer h.release(t.Key())
			h.runTask(ctx, t, gen)
		}()
	}
	return nil
}

// claim marks a chunk in flight and takes its task off the queue; false if
// it was in flight already.
func (h *Healer) claim(t Task) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inflight[t.Key()] {
		return false
	}
	h.inflight[t.Key()] = true
	h.queue = max(0, h.queue-1)
	if t.Kind == TaskRepair && t.Healthy <= 1 {
		h.urgent = max(0, h.urgent-1)
	}
	return true
}

func (h *Healer) release(k ChunkKey) {
	h.mu.Lock()
	delete(h.inflight, k)
	h.mu.Unlock()
}

// runTask runs t, planned with the load counts of generation gen.
func (h *Healer) runTask(ctx context.Context, t Task, gen uint64) {
	// The time the throttle may make this copy wait (the others in flight
	// share the rate) comes on top of the copy's own timeout.
	wait := time.Duration(float64(h.cfg.Concurrency) * float64(t.Chunk.Length) / float64(h.cfg.RateLimit) * float64(time.Second))
	ctx, cancel := context.WithTimeout(ctx, h.cfg.CopyTimeout+wait)
	defer cancel()
	started := h.clock.Now()
	n, err := h.execute(ctx, t)
	switch {
	case err == nil:
		h.mu.Lock()
		if t.Target != "" {
			h.copied++
			h.bytes += n
		}
		// The next pass balances from these counts, taken before this task
		// ran; a pass planned since counted its commit already (the
		// counts went -1 when it was subtracted twice).
		if h.load != nil && h.loadGen == gen {
			for _, r := range t.Chunk.Replicas {
				if !slices.Contains(t.Replicas, r) {
					h.load[r]--
				}
			}
			for _, r := range t.Replicas {
				if !slices.Contains(t.Chunk.Replicas, r) {
					h.load[r]++
				}
			}
		}
		h.mu.Unlock()
		h.log.Info("chunk healed", "task", t.Kind.String(), "chunk", t.Key().String(), "healthy", t.Healthy,
			"to", t.Target, "replicas", t.Replicas, "bytes", n, "took", h.clock.Now().Sub(started))
	case errors.Is(err, errStale):
		h.log.Debug("heal task skipped", "task", t.Kind.String(), "chunk", t.Key().String(), "err", err)
	default:
		h.mu.Lock()
		h.failed++
		h.mu.Unlock()
		h.log.Warn("heal task failed", "task", t.Kind.String(), "chunk", t.Key().String(), "to", t.Target, "err", err)
	}
}

// execute carries out one task and returns the bytes copied.
func (h *Healer) execute(ctx context.Context, t Task) (int64, error) {
	ref := t.Chunk
	cur, ok, err := h.meta.FSM().Chunk(ref.Vol, ref.Ino, ref.Index)
	if err != nil {
		return 0, err
	}
	if !ok || cur.Version != ref.Version || !sameSet(cur.Replicas, ref.Replicas) {
		return 0, errStale
	}
	var n int64
	if t.Target != "" {
		if n, err = h.copyChunk(ctx, t, cur); err != nil {
			return 0, err
		}
		if err := faultpoint.Point(faultpoint.HealCopied); err != nil {
			return 0, err
		}
	}
	_, err = h.meta.Propose(ctx, &meta.SetReplicas{Vol: ref.Vol, Ino: ref.Ino, Index: ref.Index,
		Version: cur.Version, Replicas: t.Replicas, From: cur.Replicas})
	if errors.Is(err, meta.ErrConflict) || errors.Is(err, meta.ErrNotExist) {
		// A write or a delete won the race. The copy on the target is now
		// unreferenced: the orphan sweep of the garbage collector removes it.
		return 0, fmt.Errorf("%w: %w", errStale, err)
	}
	return n, err
}

// copyChunk copies the chunk from the first source that serves the
// committed version to the target, throttled.
func (h *Healer) copyChunk(ctx context.Context, t Task, cur *meta.Chunk) (int64, error) {
	id := ChunkID(t.Chunk.Vol, t.Chunk.Ino, t.Chunk.Index)
	if err := h.throttle(ctx, max(cur.Length, 1)); err != nil {
		return 0, err
	}
	var errs []error
	ahead := false
	for _, src := range t.Sources {
		data, version, crc, err := h.peers.FetchVerified(ctx, src, id)
		if err == nil && version != cur.Version {
			if version > cur.Version {
				// An uncommitted write reached the source: another source
				// may still hold the committed version.
				ahead = true
				errs = append(errs, fmt.Errorf("%s holds version %d, committed %d (an uncommitted write)", src, version, cur.Version))
				continue
			}
			err = fmt.Errorf("holds version %d, committed %d: %w", version, cur.Version, chunkstore.ErrVersionMismatch)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if err := h.peers.PutVerified(ctx, t.Target, id, version, data, crc); err != nil {
			return 0, fmt.Errorf("copying %s to %s: %w", id, t.Target, err)
		}
		return int64(len(data)), nil
	}
	if ahead {
		return 0, h.reconcileAhead(ctx, t.Chunk, errors.Join(errs...))
	}
	return 0, fmt.Errorf("no source could serve %s: %w", id, errors.Join(errs...))
}

// reconcileAhead handles a chunk no source of a copy could serve because
// an uncommitted write reached them: if that write's gateway has not
// committed it within StaleAfter it never will (a gateway cut off from the
// majority before its commit, which nobody else writes to or reads from),
// and the reconciler brings the replicas back to one committed version
// (without the replicas it cannot reach, which the next pass replaces).
// Either way the next pass plans from the new state.
func (h *Healer) reconcileAhead(ctx context.Context, ref meta.ChunkRef, why error) error {
	h.mu.Lock()
	rc := h.reconciler
	h.mu.Unlock()
	if rc == nil {
		return fmt.Errorf("%w: %v", errStale, why)
	}
	if err := rc.RepairChunk(ctx, ref.Vol, ref.Ino, ref.Index); err != nil {
		// Too young, or the replicas cannot be reached: a later pass.
		return fmt.Errorf("%w: %v; not reconciled yet: %v", errStale, why, err)
	}
	return fmt.Errorf("%w: reconciled after %v", errStale, why)
}

// throttle waits until n more bytes may be copied.
func (h *Healer) throttle(ctx context.Context, n int64) error {
	for n > 0 {
		step := min(n, int64(h.limiter.Burst()))
		if err := h.limiter.WaitN(ctx, int(step)); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// adjustVoters applies at most one voter change (PlanVoters). A voter is
// demoted by removing it and adding it back as a non-voter (Raft has no
// one-step demotion in our meta API), so that it can catch up as a
// non-voter when it returns.
// Pausing the repair does not pause this: it moves no data, and it keeps
// the metadata majority safe.
func (h *Healer) adjustVoters(topo *Topology, nodes []meta.NodeInfo) error {
	if h.members == nil {
		return nil
	}
	h.votersMu.Lock()
	defer h.votersMu.Unlock()
	members, err := h.members.Members()
	if err != nil {
		return err
	}
	t := *topo
	t.Leader = h.cfg.NodeID // it applies the change: never demote it
	ch := PlanVoters(&t, members, h.cfg.MaxVoters)
	info := func(id string) (meta.NodeInfo, bool) {
		for _, n := range nodes {
			if n.ID == id {
				return n, true
			}
		}
		return meta.NodeInfo{}, false
	}
	if ch.Demote != "" {
		if err := h.members.RemoveMember(ch.Demote); err != nil {
			return err
		}
		if n, ok := info(ch.Demote); ok {
			if err := h.members.AddMember(n.ID, n.RaftAddr, false); err != nil {
				return err
			}
		}
		h.log.Warn("demoted a Raft voter (lost, or one AZ too many)", "node", ch.Demote)
	}
	if ch.Promote != "" {
		n, ok := info(ch.Promote)
		if !ok {
			return nil
		}
		if err := h.members.AddMember(n.ID, n.RaftAddr, true); err != nil {
			return err
		}
		h.log.Warn("promoted a Raft voter", "node", ch.Promote, "az", n.AZ)
	}
	return nil
}

// HoldVoters keeps the healer from changing the Raft voters until release
// is called, for an operator's change that reads the membership, plans and
// applies it in several steps.
func (h *Healer) HoldVoters() (release func()) {
	h.votersMu.Lock()
	return h.votersMu.Unlock
}

// Status reports the healer's state. The node health and AZ view come from
// this node's Liveness, meaningful on the leader only.
func (h *Healer) Status() RepairStatus {
	nodes, _ := h.meta.FSM().Nodes()
	h.mu.Lock()
	st := RepairStatus{
		Paused: h.paused, Grace: h.cfg.Grace, RateLimit: h.cfg.RateLimit,
		Queue: h.queue, QueueUrgent: h.urgent, InFlight: len(h.inflight),
		Copied: h.copied, CopiedBytes: h.bytes, Failed: h.failed, LastPass: h.lastPass,
		Chunks: h.last.Chunks, Unavailable: h.last.Unavailable, Unplaceable: h.last.Unplaceable,
	}
	if h.leading {
		st.Leader = h.cfg.NodeID
	}
	load := maps.Clone(h.load) // runTask updates h.load under mu
	h.mu.Unlock()
	st.Nodes = h.live.Health(nodes, load)
	st.AZs = AZView(st.Nodes)
	return st
}

// CanRemove tells whether node id may be forgotten. It refuses (ErrOnlyCopy)
// while the node holds a chunk no other node that is not down holds: its
// data would be lost. It also refuses (ErrNotDrained) while the node is not
// down and holds any chunk at all: drain it first, which moves its chunks
// off without ever lowering their redundancy. A dead node whose chunks all
// have copies elsewhere may be removed; the healer then re-creates its
// replicas at once (no grace for a removed node).
func (h *Healer) CanRemove(ctx context.Context, id string) error {
	fsm := h.meta.FSM()
	if _, err := fsm.Node(id); err != nil {
		return err
	}
	_, topo, err := h.topology()
	if err != nil {
		return err
	}
	held := 0
	var only *meta.ChunkRef
	err = ScanChunks(ctx, fsm, h.cfg.PageSize, func(ch meta.ChunkRef) bool {
		if !slices.Contains(ch.Replicas, id) {
			return true
		}
		held++
		for _, r := range ch.Replicas {
			if n, ok := topo.Nodes[r]; ok && r != id && n.State != StateDown {
				return true
			}
		}
		only = &ch
		return false
	})
	if err != nil {
		return err
	}
	if only != nil {
		return fmt.Errorf("%w: node %s holds chunk %s (version %d) and no other node that is up holds it",
			ErrOnlyCopy, id, keyOf(*only), only.Version)
	}
	if held > 0 && topo.Nodes[id].State != StateDown {
		return fmt.Errorf("%w: node %s is %s and holds %d chunks", ErrNotDrained, id, topo.Nodes[id].State, held)
	}
	return nil
}

// Remove forgets node id: it checks CanRemove, marks the node draining so
// that no new chunk lands on it meanwhile, checks again, proposes
// RemoveNode and takes the node out of the Raft configuration. Chunks that
// still list the node are then repaired.
func (h *Healer) Remove(ctx context.Context, id string) error {
	if err := h.CanRemove(ctx, id); err != nil {
		return err
	}
	if n, err := h.meta.FSM().Node(id); err == nil && !n.Draining {
		if _, err := h.meta.Propose(ctx, &meta.SetNodeState{ID: id, Draining: true}); err != nil {
			return err
		}
		if err := h.CanRemove(ctx, id); err != nil {
			return err
		}
	}
	if _, err := h.meta.Propose(ctx, &meta.RemoveNode{ID: id}); err != nil {
		return err
	}
	if h.members != nil {
		members, err := h.members.Members()
		if err != nil {
			return err
		}
		if _, ok := members[id]; ok {
			if err := h.members.RemoveMember(id); err != nil {
				return err
			}
		}
	}
	h.log.Warn("node removed", "node", id)
	h.Kick()
	return nil
}

// ScanChunks calls fn for every chunk in key order, reading pageSize chunks
// per read transaction so that no transaction stays open while fn works,
// until fn returns false, the chunks end or ctx is done.
func ScanChunks(ctx context.Context, fsm *meta.FSM, pageSize int, fn func(meta.ChunkRef) bool) error {
	var from *meta.ChunkRef
	page := make([]meta.ChunkRef, 0, pageSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page = page[:0]
		err := fsm.ForEachChunk(from, func(r meta.ChunkRef) bool {
			page = append(page, r)
			return len(page) < pageSize
		})
		if err != nil {
			return err
		}
		for _, r := range page {
			if !fn(r) {
				return nil
			}
		}
		if len(page) < pageSize {
			return nil
		}
		last := page[len(page)-1]
		from = &last
	}
}

func volumeReplicas(fsm *meta.FSM) (map[uint32]int, error) {
	vols, err := fsm.Volumes()
	if err != nil {
		return nil, err
	}
	out := make(map[uint32]int, len(vols))
	for _, v := range vols {
		out[v.ID] = v.Replicas
	}
	return out, nil
}

// ReplicaStatuses counts the chunks of volume ("" for every volume) by
// replication health under topo (see Topology.CountReplicas), one entry per
// volume sorted by name.
func ReplicaStatuses(ctx context.Context, fsm *meta.FSM, topo *Topology, volume string, pageSize int) ([]ReplicaStatus, error) {
	vols, err := fsm.Volumes()
	if err != nil {
		return nil, err
	}
	byID := map[uint32]*ReplicaStatus{}
	want := map[uint32]int{}
	var out []*ReplicaStatus
	for _, v := range vols {
		if volume != "" && v.Name != volume {
			continue
		}
		st := &ReplicaStatus{Volume: v.Name, Replicas: v.Replicas, PerAZ: map[string]int{}}
		byID[v.ID], want[v.ID] = st, v.Replicas
		out = append(out, st)
	}
	if volume != "" && len(out) == 0 {
		return nil, fmt.Errorf("%w: %q", meta.ErrNoVolume, volume)
	}
	err = ScanChunks(ctx, fsm, pageSize, func(ch meta.ChunkRef) bool {
		if st := byID[ch.Vol]; st != nil {
			topo.CountReplicas(st, want[ch.Vol], ch.Chunk)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *ReplicaStatus) int { return strings.Compare(a.Volume, b.Volume) })
	res := make([]ReplicaStatus, len(out))
	for i, st := range out {
		res[i] = *st
	}
	return res, nil
}
