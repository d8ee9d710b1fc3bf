package replication

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/meta"
)

const testGrace = time.Minute

func nv(id, az string) NodeView { return NodeView{ID: id, AZ: az, State: StateUp, Free: -1} }

func withFree(n NodeView, gib int64) NodeView { n.Free = gib << 30; return n }

func lostNode(id, az string) NodeView {
	return NodeView{ID: id, AZ: az, State: StateDown, DownFor: testGrace + time.Second, Free: -1}
}

func downNode(id, az string, d time.Duration) NodeView {
	return NodeView{ID: id, AZ: az, State: StateDown, DownFor: d, Free: -1}
}

func draining(n NodeView) NodeView { n.Draining = true; return n }

func suspect(n NodeView) NodeView { n.State = StateSuspect; return n }

func testTopology(nodes ...NodeView) *Topology {
	t := &Topology{Nodes: map[string]NodeView{}, Grace: testGrace}
	for _, n := range nodes {
		t.Nodes[n.ID] = n
	}
	return t
}

// ref is chunk idx of file ino in volume 1 at version 7.
func ref(ino, idx uint64, replicas ...string) meta.ChunkRef {
	return meta.ChunkRef{Vol: 1, Ino: ino, Chunk: meta.Chunk{Index: idx, Version: 7, Length: 1 << 20, Replicas: replicas}}
}

// taskString renders a task for comparison: kind ino/idx sources>target [replicas] healthy.
func taskString(t Task) string {
	return fmt.Sprintf("%s %d/%d %s>%s [%s] h%d", t.Kind, t.Chunk.Ino, t.Chunk.Index,
		strings.Join(t.Sources, ","), t.Target, strings.Join(t.Replicas, " "), t.Healthy)
}

