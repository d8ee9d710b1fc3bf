package replication

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// A damaged replica (a checksum error found by a read or by the scrubber)
// is reported by leaving it out of its chunk's replica set with a Raft
// command (meta.SetReplicas). The chunk is then under-replicated and the
// healer copies it from a good replica, like any lost replica; the damaged
// file is removed once no replica set lists it (right away when it is
// local, by the garbage collector or the orphan sweep when it is another
// node's). Leaving a replica out is safe: readers only ask replicas the
// metadata lists, at the version it names. Never the last good copy: a
// damaged file whose chunk has no other replica answering at the version
// stays listed (most of its blocks may still read) and is only counted.

// ErrLastCopy is returned by DropCorrupt when no other replica of the chunk
// answers at its version: the damaged replica is kept, since dropping it
// would leave nothing to read or to repair from.
var ErrLastCopy = errors.New("replication: no other replica holds the chunk; the damaged copy is kept")

// CorruptOutcome is what became of a local chunk file found damaged.
type CorruptOutcome string

const (
	// CorruptDropped: this node was left out of the chunk's replica set for
	// the healer to copy it back; the local file was removed.
	CorruptDropped CorruptOutcome = "dropped"
	// CorruptUnreferenced: no replica set lists the file here (garbage, an
	// orphan or a write that never committed); it was removed.
	CorruptUnreferenced CorruptOutcome = "unreferenced"
	// CorruptKept: the damaged replica is the chunk's last copy (ErrLastCopy).
	CorruptKept CorruptOutcome = "kept"
	// CorruptReplaced: looked at again the file was sound or gone (a good
	// copy was put over it meanwhile); nothing was done.
	CorruptReplaced CorruptOutcome = "replaced"
)

// CorruptCounts are the damaged replicas this node's data path dealt with
// since start.
type CorruptCounts struct {
	// Found: replicas that answered a read with a checksum error.
	Found int64 `json:"found"`
	// Dropped: replicas left out of their replica set (by reads or by the
	// scrubber of this node).
	Dropped int64 `json:"dropped"`
	// Kept: reports refused because no other good copy was there.
	Kept int64 `json:"kept"`
}

// corruptCounters are the atomic counters behind CorruptCounts.
type corruptCounters struct {
	found, dropped, kept atomic.Int64
}

// CorruptCounts returns this node's counts.
func (r *Replicator) CorruptCounts() CorruptCounts {
	return CorruptCounts{Found: r.corrupt.found.Load(), Dropped: r.corrupt.dropped.Load(), Kept: r.corrupt.kept.Load()}
}

// corruptRemover is the optional part of a LocalStore that removes a file
// only if it is still damaged (chunkstore.Store.DeleteCorrupt).
type corruptRemover interface {
	DeleteCorrupt(id chunkstore.ID) (bool, error)
}

// DropCorrupt leaves node out of the replica set of chunk index of file ino
// in volume vol, which it holds damaged at version. It returns false with
// no error when there is nothing to do (the chunk is gone, or no longer
// lists node), an error matching meta.ErrConflict when the chunk moved to
// another version (the report is stale: look again), and ErrLastCopy when
// no other listed replica answers at version. Only a replica whose header
// and checksum table read back at the version counts as another copy: a
// cheap check, so that a chunk is never left listing only nodes that are
// down or as damaged.
func (r *Replicator) DropCorrupt(ctx context.Context, vol uint32, ino, index, version uint64, node string) (bool, error) {
	id := ChunkID(vol, ino, index)
	ch, ok, err := r.meta.FSM().Chunk(vol, ino, index)
	if err != nil || !ok {
		return false, err
	}
	if ch.Version != version {
		return false, fmt.Errorf("%w: chunk %s is at version %d, the damage was found at %d", meta.ErrConflict, id, ch.Version, version)
	}
	if !slices.Contains(ch.Replicas, node) {
		return false, nil
	}
	others := slices.DeleteFunc(slices.Clone(ch.Replicas), func(n string) bool { return n == node })
	good := ""
	for _, o := range others {
		if info, err := r.inspect(ctx, o, id); err == nil && info.Version == version {
			good = o
			break
		}
	}
	if good == "" {
		r.corrupt.kept.Add(1)
		return false, fmt.Errorf("chunk %s version %d on %s (replicas %v): %w", id, version, node, ch.Replicas, ErrLastCopy)
	}
	if _, err := r.meta.Propose(ctx, &meta.SetReplicas{Vol: vol, Ino: ino, Index: index, Version: version, Replicas: others, From: ch.Replicas}); err != nil {
		return false, err
	}
	r.corrupt.dropped.Add(1)
	r.log.Warn("damaged replica left out of the replica set for repair", "chunk", id.String(), "version", version,
		"node", node, "replicas", others, "good", good)
	return true, nil
}

// HandleLocalCorrupt deals with a chunk file of this node found damaged
// (by the scrubber): after catching up with the leader, if the metadata
// lists this node for the chunk, it drops the replica (DropCorrupt);
// then, unless the replica had to be kept, it removes the file if it is
// still damaged.
func (r *Replicator) HandleLocalCorrupt(ctx context.Context, id chunkstore.ID) (CorruptOutcome, error) {
	if err := r.meta.CatchUp(ctx); err != nil {
		return "", err
	}
	ch, ok, err := r.meta.FSM().Chunk(id.Vol, id.Ino, id.Index)
	if err != nil {
		return "", err
	}
	outcome := CorruptUnreferenced
	if ok && slices.Contains(ch.Replicas, r.cfg.NodeID) {
		dropped, err := r.DropCorrupt(ctx, id.Vol, id.Ino, id.Index, ch.Version, r.cfg.NodeID)
		switch {
		case errors.Is(err, ErrLastCopy):
			r.log.Error("damaged replica kept: no other replica answers at its version", "err", err)
			return CorruptKept, nil
		case err != nil:
			return "", err
		case dropped:
			outcome = CorruptDropped
		}
	}
	removed, err := r.removeLocalCorrupt(id)
	if err != nil {
		return "", err
	}
	if !removed && outcome == CorruptUnreferenced {
		return CorruptReplaced, nil
	}
	return outcome, nil
}

// removeLocalCorrupt removes this node's file of id if it is still damaged.
// The caller has made sure no replica set lists it here.
func (r *Replicator) removeLocalCorrupt(id chunkstore.ID) (bool, error) {
	rm, ok := r.local.(corruptRemover)
	if !ok {
		return false, nil // the garbage collector and the sweep will
	}
	return rm.DeleteCorrupt(id)
}

// reportCorrupt is called by a read that found replicas damaged: each is
// dropped (see DropCorrupt), and a local one removed once dropped. A read
// never fails for this: errors are logged, and the scrubber finds what a
// failed report leaves behind.
func (r *Replicator) reportCorrupt(ctx context.Context, id chunkstore.ID, version uint64, nodes []string) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReplicaTimeout)
	defer cancel()
	for _, node := range nodes {
		r.corrupt.found.Add(1)
		dropped, err := r.DropCorrupt(ctx, id.Vol, id.Ino, id.Index, version, node)
		if errors.Is(err, ErrLastCopy) {
			r.log.Error("damaged replica kept: no other replica answers at its version", "err", err)
			continue
		}
		if err != nil {
			r.log.Warn("damaged replica found by a read not dropped", "chunk", id.String(), "node", node, "err", err)
			continue
		}
		if dropped && node == r.cfg.NodeID {
			if _, err := r.removeLocalCorrupt(id); err != nil {
				r.log.Warn("removing a damaged local chunk file", "chunk", id.String(), "err", err)
			}
		}
	}
}
