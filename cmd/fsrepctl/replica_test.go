package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/replication"
)

func TestReplicaStatus(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	r := cl.ctl(t, "replica", "status")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "No volumes.") || !strings.Contains(r.stdout, "Repair: running; queue 0 (0 urgent), 0 in flight") {
		t.Errorf("empty replica status:\n%s", r)
	}

	wantExit(t, cl.ctl(t, "volume", "create", "data"), exitOK)
	wantExit(t, cl.ctl(t, "volume", "create", "logs"), exitOK)
	cl.b.SetReplicaStatus(replication.ReplicaStatus{Volume: "logs", Replicas: 3, Chunks: 4, Healthy: 4,
		PerAZ: map[string]int{"az1": 4, "az2": 4, "az3": 4}})
	r = cl.ctl(t, "replica", "status")
	wantExit(t, r, exitOK)
	for _, want := range []string{
		"VOLUME  R  CHUNKS  HEALTHY  UNDER  UNAVAILABLE  MISPLACED  DRAINING  CORRUPT",
		"logs    3  4       4        0      0            0          0         0",
		"VOLUME  az1  az2  az3",
		"data    0    0    0", // every AZ the leader knows gets a column
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("replica status lacks %q:\n%s", want, r.stdout)
		}
	}

	// Something under-replicated: printed, then exit 4.
	cl.b.SetReplicaStatus(replication.ReplicaStatus{Volume: "data", Replicas: 3, Chunks: 10, Healthy: 7, UnderReplicated: 2,
		Unavailable: 1, Corrupt: 1, PerAZ: map[string]int{"az1": 10, "az2": 9}})
	cl.b.SetRepair(replication.RepairStatus{Queue: 3, QueueUrgent: 1, InFlight: 1})
	r = cl.ctl(t, "replica", "status", "data")
	wantExit(t, r, exitUnhealthy)
	for _, want := range []string{
		"data    3  10      7        2      1            0          0         1",
		"data    10   9    0",
		"Repair: running; queue 3 (1 urgent), 1 in flight",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("replica status data lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "logs") {
		t.Errorf("replica status data shows another volume:\n%s", r.stdout)
	}

	r = cl.ctl(t, "replica", "status", "-o", "json")
	wantExit(t, r, exitUnhealthy)
	var rep replicaReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("replica status -o json: %v\n%s", err, r.stdout)
	}
	if len(rep.Volumes) != 2 || rep.Volumes[0].UnderReplicated != 2 || rep.Volumes[0].PerAZ["az2"] != 9 || rep.Repair == nil || rep.Repair.Queue != 3 {
		t.Errorf("replica status json: %+v", rep)
	}

	r = cl.ctl(t, "replica", "status", "nope")
	wantExit(t, r, exitNotFound)
}

func TestReplicaStatusWithoutHealer(t *testing.T) {
	cl := newPlainCluster(t, threeAZs...)
	r := cl.ctl(t, "replica", "status")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "no healer") {
		t.Errorf("without a healer:\n%s", r)
	}
}
