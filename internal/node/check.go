package node

import (
	"context"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// The online consistency check (replication.Checker, docs/integrity.md):
// run on the leader, which asks every node for its chunk files (this
// node's store directly, the others over internode RPC) and replicas that
// look wrong for their state.

var (
	_ admin.Checker          = (*Node)(nil)
	_ replication.CheckPeers = checkPeers{}
)

// checkPeers asks the nodes about their chunk files for the check.
type checkPeers struct {
	n     *Node
	local *replication.FileLister // this node's files
}

func (p checkPeers) StatReplica(ctx context.Context, node string, id chunkstore.ID, verify bool) (chunkstore.Info, error) {
	return p.n.StatReplica(ctx, node, id, verify)
}

func (p checkPeers) ListChunks(ctx context.Context, node string, from chunkstore.ID, limit int) (replication.ChunkPage, error) {
	if node == p.n.cfg.NodeID {
		return p.local.ListChunks(from, limit)
	}
	return p.n.rpcCli.ListChunks(ctx, node, from, limit)
}

func (p checkPeers) DeleteChunk(ctx context.Context, node string, id chunkstore.ID, version uint64, minAge time.Duration) error {
	return chunkDeleter{self: p.n.cfg.NodeID, store: p.n.store, rpc: p.n.rpcCli}.DeleteChunk(ctx, node, id, version, minAge)
}

// Check runs the online consistency check (admin.Checker). It runs on the
// leader only (the admin API forwards it there): the metadata it walks
// must be the latest, and the repairs it proposes are the healer's kind.
// With repair the healer is woken afterwards to copy back what was
// dropped.
func (n *Node) Check(ctx context.Context, opts replication.CheckOptions) (*replication.CheckReport, error) {
	if !n.meta.IsLeader() {
		return nil, meta.ErrNoLeader
	}
	cfg := replication.DefaultCheckConfig()
	cfg.CheckOptions = opts
	cfg.OrphanAge = n.cfg.withIntegrityDefaults().OrphanAge
	peers := checkPeers{n: n, local: replication.NewFileLister(n.store, n.clock)}
	rep, err := replication.NewChecker(n.meta, peers, n.repl, n.clock, n.log).Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	rep.Leader = n.cfg.NodeID
	if opts.Repair {
		n.heal.healer.Kick()
	}
	return rep, nil
}

// initCheck records the node's ID in its data directory (for the offline
// check) and serves its chunk list to the leader's checks (before the RPC
// server serves).
func (n *Node) initCheck() error {
	if err := writeNodeIDFile(n.cfg.DataDir, n.cfg.NodeID); err != nil {
		return err
	}
	n.rpcSrv.EnableListing(replication.NewFileLister(n.store, n.clock))
	return nil
}
