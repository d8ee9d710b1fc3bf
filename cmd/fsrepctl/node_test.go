package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

func TestNodeList(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	cl.b.Register(t, meta.NodeInfo{ID: "n4", AZ: "az2"}, false)

	r := cl.ctl(t, "node", "list")
	wantExit(t, r, exitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID  AZ   REGION  VOTER  NFS") {
		t.Fatalf("node table:\n%s", r.stdout)
	}
	if f := strings.Fields(lines[2]); f[0] != "n2" || f[1] != "az2" || f[2] != "r1" || f[3] != "yes" || f[4] != "10.0.0.2:2049" {
		t.Errorf("row n2: %q", f)
	}
	if f := strings.Fields(lines[4]); f[0] != "n4" || f[2] != "-" || f[3] != "no" {
		t.Errorf("row n4: %q", f)
	}

	r = cl.ctl(t, "node", "list", "-o", "json")
	wantExit(t, r, exitOK)
	var nodes []meta.NodeInfo
	if err := json.Unmarshal([]byte(r.stdout), &nodes); err != nil {
		t.Fatalf("node list -o json: %v\n%s", err, r.stdout)
	}
	if len(nodes) != 4 || nodes[0].ID != "n1" || !nodes[0].Voter || nodes[3].Voter || nodes[0].AdminAddr != "10.0.0.1:9090" {
		t.Errorf("nodes: %+v", nodes)
	}
}

func TestNodeDrainUndrain(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	r := cl.ctl(t, "node", "drain", "n2")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "Draining node n2 (az2)") || !strings.Contains(r.stdout, "fsrepctl node drain n2 --wait") {
		t.Errorf("drain:\n%s", r)
	}
	if n, _ := cl.b.FSM().Node("n2"); !n.Draining {
		t.Fatal("n2 not draining")
	}
	r = cl.ctl(t, "node", "undrain", "n2", "-o", "json")
	wantExit(t, r, exitOK)
	var n meta.NodeInfo
	if err := json.Unmarshal([]byte(r.stdout), &n); err != nil || n.ID != "n2" || n.Draining {
		t.Errorf("undrain -o json: %+v %v", n, err)
	}
	r = cl.ctl(t, "node", "undrain", "n2")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "Node n2 (az2) is back in service: it takes new replicas again" {
		t.Errorf("undrain:\n%s", r)
	}
	wantExit(t, cl.ctl(t, "node", "drain", "n9"), exitNotFound)
	wantExit(t, cl.ctl(t, "node", "undrain", "n9"), exitNotFound)
}

func TestNodeDrainWait(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	cl.b.SetNodeChunks("n2", 7)
	cl.b.SetRepairProgress(2)
	r := cl.ctl(t, "node", "drain", "n2", "--wait", "--interval", "5ms")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "Node n2 is drained: it holds no chunks.") || !strings.Contains(r.stdout, "fsrepctl node remove n2") {
		t.Errorf("drain --wait:\n%s", r)
	}
	// Not a terminal: one progress line per change (7 chunks, 2 moved per
	// look: 5 left at the first, then 3, 1, 0), the last one complete.
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "draining n2: [------------------------]   0%  0/5") ||
		!strings.Contains(lines[3], "[########################] 100%  5/5 chunks moved") || !strings.Contains(lines[3], "ETA 0s") {
		t.Errorf("drain progress:\n%s", r.stderr)
	}

	// Undrained while waiting: the wait fails and says why.
	cl.b.SetRepairProgress(0)
	cl.b.SetNodeChunks("n3", 4)
	done := make(chan result)
	go func() { done <- cl.ctlCtx(t.Context(), "node", "drain", "n3", "--wait", "--interval", "5ms") }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := cl.b.FSM().Node("n3"); n.Draining || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := cl.b.DrainNode(t.Context(), "n3", false); err != nil {
		t.Fatal(err)
	}
	r = <-done
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "node n3 is no longer draining") {
		t.Errorf("undrained during the wait:\n%s", r)
	}

	// Interrupted: exit 1, and the drain goes on.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	r = cl.ctlCtx(ctx, "node", "drain", "n3", "--wait", "--interval", "5ms", "-o", "json")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "interrupted before node n3 was drained (the drain goes on)") || r.stdout != "" {
		t.Errorf("interrupted drain --wait:\n%s", r)
	}
	if n, _ := cl.b.FSM().Node("n3"); !n.Draining {
		t.Error("interrupting the wait undrained the node")
	}
}

