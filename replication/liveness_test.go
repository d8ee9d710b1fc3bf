package replication

import (
	"testing"
	"time"

	"github.com/fsrep/fsrep/meta"
)

func newTestLiveness(t *testing.T) (*Liveness, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	l, err := NewLiveness(DefaultLivenessConfig(), clock)
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}

func wantStates(t *testing.T, l *Liveness, want map[string]NodeState) {
	t.Helper()
	for id, s := range want {
		if got := l.NodeState(id); got != s {
			t.Errorf("%s is %q, want %q", id, got, s)
		}
	}
}

func TestLivenessConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg LivenessConfig
		ok  bool
	}{
		{DefaultLivenessConfig(), true},
		{LivenessConfig{HeartbeatInterval: 100 * time.Millisecond, SuspectAfter: 300 * time.Millisecond, DownAfter: time.Second}, true},
		{LivenessConfig{HeartbeatInterval: 0, SuspectAfter: 3 * time.Second, DownAfter: 10 * time.Second}, false},
		{LivenessConfig{HeartbeatInterval: 3 * time.Second, SuspectAfter: 3 * time.Second, DownAfter: 10 * time.Second}, false},
		{LivenessConfig{HeartbeatInterval: time.Second, SuspectAfter: 10 * time.Second, DownAfter: 10 * time.Second}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: Validate() = %v, want ok=%v", c.cfg, err, c.ok)
		}
	}
}

// TestLivenessStates drives one node through up, suspect and down with the
// clock, and checks that a beat brings it back.
func TestLivenessStates(t *testing.T) {
	l, clock := newTestLiveness(t)
	l.Reset([]string{"n1", "n2", "n3"})
	wantStates(t, l, map[string]NodeState{"n1": StateUp, "n2": StateUp, "n3": StateUp, "nx": ""})

	clock.Advance(2 * time.Second)
	l.Beat(Heartbeat{Node: "n1", FreeBytes: 100, UsedBytes: 10, Chunks: 3})
	l.Beat(Heartbeat{Node: "n3", FreeBytes: 300})
	clock.Advance(1500 * time.Millisecond) // n2 silent for 3.5 s
	wantStates(t, l, map[string]NodeState{"n1": StateUp, "n2": StateSuspect, "n3": StateUp})

	l.Beat(Heartbeat{Node: "n3", FreeBytes: 300})
	clock.Advance(7 * time.Second) // n2 silent 10.5 s, n1 8.5 s, n3 7 s
	wantStates(t, l, map[string]NodeState{"n1": StateSuspect, "n2": StateDown, "n3": StateSuspect})
	p, ok := l.Peer("n2")
	if !ok || p.DownFor() != 500*time.Millisecond || p.FreeBytes != -1 {
		t.Fatalf("n2 = %+v, %v; want down for 500ms with unknown free space", p, ok)
	}
	if p, _ := l.Peer("n1"); p.FreeBytes != 100 || p.DownForMillis != 0 {
		t.Fatalf("n1 = %+v", p)
	}

	reply := l.Reply("n3")
	if reply.Leader != "n3" || len(reply.Nodes) != 3 || reply.Nodes[0].ID != "n1" || reply.Nodes[1].State != StateDown {
		t.Fatalf("reply = %+v", reply)
	}

	health := l.Health([]meta.NodeInfo{{ID: "n1", AZ: "az1"}, {ID: "n2", AZ: "az2", Draining: true}, {ID: "n4", AZ: "az2"}},
		map[string]int{"n1": 7})
	if h := health[0]; h.State != StateSuspect || h.Chunks != 7 || h.FreeBytes != 100 || h.UsedBytes != 10 || h.Files != 3 || !h.DownSince.IsZero() {
		t.Errorf("n1 health = %+v", h)
	}
	if h := health[1]; h.State != StateDown || !h.Draining || h.DownSince != clock.Now().Add(-500*time.Millisecond) {
		t.Errorf("n2 health = %+v (now %v)", h, clock.Now())
	}
	if h := health[2]; h.State != StateUp || h.FreeBytes != -1 {
		t.Errorf("untracked n4 health = %+v", h)
	}

	l.Beat(Heartbeat{Node: "n2"})
	wantStates(t, l, map[string]NodeState{"n2": StateUp})
}

// TestLivenessResetAfterLeaderChange: a new leader starts every node as
// seen now, so a node down under the old leader is not down before
// DownAfter has passed again (no false alarm, and the grace starts over).
func TestLivenessResetAfterLeaderChange(t *testing.T) {
	l, clock := newTestLiveness(t)
	l.Reset([]string{"n1", "n2"})
	clock.Advance(time.Minute)
	wantStates(t, l, map[string]NodeState{"n1": StateDown, "n2": StateDown})
	l.Reset([]string{"n1", "n2", "n3"})
	wantStates(t, l, map[string]NodeState{"n1": StateUp, "n2": StateUp, "n3": StateUp})
	clock.Advance(9 * time.Second)
	wantStates(t, l, map[string]NodeState{"n1": StateSuspect})
	clock.Advance(time.Second)
	wantStates(t, l, map[string]NodeState{"n1": StateDown})

	// Track forgets removed nodes and starts new ones now.
	l.Track([]string{"n1", "n4"})
	wantStates(t, l, map[string]NodeState{"n1": StateDown, "n2": "", "n3": "", "n4": StateUp})
}

func TestAZView(t *testing.T) {
	got := AZView([]NodeHealth{
		{ID: "n1", AZ: "az1", State: StateDown}, {ID: "n4", AZ: "az1", State: StateSuspect},
		{ID: "n2", AZ: "az2", State: StateDown}, {ID: "n3", AZ: "az3", State: StateUp},
	})
	want := []AZHealth{{AZ: "az1", Nodes: 2, Up: 1}, {AZ: "az2", Nodes: 1, Down: true}, {AZ: "az3", Nodes: 1, Up: 1}}
	if len(got) != len(want) {
		t.Fatalf("AZView = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("AZView[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestView: a node's copy of the leader's verdicts ages the down times and
// is ignored once too old.
func TestView(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	v := NewView(clock, 10*time.Second)
	if s := v.NodeState("n1"); s != "" || v.FreeBytes("n1") != -1 || v.Leader() != "" {
		t.Fatalf("empty view answers %q", s)
	}
	v.Update(HeartbeatReply{Leader: "n2", Nodes: []PeerState{
		{ID: "n1", State: StateDown, DownForMillis: 1000, FreeBytes: -1},
		{ID: "n2", State: StateUp, FreeBytes: 5 << 30},
	}})
	clock.Advance(2 * time.Second)
	if p, ok := v.Peer("n1"); !ok || p.State != StateDown || p.DownFor() != 3*time.Second {
		t.Fatalf("n1 = %+v, %v; want down for 3s", p, ok)
	}
	if v.NodeState("n2") != StateUp || v.FreeBytes("n2") != 5<<30 || v.NodeState("n9") != "" || v.Leader() != "n2" {
		t.Fatal("view lost the reply")
	}
	clock.Advance(9 * time.Second)
	if s := v.NodeState("n1"); s != "" {
		t.Fatalf("an 11 s old reply still answers %q", s)
	}
}
