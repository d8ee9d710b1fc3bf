package replication

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/fsrep/fsrep/meta"
)

// The healer's decisions, as pure functions over a topology snapshot (the
// registered nodes with the leader's liveness verdicts) and the chunks of
// the metadata: no clock, no network, no randomness. The healer feeds them
// and carries out what they return; tests replay them from tables.

// NodeView is one registered node as the planner sees it.
type NodeView struct {
	ID string
	AZ string
	// State is the leader's liveness verdict ("" counts as up: a node the
	// leader has not tracked yet).
	State NodeState
	// DownFor is how long the node has been down (State down only).
	DownFor  time.Duration
	Draining bool
	Free     int64 // free bytes, <0 unknown
	Full     bool  // below its free-space reserve: no new replicas
}

// Topology is the snapshot one planning pass decides on.
type Topology struct {
	Nodes map[string]NodeView
	// Grace is how long a node must have been down before its replicas
	// stop counting as healthy.
	Grace time.Duration
	// Load is how many replicas each node held at the previous pass; the
	// rebalancer works from it (nil: no rebalancing this pass).
	Load map[string]int
	// Leader is the node applying the plan, which PlanVoters never
	// demotes ("" for none).
	Leader string
}

// NewTopology builds a snapshot from the registered nodes and a source of
// liveness verdicts (Liveness.Peer on the leader, View.Peer elsewhere).
func NewTopology(nodes []meta.NodeInfo, peer func(id string) (PeerState, bool), grace time.Duration) *Topology {
	t := &Topology{Nodes: make(map[string]NodeView, len(nodes)), Grace: grace}
	for _, n := range nodes {
		v := NodeView{ID: n.ID, AZ: n.AZ, Draining: n.Draining, State: StateUp, Free: -1}
		if p, ok := peer(n.ID); ok {
			v.State, v.DownFor, v.Free, v.Full = p.State, p.DownFor(), p.FreeBytes, p.Full
		}
		t.Nodes[n.ID] = v
	}
	return t
}

// lost: down for longer than the grace time; its replicas no longer count.
func (t *Topology) lost(n NodeView) bool { return n.State == StateDown && n.DownFor >= t.Grace }

// up: heartbeats are on time.
func up(n NodeView) bool { return n.State == StateUp || n.State == "" }

// healthy: a replica there counts toward R (registered, not draining, not
// down past the grace time).
func (t *Topology) healthy(id string) bool {
	n, ok := t.Nodes[id]
	return ok && !n.Draining && !t.lost(n)
}

// placeable: may receive a new replica.
func placeable(n NodeView) bool { return up(n) && !n.Draining }

func (t *Topology) az(id string) string { return t.Nodes[id].AZ }

// candidates lists every node for Place, sorted by ID (Place's result does
// not depend on the order; the sort keeps the snapshot reproducible).
func (t *Topology) candidates() []Candidate {
	out := make([]Candidate, 0, len(t.Nodes))
	for _, n := range t.Nodes {
		out = append(out, Candidate{ID: n.ID, AZ: n.AZ, Free: n.Free, Up: placeable(n), Full: n.Full})
	}
	slices.SortFunc(out, func(a, b Candidate) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (t *Topology) azs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, t.az(id))
	}
	return out
}

// ChunkKey names a chunk independently of its version.
type ChunkKey struct {
	Vol   uint32
	Ino   uint64
	Index uint64
}

func keyOf(c meta.ChunkRef) ChunkKey { return ChunkKey{c.Vol, c.Ino, c.Index} }

func (k ChunkKey) String() string { return fmt.Sprintf("%d/%d/%d", k.Vol, k.Ino, k.Index) }

func compareKeys(a, b ChunkKey) int {
	return cmp.Or(cmp.Compare(a.Vol, b.Vol), cmp.Compare(a.Ino, b.Ino), cmp.Compare(a.Index, b.Index))
}

// chunkSeed spreads the targets of different chunks over equal nodes, the
// same way the write path places new chunks.
func chunkSeed(k ChunkKey) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/%d", k.Vol, k.Ino, k.Index)
	return h.Sum64()
}

// TaskKind is what a task does to one chunk, in priority order.
type TaskKind uint8

