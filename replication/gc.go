package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// Garbage collection runs on the leader. The FSM records every chunk
// version that stopped being referenced (a file deleted or truncated, a
// replica left out of a write or by the healer) with the nodes that may
// hold a file for it. The collector deletes that version's file on each of
// those nodes, then commits GCDone for the records done everywhere.
//
// A node's file is only deleted if the metadata does not list the node for
// the chunk any more (it may have been copied back there since), and only
// if it still holds exactly the recorded version and is older than MinAge
// (chunkstore.Store.DeleteVersion says why). A node that is down keeps its
// records until it returns; a node the cluster forgot (meta.RemoveNode) is
// no longer waited for. One unreachable node costs each pass at most
// NodeFailures failed calls, and the nodes are served in parallel, so it
// never holds up the others.

// GCConfig configures the garbage collector.
type GCConfig struct {
	// Interval is the time between passes.
	Interval time.Duration
	// Scan is how many garbage records a pass looks at (the oldest keys
	// first); records done leave the window to the next ones.
	Scan int
	// MinAge is the safety delay: a file changed more recently than this
	// is kept (a copy or write may be on its way to a commit that makes it
	// live). It must exceed the time from a replica write or copy to its
	// commit, plus CallTimeout (the delete may arrive that much after the
	// metadata was checked).
	MinAge time.Duration
	// CallTimeout bounds one delete call to a node.
	CallTimeout time.Duration
	// NodeFailures is how many failed calls to one node make a pass skip
	// the rest of that node's deletions.
	NodeFailures int
}

// DefaultGCConfig returns the defaults.
func DefaultGCConfig() GCConfig {
	return GCConfig{Interval: 30 * time.Second, Scan: 10000, MinAge: 10 * time.Minute,
		CallTimeout: 10 * time.Second, NodeFailures: 3}
}

// Validate checks the configuration.
func (c GCConfig) Validate() error {
	var errs []error
	if c.Interval <= 0 || c.CallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("interval %v and call timeout %v must be positive", c.Interval, c.CallTimeout))
	}
	if c.Scan < 1 || c.NodeFailures < 1 {
		errs = append(errs, fmt.Errorf("scan %d and node failures %d must be at least 1", c.Scan, c.NodeFailures))
	}
	if c.MinAge < 0 {
		errs = append(errs, fmt.Errorf("minimum age %v is negative", c.MinAge))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("replication: invalid GC config: %w", err)
	}
	return nil
}

// ChunkDeleter deletes one chunk version's file on a node (the local store
// for this node, internode RPC for others); see
// chunkstore.Store.DeleteVersion for the conditions and the errors.
type ChunkDeleter interface {
	DeleteChunk(ctx context.Context, nodeID string, id chunkstore.ID, version uint64, minAge time.Duration) error
}

// GCMetadata is what the collector needs from the metadata node.
type GCMetadata interface {
	Propose(ctx context.Context, cmd meta.Command) (*meta.Result, error)
	FSM() *meta.FSM
}

// gcDoneBatch bounds the keys of one GCDone command (well under the Raft
// entry limit).
const gcDoneBatch = 1000

// GC is the leader's garbage collector.
type GC struct {
	cfg   GCConfig
	meta  GCMetadata
	del   ChunkDeleter
	clock LoopClock
	log   *slog.Logger

	mu sync.Mutex
	st GCStatus
	// done remembers, during one leadership, the nodes already clean for a
	// record not yet done everywhere, so later passes do not call them
	// again.
	done map[meta.GarbageKey]map[string]bool
}

// NewGC builds a collector; log may be nil.
func NewGC(cfg GCConfig, m GCMetadata, del ChunkDeleter, clock LoopClock, log *slog.Logger) (*GC, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &GC{cfg: cfg, meta: m, del: del, clock: clock, log: log.With("component", "gc")}, nil
}

// Status returns a copy of the collector's state.
func (g *GC) Status() GCStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.st
	st.Blocked = slices.Clone(st.Blocked)
	return st
}

// Run collects until ctx ends: a pass at once, then every Interval. It is
// a leader loop (meta.Node.RunWhileLeader): ctx ends on step-down.
func (g *GC) Run(ctx context.Context) {
	g.mu.Lock()
	g.st = GCStatus{Running: true}
	g.done = map[meta.GarbageKey]map[string]bool{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.st.Running = false
		g.done = nil
		g.mu.Unlock()
	}()
	for {
		if _, err := g.Pass(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("garbage collection pass failed", "err", err)
		}
		if sleepOn(ctx, g.clock, g.cfg.Interval) != nil {
			return
		}
	}
}

// GCPass is what one pass did.
type GCPass struct {
	Records   int      // records looked at
	Collected int      // records done everywhere and committed
	Deleted   int      // files deleted
	Pending   int      // records left for a later pass
	Blocked   []string // nodes given up on in this pass
}

// gcTask is one record's file on one node.
type gcTask struct {
	key  meta.GarbageKey
	node string
}

