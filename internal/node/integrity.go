package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/internal/rpc"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// The node-local integrity side (docs/integrity.md): the scrubber and the
// orphan sweep on every node, the garbage collector on the leader, and a
// read gate that keeps a restarted node from serving reads before its
// metadata has caught up.

// integrity holds the node's integrity loops.
type integrity struct {
	scrub *replication.Scrubber // nil when scrubbing is off
	sweep *replication.Sweeper
	gc    *replication.GC
}

var (
	_ replication.LoopClock    = SystemClock{}
	_ replication.ChunkDeleter = chunkDeleter{}
	_ replication.ScrubStore   = (*chunkstore.Store)(nil)
	_ replication.SweepStore   = (*chunkstore.Store)(nil)
	_ vfs.Data                 = (*readGate)(nil)
)

// After makes SystemClock a replication.LoopClock.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// loopClock is the node's clock if it can also wake loops (tests drive
// such a clock), else the wall clock.
func loopClock(c Clock) replication.LoopClock {
	if lc, ok := c.(replication.LoopClock); ok {
		return lc
	}
	return replication.SystemLoopClock{}
}

// startIntegrity builds the loops and starts them under the node's
// context; the garbage collector runs whenever this node leads.
func (n *Node) startIntegrity() error {
	cfg := n.cfg.withIntegrityDefaults()
	clock := loopClock(n.clock)
	log := n.log.With("component", "integrity")

	if cfg.ScrubRate > 0 {
		sc := replication.DefaultScrubConfig(cfg.NodeID)
		sc.Rate, sc.Interval = cfg.ScrubRate, cfg.ScrubInterval
		sc.StateFile = filepath.Join(cfg.DataDir, "scrub.state")
		s, err := replication.NewScrubber(sc, n.store, n.repl, clock, log)
		if err != nil {
			return err
		}
		n.integ.scrub = s
	}

	wc := replication.DefaultSweepConfig(cfg.NodeID)
	wc.Interval, wc.OrphanAge = cfg.SweepInterval, cfg.OrphanAge
	sw, err := replication.NewSweeper(wc, n.meta, n.store, n.repl, clock, log)
	if err != nil {
		return err
	}
	n.integ.sweep = sw

	gcfg := replication.DefaultGCConfig()
	gcfg.Interval, gcfg.MinAge = cfg.GCInterval, cfg.OrphanAge
	gc, err := replication.NewGC(gcfg, n.meta, chunkDeleter{self: cfg.NodeID, store: n.store, rpc: n.rpcCli}, clock, log)
	if err != nil {
		return err
	}
	n.integ.gc = gc

	if s := n.integ.scrub; s != nil {
		n.goLoop(s.Run)
	}
	n.goLoop(sw.Run)
	n.meta.RunWhileLeader(gc.Run)
	return nil
}

// goLoop runs loop under the node's context until Close.
func (n *Node) goLoop(loop func(context.Context)) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		loop(n.ctx)
	}()
}

// ScrubStatus is this node's scrubber, with the damaged replicas its reads
// found. With scrubbing off only Node and the read counts are set.
func (n *Node) ScrubStatus() replication.ScrubStatus {
	var st replication.ScrubStatus
	if n.integ.scrub != nil {
		st = n.integ.scrub.Status()
	}
	st.Node = n.cfg.NodeID
	if n.repl != nil {
		st.ReadCorrupt = n.repl.CorruptCounts()
	}
	return st
}

// PauseScrub pauses (true) or resumes (false) this node's scrubber.
func (n *Node) PauseScrub(paused bool) {
	if n.integ.scrub != nil {
		n.integ.scrub.Pause(paused)
	}
}

// StartScrub starts a scrub pass on this node now.
func (n *Node) StartScrub() {
	if n.integ.scrub != nil {
		n.integ.scrub.Start()
	}
}

// GCStatus is the garbage collector as this node runs it (Running only on
// the leader).
func (n *Node) GCStatus() replication.GCStatus {
	if n.integ.gc == nil {
		return replication.GCStatus{}
	}
	return n.integ.gc.Status()
}

