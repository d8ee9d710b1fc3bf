package admintest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// The in-memory healer and scrubber. Node liveness, chunk counts, the
// repair queue and replica counts are whatever the test sets; drain and
// remove go through the real FSM (meta.SetNodeState, meta.RemoveNode), so
// the API reads their effect back as it would on a real node.

// epoch is the fake healer's and scrubber's "now", fixed so that tests can
// compare output.
func epoch() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }

type healState struct {
	repair    replication.RepairStatus // counters and Paused; Nodes and AZs are built per call
	states    map[string]replication.NodeState
	chunks    map[string]int
	free      map[string]int64
	step      int
	replicas  map[string]replication.ReplicaStatus
	removeErr map[string]error
	scrub     replication.ScrubStatus
	starts    int
	nfs       int
}

func newHealState() healState {
	return healState{
		repair: replication.RepairStatus{Grace: time.Minute, RateLimit: 100 << 20},
		states: map[string]replication.NodeState{}, chunks: map[string]int{}, free: map[string]int64{},
		replicas: map[string]replication.ReplicaStatus{}, removeErr: map[string]error{},
		scrub: replication.ScrubStatus{RateLimit: 10 << 20},
	}
}

// SetRepair replaces the repair counters (queue, in flight, totals, grace,
// rate, paused). Leader, Nodes and AZs are always computed.
func (b *Backend) SetRepair(rs replication.RepairStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.repair = rs
}

// SetRepairProgress makes every RepairStatus call, while repair is not
// paused, move step chunks: the queue (and its urgent part) shrinks by
// step, Copied grows, and each draining node loses step chunks. It stands
// in for a healer at work so that watchers and drain waits can be tested.
func (b *Backend) SetRepairProgress(step int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.step = step
}

// SetNodeState sets a node's liveness state (default up).
func (b *Backend) SetNodeState(id string, st replication.NodeState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.states[id] = st
}

// SetNodeChunks sets how many chunk replicas a node holds.
func (b *Backend) SetNodeChunks(id string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.chunks[id] = n
}

// SetNodeFree sets a node's free bytes (default -1, unknown).
func (b *Backend) SetNodeFree(id string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.free[id] = n
}

// SetReplicaStatus sets a volume's replica counts; volumes without one
// report zero chunks.
func (b *Backend) SetReplicaStatus(rs replication.ReplicaStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.replicas[rs.Volume] = rs
}

// SetRemoveError makes RemoveNode(id) fail with err (nil: succeed).
func (b *Backend) SetRemoveError(id string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.removeErr[id] = err
}

// SetScrub replaces the scrubber status (Node is always this backend's ID).
func (b *Backend) SetScrub(st replication.ScrubStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.scrub = st
}

// ScrubStarts counts StartScrub calls.
func (b *Backend) ScrubStarts() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.heal.starts
}

// SetNFSInflight sets what NFSInflight returns.
func (b *Backend) SetNFSInflight(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.nfs = n
}

// RepairStatus implements admin.Healer.
func (b *Backend) RepairStatus() replication.RepairStatus {
	nodes, _ := b.FSM().Nodes()
	b.mu.Lock()
	defer b.mu.Unlock()
	h := &b.heal
	if h.step > 0 && !h.repair.Paused {
		moved := min(h.step, h.repair.Queue)
		h.repair.Queue -= moved
		h.repair.QueueUrgent = min(h.repair.QueueUrgent, h.repair.Queue)
		h.repair.Copied += int64(moved)
		for _, n := range nodes {
			if n.Draining {
				h.chunks[n.ID] = max(h.chunks[n.ID]-h.step, 0)
			}
		}
	}
	rs := h.repair
	rs.Leader = b.status.Leader
	rs.Nodes = []replication.NodeHealth{}
	rs.AZs = []replication.AZHealth{}
	for _, n := range nodes {
		st, ok := h.states[n.ID]
		if !ok {
			st = replication.StateUp
		}
		free, ok := h.free[n.ID]
		if !ok {
			free = -1
		}
		nh := replication.NodeHealth{ID: n.ID, AZ: n.AZ, State: st, LastSeen: epoch(), Draining: n.Draining,
			Chunks: h.chunks[n.ID], FreeBytes: free, UsedBytes: -1}
		if st == replication.StateDown {
			nh.DownSince = epoch()
		}
		rs.Nodes = append(rs.Nodes, nh)

		i := slices.IndexFunc(rs.AZs, func(a replication.AZHealth) bool { return a.AZ == n.AZ })
		if i < 0 {
			rs.AZs = append(rs.AZs, replication.AZHealth{AZ: n.AZ})
			i = len(rs.AZs) - 1
		}
		rs.AZs[i].Nodes++
		if st != replication.StateDown {
			rs.AZs[i].Up++
		}
	}
	for i := range rs.AZs {
		rs.AZs[i].Down = rs.AZs[i].Up == 0
	}
	slices.SortFunc(rs.AZs, func(a, b replication.AZHealth) int { return strings.Compare(a.AZ, b.AZ) })
	return rs
}

// PauseRepair implements admin.Healer.
func (b *Backend) PauseRepair(paused bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.repair.Paused = paused
}

// ReplicaStatus implements admin.Healer: the counts set with
// SetReplicaStatus, zero for the other volumes of the FSM.
func (b *Backend) ReplicaStatus(volume string) ([]replication.ReplicaStatus, error) {
	vols, err := b.FSM().Volumes()
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []replication.ReplicaStatus{}
	for _, v := range vols {
		if volume != "" && v.Name != volume {
			continue
		}
		rs, ok := b.heal.replicas[v.Name]
		if !ok {
			rs = replication.ReplicaStatus{Volume: v.Name, Replicas: v.Replicas, PerAZ: map[string]int{}}
		}
		out = append(out, rs)
	}
	if volume != "" && len(out) == 0 {
		return nil, fmt.Errorf("%w: %q", meta.ErrNoVolume, volume)
	}
	return out, nil
}

// DrainNode implements admin.Healer through meta.SetNodeState.
func (b *Backend) DrainNode(ctx context.Context, id string, drain bool) error {
	return b.apply(ctx, &meta.SetNodeState{ID: id, Draining: drain})
}

// RemoveNode implements admin.Healer: the error set with SetRemoveError,
// else meta.RemoveNode.
func (b *Backend) RemoveNode(ctx context.Context, id string) error {
	b.mu.Lock()
	err := b.heal.removeErr[id]
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return b.apply(ctx, &meta.RemoveNode{ID: id})
}

// apply proposes cmd and returns its error, failed precondition included.
func (b *Backend) apply(ctx context.Context, cmd meta.Command) error {
	res, err := b.Propose(ctx, cmd)
	if err != nil {
		return err
	}
	return res.Err()
}

// ScrubStatus implements admin.Scrubber.
func (b *Backend) ScrubStatus() replication.ScrubStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.heal.scrub
	st.Node = b.ID
	return st
}

// PauseScrub implements admin.Scrubber.
func (b *Backend) PauseScrub(paused bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.scrub.Paused = paused
}

// StartScrub implements admin.Scrubber: a new pass begins at epoch.
func (b *Backend) StartScrub() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heal.starts++
	sc := &b.heal.scrub
	sc.PassStarted, sc.Scanned, sc.ScannedBytes, sc.NextPass = epoch(), 0, 0, time.Time{}
}

// NFSInflight implements admin.NFSStats.
func (b *Backend) NFSInflight() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.heal.nfs
}
