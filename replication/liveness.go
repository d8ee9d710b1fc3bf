package replication

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsrep/fsrep/meta"
)

// Failure detection. Every node sends the leader a small heartbeat over
// internode RPC (never through the Raft log: a beat per node per second
// would fill it); the leader's Liveness turns the time since each node's
// last beat into a state. States are computed when asked, from the last
// beat and the injected clock, so there is no timer to race with and a test
// moves a node from up to suspect to down by advancing its clock.
//
// The leader answers every beat with the states of all nodes, so every
// node's data path (the Replicator) stops placing new chunks on, and reads
// last from, nodes the leader sees failing: a View holds that answer.

// LivenessConfig sets the heartbeat cadence and the failure timeouts.
type LivenessConfig struct {
	// HeartbeatInterval is how often every node beats.
	HeartbeatInterval time.Duration
	// SuspectAfter without a beat makes a node suspect: no new replicas go
	// there, reads try it last, nothing is moved yet.
	SuspectAfter time.Duration
	// DownAfter without a beat makes a node down; the repair grace time
	// (HealerConfig.Grace) starts then.
	DownAfter time.Duration
}

// DefaultLivenessConfig beats every second, suspects after 3 missed beats
// and declares a node down after 10 s (a restart of fsrepd takes less, and a
// node that is merely slow is not declared down by a GC pause).
func DefaultLivenessConfig() LivenessConfig {
	return LivenessConfig{HeartbeatInterval: time.Second, SuspectAfter: 3 * time.Second, DownAfter: 10 * time.Second}
}

// Validate checks that the timeouts are ordered: a node must be able to
// miss a beat before it is suspected, and be suspected before it is down.
func (c LivenessConfig) Validate() error {
	switch {
	case c.HeartbeatInterval <= 0:
		return errors.New("replication: the heartbeat interval must be positive")
	case c.SuspectAfter <= c.HeartbeatInterval:
		return errors.New("replication: SuspectAfter must exceed the heartbeat interval")
	case c.DownAfter <= c.SuspectAfter:
		return errors.New("replication: DownAfter must exceed SuspectAfter")
	}
	return nil
}

// state is the state of a node whose last beat is age old.
func (c LivenessConfig) state(age time.Duration) NodeState {
	switch {
	case age >= c.DownAfter:
		return StateDown
	case age >= c.SuspectAfter:
		return StateSuspect
	}
	return StateUp
}

// Heartbeat is what a node tells the leader about itself.
type Heartbeat struct {
	Node string `json:"node"`
	// FreeBytes is the free space of the chunk directory's file system
	// (-1: unknown); UsedBytes what the chunk files take.
	FreeBytes int64 `json:"free_bytes"`
	UsedBytes int64 `json:"used_bytes"`
	// Chunks is the number of chunk files on disk (garbage included).
	Chunks int `json:"chunks"`
	// Full: the free space is below the node's reserve, so its chunk
	// store refuses writes (chunkstore.Store.Full); no new replicas go
	// there until a later beat says otherwise.
	Full bool `json:"full,omitempty"`
}

// PeerState is one node in the leader's answer to a heartbeat.
type PeerState struct {
	ID    string    `json:"id"`
	State NodeState `json:"state"`
	// DownForMillis is how long the node has been down. A duration rather
	// than a time, so that no clock skew between nodes enters the grace
	// decisions of a follower.
	DownForMillis int64 `json:"down_ms,omitempty"`
	FreeBytes     int64 `json:"free_bytes"`
	Full          bool  `json:"full,omitempty"` // Heartbeat.Full
}

// DownFor is DownForMillis as a duration.
func (p PeerState) DownFor() time.Duration { return time.Duration(p.DownForMillis) * time.Millisecond }

// HeartbeatReply is the leader's answer to a heartbeat.
type HeartbeatReply struct {
	Leader string      `json:"leader"`
	Nodes  []PeerState `json:"nodes"`
}

