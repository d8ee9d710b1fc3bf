package admin

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// clusterHealth judges the cluster from one node's view: its Raft status and
// the registered nodes and volumes in its FSM. It returns the health and
// every reason it is not ok (an empty, non-nil slice when it is).
//
//   - down: no metadata leader.
//   - degraded: a registered node is not in the Raft configuration (a join
//     that did not finish, or a member removed without deregistering), or
//     fewer than 3 AZs have nodes while a volume wants 3 or more replicas,
//     so losing one AZ can leave it short of replicas.
func clusterHealth(st meta.Status, nodes []meta.NodeInfo, vols []meta.Volume) (Health, []string) {
	reasons := []string{}
	down := st.Leader == ""
	if down {
		state := st.State
		if state == "" {
			state = "unknown"
		}
		reasons = append(reasons, fmt.Sprintf("no metadata leader (this node is %s)", strings.ToLower(state)))
	}

	members := make(map[string]bool, len(st.Voters)+len(st.NonVoters))
	for _, id := range st.Voters {
		members[id] = true
	}
	for _, id := range st.NonVoters {
		members[id] = true
	}
	azs := map[string]bool{}
	for _, n := range nodes {
		azs[n.AZ] = true
		if !members[n.ID] {
			reasons = append(reasons, fmt.Sprintf("node %s (%s) is registered but not in the Raft configuration", n.ID, n.AZ))
		}
	}

	const wantAZs = 3
	if len(azs) < wantAZs {
		var short []string
		for _, v := range vols {
			if v.Replicas >= wantAZs {
				short = append(short, v.Name)
			}
		}
		if len(short) > 0 {
			slices.Sort(short)
			reasons = append(reasons, fmt.Sprintf("only %d AZ(s) have nodes, but volume(s) %s want %d or more replicas in distinct AZs",
				len(azs), strings.Join(short, ", "), wantAZs))
		}
	}

	switch {
	case down:
		return HealthDown, reasons
	case len(reasons) > 0:
		return HealthDegraded, reasons
	}
	return HealthOK, reasons
}

// withVoters returns a copy of nodes with Voter set from the Raft
// configuration (the FSM's copy is what the node registered with).
func withVoters(nodes []meta.NodeInfo, st meta.Status) []meta.NodeInfo {
	out := make([]meta.NodeInfo, len(nodes))
	for i, n := range nodes {
		n.Voter = slices.Contains(st.Voters, n.ID)
		out[i] = n
	}
	return out
}

// distinctAZs counts the AZs that have registered nodes.
func distinctAZs(nodes []meta.NodeInfo) int {
	azs := map[string]bool{}
	for _, n := range nodes {
		azs[n.AZ] = true
	}
	return len(azs)
}

// repairHealth judges the leader's healer state. Reasons come in a fixed
// order (AZs, nodes by ID, then the queue) so the status screen is stable.
//
//   - at_risk: some chunk has a single healthy replica left (the urgent
//     part of the repair queue): one more failure loses it.
//   - degraded: an AZ is down; a node is down or suspect; repair is paused
//     while chunks wait for it.
//
// Draining nodes are an operator's choice and no reason by themselves.
func repairHealth(rs replication.RepairStatus) (Health, []string) {
	reasons := []string{}
	health := HealthOK
	for _, az := range rs.AZs {
		if az.Down {
			reasons = append(reasons, fmt.Sprintf("AZ %s is down (%d node(s), none up)", az.AZ, az.Nodes))
		}
	}
	for _, n := range rs.Nodes {
		switch n.State {
		case replication.StateDown:
			since := ""
			if !n.DownSince.IsZero() {
				since = " since " + n.DownSince.UTC().Format(time.RFC3339)
			}
			reasons = append(reasons, fmt.Sprintf("node %s (%s) is down%s, holding %d chunk replica(s)", n.ID, n.AZ, since, n.Chunks))
		case replication.StateSuspect:
			reasons = append(reasons, fmt.Sprintf("node %s (%s) is suspect: its heartbeats are late", n.ID, n.AZ))
		}
	}
	if rs.Paused && rs.Queue > 0 {
		reasons = append(reasons, fmt.Sprintf("repair is paused with %d chunk(s) waiting", rs.Queue))
	}
	if len(reasons) > 0 {
		health = HealthDegraded
	}
	if rs.QueueUrgent > 0 {
		health = HealthAtRisk
		reasons = append(reasons, fmt.Sprintf("%d chunk(s) have a single healthy replica left", rs.QueueUrgent))
	}
	return health, reasons
}

// severity orders the health values from ok to down.
func severity(h Health) int {
	switch h {
	case HealthOK:
		return 0
	case HealthDegraded:
		return 1
	case HealthAtRisk:
		return 2
	}
	return 3
}

// worse is the more severe of two health values.
func worse(a, b Health) Health {
	if severity(b) > severity(a) {
		return b
	}
	return a
}
