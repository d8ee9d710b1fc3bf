package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// The online consistency check (fsrepctl check, docs/integrity.md): the
// leader walks every chunk of the metadata in key order and, beside it,
// every node's list of chunk files in the same order (a merge join, so
// neither side is ever held in memory whole), and judges each replica the
// metadata lists and each file no replica set lists:
//
//   - a listed replica whose file is absent is missing, at another version
//     stale, unreadable corrupt; one on a node that cannot be asked is
//     unreachable;
//   - a chunk with fewer healthy replicas than its volume's replica count
//     is under-replicated (none at all: unavailable);
//   - a file no replica set lists on its node is an orphan once it is
//     older than the safety delay of the sweep (younger: a write or copy
//     whose commit may be on its way) and no garbage record names it (the
//     collector's work, not a problem).
//
// The listing and the metadata are read at different moments while the
// cluster keeps writing, so nothing is reported on the listing alone: a
// suspect replica is asked again (a chunk stat, after reading its chunk's
// metadata again) and an orphan's chunk is read again before it counts.
//
// Repair does what the data path and the sweep already do, never more:
// a missing, stale or corrupt replica is left out of its replica set with
// DropCorrupt (never the last good copy), so that the healer copies the
// chunk back; an orphan is deleted with the sweep's version- and
// age-conditional delete. Nothing the metadata lists is ever deleted.

// CheckOptions are what an operator picks for one check.
type CheckOptions struct {
	// Volume limits the check to one volume ("" checks every volume).
	Volume string `json:"volume,omitempty"`
	// Repair drops damaged replicas for re-replication and deletes orphans.
	Repair bool `json:"repair,omitempty"`
	// Verify reads every block of every replica (the whole data set);
	// without it each replica's header and checksum table are checked.
	Verify bool `json:"verify,omitempty"`
	// Examples is how many findings of each kind the report lists (0: the
	// default, DefaultCheckExamples).
	Examples int `json:"examples,omitempty"`
}

// Bounds of CheckOptions.Examples.
const (
	DefaultCheckExamples = 10
	MaxCheckExamples     = 1000
)

// CheckConfig configures one check.
type CheckConfig struct {
	CheckOptions
	// OrphanAge is the sweep's safety delay: an unreferenced file changed
	// more recently is young, not an orphan, and never deleted.
	OrphanAge time.Duration
	// PageSize is the chunks read per metadata transaction and the files
	// per listing call.
	PageSize int
	// Parallel bounds the replica stats, drops and deletes in flight.
	Parallel int
	// CallTimeout bounds one call to a node.
	CallTimeout time.Duration
	// GarbageLookup is how many garbage records are read to tell files
	// awaiting the collector from orphans; files of records past it count
	// as orphans.
	GarbageLookup int
}

// DefaultCheckConfig returns the defaults: the sweep's safety delay, pages
// of 512, 16 calls in flight.
func DefaultCheckConfig() CheckConfig {
	return CheckConfig{
		CheckOptions: CheckOptions{Examples: DefaultCheckExamples},
		OrphanAge:    DefaultSweepConfig("x").OrphanAge,
		PageSize:     512, Parallel: 16, CallTimeout: 30 * time.Second, GarbageLookup: 100_000,
	}
}

// Validate checks the configuration.
func (c CheckConfig) Validate() error {
	switch {
	case c.Examples < 0 || c.Examples > MaxCheckExamples:
		return fmt.Errorf("%w: examples must be 0-%d, not %d", meta.ErrInvalid, MaxCheckExamples, c.Examples)
	case c.OrphanAge <= 0 || c.CallTimeout <= 0:
		return fmt.Errorf("replication: check: orphan age %v and call timeout %v must be positive", c.OrphanAge, c.CallTimeout)
	case c.PageSize < 1 || c.PageSize > MaxListPage || c.Parallel < 1:
		return fmt.Errorf("replication: check: page size %d must be 1-%d and parallelism %d at least 1", c.PageSize, MaxListPage, c.Parallel)
	}
	return nil
}

// FindingKind names what a finding is.
type FindingKind string

