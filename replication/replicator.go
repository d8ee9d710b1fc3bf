package replication

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"

	faultpoint "github.com/fsrep/fsrep/internal/fault"
)

// Metadata is what the data paths need from the metadata node.
type Metadata interface {
	Propose(ctx context.Context, cmd meta.Command) (*meta.Result, error)
	CatchUp(ctx context.Context) error
	FSM() *meta.FSM
}

// Peers reaches the chunk stores of other nodes (internode RPC).
type Peers interface {
	WriteChunk(ctx context.Context, nodeID string, id chunkstore.ID, base, version uint64, baseLen, off int64, data []byte) (int64, error)
	ReadChunk(ctx context.Context, nodeID string, id chunkstore.ID, version uint64, off int64, length int) ([]byte, error)
	FetchChunk(ctx context.Context, nodeID string, id chunkstore.ID) ([]byte, uint64, error)
	PutChunk(ctx context.Context, nodeID string, id chunkstore.ID, version uint64, data []byte) error
	StatChunk(ctx context.Context, nodeID string, id chunkstore.ID) (chunkstore.Info, error)
}

// readerInto is a LocalStore that reads into the caller's buffer
// (chunkstore.Store.ReadInto).
type readerInto interface {
	ReadInto(id chunkstore.ID, version uint64, off int64, dst []byte) error
}

// LocalStore is this node's chunk store.
type LocalStore interface {
	Write(id chunkstore.ID, baseVersion, newVersion uint64, baseLength, off int64, data []byte) (int64, error)
	Read(id chunkstore.ID, version uint64, off int64, length int) ([]byte, error)
	ReadAll(id chunkstore.ID) ([]byte, uint64, error)
	Put(id chunkstore.ID, version uint64, data []byte) error
	Inspect(id chunkstore.ID) (chunkstore.Info, error)
}

// Clock is injected so that tests drive the down-marking of peers.
type Clock interface{ Now() time.Time }

// Config configures the data paths of one node.
type Config struct {
	NodeID string
	AZ     string
	// ReplicaTimeout bounds one replica write or read; a replica slower than
	// this is treated as failed for that request.
	ReplicaTimeout time.Duration
	// StragglerWait bounds how long a write that already has its write
	// quorum waits for the remaining replicas: after the longer of this and
	// the time the quorum took, replicas that have not answered are cut
	// short and left out of the commit like failed ones (the healer copies
	// the chunk back to them). A frozen replica (SIGSTOP, a hung disk, a
	// peer whose TCP never resets) then costs each write this much, not the
	// replica timeout. At or above ReplicaTimeout it changes nothing.
	StragglerWait time.Duration
	// DownFor is how long a replica that failed is skipped when placing new
	// chunks and ordering reads (local failure detection until the cluster
	// heartbeats of later work take over).
	DownFor time.Duration
	// Attempts bounds the retries of a write whose chunk version moved on
	// under it (a concurrent writer through another node), with a backoff
	// from 50 ms doubling to 1 s between them.
	Attempts int
	// StaleAfter is how old another gateway's uncommitted write on a
	// replica must be before this node may overwrite it: younger, that
	// writer may still be committing it. It must exceed the time a write
	// can take from its first replica to its commit (replica timeout plus
	// propose timeout).
	StaleAfter time.Duration
	// FenceAfter is how old another gateway's uncommitted write must be
	// before this node, instead of waiting for StaleAfter, fences it out:
	// it commits a new version of the chunk through Raft first (so the
	// stranded write's commit, based on the old version, can never land),
	// then reconciles the replicas. A gateway that died or was cut off
	// between its replica writes and its commit then costs its successor
	// about FenceAfter, not StaleAfter. A live writer fenced out merely
	// retries; below a normal write's duration, concurrent writers to one
	// chunk would keep fencing each other.
	FenceAfter time.Duration
	// InlineMax is the file end up to which this node writes a file with
	// no chunks inline in the metadata (meta/inline.go), at most
	// meta.InlineMax; 0 writes every file to chunks. Reads and the move of
	// inline bytes to chunks work whatever it is.
	InlineMax int64
}

