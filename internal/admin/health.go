package admin

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fsrep/fsrep/meta"
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
