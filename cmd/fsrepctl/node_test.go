package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/meta"
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