// DefaultConfig returns the defaults for a node.
func DefaultConfig(nodeID, az string) Config {
	return Config{NodeID: nodeID, AZ: az, ReplicaTimeout: 5 * time.Second, StragglerWait: time.Second,
		DownFor: 10 * time.Second, Attempts: 8, StaleAfter: 30 * time.Second, FenceAfter: 2 * time.Second,
		InlineMax: meta.InlineMax}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.NodeID == "" || c.ReplicaTimeout <= 0 || c.Attempts < 1 {
		return errors.New("replication: node ID, a positive replica timeout and at least one attempt are required")
	}
	if c.StragglerWait <= 0 {
		return errors.New("replication: StragglerWait must be positive")
	}
	if c.StaleAfter <= c.ReplicaTimeout {
		return errors.New("replication: StaleAfter must exceed the replica timeout")
	}
	if c.FenceAfter <= 0 || c.FenceAfter > c.StaleAfter {
		return errors.New("replication: FenceAfter must be positive and at most StaleAfter")
	}
	if c.InlineMax < 0 || c.InlineMax > meta.InlineMax {
		return fmt.Errorf("replication: InlineMax must be within [0, %d]", meta.InlineMax)
	}
	return nil
}

// ErrQuorum is returned when fewer replicas than the write quorum stored a write.
var ErrQuorum = errors.New("replication: write quorum not reached")

// ErrNoSpace is returned (wrapped) by a write that too few replicas stored
// because the others are out of space: it would have had its quorum had
// they not been. It matches chunkstore.ErrNoSpace and syscall.ENOSPC (the
// gateway answers NFS3ERR_NOSPC), not ErrQuorum: a client told to retry
// later (JUKEBOX) would retry until an operator frees space.
var ErrNoSpace = fmt.Errorf("replication: too few replicas have space: %w", chunkstore.ErrNoSpace)

// ErrUnavailable is returned when no replica could serve a read.
var ErrUnavailable = errors.New("replication: no replica could serve the read")

// Replicator runs the replicated write and read paths of one node.
type Replicator struct {
	cfg   Config
	meta  Metadata
	peers Peers
	local LocalStore
	clock Clock
	log   *slog.Logger
	tag   uint64 // this node's writer tag in the versions it writes

	files fileLocks

	downMu sync.Mutex
	down   map[string]time.Time // node ID -> until
	full   map[string]time.Time // node ID -> until: it refused a write for lack of space
	view   LivenessView         // the leader's verdicts, if set (under downMu)

	corrupt corruptCounters // damaged replicas found and dropped (corrupt.go)
}

// New builds a Replicator.
func New(cfg Config, m Metadata, peers Peers, local LocalStore, clock Clock, log *slog.Logger) (*Replicator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Replicator{cfg: cfg, meta: m, peers: peers, local: local, clock: clock, log: log, tag: writerTag(cfg.NodeID),
		files: fileLocks{m: map[fileKey]*fileLock{}}, down: map[string]time.Time{}, full: map[string]time.Time{}}, nil
}

// ChunkID names chunk index of a file.
func ChunkID(vol uint32, ino, index uint64) chunkstore.ID {
	return chunkstore.ID{Vol: vol, Ino: ino, Index: index}
}

// LivenessView is the leader's liveness verdicts as this node last heard
// them (a View), consulted when set with SetLiveness.
type LivenessView interface {
	// NodeState is "" when unknown (the verdict is too old, or none came).
	NodeState(id string) NodeState
	// FreeBytes is the node's free space as last reported, -1 if unknown.
	FreeBytes(id string) int64
}

// fullView is a LivenessView that also knows which nodes reported their
// chunk disk below its reserve (View does).
type fullView interface {
	Full(id string) bool
}

// SetLiveness makes the Replicator treat nodes the leader reports down or
// suspect like nodes it saw failing itself (no new chunks, read last), and
// prefer nodes with more free space when placing new chunks (and, if v is
// also a fullView, place none on nodes that report a full disk).
func (r *Replicator) SetLiveness(v LivenessView) {
	r.downMu.Lock()
	r.view = v
	r.downMu.Unlock()
}

func (r *Replicator) markDown(node string) {
	r.downMu.Lock()
	r.down[node] = r.clock.Now().Add(r.cfg.DownFor)
	r.downMu.Unlock()
}