const (
	// TaskRepair copies a chunk that has fewer healthy replicas than R.
	TaskRepair TaskKind = iota + 1
	// TaskDrop leaves replicas on draining, lost or removed nodes out of a
	// chunk that has R healthy ones (no copy).
	TaskDrop
	// TaskSpread moves a replica out of an AZ holding two while another AZ
	// could hold one.
	TaskSpread
	// TaskRebalance moves a replica from a loaded node to one holding
	// clearly fewer than the average.
	TaskRebalance
)

func (k TaskKind) String() string {
	switch k {
	case TaskRepair:
		return "repair"
	case TaskDrop:
		return "drop"
	case TaskSpread:
		return "spread"
	case TaskRebalance:
		return "rebalance"
	}
	return fmt.Sprintf("task(%d)", uint8(k))
}

// Task is one step for one chunk: optionally copy the chunk from Source to
// Target, then commit Replicas as its replica set at Chunk.Version.
type Task struct {
	Kind  TaskKind
	Chunk meta.ChunkRef
	// Healthy is how many healthy replicas the chunk has now (urgency).
	Healthy int
	// Sources are the replicas to copy from, best first; Sources and
	// Target are empty for TaskDrop.
	Sources []string
	Target  string
	// Replicas is the replica set to commit, sorted.
	Replicas []string
}

// Key is the chunk the task is about.
func (t Task) Key() ChunkKey { return keyOf(t.Chunk) }

// less orders tasks: repairs first, the fewest healthy replicas first, then
// drops, spreads and rebalancing; chunk order within each.
func compareTasks(a, b Task) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Healthy, b.Healthy), compareKeys(a.Key(), b.Key()))
}

// PlanConfig bounds a plan.
type PlanConfig struct {
	// MaxTasks is how many tasks one pass keeps (the most urgent); the rest
	// are counted and found again by a later pass.
	MaxTasks int
	// A node is a rebalancing target while it holds fewer replicas than the
	// average of the placeable nodes by more than the margin: the larger
	// of RebalanceMargin of that average and RebalanceMin replicas. A
	// replica moves to it only from a node holding more than the margin
	// above it.
	RebalanceMargin float64
	RebalanceMin    int
	// MaxMoves bounds the rebalancing moves planned per pass.
	MaxMoves int
}

// DefaultPlanConfig returns the defaults.
func DefaultPlanConfig() PlanConfig {
	return PlanConfig{MaxTasks: 4096, RebalanceMargin: 0.1, RebalanceMin: 2, MaxMoves: 64}
}

// Plan is the outcome of one pass over every chunk.
type Plan struct {
	// Tasks in priority order, at most MaxTasks of them.
	Tasks []Task
	// Queue counts every task found; Urgent those repairing a chunk with
	// at most one healthy replica.
	Queue, Urgent int
	Chunks        int
	// Unavailable counts chunks that need a copy but have no replica that
	// could serve as its source (every replica is down); Unplaceable those
	// with a source but no node to copy to.
	Unavailable, Unplaceable int
	// Load is how many replicas each node holds (the next pass's
	// Topology.Load).
	Load map[string]int
}

// Planner builds a Plan from chunks fed in any order.
type Planner struct {
	cfg  PlanConfig
	topo *Topology
	plan Plan

	moves     []Task
	proj      map[string]int // projected load while planning moves
	avg       float64
	margin    float64
	under     []string // rebalancing targets
	rebalance bool
}

// NewPlanner starts a pass.
func NewPlanner(topo *Topology, cfg PlanConfig) *Planner {
	p := &Planner{cfg: cfg, topo: topo, plan: Plan{Load: map[string]int{}}}
	p.initRebalance()
	return p
}

// initRebalance decides whether this pass may move chunks for balance: only
// with the previous pass's load, every node up (a failing node makes the
// counts meaningless and repairs come first), and at least two placeable
// nodes.
func (p *Planner) initRebalance() {
	if p.topo.Load == nil || p.cfg.MaxMoves <= 0 {
		return
	}
	var eligible []string
	total := 0
	for id, n := range p.topo.Nodes {
		if !up(n) {
			return
		}
		if placeable(n) {
			eligible = append(eligible, id)
			total += p.topo.Load[id]
		}
	}
	if len(eligible) < 2 {
		return
	}
	p.avg = float64(total) / float64(len(eligible))
	p.margin = max(float64(p.cfg.RebalanceMin), p.avg*p.cfg.RebalanceMargin)
	p.proj = make(map[string]int, len(p.topo.Load))
	for id, n := range p.topo.Load {
		p.proj[id] = n
	}
	for _, id := range eligible {
		if p.avg-float64(p.proj[id]) > p.margin {
			p.under = append(p.under, id)
		}
	}
	slices.SortFunc(p.under, func(a, b string) int { return cmp.Or(cmp.Compare(p.proj[a], p.proj[b]), strings.Compare(a, b)) })
	p.rebalance = len(p.under) > 0
}

