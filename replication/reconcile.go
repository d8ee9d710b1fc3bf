package replication

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// Chunk versions carry their writer: the high 48 bits count, the low 16
// bits are a tag of the node that wrote the version. A replica holding an
// uncommitted version therefore tells who wrote it: this node (whose writes
// to a chunk are serialised, so none is in flight) or another gateway (whose
// commit may still be in flight until StaleAfter). Two nodes share a tag
// with probability 2^-16 per pair; then a recent write of the other is
// treated as this node's own.
const tagBits = 16

func writerTag(nodeID string) uint64 {
	h := fnv.New32a()
	h.Write([]byte(nodeID))
	return uint64(h.Sum32()) & (1<<tagBits - 1)
}

// nextVersion is the version after base written by the node with tag.
func nextVersion(base, tag uint64) uint64 { return (base>>tagBits+1)<<tagBits | tag }

func writerOf(version uint64) uint64 { return version & (1<<tagBits - 1) }

// reconcile brings the answering replicas of a chunk back to one content
// after a write found some of them past the committed version base (or, for
// a new chunk, holding a file already).
//
// Such a replica applied a write that never committed: a failed write,
// whose bytes a client may or may not see (as with a failed write to a
// local disk); what must never happen is that replicas disagree, or that a
// chunk stays unwritable. So one replica's content is copied to the others
// under a fresh version: preferably one that stored the current write (ok),
// whose content is then exactly base + this write and the write is done;
// otherwise the replica furthest ahead, and the caller retries the write on
// top of it.
//
// First, though, the metadata may simply be behind (another node committed
// a newer version): then ErrVersionMismatch sends the caller to catch up
// and retry, and nothing is copied.
func (r *Replicator) reconcile(ctx context.Context, vol *meta.Volume, ino uint64, id chunkstore.ID, base uint64, cw meta.ChunkWrite, mismatched []string) (meta.ChunkWrite, error) {
	if err := r.meta.CatchUp(ctx); err != nil {
		return cw, err
	}
	cur, exists, err := r.meta.FSM().Chunk(vol.ID, ino, id.Index)
	if err != nil {
		return cw, err
	} else if exists && cur.Version != base {
		return cw, fmt.Errorf("%w: chunk %s moved from version %d to %d", chunkstore.ErrVersionMismatch, id, base, cur.Version)
	}
	// This write holds more replicas of the committed set than the set has
	// beyond a quorum: then no other write can reach the quorum any more
	// (it cannot store over ours, which is not its base, nor copy over
	// ours while it is young), so its young files are dead and may be
	// overwritten. Two writes can both be in that position (each on one
	// replica of a two-replica set): the higher writer tag takes it, the
	// other keeps refusing, or each would wait for the other until
	// StaleAfter. Only for an existing chunk: every writer based on it
	// sees the same replica set, whereas a new chunk's placement depends
	// on which nodes each writer saw failing.
	//
	// Only the chunk's current replicas count, and only they are
	// reconciled: the writer's view of the set may predate a change at
	// the same version (a replica dropped as corrupt, drained or moved),
	// and a node no longer listed must neither tip the balance nor be
	// listed again.
	all := append(slices.Clone(cw.Replicas), mismatched...)
	if exists {
		all = slices.DeleteFunc(all, func(n string) bool { return !slices.Contains(cur.Replicas, n) })
		cw.Replicas = slices.DeleteFunc(slices.Clone(cw.Replicas), func(n string) bool { return !slices.Contains(cur.Replicas, n) })
	}
	dominant := exists && len(cw.Replicas) > len(cur.Replicas)-vol.WriteQuorum
	versions := map[string]uint64{}
	top := cw.Version
	fence := ""
	for _, node := range all {
		info, err := r.inspect(ctx, node, id)
		if err != nil {
			continue
		}
		if slices.Contains(mismatched, node) && writerOf(info.Version) != r.tag && info.Age < r.cfg.StaleAfter &&
			!(dominant && writerOf(info.Version) < r.tag) {
			// Another gateway wrote this recently and may be committing it
			// right now: overwriting it could lose that write once
			// acknowledged. Let the caller wait and retry; past FenceAfter
			// its writer has most likely died or been cut off, and the
			// fence below makes overwriting it safe.
			if info.Age < r.cfg.FenceAfter {
				return cw, fmt.Errorf("%w: chunk %s on %s holds another gateway's write from %v ago",
					chunkstore.ErrVersionMismatch, id, node, info.Age.Round(time.Millisecond))
			}
			fence = node
		}
		versions[node] = info.Version
		top = max(top, info.Version)
	}
	var in *meta.Inline // chunk 0's inline bytes, when it is a new chunk of a small file
	if id.Index == 0 && !exists {
		if in, err = r.meta.FSM().Inline(vol.ID, ino); err != nil {
			return cw, err
		}
	}
	if fence != "" && in != nil {
		// The stranded write moves the inline bytes into chunk 0: its
		// commit names their generation. A WriteInline without data moves
		// the generation, so that commit can never land; the reconciling
		// commit below carries the bytes as they are now.
		if _, err := r.meta.Propose(ctx, &meta.WriteInline{Vol: vol.ID, Ino: ino}); err != nil {
			return cw, fmt.Errorf("chunk %s: fencing out an uncommitted move of inline data: %w", id, err)
		}
		if in, err = r.meta.FSM().Inline(vol.ID, ino); err != nil {
			return cw, err
		}
		r.log.Warn("fenced out another gateway's uncommitted move of inline data", "chunk", id.String(), "on", fence)
		fence = ""
	}
	if fence != "" {
		// Commit a new version of the chunk before touching any replica:
		// every uncommitted write is based on base, so from this commit on
		// none can commit (CommitWrite compares its base version), and
		// nothing stored on the replicas can become acknowledged behind
		// our back. If that write committed first, this fails with
		// ErrConflict and the caller catches up and retries on top of it.
		// Until the reconciling commit below, the chunk names a version no
		// replica holds; a reader then reconciles or reads ahead like
		// after any failed write, and a crash here leaves it to the healer.
		var length int64
		replicas := all
		if exists {
			length, replicas = cur.Length, cur.Replicas
		}
		fenced, err := r.fenceChunk(ctx, vol, ino, id, base, nextVersion(top, r.tag), length, replicas)
		if err != nil {
			return cw, err
		}
		r.log.Warn("fenced out another gateway's uncommitted write", "chunk", id.String(), "on", fence,
			"version", fenced)
		base, top = fenced, fenced
	}
	source, wrote := "", len(cw.Replicas) > 0
	var data []byte
	var spill *uint64 // set when data is chunk 0's inline bytes: their generation
	switch {
	case wrote:
		source = cw.Replicas[0]
	case exists:
		for _, node := range mismatched {
			if v, ok := versions[node]; ok && slices.Contains(all, node) && (source == "" || v > versions[source]) {
				source = node
			}
		}
		if source == "" {
			return cw, fmt.Errorf("%w: chunk %s: no replica to reconcile from", ErrQuorum, id)
		}
	default:
		// The metadata has no such chunk: the files in the way are what a
		// truncate or delete left for the garbage collector (older than
		// StaleAfter, or this node's own), or a failed move of inline
		// bytes to chunk 0. The chunk starts again empty, or from the
		// inline bytes; copying one of them would bring back bytes a
		// truncate cut.
		if in != nil {
			data, spill = in.Data, &in.Gen
		}
	}
	if source != "" {
		if data, err = r.fetch(ctx, source, id); err != nil {
			return cw, fmt.Errorf("%w: chunk %s: reading %s to reconcile: %v", ErrQuorum, id, source, err)
		}
	}
	fresh := nextVersion(top, r.tag)
	var kept []string
	for _, node := range all {
		if err := r.put(ctx, node, id, fresh, data); err == nil {
			kept = append(kept, node)
		}
	}
	slices.Sort(kept)
	if len(kept) < vol.WriteQuorum {
		return cw, fmt.Errorf("%w: chunk %s: reconciled only %d replicas", ErrQuorum, id, len(kept))
	}
	r.log.Warn("reconciled replicas after an uncommitted write", "chunk", id.String(), "from", source,
		"version", fresh, "replicas", kept)
	rec := meta.ChunkWrite{Index: id.Index, BaseVersion: base, Version: fresh, Length: int64(len(data)), Replicas: kept}
	if wrote {
		return rec, nil // the source held this write: it is in the copies
	}
	if _, err := r.meta.Propose(ctx, &meta.CommitWrite{Vol: vol.ID, Ino: ino, Chunks: []meta.ChunkWrite{rec}, Spill: spill}); err != nil {
		return cw, err
	}
	return cw, fmt.Errorf("%w: chunk %s reconciled to version %d; retry", chunkstore.ErrVersionMismatch, id, fresh)
}

