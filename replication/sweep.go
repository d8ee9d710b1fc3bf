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

// The orphan sweep runs on every node. It lists the node's chunk files and
// deletes those the metadata does not reference on this node (the chunk is
// gone, or its replica set does not list this node) once they are older
// than OrphanAge. Garbage collection deletes what the metadata recorded as
// garbage; the sweep catches the rest: files of writes that never
// committed (a crash between a replica write and the commit, a write that
// lost its quorum), of GC records lost with their node, and whatever a
// node that was down kept of chunks that moved on without it.
//
// Safety: the metadata is caught up with the leader first (a read
// barrier), so every commit made before the barrier started is seen. A
// file that a commit after that will reference was written shortly before
// that commit, hence less than OrphanAge before the barrier started, as
// long as OrphanAge exceeds the time from a replica write (or a healer's
// copy) to its commit. So a file is deleted only if it was last changed
// OrphanAge before the barrier *started*: a barrier that waits long (no
// leader yet, a node replaying its log after a partition) widens the
// delay by its wait, instead of letting commits made during the wait go
// unseen. The delete itself is conditional on the version and that age
// (chunkstore.Store.DeleteVersion), so a file replaced between the look
// and the delete survives.
//
// A node that returns after being down never serves what it kept in the
// meantime: reads go only to the replicas the metadata lists, at the
// version it names, and a replica holding another version answers "version
// mismatch" (chunkstore.Store.Read), never old bytes. Its files stay
// unreferenced until the garbage collector or this sweep deletes them, or
// the healer puts a current copy over them.

// SweepConfig configures a node's orphan sweep.
type SweepConfig struct {
	NodeID string
	// Interval is the time between passes; the first pass comes OrphanAge
	// after the start (nothing younger could be deleted anyway).
	Interval time.Duration
	// OrphanAge is the safety delay: an unreferenced file changed more
	// recently than this is kept.
	OrphanAge time.Duration
}

// DefaultSweepConfig returns the defaults: a pass an hour, 10 minutes of
// safety delay.
func DefaultSweepConfig(nodeID string) SweepConfig {
	return SweepConfig{NodeID: nodeID, Interval: time.Hour, OrphanAge: 10 * time.Minute}
}

// Validate checks the configuration.
func (c SweepConfig) Validate() error {
	if c.NodeID == "" || c.Interval <= 0 || c.OrphanAge <= 0 {
		return fmt.Errorf("replication: invalid sweep config: node ID %q, interval %v and orphan age %v must be set",
			c.NodeID, c.Interval, c.OrphanAge)
	}
	return nil
}

// SweepStore is the node's chunk store as the sweep uses it.
type SweepStore interface {
	List() ([]chunkstore.ID, error)
	Inspect(id chunkstore.ID) (chunkstore.Info, error)
	DeleteVersion(id chunkstore.ID, version uint64, minAge time.Duration) error
}

// SweepMetadata is what the sweep needs from the metadata node.
type SweepMetadata interface {
	CatchUp(ctx context.Context) error
	FSM() *meta.FSM
}

// ReplicaDropper leaves a replica that cannot serve its chunk out of the
// replica set; the Replicator implements it (DropCorrupt).
type ReplicaDropper interface {
	DropCorrupt(ctx context.Context, vol uint32, ino, index, version uint64, node string) (bool, error)
}

// Sweeper is one node's orphan sweep.
type Sweeper struct {
	cfg   SweepConfig
	meta  SweepMetadata
	store SweepStore
	drop  ReplicaDropper // may be nil
	clock LoopClock
	log   *slog.Logger

	mu sync.Mutex
	st SweepStatus
}

// NewSweeper builds a sweep; drop and log may be nil.
func NewSweeper(cfg SweepConfig, m SweepMetadata, store SweepStore, drop ReplicaDropper, clock LoopClock, log *slog.Logger) (*Sweeper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sweeper{cfg: cfg, meta: m, store: store, drop: drop, clock: clock, log: log.With("component", "sweep")}
	s.st.Node, s.st.OrphanAge = cfg.NodeID, cfg.OrphanAge
	return s, nil
}

// Status returns a copy of the sweep's state.
func (s *Sweeper) Status() SweepStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Run sweeps until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	wait := s.cfg.OrphanAge
	for {
		if sleepOn(ctx, s.clock, wait) != nil {
			return
		}
		if err := s.Pass(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("orphan sweep pass failed", "err", err)
		}
		wait = s.cfg.Interval
	}
}

