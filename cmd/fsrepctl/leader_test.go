package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/internal/admin"
)

func TestLeaderTransfer(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	r := cl.ctl(t, "leader", "transfer", "n1")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "n1 already leads (term 1); nothing to do" {
		t.Errorf("transfer to the leader:\n%s", r)
	}
	wantExit(t, cl.ctl(t, "leader", "transfer", "n9"), exitNotFound)
	wantExit(t, cl.ctl(t, "leader", "transfer", "n2", "n3"), exitUsage)
	if len(cl.b.Transfers()) != 0 {
		t.Fatalf("transfers made: %v", cl.b.Transfers())
	}

	r = cl.ctl(t, "leader", "transfer", "n3")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "Leadership moved from n1 to n3 (term 2)" {
		t.Errorf("transfer:\n%s", r)
	}

	// Without a NODE, Raft picks; JSON output.
	cl = newCluster(t, threeAZs...)
	r = cl.ctl(t, "leader", "transfer", "-o", "json")
	wantExit(t, r, exitOK)
	var tr admin.TransferResponse
	if err := json.Unmarshal([]byte(r.stdout), &tr); err != nil || tr.Previous != "n1" || tr.Leader != "n2" || tr.Term != 2 {
		t.Fatalf("transfer -o json: %+v %v\n%s", tr, err, r.stdout)
	}

	// A node that cannot transfer.
	wantExit(t, newPlainCluster(t, threeAZs...).ctl(t, "leader", "transfer"), exitError)
}