// Kinds of findings. The first six are problems; unreachable replicas are
// problems through the under-replication they cause.
const (
	FindMissing         FindingKind = "missing"          // listed, no file
	FindStale           FindingKind = "stale"            // listed, file at another version
	FindCorrupt         FindingKind = "corrupt"          // file fails its checksums
	FindOrphan          FindingKind = "orphan"           // file no replica set lists here, old
	FindUnderReplicated FindingKind = "under_replicated" // fewer healthy replicas than R
	FindUnavailable     FindingKind = "unavailable"      // no healthy replica
	FindUnreachable     FindingKind = "unreachable"      // the node holding it could not be asked
)

// CheckFinding is one problem found, as the report lists it.
type CheckFinding struct {
	Kind   FindingKind `json:"kind"`
	Volume string      `json:"volume,omitempty"`
	// Chunk is the chunk's ID (also its file name), e.g. v1-i42-c0.
	Chunk string `json:"chunk"`
	Node  string `json:"node,omitempty"`
	// Version is the metadata's; Found the file's (0: none or unreadable).
	Version uint64 `json:"version,omitempty"`
	Found   uint64 `json:"found,omitempty"`
	// Healthy and Want are the chunk's healthy replicas and its volume's
	// replica count (under-replicated, unavailable).
	Healthy int    `json:"healthy,omitempty"`
	Want    int    `json:"want,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// Repair is what the repair did about it ("" without repair).
	Repair string `json:"repair,omitempty"`
}

// CheckNode is one node's side of a check.
type CheckNode struct {
	ID string `json:"id"`
	AZ string `json:"az"`
	// Files is the chunk files the node listed (of the volume checked).
	Files   int `json:"files"`
	Orphans int `json:"orphans"`
	// Error is why the node's files could not be listed (its replicas
	// then count as unreachable).
	Error string `json:"error,omitempty"`
}

// CheckRepairs counts what a repair did.
type CheckRepairs struct {
	// Dropped: replicas left out of their replica set for the healer.
	Dropped int `json:"dropped"`
	// Kept: damaged replicas kept as their chunk's last copy.
	Kept int `json:"kept"`
	// Deleted: orphan files deleted.
	Deleted int `json:"deleted"`
	// Skipped: the chunk or file changed between the look and the repair.
	Skipped int `json:"skipped"`
	Failed  int `json:"failed"`
}

// CheckReport is the result of a check.
type CheckReport struct {
	// Leader is the node that ran the check.
	Leader    string        `json:"leader,omitempty"`
	Volume    string        `json:"volume,omitempty"`
	Repair    bool          `json:"repair"`
	Verified  bool          `json:"verified"`
	OrphanAge time.Duration `json:"orphan_age_ns"`
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`

	// Chunks and replicas checked; Healthy chunks have their volume's
	// replica count of healthy replicas.
	Chunks          int `json:"chunks"`
	Replicas        int `json:"replicas"`
	Healthy         int `json:"healthy"`
	UnderReplicated int `json:"under_replicated"`
	Unavailable     int `json:"unavailable"`
	// Replicas by problem.
	Missing     int `json:"missing"`
	Stale       int `json:"stale"`
	Corrupt     int `json:"corrupt"`
	Unreachable int `json:"unreachable"`
	// Files no replica set lists on their node: orphans (old), young ones
	// (a commit may be on its way) and those awaiting garbage collection.
	// Only orphans are a problem.
	Orphans int `json:"orphans"`
	Young   int `json:"young"`
	Garbage int `json:"garbage"`
	// InFlight: replicas one write ahead of the metadata, younger than the
	// safety delay (a write being committed); counted healthy.
	InFlight int `json:"in_flight"`

	Nodes []CheckNode `json:"nodes"`
	// Findings lists the first Examples findings of each kind, in chunk
	// order.
	Findings []CheckFinding `json:"findings"`
	Repaired CheckRepairs   `json:"repaired"`
}

// Problems is the number of problems found: replicas missing, stale or
// corrupt, chunks under-replicated or unavailable, orphans, and nodes that
// could not list their files. Zero means the check is clean.
func (r *CheckReport) Problems() int {
	n := r.Missing + r.Stale + r.Corrupt + r.UnderReplicated + r.Unavailable + r.Orphans
	for _, nd := range r.Nodes {
		if nd.Error != "" {
			n++
		}
	}
	return n
}

