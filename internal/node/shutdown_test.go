package node

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsrep/fsrep/meta"
)

// TestShutdownHandsOverLeadership proves the clean stop of SIGTERM: the
// leader's Shutdown hands the leadership to another voter before closing,
// so the voter it names already leads when Shutdown returns (no election
// timeout had to pass) and the survivors take writes at once; a
// follower has nothing to hand over.
func TestShutdownHandsOverLeadership(t *testing.T) {
	nodes := startOpsCluster(t)
	byID := map[string]*Node{}
	for _, n := range nodes {
		byID[n.NodeID()] = n
	}
	var old string
	eventually(t, "a leader known to n1", func() error {
		if old = nodes[0].Meta().Leader(); old == "" {
			return fmt.Errorf("n1 knows no leader")
		}
		return nil
	})
	term := byID[old].Meta().Status().Term

	to, err := byID[old].Shutdown(t.Context())
	if err != nil {
		t.Errorf("Shutdown of the leader %s: %v", old, err)
	}
	heir := byID[to]
	if heir == nil || to == old {
		t.Fatalf("Shutdown of the leader %s handed over to %q, want another voter", old, to)
	}
	// Already leading: it won the election the transfer started before the
	// old leader closed (the old leader learned of it from its heartbeat).
	if !heir.Meta().IsLeader() {
		t.Errorf("%s, named by Shutdown, does not lead right after it returned", to)
	}
	if st := heir.Meta().Status(); st.Term != term+1 {
		t.Errorf("new leader's term %d, want %d (one election, the transfer's)", st.Term, term+1)
	}
	var follower *Node
	for _, n := range nodes {
		if id := n.NodeID(); id != old && id != to {
			follower = n
		}
	}
	eventually(t, "the follower knows the new leader", func() error {
		if l := follower.Meta().Leader(); l != to {
			return fmt.Errorf("%s names leader %q, want %s", follower.NodeID(), l, to)
		}
		return nil
	})
	propose(t, follower, &meta.CreateVolume{Name: "after", Replicas: 2, WriteQuorum: 2, ChunkSize: meta.MinChunkSize})

	if got := follower.handOver(t.Context()); got != "" {
		t.Errorf("a follower handed over to %q", got)
	}
	if !heir.Meta().IsLeader() {
		t.Errorf("the leader changed after a follower's hand-over was asked")
	}
}

// TestStartFailureCleansUp: a Start that fails late (here: the admin token
// file cannot be written) returns the error and closes what it had
// started (listeners, Raft, stores), instead of panicking on the nil node
// its error return leaves behind; the data directory can then be opened
// again at once.
func TestStartFailureCleansUp(t *testing.T) {
	log := slog.New(slog.NewTextHandler(opsLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir := t.TempDir()
	notDir := filepath.Join(dir, "a-file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{NodeID: "n1", AZ: "az1", DataDir: filepath.Join(dir, "d"), Bootstrap: true,
		RaftAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", NFSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Secret: []byte("start-failure-cluster-secret-012"), ChunkNoSync: true, ScrubRate: -1,
		TokenFiles: []string{filepath.Join(notDir, "admin.token")}}
	if n, err := Start(cfg, SystemClock{}, log); err == nil {
		n.Close()
		t.Fatal("Start succeeded with a token file under a regular file")
	}
	cfg.TokenFiles = nil
	n, err := Start(cfg, SystemClock{}, log)
	if err != nil {
		t.Fatalf("Start after the failed one: %v", err)
	}
	n.Close()
}
