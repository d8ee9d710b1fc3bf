package node

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// roleCluster describes a planning snapshot: "n1:az1:v" is n1 in az1, a
// voter; ":n" a non-voter; ":-" registered but not a member; a fourth
// field "down", "suspect" or "draining" sets its state (down past the
// grace time).
func roleCluster(t *testing.T, target string, specs ...string) rolePlanner {
	t.Helper()
	var nodes []meta.NodeInfo
	members := map[string]bool{}
	states := map[string]replication.PeerState{}
	for _, s := range specs {
		f := strings.Split(s, ":")
		if len(f) < 3 {
			t.Fatalf("bad spec %q", s)
		}
		n := meta.NodeInfo{ID: f[0], AZ: f[1], RaftAddr: f[0] + ":7000"}
		switch f[2] {
		case "v":
			members[n.ID] = true
		case "n":
			members[n.ID] = false
		}
		if len(f) > 3 {
			switch f[3] {
			case "draining":
				n.Draining = true
			case "down":
				states[n.ID] = replication.PeerState{ID: n.ID, State: replication.StateDown, DownForMillis: time.Hour.Milliseconds()}
			case "suspect":
				states[n.ID] = replication.PeerState{ID: n.ID, State: replication.StateSuspect}
			}
		}
		nodes = append(nodes, n)
	}
	peer := func(id string) (replication.PeerState, bool) { p, ok := states[id]; return p, ok }
	return rolePlanner{target: target, leader: "n1", members: members,
		topo: replication.NewTopology(nodes, peer, time.Minute), maxVoters: 5}
}

// stepsString is "n4=voter n1=nonvoter".
func stepsString(steps []roleStep) string {
	var parts []string
	for _, s := range steps {
		role := "nonvoter"
		if s.voter {
			role = "voter"
		}
		parts = append(parts, s.id+"="+role)
	}
	return strings.Join(parts, " ")
}

