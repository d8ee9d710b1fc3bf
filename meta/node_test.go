package meta

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// raftCluster opens n metadata nodes on loopback, bootstraps the first and
// adds the others as voters. They are closed when the test ends.
func raftCluster(t *testing.T, n int) []*Node {
	t.Helper()
	nodes := make([]*Node, n)
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		cfg := DefaultConfig(id, filepath.Join(t.TempDir(), id), "127.0.0.1:0")
		cfg.Bootstrap = i == 0
		nd, err := Open(cfg, wallClock{}, testLogger(t).With("node", id))
		if err != nil {
			t.Fatalf("open %s: %v", id, err)
		}
		t.Cleanup(func() {
			if err := nd.Close(); err != nil {
				t.Errorf("close %s: %v", id, err)
			}
		})
		nodes[i] = nd
	}
	waitFor(t, "n1 leads", func() error {
		if !nodes[0].IsLeader() {
			return errors.New("not yet")
		}
		return nil
	})
	for _, nd := range nodes[1:] {
		if err := nodes[0].AddMember(nd.ID(), nd.RaftAddr(), true); err != nil {
			t.Fatal(err)
		}
	}
	waitLeader(t, nodes, "n1")
	// And every follower holds the log: one still being sent the older
	// entries can time out under load and start an election, which would
	// move the leadership a test is about to move itself.
	waitFor(t, "every node caught up", func() error {
		want := nodes[0].raft.LastIndex()
		for _, nd := range nodes[1:] {
			if got := nd.raft.LastIndex(); got < want {
				return fmt.Errorf("%s applied %d of %d", nd.ID(), got, want)
			}
		}
		return nil
	})
	return nodes
}

// waitFor polls fn until it returns nil or 20 s pass.
func waitFor(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// waitLeader waits until every node names id as the leader.
func waitLeader(t *testing.T, nodes []*Node, id string) {
	t.Helper()
	waitFor(t, "every node follows "+id, func() error {
		for _, nd := range nodes {
			if l := nd.Leader(); l != id {
				return fmt.Errorf("%s follows %q", nd.ID(), l)
			}
		}
		return nil
	})
}

func leaderOf(nodes []*Node) *Node {
	for _, nd := range nodes {
		if nd.IsLeader() {
			return nd
		}
	}
	return nil
}

func TestTransferLeadership(t *testing.T) {
	nodes := raftCluster(t, 3)
	ctx := t.Context()

	// Only the leader transfers; a follower says who leads.
	if err := nodes[1].TransferLeadership(ctx, "n3"); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("transfer on a follower: %v, want ErrNoLeader", err)
	}
	// To a named voter.
	if err := nodes[0].TransferLeadership(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, nodes, "n3")
	// The new leader commits; the old one follows and reads it.
	res, err := nodes[2].Propose(ctx, &CreateVolume{Name: "after", Replicas: 3, WriteQuorum: 2, ChunkSize: cs})
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].WaitApplied(ctx, res.Index); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].FSM().Volume("after"); err != nil {
		t.Fatal(err)
	}

	// To itself: nothing changes.
	if err := nodes[2].TransferLeadership(ctx, "n3"); err != nil || !nodes[2].IsLeader() {
		t.Fatalf("transfer to the leader itself: %v (leader %v)", err, nodes[2].IsLeader())
	}
	// Refusals, before anything is tried.
	if err := nodes[2].TransferLeadership(ctx, "n9"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("transfer to a stranger: %v, want ErrNotExist", err)
	}
	if err := nodes[2].AddMember("learner", "127.0.0.1:1", false); err != nil {
		t.Fatal(err)
	}
	if err := nodes[2].TransferLeadership(ctx, "learner"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("transfer to a non-voter: %v, want ErrInvalid", err)
	}
	if err := nodes[2].RemoveMember("learner"); err != nil {
		t.Fatal(err)
	}
	if !nodes[2].IsLeader() {
		t.Fatal("a refused transfer moved the leadership")
	}

	// To whichever voter raft picks.
	if err := nodes[2].TransferLeadership(ctx, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new leader", func() error {
		l := leaderOf(nodes)
		if l == nil || l.ID() == "n3" {
			return errors.New("n3 still leads, or no one does")
		}
		return nil
	})

}

// freeAddr is a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func openNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	nd, err := Open(cfg, wallClock{}, testLogger(t).With("node", cfg.NodeID))
	if err != nil {
		t.Fatalf("open %s: %v", cfg.NodeID, err)
	}
	t.Cleanup(func() {
		if err := nd.Close(); err != nil {
			t.Errorf("close %s: %v", cfg.NodeID, err)
		}
	})
	return nd
}

// TestRestoreBackup: a backup restored into an empty metadata directory
// starts a one-voter cluster holding the backup's state; it commits from
// the next index on, and a node that joins receives the state (as a Raft
// snapshot) rather than an empty one.
func TestRestoreBackup(t *testing.T) {
	h := newHarness(t)
	h.volume("a")
	vb := h.volume("b")
	h.create(vb, RootIno, "file", TypeFile)
	bk, err := h.fsm.Backup()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = bk.WriteTo(&buf)
	bk.Close()
	if err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(backup, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "r1")
	addr := freeAddr(t)
	info, err := RestoreBackup(backup, dir, "r1", addr)
	if err != nil {
		t.Fatal(err)
	}
	if info.AppliedIndex != 3 || len(info.Volumes) != 2 {
		t.Fatalf("restored %+v", info)
	}
	// Never over existing metadata.
	if _, err := RestoreBackup(backup, dir, "r1", addr); err == nil {
		t.Fatal("a second restore into the same directory was accepted")
	}

	r1 := openNode(t, DefaultConfig("r1", dir, addr))
	waitFor(t, "r1 leads", func() error {
		if !r1.IsLeader() {
			return errors.New("not yet")
		}
		return nil
	})
	for _, name := range []string{"a", "b"} {
		if _, err := r1.FSM().Volume(name); err != nil {
			t.Fatalf("volume %s after the restore: %v", name, err)
		}
	}
	res, err := r1.Propose(t.Context(), &CreateVolume{Name: "c", Replicas: 3, WriteQuorum: 2, ChunkSize: cs})
	if err != nil {
		t.Fatal(err)
	}
	// Identities move past anything the lost timeline may have handed
	// out after the backup.
	if res.Index <= info.AppliedIndex || res.Volume.ID != 3+restoreVolIDGap {
		t.Fatalf("first command after the restore: index %d (backup at %d), volume ID %d", res.Index, info.AppliedIndex, res.Volume.ID)
	}
	res2, err := r1.Propose(t.Context(), &Create{Vol: vb, Parent: RootIno, Name: "new", Kind: TypeFile, Mode: 0o644})
	if err != nil || res2.Inode.Ino != 3+restoreInoGap {
		t.Fatalf("first file after the restore: %+v, %v; want inode %d", res2, err, 3+restoreInoGap)
	}
	res = res2

	r2 := openNode(t, DefaultConfig("r2", filepath.Join(t.TempDir(), "r2"), "127.0.0.1:0"))
	if err := r1.AddMember("r2", r2.RaftAddr(), true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "r2 holds the restored state and what followed", func() error {
		if err := r2.WaitApplied(t.Context(), res.Index); err != nil {
			return err
		}
		vols, err := r2.FSM().Volumes()
		if err != nil || len(vols) != 3 {
			return fmt.Errorf("r2 has volumes %+v (%v)", vols, err)
		}
		if _, err := r2.FSM().Lookup(vb, RootIno, "file"); err != nil {
			return fmt.Errorf("r2 lacks the restored file: %v", err)
		}
		return nil
	})
}