// Pass runs one collection pass.
func (g *GC) Pass(ctx context.Context) (GCPass, error) {
	var res GCPass
	recs, err := g.meta.FSM().Garbage(g.cfg.Scan)
	if err != nil {
		return res, err
	}
	nodes, err := g.meta.FSM().Nodes()
	if err != nil {
		return res, err
	}
	known := map[string]bool{}
	for _, n := range nodes {
		known[n.ID] = true
	}
	res.Records = len(recs)

	g.mu.Lock()
	if g.done == nil { // Pass called outside Run (tests)
		g.done = map[meta.GarbageKey]map[string]bool{}
	}
	done := map[meta.GarbageKey]map[string]bool{}
	for _, r := range recs {
		done[r.Key] = map[string]bool{}
		for n := range g.done[r.Key] {
			done[r.Key][n] = true
		}
	}
	g.mu.Unlock()

	// Which files are to be deleted where. A node the cluster forgot is
	// done: nobody will ever serve or ask for its files.
	perNode := map[string][]gcTask{}
	for _, r := range recs {
		for _, n := range r.Replicas {
			switch {
			case done[r.Key][n]:
			case !known[n]:
				done[r.Key][n] = true
			default:
				perNode[n] = append(perNode[n], gcTask{r.Key, n})
			}
		}
	}

	// One worker per node, each in record order; a node that keeps failing
	// stops only its own worker.
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		deleted int
		failed  int64
		blocked []string
	)
	for node, tasks := range perNode {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, del, fails := g.deleteOn(ctx, node, tasks)
			mu.Lock()
			defer mu.Unlock()
			for _, t := range ok {
				done[t.key][t.node] = true
			}
			deleted += del
			failed += int64(fails)
			if fails >= g.cfg.NodeFailures {
				blocked = append(blocked, node)
			}
		}()
	}
	wg.Wait()
	slices.Sort(blocked)
	res.Deleted, res.Blocked = deleted, blocked

	var finished []meta.GarbageKey
	for _, r := range recs {
		if !slices.ContainsFunc(r.Replicas, func(n string) bool { return !done[r.Key][n] }) {
			finished = append(finished, r.Key)
		}
	}
	var commitErr error
	committed := 0
	for batch := range slices.Chunk(finished, gcDoneBatch) {
		if _, err := g.meta.Propose(ctx, &meta.GCDone{Keys: batch}); err != nil {
			commitErr = fmt.Errorf("committing collected garbage: %w", err)
			break
		}
		committed += len(batch)
	}
	res.Collected = committed
	res.Pending = len(recs) - committed

	g.mu.Lock()
	newlyBlocked := !slices.Equal(blocked, g.st.Blocked)
	for _, k := range finished[:committed] {
		delete(g.done, k)
	}
	for _, r := range recs {
		if len(done[r.Key]) > 0 && slices.ContainsFunc(r.Replicas, func(n string) bool { return !done[r.Key][n] }) {
			g.done[r.Key] = done[r.Key]
		}
	}
	g.st.LastPass = g.clock.Now()
	g.st.Pending, g.st.Blocked = res.Pending, blocked
	g.st.Deleted += int64(deleted)
	g.st.Collected += int64(committed)
	g.st.Failed += failed
	g.mu.Unlock()
	if deleted > 0 || committed > 0 || newlyBlocked {
		g.log.Info("garbage collection pass", "records", res.Records, "deleted", deleted,
			"collected", committed, "pending", res.Pending, "blocked", blocked)
	}
	return res, commitErr
}

// deleteOn deletes the tasks' files on node, in order, until the node has
// failed NodeFailures calls. It returns the tasks done (file deleted,
// absent, of another version, or live again there), the files deleted,
// and the failed calls.
func (g *GC) deleteOn(ctx context.Context, node string, tasks []gcTask) (ok []gcTask, deleted, fails int) {
	for _, t := range tasks {
		if ctx.Err() != nil || fails >= g.cfg.NodeFailures {
			return ok, deleted, fails
		}
		k := t.key
		// Checked right before the call, the metadata being the leader's:
		// the chunk may have been copied back to this node since.
		ch, live, err := g.meta.FSM().Chunk(k.Vol, k.Ino, k.Index)
		if err != nil {
			fails++
			continue
		}
		if live && slices.Contains(ch.Replicas, node) {
			ok = append(ok, t) // that node's file is the live replica now
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, g.cfg.CallTimeout)
		err = g.del.DeleteChunk(cctx, node, ChunkID(k.Vol, k.Ino, k.Index), k.Version, g.cfg.MinAge)
		cancel()
		switch {
		case err == nil:
			ok = append(ok, t)
			deleted++
		case errors.Is(err, chunkstore.ErrVersionMismatch):
			// The node holds another version: not this garbage (the
			// sweep judges that file).
			ok = append(ok, t)
		case errors.Is(err, chunkstore.ErrTooRecent):
			// Younger than the safety delay: next pass.
		default:
			fails++
			g.log.Debug("garbage collection delete failed", "node", node, "chunk", ChunkID(k.Vol, k.Ino, k.Index).String(),
				"version", k.Version, "err", err)
		}
	}
	return ok, deleted, fails
}
