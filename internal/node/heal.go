package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/internal/rpc"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// Self-healing wiring (docs/healing.md): every node sends heartbeats to the
// leader and keeps the leader's answer as its view of the other nodes (the
// Replicator consults it); the leader tracks liveness and runs the healer.

var (
	_ rpc.HealService          = (*Node)(nil)
	_ admin.Healer             = (*Node)(nil)
	_ replication.HealMeta     = (*meta.Node)(nil)
	_ replication.Membership   = (*meta.Node)(nil)
	_ replication.CopyPeers    = (*rpc.Client)(nil)
	_ replication.LivenessView = (*replication.View)(nil)
)

// healing holds the node's failure detection and healing state.
type healing struct {
	live     *replication.Liveness // meaningful while this node leads
	view     *replication.View     // the leader's verdicts, from heartbeat replies
	healer   *replication.Healer   // runs while this node leads
	grace    time.Duration
	caughtUp atomic.Bool // the FSM caught up with the leader once since start
}

// usageEvery bounds how often a heartbeat re-counts the chunk files (a walk
// of the chunk directory); free space is read at every beat.
const usageEvery = 10 * time.Second

// statusPageSize is the chunks per metadata read of a replica status.
const statusPageSize = 512

func (c Config) livenessConfig() replication.LivenessConfig {
	lc := replication.DefaultLivenessConfig()
	if c.HeartbeatInterval > 0 {
		lc.HeartbeatInterval = c.HeartbeatInterval
	}
	if c.SuspectAfter > 0 {
		lc.SuspectAfter = c.SuspectAfter
	}
	if c.DownAfter > 0 {
		lc.DownAfter = c.DownAfter
	}
	return lc
}

func (c Config) healerConfig() replication.HealerConfig {
	hc := replication.DefaultHealerConfig(c.NodeID)
	if c.RepairGrace > 0 {
		hc.Grace = c.RepairGrace
	}
	if c.RepairRate > 0 {
		hc.RateLimit = c.RepairRate
	}
	// Passes come often enough that a repair starts soon after the grace
	// time ends, without rescanning a large namespace every second.
	hc.ScanInterval = min(hc.ScanInterval, max(hc.Grace/4, 100*time.Millisecond))
	return hc
}

// validateHealing checks the healing settings against each other.
func (c Config) validateHealing() error {
	if c.HeartbeatInterval < 0 || c.SuspectAfter < 0 || c.DownAfter < 0 || c.RepairGrace < 0 || c.RepairRate < 0 {
		return errors.New("heartbeat, suspect and down times, repair grace and repair rate must not be negative")
	}
	if err := c.livenessConfig().Validate(); err != nil {
		return err
	}
	id := c.NodeID
	if id == "" {
		id = "x" // reported on its own
	}
	c.NodeID = id
	return c.healerConfig().Validate()
}

// initHealing builds the failure detector and the healer and adds the
// healing calls to the RPC server (before it serves).
func (n *Node) initHealing() error {
	lc := n.cfg.livenessConfig()
	live, err := replication.NewLiveness(lc, n.clock)
	if err != nil {
		return err
	}
	hc := n.cfg.healerConfig()
	healer, err := replication.NewHealer(hc, n.meta, n.meta, n.rpcCli, live, n.clock, n.log.With("component", "healer"))
	if err != nil {
		return err
	}
	n.heal = &healing{live: live, view: replication.NewView(n.clock, lc.DownAfter), healer: healer, grace: hc.Grace}
	n.rpcSrv.EnableHealing(n)
	return nil
}

// startHealing starts the heartbeats, the first catch-up (see Ready) and
// the healer, which runs whenever this node leads.
func (n *Node) startHealing() {
	n.repl.SetLiveness(n.heal.view)
	n.heal.healer.SetReconciler(n.repl)
	n.meta.RunWhileLeader(n.heal.healer.Run)
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		n.heartbeats()
	}()
	go func() {
		defer n.wg.Done()
		n.catchUpOnce()
	}()
}

// healReady is nil once the node's metadata caught up with the leader after
// start: until then it may still hold replica sets and versions of before
// its downtime.
func (n *Node) healReady() error {
	if n.heal == nil || !n.heal.caughtUp.Load() {
		return errors.New("metadata not caught up with the leader yet")
	}
	return nil
}