// markFull records that node refused a write for lack of space: new chunks
// avoid it for DownFor, or until a write to it passes. Unlike markDown it
// does not move the node to the end of the read order: a full disk still
// serves its replicas.
func (r *Replicator) markFull(node string) {
	r.downMu.Lock()
	r.full[node] = r.clock.Now().Add(r.cfg.DownFor)
	r.downMu.Unlock()
}

// wroteTo forgets that node was full: it just stored a write.
func (r *Replicator) wroteTo(node string) {
	r.downMu.Lock()
	delete(r.full, node)
	r.downMu.Unlock()
}

// isFull reports whether node refused a write for lack of space lately or
// says in its heartbeat that its disk is below the reserve.
func (r *Replicator) isFull(node string) bool {
	r.downMu.Lock()
	defer r.downMu.Unlock()
	if fv, ok := r.view.(fullView); ok && fv.Full(node) {
		return true
	}
	until, ok := r.full[node]
	if !ok {
		return false
	}
	if r.clock.Now().After(until) {
		delete(r.full, node)
		return false
	}
	return true
}

func (r *Replicator) isDown(node string) bool {
	r.downMu.Lock()
	defer r.downMu.Unlock()
	if r.view != nil && node != r.cfg.NodeID {
		if s := r.view.NodeState(node); s == StateDown || s == StateSuspect {
			return true
		}
	}
	until, ok := r.down[node]
	if !ok {
		return false
	}
	if r.clock.Now().After(until) {
		delete(r.down, node)
		return false
	}
	return true
}

// piece is the part of one request that falls in one chunk.
type piece struct {
	index uint64
	off   int64 // offset inside the chunk
	data  []byte
}

func split(chunkSize int64, off int64, data []byte) []piece {
	var out []piece
	for len(data) > 0 {
		idx := off / chunkSize
		in := off % chunkSize
		n := min(int64(len(data)), chunkSize-in)
		out = append(out, piece{index: uint64(idx), off: in, data: data[:n]})
		data = data[n:]
		off += n
	}
	return out
}

// WriteAt stores data at off in file ino of vol durably on at least the write
// quorum of every touched chunk's replicas, then commits the new chunk
// versions, replica sets (without the replicas that failed, or that had
// not answered StragglerWait after the quorum did) and the file size
// through Raft. Only then does it return: a replica that missed an
// acknowledged write is never listed as holding it.
func (r *Replicator) WriteAt(ctx context.Context, vol *meta.Volume, ino uint64, off int64, data []byte) (*meta.Inode, error) {
	if off < 0 || off+int64(len(data)) < off || uint64(off)+uint64(len(data)) > 1<<62 {
		return nil, fmt.Errorf("%w: write at %d of %d bytes is out of range", meta.ErrInvalid, off, len(data))
	}
	var touched []uint64
	for _, p := range split(vol.ChunkSize, off, data) {
		touched = append(touched, p.index)
	}
	unlock := r.files.lockChunks(fileKey{vol.ID, ino}, touched...)
	defer unlock()
	var lastErr error
	backoff := 50 * time.Millisecond
	for attempt := 0; attempt < r.cfg.Attempts; attempt++ {
		if attempt > 0 {
			// Another writer moved the chunk on, or is about to: give it
			// time to commit, then catch up with the metadata.
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), lastErr)
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			if err := r.meta.CatchUp(ctx); err != nil {
				return nil, err
			}
		}
		n, err := r.writeOnce(ctx, vol, ino, off, data)
		if err == nil {
			return n, nil
		}
		lastErr = err
		if !errors.Is(err, meta.ErrConflict) && !errors.Is(err, chunkstore.ErrVersionMismatch) {
			return nil, err
		}
		r.log.Debug("write retried", "vol", vol.ID, "ino", ino, "off", off, "attempt", attempt, "err", err)
	}
	return nil, lastErr
}

// Truncate sets the size of file ino, ordered with this node's writes to it
// (a write in flight cannot commit after the truncate and bring cut bytes
// back).
func (r *Replicator) Truncate(ctx context.Context, vol *meta.Volume, ino uint64, size uint64) (*meta.Inode, error) {
	unlock := r.files.lockFile(fileKey{vol.ID, ino})
	defer unlock()
	res, err := r.meta.Propose(ctx, &meta.SetAttr{Vol: vol.ID, Ino: ino, Size: &size})
	if err != nil {
		return nil, err
	}
	return res.Inode, nil
}