// fenceChunk commits chunk id of file ino at version from base, keeping its
// length and replica set (for a new chunk: length 0 on the nodes being
// reconciled); it returns the version now committed.
func (r *Replicator) fenceChunk(ctx context.Context, vol *meta.Volume, ino uint64, id chunkstore.ID, base, version uint64, length int64, replicas []string) (uint64, error) {
	w := meta.ChunkWrite{Index: id.Index, BaseVersion: base, Version: version, Length: length, Replicas: slices.Clone(replicas)}
	slices.Sort(w.Replicas)
	if len(w.Replicas) == 0 {
		return 0, fmt.Errorf("%w: chunk %s: no replica to fence", ErrQuorum, id)
	}
	if _, err := r.meta.Propose(ctx, &meta.CommitWrite{Vol: vol.ID, Ino: ino, Chunks: []meta.ChunkWrite{w}}); err != nil {
		return 0, fmt.Errorf("chunk %s: fencing out an uncommitted write: %w", id, err)
	}
	return version, nil
}

func (r *Replicator) inspect(ctx context.Context, node string, id chunkstore.ID) (chunkstore.Info, error) {
	if node == r.cfg.NodeID {
		return r.local.Inspect(id)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReplicaTimeout)
	defer cancel()
	return r.peers.StatChunk(ctx, node, id)
}

func (r *Replicator) fetch(ctx context.Context, node string, id chunkstore.ID) ([]byte, error) {
	if node == r.cfg.NodeID {
		d, _, err := r.local.ReadAll(id)
		return d, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReplicaTimeout)
	defer cancel()
	d, _, err := r.peers.FetchChunk(ctx, node, id)
	return d, err
}

func (r *Replicator) put(ctx context.Context, node string, id chunkstore.ID, version uint64, data []byte) error {
	if node == r.cfg.NodeID {
		return r.local.Put(id, version, data)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReplicaTimeout)
	defer cancel()
	err := r.peers.PutChunk(ctx, node, id, version, data)
	if err != nil && !errors.Is(err, chunkstore.ErrTooLarge) {
		r.markDown(node)
	}
	return err
}