func (p *Planner) add(t Task) {
	p.plan.Queue++
	if t.Kind == TaskRepair && t.Healthy <= 1 {
		p.plan.Urgent++
	}
	p.plan.Tasks = append(p.plan.Tasks, t)
	if p.cfg.MaxTasks > 0 && len(p.plan.Tasks) >= 2*p.cfg.MaxTasks {
		slices.SortFunc(p.plan.Tasks, compareTasks)
		p.plan.Tasks = slices.Clip(p.plan.Tasks[:p.cfg.MaxTasks])
	}
}

// Add considers one chunk of a volume with want replicas.
func (p *Planner) Add(ch meta.ChunkRef, want int) {
	p.plan.Chunks++
	for _, id := range ch.Replicas {
		p.plan.Load[id]++
	}
	var healthy, spare []string // spare: draining but still there (a source, kept until R healthy)
	dropped := 0
	for _, id := range ch.Replicas {
		n, ok := p.topo.Nodes[id]
		switch {
		case !ok || p.topo.lost(n):
			dropped++
		case n.Draining:
			spare = append(spare, id)
		default:
			healthy = append(healthy, id)
		}
	}
	slices.Sort(healthy)
	slices.Sort(spare)
	if len(healthy) < want {
		p.repair(ch, want, healthy, spare)
		return
	}
	if len(spare)+dropped > 0 {
		p.add(Task{Kind: TaskDrop, Chunk: ch, Healthy: len(healthy), Replicas: healthy})
		return
	}
	for _, id := range healthy {
		if !up(p.topo.Nodes[id]) {
			return // a replica is failing: no moves for now
		}
	}
	if t, ok := p.spread(ch, healthy); ok {
		p.add(t)
		return
	}
	if p.rebalance {
		p.move(ch)
	}
}

// excluded lists the nodes that must not receive a copy of ch: those
// listed for it. A node whose old file of this very version waits for the
// garbage collector may: the collector re-checks the replica set right
// before deleting and never deletes a file younger than its safety delay,
// which a fresh copy is until it is committed.
func (p *Planner) excluded(ch meta.ChunkRef) []string { return slices.Clone(ch.Replicas) }

// sources lists the replicas to copy from, best first: up before suspect,
// healthy before draining, never a down one.
func (p *Planner) sources(healthy, spare []string) []string {
	type ranked struct {
		id   string
		rank int
	}
	var rs []ranked
	add := func(ids []string, base int) {
		for _, id := range ids {
			switch p.topo.Nodes[id].State {
			case StateDown:
			case StateSuspect:
				rs = append(rs, ranked{id, base + 2})
			default:
				rs = append(rs, ranked{id, base})
			}
		}
	}
	add(healthy, 0)
	add(spare, 1)
	slices.SortStableFunc(rs, func(a, b ranked) int { return cmp.Compare(a.rank, b.rank) })
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.id
	}
	return out
}

func (p *Planner) repair(ch meta.ChunkRef, want int, healthy, spare []string) {
	srcs := p.sources(healthy, spare)
	if len(srcs) == 0 {
		p.plan.Unavailable++
		return
	}
	// The draining replicas stay while the copies elsewhere are too few.
	keepSpare := len(healthy)+1 < want
	// haveAZs from the replicas that stay: a copy replacing a draining or
	// lost replica may land in that replica's AZ.
	stay := healthy
	if keepSpare {
		stay = append(slices.Clone(healthy), spare...)
	}
	picked, _ := Place(p.topo.candidates(), 1, p.excluded(ch), p.topo.azs(stay), chunkSeed(keyOf(ch)))
	if len(picked) == 0 {
		p.plan.Unplaceable++
		return
	}
	set := append(slices.Clone(stay), picked[0])
	slices.Sort(set)
	p.add(Task{Kind: TaskRepair, Chunk: ch, Healthy: len(healthy), Sources: srcs, Target: picked[0], Replicas: set})
}