func (r *Replicator) writeOnce(ctx context.Context, vol *meta.Volume, ino uint64, off int64, data []byte) (*meta.Inode, error) {
	end := uint64(off) + uint64(len(data))
	pieces := split(vol.ChunkSize, off, data)
	cmd := &meta.CommitWrite{Vol: vol.ID, Ino: ino, Size: end}
	if pieces[0].index == 0 {
		_, chunked, err := r.meta.FSM().Chunk(vol.ID, ino, 0)
		if err != nil {
			return nil, err
		}
		if !chunked && end <= uint64(r.cfg.InlineMax) {
			// A small file: its bytes go into the metadata (meta/inline.go).
			// ErrConflict (chunk 0 appeared meanwhile) retries on chunks.
			res, err := r.meta.Propose(ctx, &meta.WriteInline{Vol: vol.ID, Ino: ino, Off: uint64(off), Data: data})
			if err != nil {
				return nil, err
			}
			return res.Inode, nil
		}
		in, err := r.meta.FSM().Inline(vol.ID, ino)
		if err != nil {
			return nil, err
		}
		if in != nil && !chunked {
			// The first write to chunk 0 past InlineMax carries the inline
			// bytes into the new chunk 0; the commit drops them only if
			// they are still this generation.
			pieces[0] = spillPiece(pieces[0], in.Data)
			cmd.Spill = &in.Gen
		}
	}
	results := make([]meta.ChunkWrite, len(pieces))
	errs := make([]error, len(pieces))
	var wg sync.WaitGroup
	for i, p := range pieces {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = r.writePiece(ctx, vol, ino, p)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cmd.Chunks = results
	if err := faultpoint.Point(faultpoint.ReplicaAcked); err != nil {
		return nil, err
	}
	res, err := r.meta.Propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return res.Inode, nil
}

// spillPiece returns p, a piece of chunk 0, over the file's inline bytes.
func spillPiece(p piece, inl []byte) piece {
	buf := make([]byte, max(int64(len(inl)), p.off+int64(len(p.data))))
	copy(buf, inl)
	copy(buf[p.off:], p.data)
	return piece{index: 0, off: 0, data: buf}
}

// writePiece writes one chunk's part on its replicas in parallel.
func (r *Replicator) writePiece(ctx context.Context, vol *meta.Volume, ino uint64, p piece) (meta.ChunkWrite, error) {
	id := ChunkID(vol.ID, ino, p.index)
	cur, ok, err := r.meta.FSM().Chunk(vol.ID, ino, p.index)
	if err != nil {
		return meta.ChunkWrite{}, err
	}
	var base uint64
	var baseLen int64
	var replicas []string
	if ok {
		base, baseLen, replicas = cur.Version, cur.Length, cur.Replicas
	} else {
		replicas, err = r.place(vol, ino, p.index)
		if err != nil && len(replicas) < vol.WriteQuorum {
			return meta.ChunkWrite{}, fmt.Errorf("%w: placing chunk %s: %v", ErrQuorum, id, err)
		}
	}
	version := nextVersion(base, r.tag)
	type outcome struct {
		node   string
		length int64
		err    error
	}
	// Stragglers are cut short through wctx once the quorum has answered
	// and StragglerWait has passed; every replica's goroutine is still
	// waited for below (a cancelled RPC returns at once), so none outlives
	// the write and its data.
	wctx, cutStragglers := context.WithCancel(ctx)
	defer cutStragglers()
	started := time.Now()
	out := make(chan outcome, len(replicas))
	for _, node := range replicas {
		go func() {
			n, err := r.writeReplica(wctx, node, id, base, version, baseLen, p)
			out <- outcome{node, n, err}
		}()
	}
	cw := meta.ChunkWrite{Index: p.index, BaseVersion: base, Version: version}
	var mismatch, failed []error
	var mismatched, full []string // full: answered ErrNoSpace
	var grace <-chan time.Time    // fires StragglerWait after the quorum answered
	armed, cut := false, false
	for i := range replicas {
		if !armed && i > 0 && len(cw.Replicas) >= vol.WriteQuorum {
			armed = true
			t := time.NewTimer(max(r.cfg.StragglerWait, time.Since(started)))
			defer t.Stop()
			grace = t.C
		}
		var o outcome
		select {
		case o = <-out:
		case <-grace:
			grace, cut = nil, true
			cutStragglers() // they answer at once now, with wctx's error
			o = <-out
		}
		if o.err != nil {
			switch {
			case errors.Is(o.err, chunkstore.ErrVersionMismatch):
				mismatch = append(mismatch, o.err)
				mismatched = append(mismatched, o.node)
			case errors.Is(o.err, chunkstore.ErrNoSpace):
				full = append(full, o.node)
				failed = append(failed, fmt.Errorf("%s: %w", o.node, o.err))
			case cut && ctx.Err() == nil:
				failed = append(failed, fmt.Errorf("%s: cut short %v after the write quorum answered: %w",
					o.node, time.Since(started).Round(time.Millisecond), o.err))
			default:
				failed = append(failed, fmt.Errorf("%s: %w", o.node, o.err))
			}
			continue
		}
		cw.Replicas = append(cw.Replicas, o.node)
		cw.Length = max(cw.Length, o.length)
	}
	slices.Sort(cw.Replicas)
	if len(cw.Replicas) >= vol.WriteQuorum {
		if len(failed)+len(mismatch) > 0 {
			r.log.Warn("write dropped failed replicas", "chunk", id.String(), "kept", cw.Replicas,
				"errors", errors.Join(append(failed, mismatch...)...))
		}
		return cw, nil
	}
	if len(cw.Replicas)+len(mismatched) >= vol.WriteQuorum {
		// Enough replicas answered, but some are past the committed version:
		// a write that never committed (its quorum or its Raft commit failed)
		// reached them, or our view of the metadata is behind.
		return r.reconcile(ctx, vol, ino, id, base, cw, mismatched)
	}
	if len(cw.Replicas)+len(full) >= vol.WriteQuorum {
		// Only the lack of space stands between the write and its quorum.
		// Nothing is committed: the replicas that stored it are ahead of the
		// committed version, as after any failed write, and a full replica
		// left its chunk as it was (chunkstore.Store.Write).
		return cw, fmt.Errorf("%w: chunk %s: %d of %d replicas stored it, %d needed; out of space: %v (%v)",
			ErrNoSpace, id, len(cw.Replicas), len(replicas), vol.WriteQuorum, full, errors.Join(failed...))
	}
	return cw, fmt.Errorf("%w: chunk %s: %d of %d replicas stored it, %d needed: %w",
		ErrQuorum, id, len(cw.Replicas), len(replicas), vol.WriteQuorum, errors.Join(append(failed, mismatch...)...))
}

func (r *Replicator) writeReplica(ctx context.Context, node string, id chunkstore.ID, base, version uint64, baseLen int64, p piece) (int64, error) {
	var n int64
	var err error
	if node == r.cfg.NodeID {
		n, err = r.local.Write(id, base, version, baseLen, p.off, p.data)
	} else {
		ctx, cancel := context.WithTimeout(ctx, r.cfg.ReplicaTimeout)
		n, err = r.peers.WriteChunk(ctx, node, id, base, version, baseLen, p.off, p.data)
		cancel()
	}
	switch {
	case err == nil:
		r.wroteTo(node)
	case errors.Is(err, chunkstore.ErrNoSpace):
		r.markFull(node) // it answered: not down, and still serves reads
	case node == r.cfg.NodeID, errors.Is(err, chunkstore.ErrVersionMismatch), errors.Is(err, chunkstore.ErrTooLarge):
	default:
		r.markDown(node)
	}
	return n, err
}

// place chooses the replicas of a new chunk from the registered nodes.
func (r *Replicator) place(vol *meta.Volume, ino, index uint64) ([]string, error) {
	nodes, err := r.meta.FSM().Nodes()
	if err != nil {
		return nil, err
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/%d", vol.ID, ino, index)
	place := func(up func(id string) bool, avoidFull bool) ([]string, error) {
		cands := make([]Candidate, 0, len(nodes))
		for _, n := range nodes {
			cands = append(cands, Candidate{ID: n.ID, AZ: n.AZ, Free: r.freeBytes(n.ID), Up: !n.Draining && up(n.ID),
				Full: avoidFull && r.isFull(n.ID)})
		}
		return Place(cands, vol.Replicas, nil, nil, h.Sum64())
	}
	notDown := func(id string) bool { return !r.isDown(id) }
	replicas, err := place(notDown, true)
	if len(replicas) < vol.WriteQuorum {
		// Too few nodes with room: ask the full ones too. Their stores
		// answer for themselves, ErrNoSpace (the client's NFS3ERR_NOSPC)
		// or, once space was freed, success: writes resume as soon as
		// there is room, not when the marks and heartbeats catch up.
		if more, merr := place(notDown, false); len(more) > len(replicas) {
			replicas, err = more, merr
		}
	}
	if len(replicas) < vol.WriteQuorum {
		// The nodes this one marked down itself (a failed call, or a
		// replica cut short as a straggler) are, when the leader does not
		// report them down or suspect, more likely slow than gone (a
		// loaded disk): a write to them beats no new chunk at all, which
		// would fail every create until the marks expire.
		if more, merr := place(func(id string) bool { return !r.leaderDown(id) }, false); len(more) > len(replicas) {
			return more, merr
		}
	}
	return replicas, err
}

// leaderDown reports whether the leader's verdicts (SetLiveness) have node
// down or suspect.
func (r *Replicator) leaderDown(node string) bool {
	r.downMu.Lock()
	defer r.downMu.Unlock()
	if r.view == nil || node == r.cfg.NodeID {
		return false
	}
	s := r.view.NodeState(node)
	return s == StateDown || s == StateSuspect
}

// freeBytes is a node's free space in whole GiB (-1: unknown): nodes within
// a GiB of each other count as equal, so new chunks spread over them
// instead of all going to whichever reported a few bytes more.
func (r *Replicator) freeBytes(node string) int64 {
	r.downMu.Lock()
	v := r.view
	r.downMu.Unlock()
	if v == nil {
		return -1
	}
	f := v.FreeBytes(node)
	if f < 0 {
		return -1
	}
	return f >> 30 << 30
}

// ReadAt fills buf from off of a file of the given size (bytes past size are
// not read; the count returned stops there). Holes and bytes past a chunk's
// length read as zeros.
func (r *Replicator) ReadAt(ctx context.Context, vol *meta.Volume, ino uint64, size uint64, off int64, buf []byte) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset", meta.ErrInvalid)
	}
	if uint64(off) >= size {
		return 0, nil
	}
	want := min(uint64(len(buf)), size-uint64(off))
	buf = buf[:want]
	for _, p := range split(vol.ChunkSize, off, buf) {
		if p.index == 0 {
			in, err := r.meta.FSM().Inline(vol.ID, ino)
			if err != nil {
				return 0, err
			}
			if in != nil {
				// Chunk 0 is inline: bytes past the inline data read as zeros.
				clear(p.data[copy(p.data, in.Data[min(p.off, int64(len(in.Data))):]):])
				continue
			}
		}
		if err := r.readPiece(ctx, vol, ino, p); err != nil {
			return 0, err
		}
	}
	return int(want), nil
}

