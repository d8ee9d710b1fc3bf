// Package node assembles one fsrepd node from its parts: the metadata Raft
// node, the chunk store, internode RPC, the replicated data path, the NFS
// gateway and the admin API. cmd/fsrepd and the test cluster both use it.
package node

import (
	"errors"
	"fmt"
	"time"
)

// Config is everything one node needs.
type Config struct {
	NodeID  string
	AZ      string
	Region  string
	DataDir string

	// Listen addresses; each node advertises them as given (use an address
	// the other nodes and clients can reach, not 0.0.0.0). A port of 0
	// picks a free port (tests).
	RaftAddr  string
	RPCAddr   string
	NFSAddr   string
	AdminAddr string

	// Bootstrap forms a new cluster from this node when it has no state.
	Bootstrap bool
	// Join is the RPC address of any member, used the first time a node
	// starts without state.
	Join string
	// Secret is the cluster secret (internode auth, handle MACs, admin
	// token). Empty: read DataDir/cluster.secret, or create it when
	// bootstrapping.
	Secret []byte

	// Raft timing overrides (zero: the tuned defaults of meta).
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// OpTimeout bounds one NFS operation, including waiting for a leader.
	OpTimeout time.Duration
	// ChunkNoSync skips fsync in the chunk store (tests only).
	ChunkNoSync bool
}

// Validate checks the fields against each other.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("node ID is required (--node-id)"))
	}
	if c.AZ == "" {
		errs = append(errs, errors.New("availability zone is required (--az)"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data directory is required (--data-dir)"))
	}
	for name, a := range map[string]string{"raft": c.RaftAddr, "rpc": c.RPCAddr, "nfs": c.NFSAddr, "admin": c.AdminAddr} {
		if a == "" {
			errs = append(errs, fmt.Errorf("--%s-addr is required", name))
		}
	}
	if c.Bootstrap && c.Join != "" {
		errs = append(errs, errors.New("--bootstrap and --join exclude each other"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node: invalid configuration: %w", err)
	}
	return nil
}