// ChunkFile is one chunk file as a node lists it.
type ChunkFile struct {
	ID      chunkstore.ID
	Version uint64 // 0 when Corrupt
	Length  int64
	// Age is the time since the file last changed, by the holding node's
	// clock.
	Age time.Duration
	// Corrupt: the header or checksum table does not read back; Detail
	// says how.
	Corrupt bool
	Detail  string
}

// ChunkPage is one page of a node's chunk files, in ID order.
type ChunkPage struct {
	Files []ChunkFile
	// Next is where the next page starts, unless Done.
	Next chunkstore.ID
	Done bool
}

// CheckMeta is the metadata the check reads (the leader's).
type CheckMeta interface {
	FSM() *meta.FSM
}

// CheckPeers asks nodes (this one included) about their chunk files.
type CheckPeers interface {
	// StatReplica returns node's copy of id: version and length with the
	// header and checksum table checked, and with verify every block read
	// and checked. A missing copy matches chunkstore.ErrNotFound, a
	// damaged one chunkstore.ErrCorrupt.
	StatReplica(ctx context.Context, node string, id chunkstore.ID, verify bool) (chunkstore.Info, error)
	// ListChunks returns node's chunk files from from on (inclusive), at
	// most limit, in ID order.
	ListChunks(ctx context.Context, node string, from chunkstore.ID, limit int) (ChunkPage, error)
	// DeleteChunk deletes node's file of id if it holds exactly version
	// (0: only if damaged) and has not changed for minAge
	// (chunkstore.Store.DeleteVersion).
	DeleteChunk(ctx context.Context, node string, id chunkstore.ID, version uint64, minAge time.Duration) error
}

// Checker runs online checks. It is safe for concurrent use; each Run is
// independent.
type Checker struct {
	meta  CheckMeta
	peers CheckPeers
	drop  ReplicaDropper // nil: repair drops nothing
	clock Clock
	log   *slog.Logger
}

// NewChecker builds a checker; drop and log may be nil.
func NewChecker(m CheckMeta, peers CheckPeers, drop ReplicaDropper, clock Clock, log *slog.Logger) *Checker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checker{meta: m, peers: peers, drop: drop, clock: clock, log: log.With("component", "check")}
}

// volInfo is what the check needs of a volume.
type volInfo struct {
	name string
	want int
}

// run is the state of one Run.
type run struct {
	c       *Checker
	cfg     CheckConfig
	fsm     *meta.FSM
	vols    map[uint32]volInfo
	garbage map[meta.GarbageKey]bool
	anyGarb map[chunkstore.ID]bool // a record for some version: a damaged file's is unknown
	cursors []*fileCursor          // one per registered node, in ID order
	byNode  map[string]*fileCursor
	rep     *CheckReport
	shown   map[FindingKind]int
}