// spread moves a replica out of a doubly used AZ when a placeable node in
// an AZ holding none exists.
func (p *Planner) spread(ch meta.ChunkRef, healthy []string) (Task, bool) {
	perAZ := map[string]int{}
	for _, id := range healthy {
		perAZ[p.topo.az(id)]++
	}
	if len(perAZ) == len(healthy) {
		return Task{}, false
	}
	ex := p.excluded(ch)
	free := false
	for _, c := range p.topo.candidates() {
		if c.Up && perAZ[c.AZ] == 0 && !slices.Contains(ex, c.ID) {
			free = true
			break
		}
	}
	if !free {
		return Task{}, false
	}
	// Move the replica of a shared AZ on the most loaded node.
	moved := ""
	for _, id := range healthy {
		if perAZ[p.topo.az(id)] < 2 {
			continue
		}
		if moved == "" || p.plan.Load[id] > p.plan.Load[moved] {
			moved = id
		}
	}
	rest := slices.DeleteFunc(slices.Clone(healthy), func(id string) bool { return id == moved })
	picked, _ := Place(p.topo.candidates(), 1, ex, p.topo.azs(rest), chunkSeed(keyOf(ch)))
	if len(picked) == 0 || perAZ[p.topo.az(picked[0])] > 0 {
		return Task{}, false
	}
	srcs := append([]string{moved}, rest...)
	set := append(slices.Clone(rest), picked[0])
	slices.Sort(set)
	return Task{Kind: TaskSpread, Chunk: ch, Healthy: len(healthy), Sources: srcs, Target: picked[0], Replicas: set}, true
}

// move plans a rebalancing move of ch onto an underloaded node, replacing
// its replica on the most loaded node, keeping the AZ
// spread: the target is in the replaced replica's AZ or in an AZ the other
// replicas do not use.
func (p *Planner) move(ch meta.ChunkRef) {
	if len(p.moves) >= p.cfg.MaxMoves {
		return
	}
	ex := p.excluded(ch)
	for _, t := range p.under {
		if p.avg-float64(p.proj[t]) <= p.margin || slices.Contains(ex, t) {
			continue
		}
		tn := p.topo.Nodes[t]
		if tn.Free >= 0 && tn.Free < 2*ch.Length {
			continue
		}
		best := ""
		for _, r := range ch.Replicas {
			// Only from a node holding more than the margin above the
			// target: the move narrows a real gap instead of swapping who
			// is short (and new writes do not make chunks bounce between
			// two nodes of one AZ).
			if float64(p.proj[r]-p.proj[t]) <= p.margin {
				continue
			}
			others := p.topo.azs(slices.DeleteFunc(slices.Clone(ch.Replicas), func(id string) bool { return id == r }))
			if tn.AZ != p.topo.az(r) && slices.Contains(others, tn.AZ) {
				continue
			}
			if best == "" || p.proj[r] > p.proj[best] || (p.proj[r] == p.proj[best] && r < best) {
				best = r
			}
		}
		if best == "" {
			continue
		}
		p.proj[t]++
		p.proj[best]--
		set := slices.DeleteFunc(slices.Clone(ch.Replicas), func(id string) bool { return id == best })
		set = append(set, t)
		slices.Sort(set)
		srcs := append([]string{best}, slices.DeleteFunc(slices.Clone(ch.Replicas), func(id string) bool { return id == best })...)
		p.moves = append(p.moves, Task{Kind: TaskRebalance, Chunk: ch, Healthy: len(ch.Replicas),
			Sources: srcs, Target: t, Replicas: set})
		return
	}
}

// Result finishes the pass. Rebalancing moves are kept only when nothing
// more urgent was found: repairs and drains come first, and the counts a
// move is based on change under them.
func (p *Planner) Result() Plan {
	out := p.plan
	if out.Queue == 0 {
		for _, t := range p.moves {
			p.add(t)
		}
		out = p.plan
	}
	slices.SortFunc(out.Tasks, compareTasks)
	if p.cfg.MaxTasks > 0 && len(out.Tasks) > p.cfg.MaxTasks {
		out.Tasks = out.Tasks[:p.cfg.MaxTasks]
	}
	return out
}