func (r *Replicator) readPiece(ctx context.Context, vol *meta.Volume, ino uint64, p piece) error {
	err := r.readPieceOnce(ctx, vol, ino, p)
	if errors.Is(err, chunkstore.ErrVersionMismatch) {
		// The replicas hold a newer version than this node has applied:
		// catch up with the leader and read the version it names.
		if cerr := r.meta.CatchUp(ctx); cerr != nil {
			return err
		}
		err = r.readPieceOnce(ctx, vol, ino, p)
	}
	if errors.Is(err, chunkstore.ErrVersionMismatch) {
		// Still no replica at the committed version: a write that never
		// committed reached all of them. Reconcile them, then read.
		rerr := r.repairChunk(ctx, vol, ino, p.index)
		if errors.Is(rerr, meta.ErrConflict) {
			// A write committed while the repair was fencing: read that.
			rerr = r.meta.CatchUp(ctx)
		}
		if rerr != nil && !errors.Is(rerr, chunkstore.ErrVersionMismatch) {
			return fmt.Errorf("%w (repair: %v)", err, rerr)
		}
		err = r.readPieceOnce(ctx, vol, ino, p)
	}
	if errors.Is(err, chunkstore.ErrVersionMismatch) {
		// The repair was refused: another gateway wrote the replicas less
		// than StaleAfter ago and may still be committing. Its write is
		// the committed content plus bytes that failed or are in flight,
		// which a reader may see (as with a write racing a read on a local
		// disk); failing instead would make the chunk unreadable on every
		// other node for StaleAfter after one failed commit.
		err = r.readPieceAhead(ctx, vol, ino, p)
	}
	return err
}