func TestRolePlan(t *testing.T) {
	three := []string{"n1:az1:v", "n2:az2:v", "n3:az3:v"}
	cases := []struct {
		name   string
		target string
		voter  bool
		unsafe bool
		nodes  []string
		steps  string // expected steps, or
		err    error  // expected refusal
		msg    string // in the refusal or a note
	}{
		{name: "already a voter", target: "n2", voter: true, nodes: three, steps: ""},
		{name: "already a non-voter", target: "n4", voter: false, nodes: append(three, "n4:az1:n"), steps: ""},
		{name: "promote into an AZ without voter", target: "n4", voter: true,
			nodes: []string{"n1:az1:v", "n2:az2:v", "n3:az3:v", "n4:az4:n", "n5:az5:v"}, steps: "n4=voter"},
		{name: "a second voter in az2 moves the vote", target: "n4", voter: true, nodes: append(three, "n4:az2:n"),
			steps: "n4=voter n2=nonvoter", msg: "the vote of az2 moved from n2 to n4"},
		{name: "the vote moves from a down voter first", target: "n5", voter: true,
			nodes: []string{"n1:az1:v", "n2:az2:v:down", "n3:az3:v", "n4:az2:v", "n5:az2:n", "n6:az4:v"}, steps: "n5=voter n2=nonvoter"},
		{name: "a second voter in the leader's AZ", target: "n4", voter: true, nodes: append(three, "n4:az1:n"),
			err: meta.ErrInvalid, msg: "held by the leader n1"},
		{name: "unsafe promotion insisted on", target: "n4", voter: true, unsafe: true, nodes: append(three, "n4:az1:n"),
			steps: "n4=voter", msg: "no longer keep a majority"},
		{name: "no vote for a draining node", target: "n4", voter: true, nodes: append(three, "n4:az2:n:draining"),
			err: meta.ErrInvalid, msg: "draining"},
		{name: "no vote for a down node", target: "n4", voter: true, nodes: append(three, "n4:az4:n:down"),
			err: admin.ErrUnsafeVoters, msg: "n4 is down"},
		{name: "no vote for a suspect node", target: "n4", voter: true, nodes: append(three, "n4:az4:n:suspect"),
			err: admin.ErrUnsafeVoters, msg: "n4 is suspect"},
		{name: "at most five voters", target: "n6", voter: true,
			nodes: []string{"n1:az1:v", "n2:az2:v", "n3:az3:v", "n4:az4:v", "n5:az5:v", "n6:az6:n"},
			err:   admin.ErrUnsafeVoters, msg: "5 voters"},
		{name: "a two-AZ cluster cannot get worse", target: "n3", voter: true,
			nodes: []string{"n1:az1:v", "n2:az2:v", "n3:az1:n"}, steps: "n3=voter"},
		{name: "admit a non-member as voter", target: "n4", voter: true,
			nodes: []string{"n1:az1:v", "n2:az2:v", "n3:az3:v", "n4:az4:-", "n5:az5:v"}, steps: "n4=voter"},
		{name: "admit a non-member as non-voter", target: "n4", voter: false, nodes: append(three, "n4:az1:-"), steps: "n4=nonvoter"},
		{name: "admitted as non-voter, promoted by the healer", target: "n4", voter: false,
			nodes: []string{"n1:az1:v", "n2:az2:v", "n3:az3:v", "n4:az4:-"}, steps: "n4=nonvoter", msg: "the healer will promote n4"},
		{name: "demote hands the vote to the AZ's other node", target: "n2", voter: false, nodes: append(three, "n4:az2:n"),
			steps: "n4=voter n2=nonvoter", msg: "n4 takes over the vote of n2"},
		{name: "demote the only node of an AZ", target: "n2", voter: false, nodes: three,
			err: admin.ErrUnsafeVoters, msg: "would promote n2 again"},
		{name: "demote the leader", target: "n1", voter: false, nodes: append(three, "n4:az1:n"),
			err: meta.ErrInvalid, msg: "transfer"},
		{name: "demote one of two voters of an AZ (2+2+1)", target: "n4", voter: false,
			nodes: append(three, "n4:az2:v", "n5:az3:v"), err: admin.ErrUnsafeVoters, msg: "would not keep a majority"},
		{name: "demote one of two voters, insisting", target: "n4", voter: false, unsafe: true,
			nodes: append(three, "n4:az2:v", "n5:az3:v"), steps: "n4=nonvoter"},
		{name: "demote a draining voter with no replacement", target: "n2", voter: false,
			nodes: []string{"n1:az1:v", "n2:az2:v:draining", "n3:az3:v", "n4:az4:v"}, steps: "n2=nonvoter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := roleCluster(t, tc.target, tc.nodes...)
			p.allowUnsafe = tc.unsafe
			plan, err := p.plan(tc.voter)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("want a refusal matching %v with %q, got steps %q, err %v", tc.err, tc.msg, stepsString(plan.steps), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if got := stepsString(plan.steps); got != tc.steps {
				t.Errorf("steps %q, want %q (notes %q)", got, tc.steps, plan.notes)
			}
			if tc.msg != "" && !strings.Contains(fmt.Sprint(plan.notes), tc.msg) {
				t.Errorf("notes %q lack %q", plan.notes, tc.msg)
			}
			// A demotion the healer would undo is refused: it never
			// promotes a demoted member again (it never demotes a live
			// voter either, so promotions stay).
			if _, member := p.members[tc.target]; member && !tc.voter {
				after := with(p.members, plan.steps...)
				if slices.Contains(healerPromotes(p.topo, after, p.maxVoters), tc.target) {
					t.Errorf("the healer would promote %s back", tc.target)
				}
			}
		})
	}
}

func TestSurvivesAZLoss(t *testing.T) {
	for _, tc := range []struct {
		nodes []string
		want  bool
	}{
		{[]string{"n1:az1:v", "n2:az2:v", "n3:az3:v"}, true},
		{[]string{"n1:az1:v", "n2:az2:v", "n3:az3:v", "n4:az1:v"}, false},
		{[]string{"n1:az1:v", "n2:az2:v", "n3:az3:v", "n4:az1:v", "n5:az2:v"}, true},
		{[]string{"n1:az1:v", "n2:az2:v"}, false},
		{[]string{"n1:az1:v"}, false},
		{[]string{"n1:az1:v", "n2:az2:v", "n3:az3:v", "n4:az4:v", "n5:az5:v"}, true},
	} {
		p := roleCluster(t, "", tc.nodes...)
		if got := p.survivesAZLoss(p.members); got != tc.want {
			t.Errorf("%v: survives %v, want %v", tc.nodes, got, tc.want)
		}
	}
}