// Run checks the chunks of cfg.Volume (every volume for "") against the
// files of every registered node.
func (c *Checker) Run(ctx context.Context, cfg CheckConfig) (*CheckReport, error) {
	if cfg.Examples == 0 {
		cfg.Examples = DefaultCheckExamples
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fsm := c.meta.FSM()
	r := &run{c: c, cfg: cfg, fsm: fsm, vols: map[uint32]volInfo{}, shown: map[FindingKind]int{},
		garbage: map[meta.GarbageKey]bool{}, anyGarb: map[chunkstore.ID]bool{}, byNode: map[string]*fileCursor{}}
	r.rep = &CheckReport{Volume: cfg.Volume, Repair: cfg.Repair, Verified: cfg.Verify, OrphanAge: cfg.OrphanAge,
		Started: c.clock.Now(), Nodes: []CheckNode{}, Findings: []CheckFinding{}}

	vols, err := fsm.Volumes()
	if err != nil {
		return nil, err
	}
	// from/last bound the chunk IDs checked: one volume's, or all.
	from, last := chunkstore.ID{}, chunkstore.ID{Vol: math.MaxUint32, Ino: math.MaxUint64, Index: math.MaxUint64}
	for _, v := range vols {
		if cfg.Volume != "" && v.Name != cfg.Volume {
			continue
		}
		r.vols[v.ID] = volInfo{name: v.Name, want: v.Replicas}
		if cfg.Volume != "" {
			from, last = ChunkID(v.ID, 0, 0), ChunkID(v.ID, math.MaxUint64, math.MaxUint64)
		}
	}
	if cfg.Volume != "" && len(r.vols) == 0 {
		return nil, fmt.Errorf("%w: %q", meta.ErrNoVolume, cfg.Volume)
	}
	garbage, err := fsm.Garbage(cfg.GarbageLookup)
	if err != nil {
		return nil, err
	}
	for _, g := range garbage {
		r.garbage[g.Key] = true
		r.anyGarb[ChunkID(g.Key.Vol, g.Key.Ino, g.Key.Index)] = true
	}
	nodes, err := fsm.Nodes()
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		cur := &fileCursor{node: n.ID, next: from, last: last}
		r.cursors = append(r.cursors, cur)
		r.byNode[n.ID] = cur
		r.rep.Nodes = append(r.rep.Nodes, CheckNode{ID: n.ID, AZ: n.AZ})
	}

	if err := r.walk(ctx, from, last); err != nil {
		return nil, err
	}
	for i, cur := range r.cursors {
		r.rep.Nodes[i].Files = cur.files
		if cur.err != nil {
			r.rep.Nodes[i].Error = cur.err.Error()
		}
	}
	r.rep.Duration = c.clock.Now().Sub(r.rep.Started)
	level := slog.LevelInfo
	if r.rep.Problems() > 0 {
		level = slog.LevelWarn
	}
	c.log.Log(ctx, level, "consistency check done", "volume", cfg.Volume, "chunks", r.rep.Chunks,
		"problems", r.rep.Problems(), "missing", r.rep.Missing, "stale", r.rep.Stale, "corrupt", r.rep.Corrupt,
		"orphans", r.rep.Orphans, "under_replicated", r.rep.UnderReplicated, "unavailable", r.rep.Unavailable,
		"repair", cfg.Repair, "dropped", r.rep.Repaired.Dropped, "deleted", r.rep.Repaired.Deleted)
	return r.rep, nil
}

// walk reads the chunks from..last a page at a time and checks each page
// against the node listings, then judges the files past the last chunk.
func (r *run) walk(ctx context.Context, from, last chunkstore.ID) error {
	var after *meta.ChunkRef
	if from != (chunkstore.ID{}) {
		// ForEachChunk starts after a key: the one before from.
		prev := meta.ChunkRef{Vol: from.Vol - 1, Ino: math.MaxUint64}
		prev.Index = math.MaxUint64
		after = &prev
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page := make([]meta.ChunkRef, 0, r.cfg.PageSize)
		done := true
		err := r.fsm.ForEachChunk(after, func(ch meta.ChunkRef) bool {
			if compareIDs(ChunkID(ch.Vol, ch.Ino, ch.Index), last) > 0 {
				return false
			}
			page = append(page, ch)
			if len(page) == r.cfg.PageSize {
				done = false
				return false
			}
			return true
		})
		if err != nil {
			return err
		}
		if err := r.checkPage(ctx, page, done); err != nil {
			return err
		}
		if done {
			return nil
		}
		after = &page[len(page)-1]
	}
}

// chunkJob is one chunk and its listed replicas.
type chunkJob struct {
	ch       meta.ChunkRef
	replicas []*replicaJob
}

// replicaJob is one listed replica to judge.
type replicaJob struct {
	ch   meta.ChunkRef
	node string
	file *ChunkFile // from the node's listing; nil: not listed there
	// unreachable is the node's listing error, when it has one.
	unreachable error
	registered  bool

	state  replicaState
	found  uint64
	detail string
	repair repairResult
}

type replicaState int

const (
	replicaOK replicaState = iota
	replicaInFlight
	replicaChanged // the chunk moved on while it was checked: not judged
	replicaMissing
	replicaStale
	replicaCorrupt
	replicaUnreachable
)

// orphanJob is one file no replica set listed on its node.
type orphanJob struct {
	node string
	file ChunkFile

	kind   orphanKind
	repair repairResult
}

// repairResult is what a repair did about one finding.
type repairResult struct {
	outcome repairOutcome
	text    string
}

type repairOutcome int

