package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/replication"
)

func TestCheck(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	wantExit(t, cl.ctl(t, "volume", "create", "data"), exitOK)

	// Clean: exit 0.
	cl.b.SetCheckReport(&replication.CheckReport{Chunks: 5, Replicas: 15, Healthy: 5, Young: 1, OrphanAge: 10 * time.Minute,
		Nodes: []replication.CheckNode{{ID: "n1", AZ: "az1", Files: 5}, {ID: "n2", AZ: "az2", Files: 5}, {ID: "n3", AZ: "az3", Files: 6}}}, nil)
	r := cl.ctl(t, "check")
	wantExit(t, r, exitOK)
	for _, want := range []string{
		"Checked 5 chunks (15 replicas, headers and checksum tables) of every volume on 3 nodes",
		"(leader n1)", "Clean: no problems found.",
		"young             1",
		"NODE  AZ   FILES  ORPHANS  LISTING",
		"n3    az3  6      0        ok",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("clean check lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Findings") || strings.Contains(r.stdout, "Repair:") {
		t.Errorf("clean check lists findings or a repair:\n%s", r.stdout)
	}

	// Problems: printed, then exit 4.
	problems := &replication.CheckReport{Chunks: 5, Replicas: 15, Healthy: 4, UnderReplicated: 1, Corrupt: 1, Orphans: 1,
		Nodes: []replication.CheckNode{{ID: "n1", AZ: "az1", Files: 5}, {ID: "n2", AZ: "az2", Files: 6, Orphans: 1},
			{ID: "n3", AZ: "az3", Error: "listing chunk files: connection refused"}},
		Findings: []replication.CheckFinding{
			{Kind: replication.FindCorrupt, Volume: "data", Chunk: "v1-i2-c0", Node: "n1", Version: 65545, Detail: "block 0: checksum mismatch",
				Repair: "dropped for re-replication"},
			{Kind: replication.FindUnderReplicated, Volume: "data", Chunk: "v1-i2-c0", Version: 65545, Healthy: 2, Want: 3},
			{Kind: replication.FindOrphan, Volume: "data", Chunk: "v1-i9-c0", Node: "n2", Found: 7, Detail: "unreferenced"},
		},
		Repaired: replication.CheckRepairs{Dropped: 1, Deleted: 1}}
	cl.b.SetCheckReport(problems, nil)
	r = cl.ctl(t, "check", "data", "--verify")
	wantExit(t, r, exitUnhealthy)
	for _, want := range []string{
		"of volume data", "every block", "PROBLEMS: 4.",
		"FAILED: listing chunk files: connection refused",
		"KIND              VOLUME  CHUNK     NODE  VERSION  FOUND  DETAIL",
		"corrupt           data    v1-i2-c0  n1    65545    -      block 0: checksum mismatch",
		"under_replicated  data    v1-i2-c0  -     65545    -      2 of 3 healthy",
		"orphan            data    v1-i9-c0  n2    -        7      unreferenced",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check with problems lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "REPAIR") {
		t.Errorf("a check without --repair shows a repair column:\n%s", r.stdout)
	}

	r = cl.ctl(t, "check", "--repair", "--examples", "3")
	wantExit(t, r, exitUnhealthy)
	for _, want := range []string{"REPAIR", "dropped for re-replication",
		"Repair: 1 replicas dropped for re-replication, 0 kept (last copy), 1 orphans deleted", "repair status --watch"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check --repair lacks %q:\n%s", want, r.stdout)
		}
	}
	calls := cl.b.CheckCalls()
	if len(calls) != 3 || calls[1] != (replication.CheckOptions{Volume: "data", Verify: true, Examples: 10}) ||
		calls[2] != (replication.CheckOptions{Repair: true, Examples: 3}) {
		t.Errorf("check calls %+v", calls)
	}

	// JSON parses back.
	r = cl.ctl(t, "check", "-o", "json")
	wantExit(t, r, exitUnhealthy)
	var rep replication.CheckReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check -o json: %v\n%s", err, r.stdout)
	}
	if rep.Problems() != 4 || len(rep.Findings) != 3 || rep.Findings[2].Chunk != "v1-i9-c0" || rep.Nodes[2].Error == "" {
		t.Errorf("check json: %+v", rep)
	}

	// Failures.
	wantExit(t, cl.ctl(t, "check", "nope"), exitNotFound)
	wantExit(t, cl.ctl(t, "check", "a", "b"), exitUsage)
	wantExit(t, cl.ctl(t, "check", "--examples", "0"), exitUsage)
	wantExit(t, cl.ctl(t, "check", "--check-timeout", "0s"), exitUsage)
	wantExit(t, fsrepctl(t, invocation{}, "--admin", closedAddr(t), "--token", testToken, "check"), exitUnreachable)
	if n := len(cl.b.CheckCalls()); n != 4 {
		t.Errorf("refused invocations reached the checker: %d calls", n)
	}
}

func TestCheckWithoutChecker(t *testing.T) {
	cl := newPlainCluster(t, threeAZs...)
	r := cl.ctl(t, "check")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "no consistency checker") {
		t.Errorf("without a checker:\n%s", r)
	}
}

func TestCheckHelp(t *testing.T) {
	r := fsrepctl(t, invocation{}, "check", "--help")
	wantExit(t, r, exitOK)
	for _, want := range []string{"Usage: fsrepctl check [flags] [VOLUME]", "--repair", "--verify", "--examples", "--check-timeout", "orphan"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check --help lacks %q:\n%s", want, r.stdout)
		}
	}
}