// Pass runs one sweep over the node's chunk files.
func (s *Sweeper) Pass(ctx context.Context) error {
	barrier, err := s.catchUp(ctx)
	if err != nil {
		return err
	}
	ids, err := s.store.List()
	if err != nil {
		return err
	}
	var st SweepStatus
	var deleted int64
	for _, id := range ids {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A long pass refreshes its read barrier, so the extra delay a
		// file needs beyond OrphanAge stays small.
		if s.clock.Now().Sub(barrier) > s.cfg.OrphanAge/4 {
			if barrier, err = s.catchUp(ctx); err != nil {
				return err
			}
		}
		st.Files++
		// Old enough: changed OrphanAge before the barrier started.
		minAge := s.cfg.OrphanAge + max(0, s.clock.Now().Sub(barrier))
		gone, err := s.sweepOne(ctx, id, minAge, &st)
		if err != nil {
			s.log.Warn("orphan sweep skipped a chunk file", "chunk", id.String(), "err", err)
		}
		if gone {
			deleted++
		}
	}
	s.mu.Lock()
	st.Node, st.OrphanAge = s.cfg.NodeID, s.cfg.OrphanAge
	st.Passes, st.Deleted = s.st.Passes+1, s.st.Deleted+deleted
	st.LastPass = s.clock.Now()
	s.st = st
	s.mu.Unlock()
	level := slog.LevelDebug
	if deleted > 0 || st.Ahead+st.Behind+st.Corrupt > 0 {
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "orphan sweep pass", "files", st.Files, "live", st.Live, "deleted", deleted, "young", st.Young,
		"ahead", st.Ahead, "behind", st.Behind, "corrupt", st.Corrupt)
	return nil
}

// catchUp runs a read barrier and returns when it started.
func (s *Sweeper) catchUp(ctx context.Context) (time.Time, error) {
	start := s.clock.Now()
	if err := s.meta.CatchUp(ctx); err != nil {
		return start, fmt.Errorf("catching up with the leader: %w", err)
	}
	return start, nil
}

// sweepOne judges one file and deletes it if it is an orphan unchanged for
// minAge.
func (s *Sweeper) sweepOne(ctx context.Context, id chunkstore.ID, minAge time.Duration, st *SweepStatus) (bool, error) {
	// The metadata first, then the file: a replica write always precedes
	// its commit, so a listed replica's file is never behind what was read.
	ch, ok, err := s.meta.FSM().Chunk(id.Vol, id.Ino, id.Index)
	if err != nil {
		return false, err
	}
	listed := ok && slices.Contains(ch.Replicas, s.cfg.NodeID)
	info, err := s.store.Inspect(id)
	switch {
	case errors.Is(err, chunkstore.ErrNotFound):
		st.Files--
		return false, nil
	case errors.Is(err, chunkstore.ErrCorrupt):
		if listed {
			st.Corrupt++ // the scrubber (or a read) drops it first
			return false, nil
		}
		// Version 0 deletes it only while its header stays unreadable.
		return s.delete(id, 0, minAge, st)
	case err != nil:
		return false, err
	}
	switch {
	case listed && info.Version == ch.Version:
		st.Live++
		return false, nil
	case listed && info.Version > ch.Version && (info.Age < minAge || s.drop == nil):
		// A write the metadata has not committed (yet, or ever): the
		// writer or the next write reconciles it.
		st.Ahead++
		return false, nil
	case listed && info.Version > ch.Version:
		// A write that never committed and whose writer gave up long ago
		// (a gateway cut off by a partition, or one that died): the file
		// diverged from the replica set. Leave this replica out, if another
		// one holds the committed version, so that the healer copies that
		// version back here; a read or write of the chunk would reconcile
		// it too, but a chunk nobody touches would stay diverged.
		st.Ahead++
		if _, err := s.drop.DropCorrupt(ctx, id.Vol, id.Ino, id.Index, ch.Version, s.cfg.NodeID); err != nil && !errors.Is(err, ErrLastCopy) {
			return false, err
		}
		s.log.Info("left out a replica that diverged on an uncommitted write", "chunk", id.String(),
			"local", info.Version, "committed", ch.Version, "age", info.Age)
		return false, nil
	case listed:
		// Listed at a version this replica does not hold: only a disk
		// rolled back behind our back does this. Reads refuse it (version
		// mismatch); leave it out so the healer copies a current one.
		st.Behind++
		s.log.Error("replica listed at a version it does not hold", "chunk", id.String(),
			"local", info.Version, "committed", ch.Version)
		if s.drop != nil {
			if _, err := s.drop.DropCorrupt(ctx, id.Vol, id.Ino, id.Index, ch.Version, s.cfg.NodeID); err != nil {
				return false, err
			}
		}
		return false, nil
	case info.Age < minAge:
		st.Young++
		return false, nil
	}
	return s.delete(id, info.Version, minAge, st)
}

func (s *Sweeper) delete(id chunkstore.ID, version uint64, minAge time.Duration, st *SweepStatus) (bool, error) {
	err := s.store.DeleteVersion(id, version, minAge)
	switch {
	case err == nil:
		s.log.Info("deleted an orphan chunk file", "chunk", id.String(), "version", version)
		return true, nil
	case errors.Is(err, chunkstore.ErrTooRecent) || errors.Is(err, chunkstore.ErrVersionMismatch):
		st.Young++ // replaced since we looked: judge it next pass
		return false, nil
	}
	return false, err
}