// CountReplicas adds one chunk of a volume with want replicas to st. For
// the status a replica is healthy on a registered node that is neither
// draining nor down (a down node's replicas show as missing at once, even
// while the healer still waits out the grace time).
func (t *Topology) CountReplicas(st *ReplicaStatus, want int, ch meta.Chunk) {
	st.Chunks++
	if st.PerAZ == nil {
		st.PerAZ = map[string]int{}
	}
	perAZ := map[string]int{}
	n := 0
	for _, id := range ch.Replicas {
		v, ok := t.Nodes[id]
		if !ok {
			continue
		}
		if v.Draining {
			st.Draining++
			continue
		}
		if v.State == StateDown {
			continue
		}
		n++
		perAZ[v.AZ]++
		st.PerAZ[v.AZ]++
	}
	switch {
	case n == 0:
		st.Unavailable++
	case n < want:
		st.UnderReplicated++
	case len(perAZ) < n && t.freeAZ(perAZ):
		st.Misplaced++
	default:
		st.Healthy++
	}
}

// freeAZ reports whether a placeable node sits in an AZ not in used.
func (t *Topology) freeAZ(used map[string]int) bool {
	for _, n := range t.Nodes {
		if placeable(n) && used[n.AZ] == 0 {
			return true
		}
	}
	return false
}

// VoterChange is one adjustment of the Raft voters: Demote (if set) stops
// being a voter, then Promote (if set) becomes one.
type VoterChange struct {
	Demote  string
	Promote string
}

// PlanVoters keeps one voter per AZ, at most maxVoters, so that losing one
// AZ never loses the Raft majority (the rule Join applies to new nodes).
// members maps every Raft member to whether it votes. In order:
//
//   - a voter that is lost (down past the grace time) or no longer
//     registered is replaced by an up, non-draining non-voter of its own
//     AZ, or else of an AZ without a live voter;
//   - an AZ without any voter gets one, while there are fewer than
//     maxVoters;
//   - a voter of an AZ holding half the voters or more is demoted while
//     at least three AZs hold live voters (losing that AZ would lose the
//     majority), never the leader;
//   - while there are fewer than three voters (fewer than three AZs), one
//     more is promoted in the AZ with the fewest voters, so that one node
//     can fail.
//
// At most one change per call: membership changes one step at a time.
func PlanVoters(t *Topology, members map[string]bool, maxVoters int) VoterChange {
	live := func(id string) bool {
		n, ok := t.Nodes[id]
		return ok && !t.lost(n)
	}
	var ids []string
	for id := range members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var candidates []string // up, non-draining, registered non-voters
	voters := 0
	votersIn, liveVotersIn := map[string]int{}, map[string]int{}
	var lostVoters []string
	for _, id := range ids {
		n, registered := t.Nodes[id]
		switch {
		case members[id]:
			voters++
			if registered {
				votersIn[n.AZ]++
			}
			if live(id) {
				liveVotersIn[n.AZ]++
			} else {
				lostVoters = append(lostVoters, id)
			}
		case registered && placeable(n):
			candidates = append(candidates, id)
		}
	}
	pick := func(ok func(NodeView) bool) string {
		for _, id := range candidates {
			if ok(t.Nodes[id]) {
				return id
			}
		}
		return ""
	}
	for _, v := range lostVoters {
		c := ""
		if vn, registered := t.Nodes[v]; registered {
			c = pick(func(n NodeView) bool { return n.AZ == vn.AZ })
		}
		if c == "" {
			c = pick(func(n NodeView) bool { return liveVotersIn[n.AZ] == 0 })
		}
		if c != "" {
			return VoterChange{Demote: v, Promote: c}
		}
	}
	// An AZ holding half the voters or more, while at least three AZs
	// hold live voters, would take the majority with it: demote one of
	// its voters (the latest in ID order, never the leader). The
	// promotion below while there are fewer than three voters leaves
	// that behind when a second node of the first AZ joins before the
	// other AZs do, and two nodes of one AZ joining at once can both be
	// admitted as voters.
	if len(liveVotersIn) >= 3 {
		for i := len(ids) - 1; i >= 0; i-- {
			id := ids[i]
			n, registered := t.Nodes[id]
			if members[id] && registered && id != t.Leader && votersIn[n.AZ] >= 2 && 2*votersIn[n.AZ] >= voters {
				return VoterChange{Demote: id}
			}
		}
	}
	if voters >= maxVoters {
		return VoterChange{}
	}
	if c := pick(func(n NodeView) bool { return votersIn[n.AZ] == 0 }); c != "" {
		return VoterChange{Promote: c}
	}
	if voters < 3 && len(candidates) > 0 {
		best := ""
		for _, id := range candidates {
			if best == "" || votersIn[t.Nodes[id].AZ] < votersIn[t.Nodes[best].AZ] {
				best = id
			}
		}
		return VoterChange{Promote: best}
	}
	return VoterChange{}
}
