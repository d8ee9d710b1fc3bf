package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

func TestVolumeCreateListInfo(t *testing.T) {
	cl := newCluster(t, threeAZs...)

	r := cl.ctl(t, "volume", "list")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "No volumes") {
		t.Errorf("empty list:\n%s", r.stdout)
	}

	r = cl.ctl(t, "volume", "create", "data")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "Created volume data (id 1): 3 replicas, write quorum 2, 4MiB chunks; exported as /data" {
		t.Errorf("create output:\n%s", r.stdout)
	}
	// Flags after the name, a human size, JSON output.
	r = cl.ctl(t, "volume", "create", "scratch", "--replicas", "5", "--write-quorum", "3", "--chunk-size", "1MiB", "--root-mode", "1777", "-o", "json")
	wantExit(t, r, exitOK)
	var v meta.Volume
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Name != "scratch" || v.Replicas != 5 || v.WriteQuorum != 3 || v.ChunkSize != 1<<20 {
		t.Fatalf("create -o json: %+v %v\n%s", v, err, r.stdout)
	}
	root, err := cl.b.FSM().Inode(v.ID, meta.RootIno)
	if err != nil || root.Mode != 0o1777 {
		t.Errorf("root of scratch: %+v %v", root, err)
	}

	r = cl.ctl(t, "volume", "list")
	wantExit(t, r, exitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("volume table:\n%s", r.stdout)
	}
	if f := strings.Fields(lines[2]); f[0] != "scratch" || f[1] != "2" || f[2] != "5" || f[3] != "3" || f[4] != "1MiB" || f[5] != "1" || f[6] != "0B" {
		t.Errorf("row scratch: %q", f)
	}
	r = cl.ctl(t, "volume", "list", "-o", "json")
	var vols []meta.Volume
	if err := json.Unmarshal([]byte(r.stdout), &vols); err != nil || len(vols) != 2 {
		t.Errorf("list -o json: %v\n%s", err, r.stdout)
	}

	r = cl.ctl(t, "volume", "info", "data")
	wantExit(t, r, exitOK)
	for _, want := range []string{"Name:          data", "Export:        /data", "Write quorum:  2", "Chunk size:    4MiB", "Created:       2025-01-01T00:00:00Z"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, r.stdout)
		}
	}
	r = cl.ctl(t, "volume", "info", "data", "-o", "json")
	wantExit(t, r, exitOK)
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Name != "data" || v.ID != 1 {
		t.Errorf("info -o json: %+v %v", v, err)
	}

	r = cl.ctl(t, "volume", "info", "nope")
	wantExit(t, r, exitNotFound)
	if !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("info of a missing volume:\n%s", r)
	}
}

func TestVolumeCreateRefusals(t *testing.T) {
	cl := newCluster(t, meta.NodeInfo{ID: "n1", AZ: "az1"}, meta.NodeInfo{ID: "n2", AZ: "az2"})

	wantExit(t, cl.ctl(t, "volume", "create", "ok", "--replicas", "2", "--write-quorum", "1"), exitOK)

	r := cl.ctl(t, "volume", "create", "v")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "cannot survive the loss of one AZ") || !strings.Contains(r.stderr, "--allow-unsafe-placement") {
		t.Errorf("unsafe placement message:\n%s", r)
	}
	wantExit(t, cl.ctl(t, "volume", "create", "v", "--allow-unsafe-placement"), exitOK)

	r = cl.ctl(t, "volume", "create", "v", "--allow-unsafe-placement")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "volume exists") {
		t.Errorf("duplicate create:\n%s", r)
	}

	r = cl.ctl(t, "volume", "create", "bad/name", "--allow-unsafe-placement")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "may use only letters") {
		t.Errorf("invalid name:\n%s", r)
	}

	for _, args := range [][]string{
		{"--chunk-size", "lots"},
		{"--chunk-size", "0"},
		{"--replicas", "0"},
		{"--write-quorum", "-1"},
		{"--root-mode", "888"},
		{"--replicas", "three"},
	} {
		r := cl.ctl(t, append([]string{"volume", "create", "w"}, args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "fsrepctl volume create --help") {
			t.Errorf("%q: %s", args, r)
		}
	}
}

func TestVolumeDelete(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	for _, name := range []string{"a", "b", "c"} {
		wantExit(t, cl.ctl(t, "volume", "create", name), exitOK)
	}
	exists := func(name string) bool {
		_, err := cl.b.FSM().Volume(name)
		return err == nil
	}
	base := []string{"--admin", cl.addr, "--token", testToken}

	// No --yes and no terminal: refused before anything is sent.
	r := fsrepctl(t, invocation{stdin: "a\n"}, append(base, "volume", "delete", "a")...)
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "without --yes") || !exists("a") {
		t.Errorf("delete without --yes off a terminal:\n%s", r)
	}

	// A terminal, but the wrong name typed.
	r = fsrepctl(t, invocation{stdin: "b\n", terminal: true}, append(base, "volume", "delete", "a")...)
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "Type the volume name to confirm") || !strings.Contains(r.stderr, "not deleted") || !exists("a") {
		t.Errorf("delete with a wrong confirmation:\n%s", r)
	}
	// Nothing typed (EOF).
	wantExit(t, fsrepctl(t, invocation{terminal: true}, append(base, "volume", "delete", "a")...), exitUsage)
	if !exists("a") {
		t.Fatal("EOF confirmed the delete")
	}

	// The right name typed.
	r = fsrepctl(t, invocation{stdin: "a\n", terminal: true}, append(base, "volume", "delete", "a")...)
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "Deleted volume a (id 1)" || exists("a") {
		t.Errorf("confirmed delete:\n%s", r)
	}

	// --yes, anywhere on the line; JSON output.
	r = fsrepctl(t, invocation{}, append(base, "volume", "delete", "--yes", "b", "-o", "json")...)
	wantExit(t, r, exitOK)
	var v meta.Volume
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Name != "b" || exists("b") {
		t.Errorf("delete --yes -o json: %+v %v\n%s", v, err, r)
	}

	// Missing volumes: 3, with or without the prompt.
	wantExit(t, fsrepctl(t, invocation{}, append(base, "volume", "delete", "b", "--yes")...), exitNotFound)
	r = fsrepctl(t, invocation{stdin: "zz\n", terminal: true}, append(base, "volume", "delete", "zz")...)
	wantExit(t, r, exitNotFound)
	if strings.Contains(r.stderr, "Type the volume name") {
		t.Errorf("prompted for a missing volume:\n%s", r)
	}
	if !exists("c") {
		t.Error("volume c was deleted")
	}
}