// base is four nodes over three AZs, az1 holding two.
var baseNodes = []NodeView{nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az1")}

func TestPlanner(t *testing.T) {
	for _, c := range []struct {
		name   string
		nodes  []NodeView
		load   map[string]int
		cfg    func(*PlanConfig)
		chunks []meta.ChunkRef
		want   []string
		// queue, urgent, unavailable, unplaceable
		counts [4]int
	}{
		{
			name:   "healthy: nothing to do",
			nodes:  baseNodes,
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3"), ref(1, 1, "n2", "n3", "n4")},
		},
		{
			name:   "a node down within the grace time: wait",
			nodes:  []NodeView{downNode("n1", "az1", testGrace-time.Second), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az1")},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3")},
		},
		{
			name:   "lost replica re-created in the AZ not holding the chunk, whatever the free space",
			nodes:  []NodeView{lostNode("n1", "az1"), nv("n2", "az2"), nv("n3", "az3"), withFree(nv("n4", "az1"), 1), withFree(nv("n5", "az2"), 900)},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3")},
			want:   []string{"repair 1/0 n2,n3>n4 [n2 n3 n4] h2"},
			counts: [4]int{1, 0, 0, 0},
		},
		{
			name: "most endangered first: one healthy replica before two",
			nodes: []NodeView{lostNode("n1", "az1"), withFree(nv("n2", "az2"), 5), nv("n3", "az3"),
				withFree(nv("n4", "az1"), 10), lostNode("n5", "az2"), withFree(nv("n6", "az2"), 1)},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3"), ref(2, 0, "n1", "n3", "n5")},
			want:   []string{"repair 2/0 n3>n4 [n3 n4] h1", "repair 1/0 n2,n3>n4 [n2 n3 n4] h2"},
			counts: [4]int{2, 1, 0, 0},
		},
		{
			name:   "drain: copy from a healthy replica, then leave the draining one out",
			nodes:  []NodeView{draining(nv("n1", "az1")), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az1")},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3"), ref(1, 1, "n2", "n3", "n4")},
			want:   []string{"repair 1/0 n2,n3,n1>n4 [n2 n3 n4] h2"},
			counts: [4]int{1, 0, 0, 0},
		},
		{
			name:   "drain: a draining node is the source of last resort and kept while still needed",
			nodes:  []NodeView{draining(nv("n1", "az1")), lostNode("n2", "az2"), nv("n3", "az3"), nv("n4", "az1"), nv("n5", "az2")},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2")},
			want:   []string{"repair 1/0 n1>n3 [n1 n3] h0"},
			counts: [4]int{1, 1, 0, 0},
		},
		{
			name:   "drained chunk with R healthy replicas elsewhere: drop, no copy",
			nodes:  []NodeView{draining(nv("n1", "az1")), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az1")},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3", "n4")},
			want:   []string{"drop 1/0 > [n2 n3 n4] h3"},
			counts: [4]int{1, 0, 0, 0},
		},
		{
			name:   "replica on a removed node: repaired at once",
			nodes:  baseNodes,
			chunks: []meta.ChunkRef{ref(1, 0, "n9", "n2", "n3")},
			want:   []string{"repair 1/0 n2,n3>n4 [n2 n3 n4] h2"},
			counts: [4]int{1, 0, 0, 0},
		},
		{
			name:   "suspect replicas are sources after up ones",
			nodes:  []NodeView{lostNode("n1", "az1"), suspect(nv("n2", "az2")), nv("n3", "az3"), nv("n4", "az1")},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3")},
			want:   []string{"repair 1/0 n3,n2>n4 [n2 n3 n4] h2"},
			counts: [4]int{1, 0, 0, 0},
		},
		{
			name:   "every replica down: unavailable, nothing to copy from",
			nodes:  []NodeView{lostNode("n1", "az1"), downNode("n2", "az2", time.Second), nv("n3", "az3"), nv("n4", "az1")},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2")},
			counts: [4]int{0, 0, 1, 0},
		},
		{
			name:   "nowhere to copy to: unplaceable",
			nodes:  []NodeView{nv("n1", "az1"), nv("n2", "az2"), lostNode("n3", "az3")},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3")},
			counts: [4]int{0, 0, 0, 1},
		},
		{
			name:   "spread: two replicas in one AZ while another AZ has room",
			nodes:  baseNodes,
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n4")},
			want:   []string{"spread 1/0 n1,n2,n4>n3 [n2 n3 n4] h3"},
			counts: [4]int{1, 0, 0, 0},
		},
		{
			name:  "rebalance onto a fresh node in a new AZ, from the most loaded nodes in turn",
			nodes: []NodeView{nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az4")},
			load:  map[string]int{"n1": 10, "n2": 10, "n3": 10},
			chunks: func() []meta.ChunkRef {
				var out []meta.ChunkRef
				for i := range uint64(10) {
					out = append(out, ref(1, i, "n1", "n2", "n3"))
				}
				return out
			}(),
			want: []string{
				"rebalance 1/0 n1,n2,n3>n4 [n2 n3 n4] h3", "rebalance 1/1 n2,n1,n3>n4 [n1 n3 n4] h3",
				"rebalance 1/2 n3,n1,n2>n4 [n1 n2 n4] h3", "rebalance 1/3 n1,n2,n3>n4 [n2 n3 n4] h3",
				"rebalance 1/4 n2,n1,n3>n4 [n1 n3 n4] h3", "rebalance 1/5 n3,n1,n2>n4 [n1 n2 n4] h3",
			},
			counts: [4]int{6, 0, 0, 0},
		},
		{
			name:  "rebalance onto a fresh node in a used AZ replaces only that AZ's replicas",
			nodes: baseNodes,
			load:  map[string]int{"n1": 10, "n2": 10, "n3": 10},
			chunks: func() []meta.ChunkRef {
				var out []meta.ChunkRef
				for i := range uint64(10) {
					out = append(out, ref(1, i, "n1", "n2", "n3"))
				}
				return out
			}(),
			want: []string{
				"rebalance 1/0 n1,n2,n3>n4 [n2 n3 n4] h3", "rebalance 1/1 n1,n2,n3>n4 [n2 n3 n4] h3",
				"rebalance 1/2 n1,n2,n3>n4 [n2 n3 n4] h3", "rebalance 1/3 n1,n2,n3>n4 [n2 n3 n4] h3",
			},
			counts: [4]int{4, 0, 0, 0},
		},
		{
			name:   "no rebalancing while anything needs repair",
			nodes:  []NodeView{nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az4")},
			load:   map[string]int{"n1": 10, "n2": 10, "n3": 10},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3"), ref(1, 1, "n9", "n2", "n3")},
			want:   []string{"repair 1/1 n2,n3>n4 [n2 n3 n4] h2"},
			counts: [4]int{1, 0, 0, 0},
		},
		{
			name:   "no rebalancing while a node is suspect",
			nodes:  []NodeView{nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az4"), suspect(nv("n5", "az5"))},
			load:   map[string]int{"n1": 10, "n2": 10, "n3": 10},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3")},
		},
		{
			name:   "balanced within the margin: no moves",
			nodes:  []NodeView{nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az4")},
			load:   map[string]int{"n1": 10, "n2": 10, "n3": 9, "n4": 8},
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3")},
		},
		{
			name:  "the queue keeps the most urgent tasks and counts the rest",
			nodes: []NodeView{lostNode("n1", "az1"), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az1"), lostNode("n5", "az2")},
			cfg:   func(c *PlanConfig) { c.MaxTasks = 2 },
			chunks: []meta.ChunkRef{ref(1, 0, "n1", "n2", "n3"), ref(1, 1, "n1", "n2", "n3"), ref(1, 2, "n1", "n5", "n3"),
				ref(1, 3, "n1", "n2", "n3"), ref(1, 4, "n1", "n2", "n3")},
			want:   []string{"repair 1/2 n3>n2 [n2 n3] h1", "repair 1/0 n2,n3>n4 [n2 n3 n4] h2"},
			counts: [4]int{5, 1, 0, 0},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			topo := testTopology(c.nodes...)
			topo.Load = c.load
			cfg := DefaultPlanConfig()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			p := NewPlanner(topo, cfg)
			for _, ch := range c.chunks {
				p.Add(ch, 3)
			}
			plan := p.Result()
			var got []string
			for _, task := range plan.Tasks {
				got = append(got, taskString(task))
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("tasks:\n got %q\nwant %q", got, c.want)
			}
			if counts := [4]int{plan.Queue, plan.Urgent, plan.Unavailable, plan.Unplaceable}; counts != c.counts {
				t.Errorf("queue, urgent, unavailable, unplaceable = %v, want %v", counts, c.counts)
			}
			if plan.Chunks != len(c.chunks) {
				t.Errorf("Chunks = %d, want %d", plan.Chunks, len(c.chunks))
			}
		})
	}
}

// TestPlannerLoadCounts: the load a pass reports is the next pass's input.
func TestPlannerLoadCounts(t *testing.T) {
	p := NewPlanner(testTopology(baseNodes...), DefaultPlanConfig())
	p.Add(ref(1, 0, "n1", "n2", "n3"), 3)
	p.Add(ref(1, 1, "n4", "n2", "n3"), 3)
	p.Add(ref(1, 2, "n9", "n2"), 2)
	load := p.Result().Load
	want := map[string]int{"n1": 1, "n2": 3, "n3": 2, "n4": 1, "n9": 1}
	if len(load) != len(want) {
		t.Fatalf("load = %v, want %v", load, want)
	}
	for id, n := range want {
		if load[id] != n {
			t.Errorf("load[%s] = %d, want %d", id, load[id], n)
		}
	}
}

// TestPlanVotersKeepsLeader: of an AZ's surplus voters, the leader (which
// applies the change) is never the one demoted.
func TestPlanVotersKeepsLeader(t *testing.T) {
	topo := testTopology(nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az1"))
	topo.Leader = "n4"
	all := map[string]bool{"n1": true, "n2": true, "n3": true, "n4": true}
	if got, want := PlanVoters(topo, all, 5), (VoterChange{Demote: "n1"}); got != want {
		t.Errorf("PlanVoters with n4 leading = %+v, want %+v", got, want)
	}
}

func TestPlanVoters(t *testing.T) {
	three := map[string]bool{"n1": true, "n2": true, "n3": true, "n4": false}
	for _, c := range []struct {
		name    string
		nodes   []NodeView
		members map[string]bool
		max     int
		want    VoterChange
	}{
		{"one voter per AZ: nothing to do", baseNodes, three, 5, VoterChange{}},
		{"a voter down within the grace time stays",
			[]NodeView{downNode("n1", "az1", time.Second), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az1")}, three, 5, VoterChange{}},
		{"a lost voter is replaced from its own AZ",
			[]NodeView{lostNode("n1", "az1"), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az1")}, three, 5,
			VoterChange{Demote: "n1", Promote: "n4"}},
		{"a lost voter with no node left in its AZ: a node of an AZ without a voter",
			[]NodeView{nv("n1", "az1"), lostNode("n2", "az2"), nv("n3", "az3"), nv("n4", "az1"), nv("n5", "az4")},
			map[string]bool{"n1": true, "n2": true, "n3": true, "n4": false, "n5": false}, 5,
			VoterChange{Demote: "n2", Promote: "n5"}},
		{"a lost voter without any replacement stays",
			[]NodeView{nv("n1", "az1"), lostNode("n2", "az2"), nv("n3", "az3"), nv("n4", "az1")},
			three, 5, VoterChange{}},
		{"a removed voter is replaced",
			[]NodeView{nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az1")}, three, 5,
			VoterChange{Demote: "n1", Promote: "n4"}},
		{"an AZ without a voter gets one",
			[]NodeView{nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az3")},
			map[string]bool{"n1": true, "n2": true, "n3": false}, 5, VoterChange{Promote: "n3"}},
		{"never more than the voter limit",
			[]NodeView{nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az3")},
			map[string]bool{"n1": true, "n2": true, "n3": false}, 2, VoterChange{}},
		{"draining nodes are not promoted",
			[]NodeView{nv("n1", "az1"), nv("n2", "az2"), draining(nv("n3", "az3"))},
			map[string]bool{"n1": true, "n2": true, "n3": false}, 5, VoterChange{}},
		{"a second voter in an AZ holding half the voters is demoted (the latest)",
			[]NodeView{nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az1")},
			map[string]bool{"n1": true, "n2": true, "n3": true, "n4": true}, 5, VoterChange{Demote: "n4"}},
		{"two voters in each of two AZs of five: losing either keeps a majority",
			[]NodeView{nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az3"), nv("n4", "az1"), nv("n5", "az2")},
			map[string]bool{"n1": true, "n2": true, "n3": true, "n4": true, "n5": true}, 5, VoterChange{}},
		{"two AZs: no demotion can help",
			[]NodeView{nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az1")},
			map[string]bool{"n1": true, "n2": true, "n3": true}, 5, VoterChange{}},
		{"two AZs: a third voter for a single-node failure",
			[]NodeView{nv("n1", "az1"), nv("n2", "az2"), nv("n3", "az1")},
			map[string]bool{"n1": true, "n2": true, "n3": false}, 5, VoterChange{Promote: "n3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := PlanVoters(testTopology(c.nodes...), c.members, c.max); got != c.want {
				t.Errorf("PlanVoters = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestCountReplicas(t *testing.T) {
	topo := testTopology(nv("n1", "az1"), nv("n2", "az2"), downNode("n3", "az3", time.Second), nv("n4", "az1"),
		draining(nv("n5", "az3")), nv("n6", "az3"))
	st := &ReplicaStatus{}
	for _, reps := range [][]string{
		{"n1", "n2", "n6"},       // healthy
		{"n1", "n2", "n3"},       // n3 down: under-replicated (even within the grace time)
		{"n3"},                   // unavailable
		{"n1", "n4", "n2"},       // az1 twice while az3 has n6: misplaced
		{"n1", "n2", "n5", "n6"}, // healthy, one draining replica
		{"n9", "n3"},             // unknown and down: unavailable
	} {
		topo.CountReplicas(st, 3, meta.Chunk{Replicas: reps})
	}
	got := [6]int{st.Chunks, st.Healthy, st.UnderReplicated, st.Unavailable, st.Misplaced, st.Draining}
	if want := [6]int{6, 2, 1, 2, 1, 1}; got != want {
		t.Errorf("chunks, healthy, under, unavailable, misplaced, draining = %v, want %v", got, want)
	}
	if az := st.PerAZ; az["az1"] != 5 || az["az2"] != 4 || az["az3"] != 2 {
		t.Errorf("per AZ = %v", az)
	}
}
