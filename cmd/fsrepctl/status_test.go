package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

func TestStatusTable(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	cl.b.Register(t, meta.NodeInfo{ID: "n4", AZ: "az1"}, false)
	st := cl.b.Status()
	st.NonVoters = []string{"n4"}
	cl.b.SetStatus(st)
	wantExit(t, cl.ctl(t, "volume", "create", "data"), exitOK)

	r := cl.ctl(t, "status")
	wantExit(t, r, exitOK)
	for _, want := range []string{
		"Node:    n1 (az1)",
		"Health:  ok",
		"n1  az1  leader",
		"n2  az2  voter",
		"n4  az1  nonvoter",
		"data  1   3         2             4MiB",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status table lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestStatusUnhealthy(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	cl.b.Register(t, meta.NodeInfo{ID: "n9", AZ: "az3"}, false) // not a Raft member

	r := cl.ctl(t, "status")
	wantExit(t, r, exitUnhealthy)
	if !strings.Contains(r.stdout, "Health:  degraded") || !strings.Contains(r.stdout, "- node n9 (az3) is registered but not in the Raft configuration") ||
		!strings.Contains(r.stdout, "n9  az3  not-member") {
		t.Errorf("degraded status:\n%s", r.stdout)
	}

	r = cl.ctl(t, "status", "-o", "json")
	wantExit(t, r, exitUnhealthy)
	var st admin.StatusResponse
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r.stdout)
	}
	if st.Health != admin.HealthDegraded || len(st.Nodes) != 4 || st.Node != "n1" || len(st.Reasons) != 1 {
		t.Errorf("status json: %+v", st)
	}
	if !strings.Contains(r.stdout, `"raft": {`) || !strings.Contains(r.stdout, `"voters": [`) {
		t.Errorf("status json should carry the raft status:\n%s", r.stdout)
	}

	s := cl.b.Status()
	s.Leader, s.State = "", "Candidate"
	cl.b.SetStatus(s)
	r = cl.ctl(t, "status")
	wantExit(t, r, exitUnhealthy)
	if !strings.Contains(r.stdout, "Health:  down") {
		t.Errorf("down status:\n%s", r.stdout)
	}
}

func TestHealth(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	noToken := invocation{} // the default token file does not exist in the test's directory

	// Ready and no token: like the container health check.
	r := fsrepctl(t, noToken, "health", "--admin", cl.addr)
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "node ready (cluster health not checked: no admin token)") {
		t.Errorf("health without token:\n%s", r)
	}

	// With a token the cluster health counts too.
	r = cl.ctl(t, "health")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "node ready, cluster health ok" {
		t.Errorf("health with token:\n%s", r)
	}
	cl.b.Register(t, meta.NodeInfo{ID: "n9", AZ: "az3"}, false)
	r = cl.ctl(t, "health")
	wantExit(t, r, exitUnhealthy)
	if !strings.Contains(r.stdout, "cluster health degraded") || !strings.Contains(r.stdout, "- node n9") {
		t.Errorf("degraded health:\n%s", r)
	}
	r = cl.ctl(t, "health", "-o", "json")
	wantExit(t, r, exitUnhealthy)
	var rep healthReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || !rep.Ready || rep.Health != "degraded" || len(rep.Reasons) != 1 {
		t.Errorf("degraded health json: %+v %v\n%s", rep, err, r.stdout)
	}
	// Without a token the degradation is not visible: ready is enough.
	wantExit(t, fsrepctl(t, noToken, "health", "--admin", cl.addr), exitOK)

	// Not ready: exit 4 whatever the token.
	cl.b.SetReady(errors.New("no metadata leader"))
	r = fsrepctl(t, noToken, "health", "--admin", cl.addr)
	wantExit(t, r, exitUnhealthy)
	if !strings.Contains(r.stdout, "node not ready: no metadata leader") {
		t.Errorf("not ready:\n%s", r)
	}
	r = fsrepctl(t, noToken, "health", "--admin", cl.addr, "-o", "json")
	wantExit(t, r, exitUnhealthy)
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Ready || !strings.Contains(rep.Reason, "no metadata leader") {
		t.Errorf("not ready json: %+v %v", rep, err)
	}

	// A token file named explicitly must exist.
	missing := filepath.Join(t.TempDir(), "nope")
	cl.b.SetReady(nil)
	wantExit(t, fsrepctl(t, noToken, "health", "--admin", cl.addr, "--token-file", missing), exitError)
	good := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(good, []byte(testToken), 0o600); err != nil {
		t.Fatal(err)
	}
	wantExit(t, fsrepctl(t, noToken, "health", "--admin", cl.addr, "--token-file", good), exitUnhealthy)
	// A wrong token is an error, not a pass.
	wantExit(t, fsrepctl(t, noToken, "health", "--admin", cl.addr, "--token", "wrong"), exitError)
}