// RepairChunk reconciles chunk index of file ino of volume vol if none of
// its reachable replicas holds the committed version (ChunkReconciler, for
// the healer): like a read that finds them all ahead, it refuses while
// another gateway's uncommitted write on them is younger than StaleAfter.
func (r *Replicator) RepairChunk(ctx context.Context, vol uint32, ino, index uint64) error {
	v, err := r.meta.FSM().VolumeByID(vol)
	if err != nil {
		return err
	}
	return r.repairChunk(ctx, v, ino, index)
}

// repairChunk reconciles a chunk none of whose replicas holds the committed
// version, under the chunk's write lock.
func (r *Replicator) repairChunk(ctx context.Context, vol *meta.Volume, ino, index uint64) error {
	unlock := r.files.lockChunks(fileKey{vol.ID, ino}, index)
	defer unlock()
	ch, ok, err := r.meta.FSM().Chunk(vol.ID, ino, index)
	if err != nil || !ok {
		return err
	}
	id := ChunkID(vol.ID, ino, index)
	var mismatched []string
	for _, node := range ch.Replicas {
		info, err := r.inspect(ctx, node, id)
		if err != nil {
			continue
		}
		if info.Version == ch.Version {
			return nil // a replica has it after all: nothing to repair
		}
		mismatched = append(mismatched, node)
	}
	cw := meta.ChunkWrite{Index: index, BaseVersion: ch.Version, Version: nextVersion(ch.Version, r.tag)}
	_, err = r.reconcile(ctx, vol, ino, id, ch.Version, cw, mismatched)
	return err
}