func TestVolumeQuotaAndSet(t *testing.T) {
	cl := newCluster(t, threeAZs...)

	r := cl.ctl(t, "volume", "create", "q", "--quota", "1GiB", "--quota-files", "100")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "4MiB chunks, quota 1GiB and 100 files;") {
		t.Errorf("create with quota:\n%s", r.stdout)
	}
	r = cl.ctl(t, "volume", "info", "q")
	wantExit(t, r, exitOK)
	for _, want := range []string{"Files:         1 of 100 (1.0%)", "Used:          0B of 1GiB (0.0%; 0 of 1073741824 bytes)",
		"Chunks:        0: 0 healthy"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, r.stdout)
		}
	}

	// Replication per AZ from the healer, and in the JSON.
	cl.b.SetReplicaStatus(replication.ReplicaStatus{Volume: "q", Replicas: 3, Chunks: 10, Healthy: 9, UnderReplicated: 1,
		PerAZ: map[string]int{"az1": 10, "az2": 10, "az3": 9}})
	r = cl.ctl(t, "volume", "info", "q")
	for _, want := range []string{"Chunks:        10: 9 healthy, 1 under-replicated", "Per AZ:        az1 10, az2 10, az3 9 (healthy replicas)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, r.stdout)
		}
	}
	r = cl.ctl(t, "volume", "info", "q", "-o", "json")
	var info struct {
		meta.Volume
		Replication *replication.ReplicaStatus `json:"replication"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil || info.Name != "q" || info.QuotaBytes != 1<<30 ||
		info.Replication == nil || info.Replication.PerAZ["az3"] != 9 {
		t.Fatalf("info -o json: %+v %v\n%s", info, err, r.stdout)
	}

	// Set: quotas, replicas, export flags; the volume is printed after.
	r = cl.ctl(t, "volume", "set", "q", "--quota", "none", "--quota-files", "5", "--replicas", "5", "--ro", "--clients", "10.0.0.0/8")
	wantExit(t, r, exitOK)
	for _, want := range []string{"Replicas:      5", "Write quorum:  3", "Files:         1 of 5", "no quota)", "Access:        ro, clients 10.0.0.0/8"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("set output lacks %q:\n%s", want, r.stdout)
		}
	}
	v, err := cl.b.FSM().Volume("q")
	if err != nil || v.QuotaBytes != 0 || v.QuotaFiles != 5 || v.Replicas != 5 || v.WriteQuorum != 3 || !v.Export.ReadOnly || v.Export.Squash != meta.SquashRoot {
		t.Fatalf("after set: %+v %v", v, err)
	}
	wantExit(t, cl.ctl(t, "volume", "set", "q", "--replicas", "3", "--write-quorum", "2", "--quota", "10MiB"), exitOK)
	if v, _ := cl.b.FSM().Volume("q"); v.Replicas != 3 || v.WriteQuorum != 2 || v.QuotaBytes != 10<<20 {
		t.Fatalf("after the second set: %+v", v)
	}

	// Refusals.
	r = cl.ctl(t, "volume", "set", "q", "--replicas", "2")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "cannot survive the loss of one AZ") {
		t.Errorf("unsafe set:\n%s", r)
	}
	wantExit(t, cl.ctl(t, "volume", "set", "q", "--replicas", "2", "--allow-unsafe-placement"), exitOK)
	wantExit(t, cl.ctl(t, "volume", "set", "nope", "--quota", "1GiB"), exitNotFound)
	for _, args := range [][]string{
		{},
		{"--quota", "lots"},
		{"--quota-files", "-1"},
		{"--replicas", "0"},
		{"--write-quorum", "0"},
		{"--ro", "--rw"},
	} {
		r := cl.ctl(t, append([]string{"volume", "set", "q"}, args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "fsrepctl volume set --help") {
			t.Errorf("%q: %s", args, r)
		}
	}
	for _, args := range [][]string{{"--quota", "-5"}, {"--quota-files", "-2"}} {
		wantExit(t, cl.ctl(t, append([]string{"volume", "create", "w"}, args...)...), exitUsage)
	}
}

func TestVolumeInfoWithoutHealer(t *testing.T) {
	cl := newPlainCluster(t, threeAZs...)
	wantExit(t, cl.ctl(t, "volume", "create", "data"), exitOK)
	r := cl.ctl(t, "volume", "info", "data")
	wantExit(t, r, exitOK)
	if strings.Contains(r.stdout, "Chunks:") || strings.Contains(r.stdout, "Replication") {
		t.Errorf("info without a healer shows replication:\n%s", r.stdout)
	}
}
