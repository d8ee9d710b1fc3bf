package node

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

type opsLogWriter struct{ t *testing.T }

func (w opsLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// eventually polls fn until it returns nil or 30 s pass.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// startOpsCluster starts three nodes in three AZs on loopback.
func startOpsCluster(t *testing.T) []*Node {
	t.Helper()
	log := slog.New(slog.NewTextHandler(opsLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	secret := []byte("ops-test-cluster-secret-0123456789")
	caFile, caKey, err := EnsureCA(t.TempDir(), "ops test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*Node, 3)
	for i := range nodes {
		cfg := Config{NodeID: fmt.Sprintf("n%d", i+1), AZ: fmt.Sprintf("az%d", i+1), DataDir: filepath.Join(t.TempDir(), "d"),
			RaftAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", NFSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
			Secret: secret, ChunkNoSync: true, ScrubRate: -1, TLSCAFile: caFile, TLSCAKeyFile: caKey}
		if i == 0 {
			cfg.Bootstrap = true
		} else {
			cfg.Join = nodes[0].RPCAddr()
		}
		n, err := Start(cfg, SystemClock{}, log)
		if err != nil {
			t.Fatalf("start %s: %v", cfg.NodeID, err)
		}
		t.Cleanup(func() { n.Close() })
		nodes[i] = n
		eventually(t, cfg.NodeID+" ready", n.Ready)
	}
	for _, n := range nodes {
		eventually(t, n.NodeID()+" ready", n.Ready)
	}
	return nodes
}

func propose(t *testing.T, n *Node, cmd meta.Command) *meta.Result {
	t.Helper()
	res, err := n.Propose(t.Context(), cmd)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%s: %v", cmd.Type(), err)
	}
	return res
}

// TestOps drives the operator tools through a real node's admin API:
// file locate asks every replica's chunk store (locally and over internode
// RPC), leader transfer moves the Raft leadership, snapshot streams meta.db.
func TestOps(t *testing.T) {
	nodes := startOpsCluster(t)
	ctx := t.Context()
	n1 := nodes[0]
	v := propose(t, n1, &meta.CreateVolume{Name: "v", Replicas: 3, WriteQuorum: 2, ChunkSize: meta.MinChunkSize}).Volume
	f := propose(t, n1, &meta.Create{Vol: v.ID, Parent: meta.RootIno, Name: "f", Kind: meta.TypeFile, Mode: 0o644}).Inode
	// Chunk 0 is on every node at version 5, except n3, which holds 4 (it
	// missed a write); chunk 1 is listed on all three but n3 never got it.
	data := bytes.Repeat([]byte("fsrep"), 1000)
	id0, id1 := replication.ChunkID(v.ID, f.Ino, 0), replication.ChunkID(v.ID, f.Ino, 1)
	for _, n := range nodes {
		version := uint64(5)
		if n == nodes[2] {
			version = 4
		} else if err := n.Store().Put(id1, 5, data); err != nil {
			t.Fatal(err)
		}
		if err := n.Store().Put(id0, version, data); err != nil {
			t.Fatal(err)
		}
	}
	all := []string{"n1", "n2", "n3"}
	res := propose(t, n1, &meta.CommitWrite{Vol: v.ID, Ino: f.Ino, Size: meta.MinChunkSize + uint64(len(data)), Chunks: []meta.ChunkWrite{
		{Index: 0, Version: 5, Length: int64(len(data)), Replicas: all},
		{Index: 1, Version: 5, Length: int64(len(data)), Replicas: all}}})
	for _, n := range nodes {
		if err := n.Meta().WaitApplied(ctx, res.Index); err != nil {
			t.Fatal(err)
		}
	}

	// Asked through n2: n2's own store, the others over RPC.
	cl := admin.NewClient(nodes[1].AdminAddr(), nodes[1].Token(), 20*time.Second)
	for _, verify := range []bool{false, true} {
		loc, err := cl.Locate(ctx, "v", "/f", admin.LocateOptions{Verify: verify})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ch := range loc.Chunks {
			for _, r := range ch.Replicas {
				got = append(got, fmt.Sprintf("%d:%s@%s=%s", ch.Index, r.Node, r.AZ, r.State))
			}
		}
		want := "0:n1@az1=ok 0:n2@az2=ok 0:n3@az3=stale 1:n1@az1=ok 1:n2@az2=ok 1:n3@az3=missing"
		if strings.Join(got, " ") != want {
			t.Errorf("locate (verify %v): %s, want %s", verify, strings.Join(got, " "), want)
		}
	}

	// Leadership moves to the node named, through a node that does not lead.
	leader := n1.Meta().Leader()
	var target, via *Node
	for _, n := range nodes {
		switch {
		case n.NodeID() == leader:
		case target == nil:
			target = n
		default:
			via = n
		}
	}
	tr, err := admin.NewClient(via.AdminAddr(), via.Token(), 20*time.Second).TransferLeader(ctx, target.NodeID())
	if err != nil {
		t.Fatal(err)
	}
	if tr.Previous != leader || tr.Leader != target.NodeID() {
		t.Fatalf("transfer: %+v, want from %s to %s", tr, leader, target.NodeID())
	}
	eventually(t, "every node follows "+target.NodeID(), func() error {
		for _, n := range nodes {
			if l := n.Meta().Leader(); l != target.NodeID() {
				return fmt.Errorf("%s follows %q", n.NodeID(), l)
			}
		}
		return nil
	})
	if _, err := target.Propose(ctx, &meta.CreateVolume{Name: "after", Replicas: 3, WriteQuorum: 2, ChunkSize: meta.MinChunkSize}); err != nil {
		t.Fatalf("commit under the new leader: %v", err)
	}

	// A snapshot from any node is a meta.db holding the volumes.
	var buf bytes.Buffer
	info, err := cl.Snapshot(ctx, &buf)
	if err != nil || info.Node != "n2" || info.Size != int64(buf.Len()) {
		t.Fatalf("snapshot: %+v, %v", info, err)
	}
	path := filepath.Join(t.TempDir(), "meta.db")
	if err := writeFile0600(path, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	bi, err := meta.InspectBackup(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, vol := range bi.Volumes {
		names = append(names, vol.Name)
	}
	// "after" may not have reached n2 yet; "v" has (n2 applied it above).
	if !slices.Contains(names, "v") || bi.Nodes != 3 || bi.AppliedIndex != info.AppliedIndex {
		t.Fatalf("snapshot contents: volumes %v, %+v", names, bi)
	}

	// StatReplica itself: a missing chunk on a peer is ErrNotFound.
	if _, err := nodes[0].StatReplica(ctx, "n3", id1, false); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("stat of a missing remote chunk: %v", err)
	}
}