func (r *Replicator) readPieceOnce(ctx context.Context, vol *meta.Volume, ino uint64, p piece) error {
	return r.readPieceAt(ctx, vol, ino, p, false)
}

// readPieceAhead reads p from a replica holding a version past the
// committed one (see readPiece), within the committed length.
func (r *Replicator) readPieceAhead(ctx context.Context, vol *meta.Volume, ino uint64, p piece) error {
	return r.readPieceAt(ctx, vol, ino, p, true)
}

func (r *Replicator) readPieceAt(ctx context.Context, vol *meta.Volume, ino uint64, p piece, ahead bool) error {
	ch, ok, err := r.meta.FSM().Chunk(vol.ID, ino, p.index)
	if err != nil {
		return err
	}
	if !ok || p.off >= ch.Length {
		clear(p.data)
		return nil // hole
	}
	n := min(int64(len(p.data)), ch.Length-p.off)
	clear(p.data[n:]) // past the chunk's length
	id := ChunkID(vol.ID, ino, p.index)
	var errs []error
	var corrupt []string // replicas that answered a checksum error, reported for repair
	defer func() {
		if len(corrupt) > 0 && !ahead {
			r.reportCorrupt(ctx, id, ch.Version, corrupt)
		}
	}()
	for _, node := range r.readOrder(ch.Replicas) {
		var got []byte
		var err error
		version := ch.Version
		if ahead {
			var info chunkstore.Info
			if info, err = r.inspect(ctx, node, id); err == nil && info.Version <= ch.Version {
				err = fmt.Errorf("version %d is not past the committed %d: %w", info.Version, ch.Version, chunkstore.ErrVersionMismatch)
			}
			version = info.Version
		}
		into, local := r.local.(readerInto)
		switch {
		case err != nil:
		case node == r.cfg.NodeID && local:
			// The local replica reads straight into the caller's buffer.
			err = into.ReadInto(id, version, p.off, p.data[:n])
			got = p.data[:n]
		default:
			got, err = r.readReplica(ctx, node, id, version, p.off, int(n))
		}
		if err == nil && int64(len(got)) != n {
			err = fmt.Errorf("replica returned %d bytes, want %d", len(got), n)
		}
		if err != nil {
			if errors.Is(err, chunkstore.ErrCorrupt) {
				r.log.Error("corrupt replica", "chunk", id.String(), "node", node, "err", err)
				corrupt = append(corrupt, node)
			} else if node != r.cfg.NodeID && !errors.Is(err, chunkstore.ErrVersionMismatch) && !errors.Is(err, chunkstore.ErrNotFound) {
				r.markDown(node)
			}
			errs = append(errs, fmt.Errorf("%s: %w", node, err))
			continue
		}
		if &got[0] != &p.data[0] {
			copy(p.data, got)
		}
		return nil
	}
	return fmt.Errorf("%w: chunk %s version %d: %w", ErrUnavailable, id, ch.Version, errors.Join(errs...))
}