// Liveness is the leader's failure detector.
type Liveness struct {
	cfg   LivenessConfig
	clock Clock

	mu    sync.Mutex
	nodes map[string]*liveNode
}

type liveNode struct {
	lastSeen time.Time
	beat     Heartbeat
	reported bool // beat holds a real report, not just the reset
}

// NewLiveness builds a tracker that knows no node yet.
func NewLiveness(cfg LivenessConfig, clock Clock) (*Liveness, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Liveness{cfg: cfg, clock: clock, nodes: map[string]*liveNode{}}, nil
}

// Config returns the timeouts.
func (l *Liveness) Config() LivenessConfig { return l.cfg }

// Reset starts tracking exactly ids, each as seen now. A new leader calls
// it: it has heard no beat yet, and declaring every node down until it does
// would re-replicate the whole cluster after each election. A node that was
// already down is then down again DownAfter later, and its grace starts
// over: healing resumes after a leader change, later but without false
// alarms.
func (l *Liveness) Reset(ids []string) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	next := make(map[string]*liveNode, len(ids))
	for _, id := range ids {
		n := l.nodes[id]
		if n == nil {
			n = &liveNode{beat: Heartbeat{Node: id, FreeBytes: -1, UsedBytes: -1}}
		}
		n.lastSeen = now
		next[id] = n
	}
	l.nodes = next
}

// Track makes the tracked set exactly ids: registered nodes not seen yet
// start as seen now (a node that joined and died before its first beat is
// still declared down), removed nodes are forgotten.
func (l *Liveness) Track(ids []string) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	keep := make(map[string]bool, len(ids))
	for _, id := range ids {
		keep[id] = true
		if l.nodes[id] == nil {
			l.nodes[id] = &liveNode{lastSeen: now, beat: Heartbeat{Node: id, FreeBytes: -1, UsedBytes: -1}}
		}
	}
	for id := range l.nodes {
		if !keep[id] {
			delete(l.nodes, id)
		}
	}
}

// Beat records a heartbeat received now.
func (l *Liveness) Beat(hb Heartbeat) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.nodes[hb.Node]
	if n == nil {
		n = &liveNode{}
		l.nodes[hb.Node] = n
	}
	n.lastSeen, n.beat, n.reported = now, hb, true
}

// peerLocked is one node's state now; ok is false for an untracked node.
func (l *Liveness) peerLocked(id string, now time.Time) (PeerState, bool) {
	n := l.nodes[id]
	if n == nil {
		return PeerState{ID: id, FreeBytes: -1}, false
	}
	age := now.Sub(n.lastSeen)
	p := PeerState{ID: id, State: l.cfg.state(age), FreeBytes: n.beat.FreeBytes, Full: n.beat.Full}
	if !n.reported {
		p.FreeBytes, p.Full = -1, false
	}
	if p.State == StateDown {
		p.DownForMillis = (age - l.cfg.DownAfter).Milliseconds()
	}
	return p, true
}

// Peer returns one node's state; ok is false for a node not tracked.
func (l *Liveness) Peer(id string) (PeerState, bool) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peerLocked(id, now)
}

// NodeState is the state of id ("" when it is not tracked).
func (l *Liveness) NodeState(id string) NodeState {
	p, _ := l.Peer(id)
	return p.State
}

