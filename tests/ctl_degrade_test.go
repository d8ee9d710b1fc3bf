package tests

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
)

// TestCtlDegrade: what an operator sees through fsrepctl while a node is
// lost and the cluster heals. Four nodes (n1 and n4 in az1) with failure
// detection and the repair grace shortened (healingOptions); repair is
// paused while the node goes down so that the under-replicated chunks
// can be seen before the healer copies them, then resumed.
func TestCtlDegrade(t *testing.T) {
	bin := ctlBinary(t)
	c := NewCluster(t, healingOptions())
	ctl := newCtl(t, bin, c.Node(1).AdminAddr(), c.Node(0).Token()) // n2 answers throughout

	nfs, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer nfs.Close()
	rng := rand.New(rand.NewSource(7))
	for i := range 6 {
		data := make([]byte, 2<<20+rng.Intn(512<<10))
		rng.Read(data)
		if err := healPut(nfs, fmt.Sprintf("f%d.bin", i), data); err != nil {
			t.Fatal(err)
		}
	}

	// The victim is an az1 node that is not the leader and holds chunks:
	// az1 keeps the other one, so every chunk can get its third AZ back.
	var tr admin.TransferResponse
	ctl.json(ctlOK, &tr, "leader", "transfer", "n2")
	if tr.Leader != "n2" {
		t.Fatalf("leader transfer n2: %+v", tr)
	}
	ctlWaitOK(t, c, ctl, "status ok before the failure")
	victim, held := "", 0
	for _, id := range []string{"n1", "n4"} {
		var n admin.NodeResponse
		ctl.json(ctlOK, &n, "node", "info", id)
		if n.Health != nil && n.Health.Chunks > held {
			victim, held = id, n.Health.Chunks
		}
	}
	if victim == "" {
		t.Fatal("neither n1 nor n4 holds a chunk")
	}
	t.Logf("stopping %s, which holds %d chunk replicas", victim, held)

	var rep replicaReport
	ctl.json(ctlOK, &rep, "replica", "status")
	if len(rep.Volumes) != 1 || rep.Volumes[0].Chunks == 0 || rep.Volumes[0].Healthy != rep.Volumes[0].Chunks {
		t.Fatalf("replica status before: %+v", rep.Volumes)
	}
	chunks := rep.Volumes[0].Chunks

	ctl.want(ctlOK, "repair", "pause")
	c.Stop(healSlot(t, victim))

	// status and health name the node once the leader declares it down.
	down := fmt.Sprintf("node %s (az1) is down", victim)
	c.Eventually(30*time.Second, "status reporting "+victim+" down", func() error {
		r := ctl.run("status")
		if r.code != ctlUnhealthy || !strings.Contains(r.stdout, down) {
			return errors.New(r.String())
		}
		return nil
	})
	r := ctl.want(ctlUnhealthy, "status")
	wantIn(t, r, "stdout", "Health:  degraded", "- "+down)
	if !ctlRow(r.stdout, victim, "az1", "down") {
		t.Errorf("status has no row for %s down:\n%s", victim, r)
	}
	r = ctl.want(ctlUnhealthy, "health")
	wantIn(t, r, "stdout", "cluster health degraded", down)
	var hr healthReport
	ctl.json(ctlUnhealthy, &hr, "health")
	if !hr.Ready || hr.Health != string(admin.HealthDegraded) {
		t.Errorf("health -o json: %+v", hr)
	}

	// Past the grace time its replicas stop counting: under-replicated,
	// and exit 4, while repair is paused.
	c.Eventually(30*time.Second, "replica status showing under-replicated chunks", func() error {
		r := ctl.run("replica", "status", "-o", "json")
		if r.code != ctlUnhealthy {
			return errors.New(r.String())
		}
		ctl.json(ctlUnhealthy, &rep, "replica", "status")
		if rep.Volumes[0].UnderReplicated == 0 {
			return fmt.Errorf("volumes %+v", rep.Volumes)
		}
		return nil
	})
	if v := rep.Volumes[0]; v.UnderReplicated > held || v.Unavailable != 0 || v.Chunks != chunks {
		t.Errorf("replica status with %s down (it held %d): %+v", victim, held, v)
	}
	t.Logf("%d of %d chunks under-replicated", rep.Volumes[0].UnderReplicated, chunks)
	r = ctl.want(ctlUnhealthy, "replica", "status")
	wantIn(t, r, "stdout", "VOLUME  R  CHUNKS  HEALTHY  UNDER", "Repair: paused")
	// The healer's next pass queues them (it counts while paused).
	c.Eventually(30*time.Second, "status reporting the paused queue", func() error {
		if r := ctl.run("status"); r.code != ctlUnhealthy || !strings.Contains(r.stdout, "repair is paused with") {
			return errors.New(r.String())
		}
		return nil
	})

	// Resumed: the count falls to zero.
	ctl.want(ctlOK, "repair", "resume")
	c.Eventually(2*time.Minute, "replica status back to healthy", func() error {
		r := ctl.run("replica", "status", "-o", "json")
		if r.code != ctlOK {
			return errors.New(r.String())
		}
		ctl.json(ctlOK, &rep, "replica", "status")
		if v := rep.Volumes[0]; v.UnderReplicated != 0 || v.Healthy != chunks {
			return fmt.Errorf("volumes %+v", rep.Volumes)
		}
		return nil
	})
	wantIn(t, ctl.want(ctlOK, "replica", "status"), "stdout", fmt.Sprintf("vol     3  %d", chunks))
	// Healed, but a node is still down: not ok yet.
	wantIn(t, ctl.want(ctlUnhealthy, "health"), "stdout", down)

	// The node comes back: health returns to ok.
	c.Start(healSlot(t, victim))
	c.Eventually(60*time.Second, "health ok", func() error {
		if r := ctl.run("health"); r.code != ctlOK {
			return errors.New(r.String())
		}
		return nil
	})
	r = ctl.want(ctlOK, "status")
	wantIn(t, r, "stdout", "Health:  ok")
	if !ctlRow(r.stdout, victim, "az1", "up") {
		t.Errorf("status has no row for %s up:\n%s", victim, r)
	}
}

// ctlRow tells whether a table line starts with the given fields, in
// order, with any one field between the AZ and the state (the role).
func ctlRow(table string, id, az, state string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == id && f[1] == az && f[3] == state {
			return true
		}
	}
	return false
}