func (r *Replicator) readReplica(ctx context.Context, node string, id chunkstore.ID, version uint64, off int64, n int) ([]byte, error) {
	if node == r.cfg.NodeID {
		return r.local.Read(id, version, off, n)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReplicaTimeout)
	defer cancel()
	return r.peers.ReadChunk(ctx, node, id, version, off, n)
}

// readOrder sorts replicas: this node, then its AZ, then the rest; replicas
// recently seen failing go last.
func (r *Replicator) readOrder(replicas []string) []string {
	azOf := map[string]string{}
	if nodes, err := r.meta.FSM().Nodes(); err == nil {
		for _, n := range nodes {
			azOf[n.ID] = n.AZ
		}
	}
	rank := func(id string) int {
		rk := 2
		switch {
		case id == r.cfg.NodeID:
			rk = 0
		case azOf[id] == r.cfg.AZ:
			rk = 1
		}
		if r.isDown(id) {
			rk += 10
		}
		return rk
	}
	out := slices.Clone(replicas)
	slices.SortStableFunc(out, func(a, b string) int { return rank(a) - rank(b) })
	return out
}

type fileKey struct {
	vol uint32
	ino uint64
}

// fileLock orders the writes of this node to one file: a write holds rw
// shared and the locks of the chunks it touches, so writes to different
// chunks of a file run at once (a sequential writer with many requests in
// flight keeps several chunks busy), while two writes to one chunk never
// race on its version; a truncate holds rw alone.
type fileLock struct {
	rw     sync.RWMutex
	refs   int                   // under fileLocks.mu
	chunks map[uint64]*chunkLock // under fileLocks.mu
}

type chunkLock struct {
	mu   sync.Mutex
	refs int // under fileLocks.mu
}

// fileLocks holds the fileLocks of the files being written on this node.
type fileLocks struct {
	mu sync.Mutex
	m  map[fileKey]*fileLock
}

func (l *fileLocks) acquire(k fileKey) *fileLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	fl := l.m[k]
	if fl == nil {
		fl = &fileLock{chunks: map[uint64]*chunkLock{}}
		l.m[k] = fl
	}
	fl.refs++
	return fl
}

func (l *fileLocks) release(k fileKey, fl *fileLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if fl.refs--; fl.refs == 0 {
		delete(l.m, k)
	}
}

// lockFile holds file k alone: no write to any of its chunks runs until
// the returned function is called.
func (l *fileLocks) lockFile(k fileKey) func() {
	fl := l.acquire(k)
	fl.rw.Lock()
	return func() {
		fl.rw.Unlock()
		l.release(k, fl)
	}
}

// lockChunks holds chunks idx of file k for one write or repair (in
// ascending order, so that two writes spanning the same chunks cannot
// deadlock).
func (l *fileLocks) lockChunks(k fileKey, idx ...uint64) func() {
	idx = slices.Compact(slices.Sorted(slices.Values(idx)))
	fl := l.acquire(k)
	fl.rw.RLock()
	cls := make([]*chunkLock, len(idx))
	l.mu.Lock()
	for i, x := range idx {
		cl := fl.chunks[x]
		if cl == nil {
			cl = &chunkLock{}
			fl.chunks[x] = cl
		}
		cl.refs++
		cls[i] = cl
	}
	l.mu.Unlock()
	for _, cl := range cls {
		cl.mu.Lock()
	}
	return func() {
		for i := len(cls) - 1; i >= 0; i-- {
			cls[i].mu.Unlock()
		}
		l.mu.Lock()
		for i, cl := range cls {
			if cl.refs--; cl.refs == 0 {
				delete(fl.chunks, idx[i])
			}
		}
		l.mu.Unlock()
		fl.rw.RUnlock()
		l.release(k, fl)
	}
}