// SweepStatus is this node's orphan sweep.
func (n *Node) SweepStatus() replication.SweepStatus {
	if n.integ.sweep == nil {
		return replication.SweepStatus{Node: n.cfg.NodeID}
	}
	return n.integ.sweep.Status()
}

// chunkDeleter deletes chunk versions for the garbage collector: in the
// local store for this node, over internode RPC for the others.
type chunkDeleter struct {
	self  string
	store *chunkstore.Store
	rpc   *rpc.Client
}

func (d chunkDeleter) DeleteChunk(ctx context.Context, node string, id chunkstore.ID, version uint64, minAge time.Duration) error {
	if node == d.self {
		return d.store.DeleteVersion(id, version, minAge)
	}
	return d.rpc.DeleteChunk(ctx, node, id, version, minAge)
}

// readGate is the data path the gateway uses. Reads are served from this
// node's metadata only while it is known to be recent: a read barrier
// (meta.Node.CatchUp: wait until this node has applied what the leader had
// committed) succeeded less than readLease ago, and the node has heard
// from its leader within readLease. Otherwise the read first runs a
// barrier. Without that, a node back from a restart, or from the minority
// side of a partition (where reads went unasked, or failed), would hold the
// replica sets and versions of before and serve bytes the majority has
// since overwritten: heartbeats resume before its log catches up, so
// contact alone proves nothing. Without a leader the barrier fails with
// meta.ErrNoLeader, which the gateway answers with JUKEBOX (retry later).
// The bound this gives is in docs/consistency.md.
type readGate struct {
	*replication.Replicator
	meta *meta.Node

	mu      sync.Mutex // one barrier at a time; reads wait for it
	checked time.Time  // when the last successful barrier started
	failed  time.Time  // when the last barrier failed for want of a leader
}

// readLease is how long a barrier vouches for this node's metadata, and
// how long a follower trusts it without hearing from the leader (who sends
// heartbeats about every 50 ms). A barrier costs one RPC to the leader.
const readLease = 2 * time.Second

// ReadAt implements vfs.Data.
func (g *readGate) ReadAt(ctx context.Context, vol *meta.Volume, ino uint64, size uint64, off int64, buf []byte) (int, error) {
	caught, err := g.barrier(ctx)
	if err != nil {
		return 0, err
	}
	if caught {
		// The size the caller read may be as old as the rest, and the
		// file may be gone.
		n, err := g.meta.FSM().Inode(vol.ID, ino)
		if err != nil {
			return 0, err
		}
		size = n.Size
	}
	return g.Replicator.ReadAt(ctx, vol, ino, size, off, buf)
}

// barrier runs a read barrier unless a recent one still vouches for the
// metadata; it reports whether it ran one.
func (g *readGate) barrier(ctx context.Context) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.checked.IsZero() && time.Since(g.checked) < readLease && g.meta.Fresh(readLease) {
		return false, nil
	}
	// Without a leader, every read would wait its whole operation timeout
	// here, one after the other (one barrier at a time): a client that
	// retransmits meanwhile queues more reads behind them and never gets an
	// answer in time. So a barrier waits for a leader at most readLease,
	// and for readLease after one failed for want of a leader, reads fail
	// at once (JUKEBOX: the client retries later) unless a leader is known
	// again.
	if !g.failed.IsZero() && time.Since(g.failed) < readLease && g.meta.Leader() == "" {
		return false, fmt.Errorf("%w: no leader confirmed this node's metadata %v ago", meta.ErrNoLeader,
			time.Since(g.failed).Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(ctx, readLease)
	defer cancel()
	start := time.Now()
	if err := g.meta.CatchUp(ctx); err != nil {
		if errors.Is(err, meta.ErrNoLeader) || errors.Is(err, context.DeadlineExceeded) {
			// A leader that does not answer is no leader for this purpose.
			g.failed = time.Now()
			return false, fmt.Errorf("%w: read barrier: %v", meta.ErrNoLeader, err)
		}
		return false, err
	}
	g.checked, g.failed = start, time.Time{}
	return true, nil
}