const (
	repairNone repairOutcome = iota
	repairDropped
	repairKept
	repairDeleted
	repairSkipped
	repairFailed
)

type orphanKind int

const (
	orphanLive    orphanKind = iota // listed after all (the metadata moved on)
	orphanYoung                     // younger than the safety delay
	orphanGarbage                   // a garbage record names it
	orphanOld                       // an orphan
)

// checkPage joins one page of chunks with the node listings, judges the
// replicas and files in parallel, and tallies the results in order. last
// says the page is the final one: the files past it are judged too.
func (r *run) checkPage(ctx context.Context, page []meta.ChunkRef, last bool) error {
	var (
		chunks  []chunkJob
		orphans []*orphanJob
	)
	for _, ch := range page {
		key := ChunkID(ch.Vol, ch.Ino, ch.Index)
		files := map[string]*ChunkFile{}
		for _, cur := range r.cursors {
			for f := r.peek(ctx, cur); f != nil && compareIDs(f.ID, key) <= 0; f = r.peek(ctx, cur) {
				cur.pop()
				if f.ID == key && slices.Contains(ch.Replicas, cur.node) {
					files[cur.node] = f
				} else {
					orphans = append(orphans, &orphanJob{node: cur.node, file: *f})
				}
			}
		}
		if _, ok := r.vols[ch.Vol]; !ok {
			continue // a volume being deleted
		}
		cj := chunkJob{ch: ch}
		for _, node := range ch.Replicas {
			j := &replicaJob{ch: ch, node: node, file: files[node]}
			if cur := r.byNode[node]; cur != nil {
				j.registered, j.unreachable = true, cur.err
			}
			cj.replicas = append(cj.replicas, j)
		}
		chunks = append(chunks, cj)
	}
	if last {
		for _, cur := range r.cursors {
			for f := r.peek(ctx, cur); f != nil; f = r.peek(ctx, cur) {
				cur.pop()
				orphans = append(orphans, &orphanJob{node: cur.node, file: *f})
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	var tasks []func(context.Context)
	for _, cj := range chunks {
		for _, j := range cj.replicas {
			tasks = append(tasks, func(ctx context.Context) { r.judgeReplica(ctx, j) })
		}
	}
	for _, o := range orphans {
		tasks = append(tasks, func(ctx context.Context) { r.judgeOrphan(ctx, o) })
	}
	r.parallel(ctx, tasks)
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, cj := range chunks {
		r.tallyChunk(cj)
	}
	for _, o := range orphans {
		r.tallyOrphan(o)
	}
	return nil
}

// parallel runs tasks, at most cfg.Parallel at a time.
func (r *run) parallel(ctx context.Context, tasks []func(context.Context)) {
	sem := make(chan struct{}, r.cfg.Parallel)
	var wg sync.WaitGroup
	for _, t := range tasks {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			t(ctx)
		}()
	}
	wg.Wait()
}

// judgeReplica decides what state a listed replica is in, asking its node
// again unless its listing already shows it sound, and repairs it when
// asked to.
func (r *run) judgeReplica(ctx context.Context, j *replicaJob) {
	ch, id := j.ch, ChunkID(j.ch.Vol, j.ch.Ino, j.ch.Index)
	switch {
	case !j.registered:
		j.state, j.detail = replicaMissing, "the node is not registered"
	case j.unreachable != nil:
		j.state, j.detail = replicaUnreachable, j.unreachable.Error()
		return // nothing to repair: the healer deals with nodes that are down
	case j.file != nil && !j.file.Corrupt && j.file.Version == ch.Version && !r.cfg.Verify:
		j.state = replicaOK
		return
	default:
		// Suspect (or to be verified): read the chunk's metadata again,
		// then ask the node; a replica write always precedes its commit,
		// so a file read after the metadata is never behind it.
		cur, ok, err := r.fsm.Chunk(ch.Vol, ch.Ino, ch.Index)
		if err != nil {
			j.state, j.detail = replicaUnreachable, err.Error()
			return
		}
		if !ok || cur.Version != ch.Version || !slices.Contains(cur.Replicas, j.node) {
			j.state = replicaChanged
			return
		}
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
		info, err := r.c.peers.StatReplica(cctx, j.node, id, r.cfg.Verify)
		cancel()
		switch {
		case errors.Is(err, chunkstore.ErrNotFound):
			j.state = replicaMissing
		case errors.Is(err, chunkstore.ErrCorrupt):
			j.state, j.detail = replicaCorrupt, err.Error()
		case err != nil:
			j.state, j.detail = replicaUnreachable, err.Error()
			return
		case info.Version == ch.Version:
			j.state = replicaOK
			return
		case info.Version > ch.Version && info.Age < r.cfg.OrphanAge:
			j.state, j.found = replicaInFlight, info.Version
			return
		default:
			j.state, j.found = replicaStale, info.Version
			if info.Version > ch.Version {
				j.detail = "ahead of the metadata: a write that never committed"
			} else {
				j.detail = "behind the metadata"
			}
		}
	}
	if r.cfg.Repair {
		j.repair = r.dropReplica(ctx, j)
	}
}

// dropReplica leaves a damaged, stale or missing replica out of its
// replica set so that the healer copies the chunk back, unless it is the
// last good copy; it returns what became of it.
func (r *run) dropReplica(ctx context.Context, j *replicaJob) repairResult {
	if r.c.drop == nil {
		return repairResult{repairFailed, "failed: this node cannot drop replicas"}
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	dropped, err := r.c.drop.DropCorrupt(cctx, j.ch.Vol, j.ch.Ino, j.ch.Index, j.ch.Version, j.node)
	switch {
	case errors.Is(err, ErrLastCopy):
		return repairResult{repairKept, "kept: no other replica holds the version"}
	case errors.Is(err, meta.ErrConflict), err == nil && !dropped:
		return repairResult{repairSkipped, "skipped: the chunk changed meanwhile"}
	case err != nil:
		return repairResult{repairFailed, "failed: " + err.Error()}
	}
	return repairResult{repairDropped, "dropped for re-replication"}
}

// judgeOrphan decides what an unlisted file is, after reading its chunk's
// metadata again, and deletes it (version- and age-conditional) when it is
// an orphan and repair was asked for.
func (r *run) judgeOrphan(ctx context.Context, o *orphanJob) {
	f := o.file
	cur, ok, err := r.fsm.Chunk(f.ID.Vol, f.ID.Ino, f.ID.Index)
	switch {
	case err != nil:
		o.kind = orphanLive // not judged
		return
	case ok && slices.Contains(cur.Replicas, o.node):
		o.kind = orphanLive
		return
	case !f.Corrupt && f.Age < r.cfg.OrphanAge:
		// A damaged file has no age to go by (its header does not read),
		// and no write leaves one behind: it counts at once. Its delete
		// below still waits for the safety delay.
		o.kind = orphanYoung
		return
	case !f.Corrupt && r.garbage[meta.GarbageKey{Vol: f.ID.Vol, Ino: f.ID.Ino, Index: f.ID.Index, Version: f.Version}],
		f.Corrupt && r.anyGarb[f.ID]:
		o.kind = orphanGarbage
		return
	}
	o.kind = orphanOld
	if !r.cfg.Repair {
		return
	}
	version := f.Version
	if f.Corrupt {
		version = 0 // deletes the file only while it stays damaged
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	err = r.c.peers.DeleteChunk(cctx, o.node, f.ID, version, r.cfg.OrphanAge)
	cancel()
	switch {
	case errors.Is(err, chunkstore.ErrTooRecent), errors.Is(err, chunkstore.ErrVersionMismatch):
		o.repair = repairResult{repairSkipped, "skipped: the file changed meanwhile"}
	case err != nil:
		o.repair = repairResult{repairFailed, "failed: " + err.Error()}
	default:
		o.repair = repairResult{repairDeleted, "deleted"}
	}
}

// tallyChunk counts one chunk's replicas and its replication health.
func (r *run) tallyChunk(cj chunkJob) {
	rep := r.rep
	ch := cj.ch
	vol := r.vols[ch.Vol]
	id := ChunkID(ch.Vol, ch.Ino, ch.Index).String()
	rep.Chunks++
	healthy := 0
	for _, j := range cj.replicas {
		rep.Replicas++
		var kind FindingKind
		switch j.state {
		case replicaOK, replicaChanged:
			healthy++
		case replicaInFlight:
			healthy++
			rep.InFlight++
		case replicaMissing:
			rep.Missing++
			kind = FindMissing
		case replicaStale:
			rep.Stale++
			kind = FindStale
		case replicaCorrupt:
			rep.Corrupt++
			kind = FindCorrupt
		case replicaUnreachable:
			rep.Unreachable++
			kind = FindUnreachable
		}
		r.countRepair(j.repair)
		if kind != "" {
			r.finding(CheckFinding{Kind: kind, Volume: vol.name, Chunk: id, Node: j.node, Version: ch.Version,
				Found: j.found, Detail: j.detail, Repair: j.repair.text})
		}
	}
	switch {
	case healthy == 0:
		rep.Unavailable++
		r.finding(CheckFinding{Kind: FindUnavailable, Volume: vol.name, Chunk: id, Version: ch.Version, Want: vol.want})
	case healthy < vol.want:
		rep.UnderReplicated++
		r.finding(CheckFinding{Kind: FindUnderReplicated, Volume: vol.name, Chunk: id, Version: ch.Version,
			Healthy: healthy, Want: vol.want})
	default:
		rep.Healthy++
	}
}

// tallyOrphan counts one unlisted file.
func (r *run) tallyOrphan(o *orphanJob) {
	switch o.kind {
	case orphanYoung:
		r.rep.Young++
	case orphanGarbage:
		r.rep.Garbage++
	case orphanOld:
		r.rep.Orphans++
		if i := slices.IndexFunc(r.rep.Nodes, func(n CheckNode) bool { return n.ID == o.node }); i >= 0 {
			r.rep.Nodes[i].Orphans++
		}
		r.countRepair(o.repair)
		f := CheckFinding{Kind: FindOrphan, Volume: r.vols[o.file.ID.Vol].name, Chunk: o.file.ID.String(), Node: o.node,
			Found: o.file.Version, Detail: fmt.Sprintf("unreferenced, unchanged for %v", o.file.Age.Round(time.Second)), Repair: o.repair.text}
		if o.file.Corrupt {
			f.Detail = "unreferenced and damaged: " + o.file.Detail
		}
		r.finding(f)
	}
}

func (r *run) countRepair(res repairResult) {
	rp := &r.rep.Repaired
	switch res.outcome {
	case repairDropped:
		rp.Dropped++
	case repairKept:
		rp.Kept++
	case repairDeleted:
		rp.Deleted++
	case repairSkipped:
		rp.Skipped++
	case repairFailed:
		rp.Failed++
	}
}

// finding records f if fewer than Examples of its kind are listed yet.
func (r *run) finding(f CheckFinding) {
	if r.shown[f.Kind] >= r.cfg.Examples {
		return
	}
	r.shown[f.Kind]++
	r.rep.Findings = append(r.rep.Findings, f)
}

// fileCursor walks one node's chunk files a page at a time.
type fileCursor struct {
	node  string
	buf   []ChunkFile
	pos   int
	next  chunkstore.ID // where the next page starts
	last  chunkstore.ID // files past it are not of the check
	done  bool
	err   error // the listing failed: the node's files are unknown
	files int
}

// peek returns the cursor's current file, fetching a page when needed; nil
// at the end or after an error.
func (r *run) peek(ctx context.Context, cur *fileCursor) *ChunkFile {
	for cur.pos >= len(cur.buf) {
		if cur.done || cur.err != nil {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
		page, err := r.c.peers.ListChunks(cctx, cur.node, cur.next, r.cfg.PageSize)
		cancel()
		if err != nil {
			cur.err = fmt.Errorf("listing chunk files: %w", err)
			cur.buf, cur.pos = nil, 0
			return nil
		}
		cur.buf, cur.pos = page.Files, 0
		cur.next, cur.done = page.Next, page.Done
		if !page.Done && len(page.Files) == 0 {
			cur.err = fmt.Errorf("listing chunk files: an empty page that is not the last")
			return nil
		}
	}
	f := &cur.buf[cur.pos]
	if compareIDs(f.ID, cur.last) > 0 {
		cur.done, cur.buf = true, nil
		return nil
	}
	return f
}

func (cur *fileCursor) pop() {
	cur.pos++
	cur.files++
}