// Reply is the answer to a heartbeat: every tracked node's state, by ID.
func (l *Liveness) Reply(leader string) HeartbeatReply {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := HeartbeatReply{Leader: leader, Nodes: make([]PeerState, 0, len(l.nodes))}
	for id := range l.nodes {
		p, _ := l.peerLocked(id, now)
		out.Nodes = append(out.Nodes, p)
	}
	slices.SortFunc(out.Nodes, func(a, b PeerState) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Health returns the registered nodes as the leader sees them, with the
// number of replicas the metadata places on each (chunks may be nil).
func (l *Liveness) Health(nodes []meta.NodeInfo, chunks map[string]int) []NodeHealth {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]NodeHealth, 0, len(nodes))
	for _, info := range nodes {
		h := NodeHealth{ID: info.ID, AZ: info.AZ, Draining: info.Draining, Chunks: chunks[info.ID],
			FreeBytes: -1, UsedBytes: -1}
		if n := l.nodes[info.ID]; n != nil {
			p, _ := l.peerLocked(info.ID, now)
			h.State, h.LastSeen = p.State, n.lastSeen
			if p.State == StateDown {
				h.DownSince = n.lastSeen.Add(l.cfg.DownAfter)
			}
			if n.reported {
				h.FreeBytes, h.UsedBytes, h.Files, h.Full = n.beat.FreeBytes, n.beat.UsedBytes, n.beat.Chunks, n.beat.Full
			}
		} else {
			h.State = StateUp // not tracked yet: the next pass starts its clock
		}
		out = append(out, h)
	}
	return out
}

// AZView summarises nodes by AZ: an AZ is down when all its nodes are.
func AZView(nodes []NodeHealth) []AZHealth {
	byAZ := map[string]*AZHealth{}
	for _, n := range nodes {
		a := byAZ[n.AZ]
		if a == nil {
			a = &AZHealth{AZ: n.AZ}
			byAZ[n.AZ] = a
		}
		a.Nodes++
		if n.State != StateDown {
			a.Up++
		}
	}
	out := make([]AZHealth, 0, len(byAZ))
	for _, a := range byAZ {
		a.Down = a.Up == 0
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b AZHealth) int { return strings.Compare(a.AZ, b.AZ) })
	return out
}

// View is a node's copy of the leader's liveness states, from its last
// heartbeat reply. The Replicator consults it when placing new chunks and
// ordering reads.
type View struct {
	clock  Clock
	maxAge time.Duration

	mu    sync.Mutex
	at    time.Time
	reply HeartbeatReply
	byID  map[string]PeerState
}

// NewView returns an empty view. A reply older than maxAge is ignored (the
// leader is unreachable; its old verdicts may be wrong by now), which falls
// back to the Replicator's own failure marks.
func NewView(clock Clock, maxAge time.Duration) *View {
	return &View{clock: clock, maxAge: maxAge}
}

// Update installs a reply received now.
func (v *View) Update(r HeartbeatReply) {
	byID := make(map[string]PeerState, len(r.Nodes))
	for _, p := range r.Nodes {
		byID[p.ID] = p
	}
	now := v.clock.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.at, v.reply, v.byID = now, r, byID
}

// Peer returns id's state as of the last reply, its down time advanced by
// the reply's age; ok is false when unknown or the reply is too old.
func (v *View) Peer(id string) (PeerState, bool) {
	now := v.clock.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.byID == nil || now.Sub(v.at) > v.maxAge {
		return PeerState{ID: id, FreeBytes: -1}, false
	}
	p, ok := v.byID[id]
	if !ok {
		return PeerState{ID: id, FreeBytes: -1}, false
	}
	if p.State == StateDown {
		p.DownForMillis += now.Sub(v.at).Milliseconds()
	}
	return p, true
}

// NodeState is id's state, or "" when unknown.
func (v *View) NodeState(id string) NodeState {
	p, _ := v.Peer(id)
	return p.State
}

// FreeBytes is id's free space as last reported, or -1.
func (v *View) FreeBytes(id string) int64 {
	p, _ := v.Peer(id)
	return p.FreeBytes
}

// Full reports whether id said in its last heartbeat that its chunk disk
// is below its reserve (false when unknown).
func (v *View) Full(id string) bool {
	p, _ := v.Peer(id)
	return p.Full
}

// Leader is the leader that sent the last reply still fresh enough ("" if none).
func (v *View) Leader() string {
	now := v.clock.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.byID == nil || now.Sub(v.at) > v.maxAge {
		return ""
	}
	return v.reply.Leader
}