func (n *Node) catchUpOnce() {
	for {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := n.meta.CatchUp(ctx)
		cancel()
		if err == nil {
			n.heal.caughtUp.Store(true)
			return
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// usage is the cached chunk count and size for heartbeats.
type usage struct {
	at    time.Time
	files int
	bytes int64
	ok    bool
}

func (n *Node) heartbeats() {
	lc := n.heal.live.Config()
	tick := time.NewTicker(lc.HeartbeatInterval)
	defer tick.Stop()
	var u usage
	failures := 0
	for {
		if err := n.beat(lc, &u); err != nil {
			failures++
			if failures%30 == 1 {
				n.log.Debug("heartbeat to the leader failed", "err", err)
			}
		} else {
			failures = 0
		}
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// beat sends one heartbeat: to this node's own tracker when it leads, else
// to the leader; the answer becomes this node's view.
func (n *Node) beat(lc replication.LivenessConfig, u *usage) error {
	hb := n.heartbeat(u)
	leader := n.meta.Leader()
	if leader == "" {
		return meta.ErrNoLeader
	}
	var reply replication.HeartbeatReply
	var err error
	if leader == n.cfg.NodeID {
		reply, err = n.LeaderHeartbeat(n.ctx, hb)
	} else {
		// A beat slower than the suspect time is late anyway.
		ctx, cancel := context.WithTimeout(n.ctx, lc.SuspectAfter)
		reply, err = n.rpcCli.Heartbeat(ctx, leader, hb)
		cancel()
	}
	if err != nil {
		return err
	}
	n.heal.view.Update(reply)
	return nil
}

func (n *Node) heartbeat(u *usage) replication.Heartbeat {
	hb := replication.Heartbeat{Node: n.cfg.NodeID, FreeBytes: -1, UsedBytes: -1}
	if free, err := n.store.Free(); err == nil {
		hb.FreeBytes = free
		hb.Full = n.store.Full()
	}
	now := n.clock.Now()
	if !u.ok || now.Sub(u.at) >= usageEvery || now.Before(u.at) {
		if files, bytes, err := n.store.Usage(); err == nil {
			*u = usage{at: now, files: files, bytes: bytes, ok: true}
		}
	}
	if u.ok {
		hb.UsedBytes, hb.Chunks = u.bytes, u.files
	}
	return hb
}

// Leader side of the healing RPC (rpc.HealService).

// LeaderHeartbeat records a heartbeat and answers every node's state.
func (n *Node) LeaderHeartbeat(_ context.Context, hb replication.Heartbeat) (replication.HeartbeatReply, error) {
	if !n.meta.IsLeader() {
		return replication.HeartbeatReply{}, meta.ErrNoLeader
	}
	if hb.Node == "" || len(hb.Node) > meta.MaxNodeIDLen {
		return replication.HeartbeatReply{}, fmt.Errorf("%w: heartbeat without a valid node ID", meta.ErrInvalid)
	}
	n.heal.live.Beat(hb)
	return n.heal.live.Reply(n.cfg.NodeID), nil
}

// LeaderRepairStatus is the healer's status on the leader.
func (n *Node) LeaderRepairStatus(context.Context) (replication.RepairStatus, error) {
	if !n.meta.IsLeader() {
		return replication.RepairStatus{}, meta.ErrNoLeader
	}
	st := n.heal.healer.Status()
	st.Leader = n.cfg.NodeID
	return st, nil
}

// LeaderPauseRepair pauses or resumes the healer on the leader.
func (n *Node) LeaderPauseRepair(_ context.Context, paused bool) error {
	if !n.meta.IsLeader() {
		return meta.ErrNoLeader
	}
	n.heal.healer.Pause(paused)
	return nil
}

// LeaderRemoveNode removes a node (see replication.Healer.Remove).
func (n *Node) LeaderRemoveNode(ctx context.Context, id string) error {
	if !n.meta.IsLeader() {
		return meta.ErrNoLeader
	}
	return n.heal.healer.Remove(ctx, id)
}

// The calls the admin API makes (admin.Healer). The admin server sends them
// to the leader; called on another node, those that need the leader's
// healer are forwarded to it over internode RPC.

// forwardTimeout bounds a call forwarded to the leader for methods that
// take no context.
const forwardTimeout = 10 * time.Second

func (n *Node) leaderID() (string, error) {
	l := n.meta.Leader()
	if l == "" {
		return "", meta.ErrNoLeader
	}
	return l, nil
}

// RepairStatus is the leader's healer status. When the leader cannot be
// asked, it is this node's own (Leader empty, the node states from its last
// heartbeat reply).
func (n *Node) RepairStatus() replication.RepairStatus {
	if n.meta.IsLeader() {
		if st, err := n.LeaderRepairStatus(n.ctx); err == nil {
			return st
		}
	}
	if l, err := n.leaderID(); err == nil && l != n.cfg.NodeID {
		ctx, cancel := context.WithTimeout(n.ctx, forwardTimeout)
		st, err := n.rpcCli.RepairStatus(ctx, l)
		cancel()
		if err == nil {
			return st
		}
	}
	st := n.heal.healer.Status()
	st.Leader = ""
	nodes, _ := n.meta.FSM().Nodes()
	st.Nodes = viewHealth(nodes, n.heal.view)
	st.AZs = replication.AZView(st.Nodes)
	return st
}

// viewHealth is the node list of a status from a heartbeat view.
func viewHealth(nodes []meta.NodeInfo, v *replication.View) []replication.NodeHealth {
	out := make([]replication.NodeHealth, 0, len(nodes))
	for _, info := range nodes {
		h := replication.NodeHealth{ID: info.ID, AZ: info.AZ, Draining: info.Draining, State: replication.StateUp,
			FreeBytes: -1, UsedBytes: -1}
		if p, ok := v.Peer(info.ID); ok {
			h.State, h.FreeBytes, h.Full = p.State, p.FreeBytes, p.Full
		}
		out = append(out, h)
	}
	return out
}

// PauseRepair pauses (true) or resumes (false) the leader's healer. The
// setting lives in the leader process: a new leader starts unpaused.
func (n *Node) PauseRepair(paused bool) {
	if n.meta.IsLeader() {
		n.heal.healer.Pause(paused)
		return
	}
	l, err := n.leaderID()
	if err == nil {
		ctx, cancel := context.WithTimeout(n.ctx, forwardTimeout)
		err = n.rpcCli.PauseRepair(ctx, l, paused)
		cancel()
	}
	if err != nil {
		n.log.Warn("pausing the repair on the leader failed", "paused", paused, "err", err)
	}
}

// holdsOnlyCopy makes the healer's refusals to remove a node match
// admin.ErrHoldsOnlyCopy (the API's holds_only_copy answer), keeping the
// healer's message and sentinel.
type holdsOnlyCopy struct{ err error }

func (e holdsOnlyCopy) Error() string        { return e.err.Error() }
func (e holdsOnlyCopy) Unwrap() error        { return e.err }
func (e holdsOnlyCopy) Is(target error) bool { return target == admin.ErrHoldsOnlyCopy }

// RemoveNode forgets node id and takes it out of Raft. It is refused, with
// an error matching admin.ErrHoldsOnlyCopy and replication.ErrOnlyCopy or
// replication.ErrNotDrained, while the node holds the only available copy
// of a chunk or, not being down, any chunk (see
// replication.Healer.CanRemove).
func (n *Node) RemoveNode(ctx context.Context, id string) error {
	var err error
	if n.meta.IsLeader() {
		err = n.LeaderRemoveNode(ctx, id)
	} else {
		var l string
		if l, err = n.leaderID(); err == nil {
			err = n.rpcCli.RemoveNode(ctx, l, id)
		}
	}
	if errors.Is(err, replication.ErrOnlyCopy) || errors.Is(err, replication.ErrNotDrained) {
		return holdsOnlyCopy{err}
	}
	return err
}

// DrainNode marks node id draining (no new chunks; the healer moves its
// chunks to other nodes, keeping the AZ spread) or returns it to service.
// Progress shows as the node's chunk count in RepairStatus.
func (n *Node) DrainNode(ctx context.Context, id string, draining bool) error {
	if _, err := n.meta.Propose(ctx, &meta.SetNodeState{ID: id, Draining: draining}); err != nil {
		return err
	}
	if n.meta.IsLeader() {
		n.heal.healer.Kick()
	}
	return nil
}

// ReplicaStatus counts the chunks of volume ("" for all) by replication
// health, from this node's metadata and the liveness verdicts: the
// leader's own, or on another node those of its last heartbeat reply.
func (n *Node) ReplicaStatus(volume string) ([]replication.ReplicaStatus, error) {
	fsm := n.meta.FSM()
	nodes, err := fsm.Nodes()
	if err != nil {
		return nil, err
	}
	peer := n.heal.view.Peer
	if n.meta.IsLeader() {
		peer = n.heal.live.Peer
	}
	topo := replication.NewTopology(nodes, peer, n.heal.grace)
	return replication.ReplicaStatuses(n.ctx, fsm, topo, volume, statusPageSize)
}
