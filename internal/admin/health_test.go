package admin

import (
	"strings"
	"testing"

	"github.com/fsrep/fsrep/meta"
)

func TestClusterHealth(t *testing.T) {
	leader := meta.Status{State: "Leader", Leader: "n1", Voters: []string{"n1", "n2", "n3"}, NonVoters: []string{"n4"}}
	nodes3 := []meta.NodeInfo{{ID: "n1", AZ: "a"}, {ID: "n2", AZ: "b"}, {ID: "n3", AZ: "c"}}
	nodes2 := []meta.NodeInfo{{ID: "n1", AZ: "a"}, {ID: "n2", AZ: "b"}, {ID: "n3", AZ: "b"}}
	r3 := []meta.Volume{{Name: "big", Replicas: 3}, {Name: "aaa", Replicas: 5}}
	r2 := []meta.Volume{{Name: "small", Replicas: 2}}

	for _, tc := range []struct {
		name    string
		st      meta.Status
		nodes   []meta.NodeInfo
		vols    []meta.Volume
		want    Health
		reasons []string // substrings, one per reason, in order
	}{
		{"healthy", leader, nodes3, r3, HealthOK, nil},
		{"empty cluster with a leader", leader, nil, nil, HealthOK, nil},
		{"non-voter member is fine", leader, append(nodes3, meta.NodeInfo{ID: "n4", AZ: "a"}), r3, HealthOK, nil},
		{"no leader", meta.Status{State: "Follower", Voters: leader.Voters}, nodes3, r3, HealthDown,
			[]string{"no metadata leader (this node is follower)"}},
		{"no leader and no state", meta.Status{}, nil, nil, HealthDown, []string{"this node is unknown"}},
		{"registered but not a member", leader, append(nodes3, meta.NodeInfo{ID: "n9", AZ: "c"}), r3, HealthDegraded,
			[]string{"node n9 (c) is registered but not in the Raft configuration"}},
		{"two AZs, 3 replicas", leader, nodes2, r3, HealthDegraded,
			[]string{"only 2 AZ(s) have nodes, but volume(s) aaa, big want 3"}},
		{"two AZs, 2 replicas", leader, nodes2, r2, HealthOK, nil},
		{"two AZs, no volumes", leader, nodes2, nil, HealthOK, nil},
		{"down wins but keeps the other reasons", meta.Status{Voters: []string{"n1"}}, nodes2, r3, HealthDown,
			[]string{"no metadata leader", "node n2 (b)", "node n3 (b)", "only 2 AZ(s)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reasons := clusterHealth(tc.st, tc.nodes, tc.vols)
			if got != tc.want {
				t.Errorf("health %s, want %s (reasons %q)", got, tc.want, reasons)
			}
			if reasons == nil {
				t.Errorf("reasons must be non-nil so they encode as []")
			}
			if len(reasons) != len(tc.reasons) {
				t.Fatalf("reasons %q, want %d matching %q", reasons, len(tc.reasons), tc.reasons)
			}
			for i, sub := range tc.reasons {
				if !strings.Contains(reasons[i], sub) {
					t.Errorf("reason %d %q does not contain %q", i, reasons[i], sub)
				}
			}
		})
	}
}

func TestWithVoters(t *testing.T) {
	nodes := []meta.NodeInfo{{ID: "n1", Voter: false}, {ID: "n2", Voter: true}}
	got := withVoters(nodes, meta.Status{Voters: []string{"n1"}})
	if !got[0].Voter || got[1].Voter {
		t.Fatalf("withVoters: %+v", got)
	}
	if nodes[0].Voter || !nodes[1].Voter {
		t.Fatalf("withVoters changed its input: %+v", nodes)
	}
}
