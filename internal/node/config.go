// Package node assembles one fsrepd node from its parts: the metadata Raft
// node, the chunk store, internode RPC, the replicated data path, the NFS
// gateway and the admin API. cmd/fsrepd and the test cluster both use it.
package node

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
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
	// Internode mutual TLS (tls.go, docs/security.md). Empty paths take
	// <DataDir>/tls/ca.crt, node.crt, node.key and ca.key. A node without
	// a certificate issues its own when it has the CA's key, and a node
	// bootstrapping a new cluster with neither creates the CA.
	TLSCAFile    string
	TLSCertFile  string
	TLSKeyFile   string
	TLSCAKeyFile string
	// AdminTLS: "auto" (or empty) serves the admin API over https with the
	// node certificate unless AdminAddr is a loopback address; "on" always;
	// "off" never, which needs a loopback AdminAddr (the token must not
	// cross a network in the clear).
	AdminTLS string

	// Raft timing overrides (zero: the tuned defaults of meta).
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// Raft snapshots (meta.Config); zero takes the default: a snapshot
	// every 8192 entries, checked every 120 s, keeping 10240 entries.
	RaftSnapshotThreshold uint64
	RaftSnapshotInterval  time.Duration
	RaftTrailingLogs      uint64
	// OpTimeout bounds one NFS operation, including waiting for a leader.
	OpTimeout time.Duration
	// ChunkNoSync skips fsync in the chunk store (tests only).
	ChunkNoSync bool
	// ChunkReserve is the free space the chunk store leaves on its disk
	// (docs/disk-full.md): below it, chunk writes fail with NFS3ERR_NOSPC
	// and the node reports itself full, so that the Raft log and meta.db
	// keep room. Zero takes the default (64 MiB), negative turns it off.
	ChunkReserve int64
	// ChunkFreeSpace, if set, stands for the chunk disk's free space
	// (tests play a full disk with it); nil asks statfs.
	ChunkFreeSpace func() (int64, error)
	// InlineMax is the size up to which small files live in the metadata
	// (replication.Config.InlineMax); zero takes the default (16 KiB),
	// negative turns it off.
	InlineMax int64
	// SyncMeta fsyncs meta.db on every apply; off, the Raft log's fsync is
	// the only one on the metadata path (meta.SyncFSM).
	SyncMeta bool
	// BootID stands for the kernel's boot ID (tests play a machine crash
	// with it); "" reads the kernel's.
	BootID string
	// TokenFiles are written with the admin token, besides
	// <DataDir>/admin.token, whenever it changes (the embedded cluster
	// keeps one at the top of its data directory).
	TokenFiles []string
	// Dial, if set, opens every internode connection this node makes (Raft
	// and RPC); tests cut the network with it. Nil dials TCP.
	Dial meta.DialFunc

	// Self-healing (docs/healing.md); zero takes the default. Heartbeats
	// every HeartbeatInterval (1 s); a node is suspect after SuspectAfter
	// (3 s) without one and down after DownAfter (10 s); RepairGrace (60 s)
	// after that its chunks are re-replicated, at most RepairRate bytes
	// per second (64 MiB/s). The leader's values apply to the cluster.
	HeartbeatInterval time.Duration
	SuspectAfter      time.Duration
	DownAfter         time.Duration
	RepairGrace       time.Duration
	RepairRate        int64

	// Integrity loops (docs/integrity.md); zero takes the default.
	// ScrubRate is the scrubber's read rate in bytes per second (default
	// 16 MiB/s; negative: no scrubbing). A pass starts at most every
	// ScrubInterval (default 24 h).
	ScrubRate     int64
	ScrubInterval time.Duration
	// SweepInterval is the time between orphan sweeps (default 1 h),
	// GCInterval between garbage collection passes on the leader (default
	// 30 s).
	SweepInterval time.Duration
	GCInterval    time.Duration
	// OrphanAge is the safety delay of garbage collection and the sweep: a
	// chunk file changed more recently is never deleted (default 10 min;
	// it must exceed the time from a replica write to its commit).
	OrphanAge time.Duration
}

// chunkStoreConfig is the configuration of the node's chunk store.
func (c Config) chunkStoreConfig() chunkstore.Config {
	scfg := chunkstore.DefaultConfig(filepath.Join(c.DataDir, "chunks"))
	scfg.NoSync = c.ChunkNoSync
	switch {
	case c.ChunkReserve > 0:
		scfg.Reserve = c.ChunkReserve
	case c.ChunkReserve < 0:
		scfg.Reserve = 0
	}
	scfg.FreeSpace = c.ChunkFreeSpace
	return scfg
}

// WithDefaults returns c with every tuning field left zero (integrity and
// self-healing) set to the default the node runs with: what fsrepd
// --print-config and docs/configuration.md must agree with.
func (c Config) WithDefaults() Config {
	c = c.withIntegrityDefaults()
	lc, hc := c.livenessConfig(), c.healerConfig()
	c.HeartbeatInterval, c.SuspectAfter, c.DownAfter = lc.HeartbeatInterval, lc.SuspectAfter, lc.DownAfter
	c.RepairGrace, c.RepairRate = hc.Grace, hc.RateLimit
	if c.ChunkReserve == 0 {
		c.ChunkReserve = chunkstore.DefaultReserve
	}
	return c
}

// withIntegrityDefaults fills the integrity fields left zero.
func (c Config) withIntegrityDefaults() Config {
	if c.ScrubRate == 0 {
		c.ScrubRate = replication.DefaultScrubRate
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.ScrubInterval, replication.DefaultScrubConfig(c.NodeID).Interval)
	def(&c.SweepInterval, replication.DefaultSweepConfig(c.NodeID).Interval)
	def(&c.OrphanAge, replication.DefaultSweepConfig(c.NodeID).OrphanAge)
	def(&c.GCInterval, replication.DefaultGCConfig().Interval)
	return c
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
	for name, d := range map[string]time.Duration{"scrub interval": c.ScrubInterval, "sweep interval": c.SweepInterval,
		"GC interval": c.GCInterval, "orphan age": c.OrphanAge} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", name, d))
		}
	}
	if err := c.validateHealing(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.adminHTTPS(); err != nil {
		errs = append(errs, err)
	}
	if c.Bootstrap && c.Join != "" {
		errs = append(errs, errors.New("--bootstrap and --join exclude each other"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node: invalid configuration: %w", err)
	}
	return nil
}

// adminHTTPS reports whether the admin API serves https (AdminTLS).
func (c Config) adminHTTPS() (bool, error) {
	host, _, err := net.SplitHostPort(c.AdminAddr)
	loopback := err == nil && (host == "localhost" || net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback())
	switch c.AdminTLS {
	case "", "auto":
		return !loopback, nil
	case "on":
		return true, nil
	case "off":
		if !loopback {
			return false, fmt.Errorf("--admin-tls off needs a loopback --admin-addr, not %q: the admin token would cross the network in the clear", c.AdminAddr)
		}
		return false, nil
	}
	return false, fmt.Errorf("--admin-tls must be auto, on or off, not %q", c.AdminTLS)
}