func TestStatusRepair(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	cl.b.SetNodeChunks("n1", 30)
	cl.b.SetNodeFree("n1", 2<<30)
	r := cl.ctl(t, "status")
	wantExit(t, r, exitOK)
	for _, want := range []string{
		"ID  AZ   ROLE    STATE  CHUNKS  FREE  NFS",
		"n1  az1  leader  up     30      2GiB  10.0.0.1:2049",
		"Repair: running; queue 0 (0 urgent), 0 in flight",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}

	// A node down and a drain: degraded, with the states in the table.
	cl.b.SetNodeState("n3", replication.StateDown)
	wantExit(t, cl.ctl(t, "node", "drain", "n2"), exitOK)
	cl.b.SetRepair(replication.RepairStatus{Queue: 8, InFlight: 2})
	r = cl.ctl(t, "status")
	wantExit(t, r, exitUnhealthy)
	for _, want := range []string{
		"Health:  degraded",
		"- AZ az3 is down",
		"- node n3 (az3) is down since 2025-01-01T00:00:00Z",
		"n2  az2  voter   up,draining",
		"n3  az3  voter   down",
		"Repair: running; queue 8 (0 urgent), 2 in flight",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("degraded status lacks %q:\n%s", want, r.stdout)
		}
	}

	// One replica left somewhere: at risk, and health says so too.
	cl.b.SetRepair(replication.RepairStatus{Queue: 8, QueueUrgent: 3})
	r = cl.ctl(t, "status", "-o", "json")
	wantExit(t, r, exitUnhealthy)
	var st admin.StatusResponse
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Health != admin.HealthAtRisk || st.Repair == nil || st.Repair.QueueUrgent != 3 {
		t.Fatalf("at-risk status json: %+v %v", st, err)
	}
	r = cl.ctl(t, "health")
	wantExit(t, r, exitUnhealthy)
	if !strings.Contains(r.stdout, "cluster health at_risk") || !strings.Contains(r.stdout, "3 chunk(s) have a single healthy replica left") {
		t.Errorf("at-risk health:\n%s", r)
	}
}

func TestStatusWithoutHealer(t *testing.T) {
	cl := newPlainCluster(t, threeAZs...)
	r := cl.ctl(t, "status")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "ID  AZ   ROLE    NFS") || strings.Contains(r.stdout, "Repair:") {
		t.Errorf("status without a healer:\n%s", r.stdout)
	}
}

func TestStatusWatch(t *testing.T) {
	cl := newCluster(t, threeAZs...)

	// Interrupted after several screens: the verdict of the last one.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	r := cl.ctlCtx(ctx, "status", "--watch", "--interval", "10ms")
	wantExit(t, r, exitOK)
	if n := strings.Count(r.stdout, "Health:  ok"); n < 2 || strings.Count(r.stdout, "\n---\n") != n-1 {
		t.Errorf("status --watch printed %d screens:\n%s", n, r)
	}

	// JSON: one document per screen; a degraded cluster ends with exit 4.
	cl.b.SetNodeState("n3", replication.StateDown)
	ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	r = cl.ctlCtx(ctx, "status", "--watch", "--interval", "10ms", "-o", "json")
	wantExit(t, r, exitUnhealthy)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	n := 0
	for dec.More() {
		var st admin.StatusResponse
		if err := dec.Decode(&st); err != nil || st.Health != admin.HealthDegraded {
			t.Fatalf("screen %d: %+v %v", n, st, err)
		}
		n++
	}
	if n < 2 {
		t.Errorf("status --watch -o json printed %d screens:\n%s", n, r)
	}

	// Nothing answering: retried until interrupted, then exit 5.
	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	r = fsrepctlCtx(ctx, invocation{}, "--admin", closedAddr(t), "--token", testToken, "status", "--watch", "--interval", "10ms")
	wantExit(t, r, exitUnreachable)
	if !strings.Contains(r.stderr, "(retrying)") {
		t.Errorf("status --watch, unreachable:\n%s", r)
	}
	wantExit(t, cl.ctl(t, "status", "--watch", "--interval", "0s"), exitUsage)
	wantExit(t, cl.ctl(t, "status", "extra"), exitUsage)
}
