package tests

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/internal/node"
	"github.com/fsrep/fsrep/replication"
)

// TestCheckFindsAndRepairs: on a real three-node cluster, a byte flipped
// in one replica and a chunk file planted where no replica set lists it
// are both reported by the online check (asked through a follower, which
// forwards to the leader); the check with repair has the damaged replica
// re-replicated and the orphan deleted, after which the check is clean.
func TestCheckFindsAndRepairs(t *testing.T) {
	// No scrubbing: the check, not the scrubber, is to find the damage.
	c := NewCluster(t, ClusterOptions{Configure: func(cfg *node.Config) { cfg.ScrubRate = -1 }})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	data := randomBytes(7, 2<<20+777) // three chunks
	integWrite(t, cl, "f", data)

	follower := (c.WaitLeader() + 1) % c.N()
	ac := admin.NewClient(c.Node(follower).AdminAddr(), c.Node(follower).Token(), time.Minute)
	check := func(opts replication.CheckOptions) *replication.CheckReport {
		t.Helper()
		rep, err := ac.Check(t.Context(), opts)
		if err != nil {
			t.Fatalf("check %+v: %v", opts, err)
		}
		return rep
	}
	if rep := check(replication.CheckOptions{Verify: true}); rep.Problems() != 0 || rep.Chunks != 3 || rep.Healthy != 3 || rep.Replicas != 9 {
		t.Fatalf("check of a sound cluster: %+v", rep)
	}

	damaged, _ := c.chunkOf(0, "f", 1)
	flipLastByte(t, c.chunkFilePath(1, damaged))
	orphan := chunkstore.ID{Vol: damaged.Vol, Ino: 1 << 40, Index: 0}
	if err := c.Node(2).Store().Put(orphan, 1<<16|3, data[:4096]); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(c.chunkFilePath(2, orphan), old, old); err != nil {
		t.Fatal(err)
	}
	n2, n3 := c.Member(1).Cfg.NodeID, c.Member(2).Cfg.NodeID

	// The header check sees the orphan; only the full read sees the flip.
	if rep := check(replication.CheckOptions{}); rep.Orphans != 1 || rep.Corrupt != 0 || rep.Problems() != 1 {
		t.Fatalf("check without verify: %+v", rep)
	}
	rep := check(replication.CheckOptions{Verify: true, Volume: "vol"})
	if rep.Corrupt != 1 || rep.Orphans != 1 || rep.UnderReplicated != 1 || rep.Missing+rep.Stale+rep.Unavailable != 0 || rep.Problems() != 3 {
		t.Fatalf("check with verify: %+v", rep)
	}
	wantFinding := func(rep *replication.CheckReport, kind replication.FindingKind, chunk, node string) {
		t.Helper()
		if !slices.ContainsFunc(rep.Findings, func(f replication.CheckFinding) bool {
			return f.Kind == kind && f.Chunk == chunk && f.Node == node
		}) {
			t.Errorf("no %s finding for %s on %s: %+v", kind, chunk, node, rep.Findings)
		}
	}
	wantFinding(rep, replication.FindCorrupt, damaged.String(), n2)
	wantFinding(rep, replication.FindOrphan, orphan.String(), n3)
	if rep.Leader != c.Member(c.Leader()).Cfg.NodeID {
		t.Errorf("the check ran on %s, not the leader", rep.Leader)
	}

	rep = check(replication.CheckOptions{Verify: true, Repair: true})
	if rep.Repaired.Dropped != 1 || rep.Repaired.Deleted != 1 || rep.Repaired.Failed != 0 {
		t.Fatalf("check with repair: %+v", rep)
	}
	if ids, _ := c.Node(2).Store().List(); slices.Contains(ids, orphan) {
		t.Error("the orphan is still there after the repair")
	}
	c.Eventually(60*time.Second, "the check clean after healing", func() error {
		rep, err := ac.Check(t.Context(), replication.CheckOptions{Verify: true})
		if err != nil {
			return err
		}
		if rep.Problems() != 0 {
			return fmt.Errorf("%d problems: %+v", rep.Problems(), rep.Findings)
		}
		return nil
	})
	got, err := integRead(cl, "f")
	if err != nil || len(got) != len(data) || string(got) != string(data) {
		t.Fatalf("read after the repair: %d bytes, %v", len(got), err)
	}
}
