package node

import (
	"context"
	"time"
)

// HandOverTimeout bounds how long Shutdown waits for another voter to take
// the Raft leadership before it closes the node anyway. A transfer takes
// about one round trip and an election (raft gives up by itself after an
// election timeout); a shutdown that waited longer would cost more than
// the election timeout it saves.
const HandOverTimeout = 3 * time.Second

// DrainTimeout bounds how long Shutdown waits for the NFS calls in flight
// to be answered; calls still running then are cut (their clients
// retransmit to another node).
const DrainTimeout = 5 * time.Second

// Shutdown is the clean stop of SIGTERM and Ctrl-C. First the NFS gateway
// drains (bounded by ctx and DrainTimeout): it takes no new connection or
// call, answers the calls in flight, then closes its connections, so its
// clients move to another node without waiting out a timeout on a call
// this node dropped. Then, when this node leads
// the metadata Raft group and another voter exists, it hands the
// leadership over (bounded by ctx and HandOverTimeout), while its listeners
// still serve, so the cluster does not lose a leader it would only find
// gone after an election timeout (rolling restarts cost no election). Then
// it closes the node like Close. It returns the voter that took over, ""
// when nothing was handed over (a failed transfer is logged, and the node
// closes anyway), and Close's error.
func (n *Node) Shutdown(ctx context.Context) (string, error) {
	n.drain(ctx)
	to := n.handOver(ctx)
	return to, n.Close()
}

// drain drains the NFS gateway, if it runs.
func (n *Node) drain(ctx context.Context) {
	if n.nfs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, DrainTimeout)
	defer cancel()
	start := time.Now()
	if err := n.nfs.Drain(ctx); err != nil {
		n.log.Warn("shutdown: NFS calls still in flight are cut", "after", time.Since(start).Round(time.Millisecond), "err", err)
		return
	}
	n.log.Info("shutdown: NFS gateway drained", "after", time.Since(start).Round(time.Millisecond))
}

// handOver transfers the leadership if this node leads and is not the
// only voter; it returns the new leader's ID or "".
func (n *Node) handOver(ctx context.Context) string {
	if n.meta == nil || !n.meta.IsLeader() {
		return ""
	}
	members, err := n.meta.Members()
	if err != nil {
		n.log.Warn("shutdown: no leadership transfer: reading the Raft configuration failed", "err", err)
		return ""
	}
	voters := 0
	for id, voter := range members {
		if voter && id != n.cfg.NodeID {
			voters++
		}
	}
	if voters == 0 {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, HandOverTimeout)
	defer cancel()
	start := time.Now()
	if err := n.meta.TransferLeadership(ctx, ""); err != nil {
		n.log.Warn("shutdown: leadership transfer failed; closing as leader", "err", err)
		return ""
	}
	// raft returns once this node stepped down (the target started its
	// election with a higher term); the target wins it within a round trip.
	to := n.meta.Leader()
	for to == "" || to == n.cfg.NodeID {
		if ctx.Err() != nil {
			n.log.Info("shutdown: stepped down; the new leader is not known yet", "after", time.Since(start))
			return ""
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond): // poll interval
		}
		to = n.meta.Leader()
	}
	n.log.Info("shutdown: leadership handed over", "to", to, "after", time.Since(start).Round(time.Millisecond))
	return to
}