func TestNodeRemove(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	cl.b.SetNodeChunks("n3", 12)

	// No terminal, no --yes: refused before anything is asked.
	r := cl.ctl(t, "node", "remove", "n3")
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "without --yes") {
		t.Errorf("remove without --yes:\n%s", r)
	}
	// A terminal and the wrong answer.
	inv := invocation{terminal: true, stdin: "n2\n"}
	args := []string{"--admin", cl.addr, "--token", testToken, "node", "remove", "n3"}
	r = fsrepctl(t, inv, args...)
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "Removing node n3 (az3, a Raft voter), holding 12 chunk replica(s)") ||
		!strings.Contains(r.stderr, "confirmation did not match") {
		t.Errorf("remove with a wrong confirmation:\n%s", r)
	}
	if _, err := cl.b.FSM().Node("n3"); err != nil {
		t.Fatal("n3 removed without confirmation")
	}
	// Refused by the cluster: exit 1 with the reason.
	cl.b.SetRemoveError("n3", admin.ErrHoldsOnlyCopy)
	r = cl.ctl(t, "node", "remove", "n3", "--yes")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "still holds the only healthy replica") || !strings.Contains(r.stderr, "node drain n3 --wait") {
		t.Errorf("refused remove:\n%s", r)
	}
	// Confirmed.
	cl.b.SetRemoveError("n3", nil)
	inv.stdin = "n3\n"
	r = fsrepctl(t, inv, args...)
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "Removed node n3 (az3) from the cluster") {
		t.Errorf("remove:\n%s", r)
	}
	if _, err := cl.b.FSM().Node("n3"); err == nil {
		t.Fatal("n3 still registered")
	}
	// Gone: 3, with or without confirmation.
	wantExit(t, cl.ctl(t, "node", "remove", "n3", "--yes"), exitNotFound)
	wantExit(t, fsrepctl(t, inv, args...), exitNotFound)

	r = cl.ctl(t, "node", "remove", "n2", "--yes", "-o", "json")
	wantExit(t, r, exitOK)
	var n meta.NodeInfo
	if err := json.Unmarshal([]byte(r.stdout), &n); err != nil || n.ID != "n2" {
		t.Errorf("remove -o json: %+v %v", n, err)
	}
}

func TestNodeVerbsWithoutHealer(t *testing.T) {
	cl := newPlainCluster(t, threeAZs...)
	for _, args := range [][]string{{"node", "drain", "n2"}, {"node", "undrain", "n2"}, {"node", "remove", "n2", "--yes"}} {
		r := cl.ctl(t, args...)
		wantExit(t, r, exitError)
		if !strings.Contains(r.stderr, "no healer") {
			t.Errorf("%q without a healer:\n%s", args, r)
		}
	}
	wantExit(t, cl.ctl(t, "node", "list"), exitOK)
}

