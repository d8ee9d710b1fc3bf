package node

import (
	"context"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/internal/admin"
)

// Operator tools of the admin API (file locate, leadership transfer).

var (
	_ admin.Locator          = (*Node)(nil)
	_ admin.LeaderTransferer = (*Node)(nil)
)

// StatReplica reports node's copy of chunk id (admin.Locator): this node's
// store directly, another node's over internode RPC. Without verify the
// header and checksum table are checked; with it every data block is read
// and checked too (a remote copy is fetched whole, checked by the node as
// it reads it and again on arrival).
func (n *Node) StatReplica(ctx context.Context, node string, id chunkstore.ID, verify bool) (chunkstore.Info, error) {
	if node == n.cfg.NodeID {
		if verify {
			return n.store.Verify(id)
		}
		return n.store.Inspect(id)
	}
	if !verify {
		return n.rpcCli.StatChunk(ctx, node, id)
	}
	data, version, _, err := n.rpcCli.FetchVerified(ctx, node, id)
	if err != nil {
		return chunkstore.Info{}, err
	}
	return chunkstore.Info{Version: version, Length: int64(len(data))}, nil
}

// TransferLeadership hands the metadata leadership to voter id, or to the
// one Raft picks for "" (admin.LeaderTransferer; the admin API calls it on
// the leader).
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	return n.meta.TransferLeadership(ctx, id)
}
