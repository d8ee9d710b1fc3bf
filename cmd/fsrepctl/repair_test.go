package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/replication"
)

func TestRepairStatus(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	cl.b.SetRepair(replication.RepairStatus{Grace: time.Minute, RateLimit: 50 << 20, Queue: 12, QueueUrgent: 2, InFlight: 3,
		Copied: 40, CopiedBytes: 160 << 20, Failed: 1})
	cl.b.SetNodeState("n3", replication.StateDown)
	cl.b.SetNodeChunks("n1", 17)
	cl.b.SetNodeFree("n1", 1<<40)
	wantExit(t, cl.ctl(t, "node", "drain", "n2"), exitOK)

	r := cl.ctl(t, "repair", "status")
	wantExit(t, r, exitOK)
	for _, want := range []string{
		"Leader:      n1",
		"Repair:      running",
		"Queue:       12 chunk(s), 2 with a single healthy replica left",
		"In flight:   3",
		"Copied:      40 chunk(s), 160MiB; 1 failed (since n1 became leader)",
		"Grace:       1m0s",
		"Rate limit:  50MiB/s",
		"n1  az1  up           17      1TiB  2025-01-01T00:00:00Z",
		"n2  az2  up,draining  0       -",
		"n3  az3  down",
		"az3  1      0   down",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("repair status lacks %q:\n%s", want, r.stdout)
		}
	}

	r = cl.ctl(t, "repair", "status", "-o", "json")
	wantExit(t, r, exitOK)
	var rs replication.RepairStatus
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || rs.Queue != 12 || len(rs.Nodes) != 3 || !rs.Nodes[1].Draining {
		t.Errorf("repair status json: %+v %v\n%s", rs, err, r.stdout)
	}
}

func TestRepairPauseResume(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	cl.b.SetRepair(replication.RepairStatus{Queue: 5, InFlight: 2})
	r := cl.ctl(t, "repair", "pause")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "Repair paused on leader n1: 5 chunk(s) queued; 2 copies in flight will finish" || !cl.b.RepairStatus().Paused {
		t.Errorf("pause:\n%s", r)
	}
	r = cl.ctl(t, "repair", "status")
	if !strings.Contains(r.stdout, "Repair:      paused (resume with: fsrepctl repair resume)") {
		t.Errorf("paused status:\n%s", r.stdout)
	}
	r = cl.ctl(t, "repair", "resume", "-o", "json")
	wantExit(t, r, exitOK)
	var rs replication.RepairStatus
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || rs.Paused || cl.b.RepairStatus().Paused {
		t.Errorf("resume -o json: %+v %v", rs, err)
	}
}

func TestRepairWatch(t *testing.T) {
	cl := newCluster(t, threeAZs...)

	// --until-idle follows the queue down and stops when it is empty.
	cl.b.SetRepair(replication.RepairStatus{Queue: 3})
	cl.b.SetRepairProgress(1)
	r := cl.ctl(t, "repair", "status", "--until-idle", "--interval", "5ms")
	wantExit(t, r, exitOK)
	if n := strings.Count(r.stdout, "Queue:"); n != 3 || strings.Count(r.stdout, "\n---\n") != 2 ||
		!strings.Contains(r.stdout, "Queue:       0 chunk(s)") {
		t.Errorf("until-idle printed %d reports:\n%s", n, r.stdout)
	}
	// Already idle: one report.
	r = cl.ctl(t, "repair", "status", "--until-idle", "-o", "json")
	wantExit(t, r, exitOK)
	var rs replication.RepairStatus
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || rs.Queue != 0 {
		t.Errorf("idle until-idle -o json: %v\n%s", err, r.stdout)
	}

	// Interrupted before idle: exit 1, saying so.
	cl.b.SetRepairProgress(0)
	cl.b.SetRepair(replication.RepairStatus{Queue: 9})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	r = cl.ctlCtx(ctx, "repair", "status", "--until-idle", "--interval", "10ms")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "interrupted before repair went idle") {
		t.Errorf("interrupted until-idle:\n%s", r)
	}

	// A plain --watch ends quietly when interrupted, after several reports.
	ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	r = cl.ctlCtx(ctx, "repair", "status", "--watch", "--interval", "10ms", "-o", "json")
	wantExit(t, r, exitOK)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	n := 0
	for dec.More() {
		if err := dec.Decode(&rs); err != nil || rs.Queue != 9 {
			t.Fatalf("watch report %d: %+v %v", n, rs, err)
		}
		n++
	}
	if n < 2 {
		t.Errorf("watch printed %d reports:\n%s", n, r)
	}
}

func TestRepairWithoutHealer(t *testing.T) {
	cl := newPlainCluster(t, threeAZs...)
	for _, args := range [][]string{{"repair", "status"}, {"repair", "pause"}, {"repair", "status", "--until-idle"}} {
		r := cl.ctl(t, args...)
		wantExit(t, r, exitError)
		if !strings.Contains(r.stderr, "no healer") {
			t.Errorf("%q without a healer:\n%s", args, r)
		}
	}
}

func TestRepairStart(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	cl.b.SetRepair(replication.RepairStatus{Queue: 3, Paused: true})
	cl.b.SetRepairProgress(1)
	r := cl.ctl(t, "repair", "start", "--wait", "--interval", "5ms")
	wantExit(t, r, exitOK)
	if cl.b.RepairStatus().Paused || !strings.Contains(r.stdout, "Repair resumed on leader n1") ||
		!strings.Contains(r.stdout, "Repair is idle: nothing queued or in flight.") {
		t.Errorf("repair start --wait:\n%s", r)
	}
	if !strings.Contains(r.stderr, "repairing") {
		t.Errorf("repair start --wait showed no progress on stderr:\n%s", r.stderr)
	}
	wantExit(t, cl.ctl(t, "repair", "start", "extra"), exitUsage)
}