func TestNodeInfo(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	cl.b.SetNodeChunks("n2", 42)
	cl.b.SetNodeFree("n2", 3<<30)
	cl.b.SetNodeState("n2", replication.StateDown)

	r := cl.ctl(t, "node", "info", "n2")
	wantExit(t, r, exitOK)
	for _, want := range []string{
		"Node:            n2",
		"AZ:              az2 (region r1)",
		"Role:            voter",
		"Draining:        no",
		"State:           down",
		"Down since:      2025-01-01T00:00:00Z",
		"Last heartbeat:  2025-01-01T00:00:00Z (",
		"Chunks:          42 replica(s)",
		"Free:            3GiB",
		"NFS:             10.0.0.2:2049",
		"Admin:           10.0.0.2:9090",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("node info lacks %q:\n%s", want, r.stdout)
		}
	}

	r = cl.ctl(t, "node", "info", "n1", "-o", "json")
	wantExit(t, r, exitOK)
	var n admin.NodeResponse
	if err := json.Unmarshal([]byte(r.stdout), &n); err != nil || n.ID != "n1" || n.Role != admin.RoleLeader || n.Health == nil ||
		n.Health.State != replication.StateUp {
		t.Errorf("node info -o json: %+v %v\n%s", n, err, r.stdout)
	}

	r = cl.ctl(t, "node", "info", "n9")
	wantExit(t, r, exitNotFound)
	if !strings.Contains(r.stderr, `no node "n9"`) {
		t.Errorf("unknown node:\n%s", r)
	}
	wantExit(t, cl.ctl(t, "node", "info"), exitUsage)
	wantExit(t, cl.ctl(t, "node", "info", "n1", "n2"), exitUsage)

	// Without a healer: the node without its liveness.
	plain := newPlainCluster(t, threeAZs...)
	r = plain.ctl(t, "node", "info", "n3")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "State:     unknown (the leader's healer could not be asked)") {
		t.Errorf("node info without a healer:\n%s", r.stdout)
	}
}

func TestNodeAdd(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	cl.b.Register(t, meta.NodeInfo{ID: "n4", AZ: "az1"}, false)

	// Registered, not a member: admitted with the default role.
	r := cl.ctl(t, "node", "add", "n4")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "Admitted node n4 (az1) to the metadata group as a non-voter" {
		t.Errorf("node add n4:\n%s", r)
	}
	r = cl.ctl(t, "node", "add", "n4")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "Node n4 (az1) is already a non-voter of the metadata group; nothing changed" {
		t.Errorf("node add n4 again:\n%s", r)
	}
	r = cl.ctl(t, "node", "add", "n4", "--voter")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "Node n4 (az1) is now a voter (was a non-voter)" {
		t.Errorf("node add n4 --voter:\n%s", r)
	}
	r = cl.ctl(t, "node", "add", "n4", "--nonvoter", "-o", "json")
	wantExit(t, r, exitOK)
	var res admin.RoleResponse
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Node.ID != "n4" || res.Previous != admin.RoleVoter ||
		res.Role != admin.RoleNonVoter || len(res.Steps) != 1 || res.Node.Voter {
		t.Errorf("node add n4 --nonvoter -o json: %+v %v\n%s", res, err, r.stdout)
	}

	// Never registered: exit 3, and how to start it.
	r = cl.ctl(t, "node", "add", "n9", "--voter")
	wantExit(t, r, exitNotFound)
	if !strings.Contains(r.stderr, `node "n9" is not registered`) || !strings.Contains(r.stderr, "--join") {
		t.Errorf("node add n9:\n%s", r)
	}
	wantExit(t, cl.ctl(t, "node", "add", "n4", "--voter", "--nonvoter"), exitUsage)
	wantExit(t, cl.ctl(t, "node", "add"), exitUsage)

	r = fsrepctl(t, invocation{}, "node", "add", "--help")
	wantExit(t, r, exitOK)
	for _, want := range []string{"--join", "-allow-unsafe-voters", "unsafe_voters", "fsrepctl node add n4 --voter"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("node add --help lacks %q:\n%s", want, r.stdout)
		}
	}

	// Without a way to change roles: not implemented, exit 1.
	plain := newPlainCluster(t, threeAZs...)
	r = plain.ctl(t, "node", "add", "n2", "--nonvoter")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "no way to change Raft roles") {
		t.Errorf("node add without a RoleSetter:\n%s", r)
	}
}
