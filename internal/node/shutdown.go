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

// Shutdown is the clean stop of SIGTERM and Ctrl-C: when this node leads
// the metadata Raft group and another voter exists, it first hands the
// leadership over (bounded by ctx and HandOverTimeout), while its listeners
// still serve, so the cluster does not lose a leader it would only find
// gone after an election timeout (rolling restarts cost no election). Then
// it closes the node like Close. It returns the voter that took over, ""
// when nothing was handed over (a failed transfer is logged, and the node
// closes anyway), and Close's error.
func (n *Node) Shutdown(ctx context.Context) (string, error) {
	to := n.handOver(ctx)
	return to, n.Close()
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
