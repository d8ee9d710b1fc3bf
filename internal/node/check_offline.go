package node

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// The offline check of one stopped node's files (fsrepd check, issue 8):
// meta.db is opened read-only (a bbolt shared lock, so a running node,
// which holds it exclusively, is refused), checked page by page (bbolt's
// own consistency check) and copied to a temporary file, which is opened
// as an FSM for the cross-check: the node's own meta.db is never written.
// raft.db is not opened. Every chunk file is read whole and checked
// against its checksums, then judged against this node's view of the
// metadata (which may be older than the cluster's: what it lists is what
// the node had applied when it stopped).

// ErrNodeRunning refuses an offline check of a data directory whose node
// is running (or whose meta.db another process holds).
var ErrNodeRunning = errors.New("node: the node is running (its meta.db is locked): stop it first")

// ErrNodeUnknown: the data directory's node could not be told from its
// files; give it.
var ErrNodeUnknown = errors.New("node: cannot tell which node this data directory belongs to: give the node ID (--node-id)")

// OfflineCheckConfig configures CheckOffline.
type OfflineCheckConfig struct {
	DataDir string
	// NodeID is the node the directory belongs to; "" takes the one its
	// node.id file names (written at every start), else infers it from the
	// replica sets that list the chunk files found.
	NodeID string
	// Repair deletes old orphan files and moves damaged files into
	// DataDir/quarantine. The metadata is never changed.
	Repair bool
	// OrphanAge is the sweep's safety delay (default 10 min): an unlisted
	// file counts as an orphan only if it last changed at least this long
	// before the node's metadata last did, so that its commit, if there
	// was one, had time to be applied.
	OrphanAge time.Duration
	// Examples is how many findings of each kind are listed (default 10).
	Examples int
	// LockTimeout is how long to wait for meta.db's lock (default 1 s).
	LockTimeout time.Duration
}

// OfflineReport is what CheckOffline found.
type OfflineReport struct {
	DataDir        string `json:"data_dir"`
	NodeID         string `json:"node_id"`
	NodeIDInferred bool   `json:"node_id_inferred"`
	// StorageVersion is meta.db's layout version, BuildVersion the newest
	// this build knows (an older file is migrated at the node's next start).
	StorageVersion uint64 `json:"storage_version"`
	BuildVersion   uint64 `json:"build_storage_version"`
	AppliedIndex   uint64 `json:"applied_index"`
	// MetaProblems are damage found in meta.db (consistency, version);
	// with any, the chunk files are checked but not cross-checked.
	MetaProblems []string `json:"meta_problems"`

	// Files is the chunk files checked; Listed the replicas this node's
	// metadata places on it.
	Files  int `json:"files"`
	Listed int `json:"listed"`
	OK     int `json:"ok"`
	// Problems, per file (Missing: per replica listed).
	Missing int `json:"missing"`
	Stale   int `json:"stale"`
	Corrupt int `json:"corrupt"`
	Orphans int `json:"orphans"`
	// Not problems: unlisted files too recent to judge, files the
	// garbage collector will delete, and listed replicas ahead of this
	// node's metadata that are too recent to judge (the node
	// crashed between a replica write and applying its commit: the Raft
	// log it replays at start, or the reconciliation of a write that never
	// committed, settles them).
	Young    int `json:"young"`
	Garbage  int `json:"garbage"`
	InFlight int `json:"in_flight"`
	// Torn: damaged files changed just before the node stopped (a write
	// the stop interrupted; see judge).
	Torn int `json:"torn"`
	// TempFiles is the temporary files of unfinished writes found (never
	// acknowledged; removed when the chunk store opens, as at every start).
	TempFiles int `json:"temp_files"`

	Findings []replication.CheckFinding `json:"findings"`
	Repair   bool                       `json:"repair"`
	Repaired OfflineRepairs             `json:"repaired"`
	// Quarantine is where damaged files were moved.
	Quarantine string `json:"quarantine,omitempty"`
}

// OfflineRepairs counts what a repair did.
type OfflineRepairs struct {
	Deleted     int `json:"deleted"`
	Quarantined int `json:"quarantined"`
	Failed      int `json:"failed"`
}

// Problems is the number of problems found; zero means clean.
func (r *OfflineReport) Problems() int {
	return len(r.MetaProblems) + r.Missing + r.Stale + r.Corrupt + r.Orphans
}

// maxMetaProblems bounds the bbolt consistency errors reported.
const maxMetaProblems = 20

// CheckOffline checks a stopped node's data directory. It fails with
// ErrNodeRunning when the node holds its files, and with ErrNodeUnknown
// when cfg.NodeID is empty and cannot be inferred.
func CheckOffline(ctx context.Context, cfg OfflineCheckConfig, log *slog.Logger) (*OfflineReport, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.OrphanAge <= 0 {
		cfg.OrphanAge = replication.DefaultSweepConfig("x").OrphanAge
	}
	if cfg.Examples <= 0 {
		cfg.Examples = replication.DefaultCheckExamples
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = time.Second
	}
	metaPath := filepath.Join(cfg.DataDir, "meta", "meta.db")
	metaInfo, err := os.Stat(metaPath)
	if err != nil {
		return nil, fmt.Errorf("node: %s is not an fsrep data directory: %w", cfg.DataDir, err)
	}
	rep := &OfflineReport{DataDir: cfg.DataDir, BuildVersion: meta.StorageVersion, Repair: cfg.Repair,
		MetaProblems: []string{}, Findings: []replication.CheckFinding{}}
	if boot, torn := meta.UnsyncedByAnotherBoot(metaPath); torn {
		// The node will set this file aside and rebuild it from the Raft
		// log at its next start: judging chunks (and deleting "orphans")
		// against it could be judging against a torn or stale file.
		rep.MetaProblems = append(rep.MetaProblems, fmt.Sprintf(
			"meta.db was open unsynced when the machine stopped (boot %s): fsrepd rebuilds it from the Raft log at its next start; start the node, then check again", boot))
	}

	db, err := bolt.Open(metaPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: cfg.LockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, ErrNodeRunning
	}
	if err != nil {
		return nil, fmt.Errorf("node: open %s read-only: %w", metaPath, err)
	}
	// Held to the end: a node started meanwhile waits for it (and gives up).
	defer db.Close()
	fsm, cleanup, err := copyMeta(db, metaPath, rep)
	if err != nil {
		return nil, err
	}
	defer cleanup()

	ck := &offlineCheck{cfg: cfg, rep: rep, fsm: fsm, log: log, shown: map[replication.FindingKind]int{},
		metaChanged: metaInfo.ModTime()}
	if err := ck.run(ctx); err != nil {
		return nil, err
	}
	return rep, nil
}

// copyMeta checks meta.db page by page and copies it to a temporary file
// opened as an FSM (nil when meta.db is damaged: rep.MetaProblems says
// how). The caller runs cleanup.
func copyMeta(db *bolt.DB, path string, rep *OfflineReport) (*meta.FSM, func(), error) {
	tmp, err := os.CreateTemp("", "fsrep-check-meta-*.db")
	if err != nil {
		return nil, nil, fmt.Errorf("node: a temporary copy of meta.db: %w", err)
	}
	cleanup := func() { os.Remove(tmp.Name()); os.Remove(tmp.Name() + ".lock") }
	err = db.View(func(tx *bolt.Tx) error {
		// A truncated file has intact meta pages; reading a page past its
		// end would crash the process (SIGBUS). Check the size first.
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if fi.Size() < tx.Size() {
			rep.MetaProblems = append(rep.MetaProblems, fmt.Sprintf("meta.db is truncated: %d of %d bytes", fi.Size(), tx.Size()))
			return nil
		}
		for err := range tx.Check() { // drain: the checker sends until done
			if len(rep.MetaProblems) < maxMetaProblems {
				rep.MetaProblems = append(rep.MetaProblems, "meta.db: "+err.Error())
			}
		}
		if len(rep.MetaProblems) > 0 {
			return nil
		}
		_, err = tx.WriteTo(tmp)
		return err
	})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("node: reading meta.db: %w", err)
	}
	if len(rep.MetaProblems) > 0 {
		return nil, cleanup, nil
	}
	info, err := meta.InspectBackup(tmp.Name())
	if err != nil {
		// Consistent pages, but not a meta.db this build can read (a newer
		// storage version, no meta bucket).
		rep.MetaProblems = append(rep.MetaProblems, strings.TrimPrefix(err.Error(), "meta: restore: "))
		return nil, cleanup, nil
	}
	rep.StorageVersion, rep.AppliedIndex = info.StorageVersion, info.AppliedIndex
	fsm, err := meta.OpenFSM(tmp.Name(), slog.New(slog.DiscardHandler))
	if err != nil {
		rep.MetaProblems = append(rep.MetaProblems, err.Error())
		return nil, cleanup, nil
	}
	return fsm, func() { fsm.Close(); cleanup() }, nil
}

// offlineCheck is the state of one CheckOffline.
type offlineCheck struct {
	cfg         OfflineCheckConfig
	rep         *OfflineReport
	fsm         *meta.FSM // nil: meta.db is damaged, no cross-check
	log         *slog.Logger
	shown       map[replication.FindingKind]int
	metaChanged time.Time // meta.db's last change: when the node last applied a command
	store       *chunkstore.Store
	vols        map[uint32]string
}

// localFile is one chunk file as read from the disk.
type localFile struct {
	id      chunkstore.ID
	version uint64
	changed time.Time
	damage  error // ErrCorrupt (or a read error): the file is unreadable
}

func (c *offlineCheck) run(ctx context.Context) error {
	dir := filepath.Join(c.cfg.DataDir, "chunks")
	temps, err := countTemps(dir)
	if err != nil {
		return err
	}
	c.rep.TempFiles = temps
	scfg := chunkstore.DefaultConfig(dir)
	if c.store, err = chunkstore.Open(scfg, c.log); err != nil {
		return err
	}
	defer c.store.Close()
	ids, err := c.store.List()
	if err != nil {
		return err
	}
	files := make([]localFile, 0, len(ids))
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		info, err := c.store.Verify(id)
		if errors.Is(err, chunkstore.ErrNotFound) {
			continue
		}
		f := localFile{id: id, version: info.Version, changed: now.Add(-info.Age), damage: err}
		if err != nil {
			if fi, serr := os.Stat(c.chunkPath(id)); serr == nil {
				f.changed = fi.ModTime()
			}
		}
		files = append(files, f)
	}
	c.rep.Files = len(files)

	if c.fsm == nil {
		// No metadata to go by: report the damaged files only.
		for _, f := range files {
			if f.damage != nil {
				c.corrupt(f, 0, "unlisted")
			}
		}
		return nil
	}
	if err := c.loadVolumes(); err != nil {
		return err
	}
	if err := c.nodeID(files); err != nil {
		return err
	}
	garbage, err := c.fsm.Garbage(0)
	if err != nil {
		return err
	}
	garb := map[meta.GarbageKey]bool{}
	anyGarb := map[chunkstore.ID]bool{}
	for _, g := range garbage {
		if slices.Contains(g.Replicas, c.rep.NodeID) {
			garb[g.Key] = true
			anyGarb[replication.ChunkID(g.Key.Vol, g.Key.Ino, g.Key.Index)] = true
		}
	}
	for _, f := range files {
		if err := c.judge(f, garb, anyGarb); err != nil {
			return err
		}
	}
	return c.missing(ids)
}

// judge classifies one file against the metadata and repairs it if asked.
func (c *offlineCheck) judge(f localFile, garb map[meta.GarbageKey]bool, anyGarb map[chunkstore.ID]bool) error {
	ch, ok, err := c.fsm.Chunk(f.id.Vol, f.id.Ino, f.id.Index)
	if err != nil {
		return err
	}
	listed := ok && slices.Contains(ch.Replicas, c.rep.NodeID)
	// Old enough to judge: the node went on applying commands for a
	// safety delay after the file last changed, so the commit of that
	// change, if it had one, is in the metadata.
	old := f.changed.Before(c.metaChanged.Add(-c.cfg.OrphanAge))
	switch {
	case f.damage != nil && !old:
		// Damaged, and changed just before the node stopped: a write the
		// stop interrupted (an in-place update writes data, then the
		// header). This replica never acknowledged that write (an
		// acknowledged write is fsynced whole), so its writer dropped it
		// from the replica set, or the write never committed; at restart a
		// read or the scrubber finds the damage and the healer replaces
		// the replica from the others. (Rot in a file this young cannot be
		// told from that offline; it meets the same repair.)
		c.rep.Torn++
	case listed && f.damage != nil:
		c.corrupt(f, ch.Version, "")
	case listed && f.version == ch.Version:
		c.rep.OK++
	case listed && f.version > ch.Version && !old:
		c.rep.InFlight++
	case listed:
		c.rep.Stale++
		detail := "behind the metadata"
		if f.version > ch.Version {
			detail = "ahead of the metadata: a write this node never saw committed"
		}
		c.finding(replication.CheckFinding{Kind: replication.FindStale, Volume: c.vols[f.id.Vol], Chunk: f.id.String(),
			Node: c.rep.NodeID, Version: ch.Version, Found: f.version, Detail: detail})
	case f.damage == nil && garb[meta.GarbageKey{Vol: f.id.Vol, Ino: f.id.Ino, Index: f.id.Index, Version: f.version}],
		f.damage != nil && anyGarb[f.id]:
		c.rep.Garbage++
	case f.damage != nil:
		c.corrupt(f, 0, "unlisted")
	case !old:
		c.rep.Young++
	default:
		c.rep.Orphans++
		fd := replication.CheckFinding{Kind: replication.FindOrphan, Volume: c.vols[f.id.Vol], Chunk: f.id.String(),
			Node: c.rep.NodeID, Found: f.version,
			Detail: fmt.Sprintf("unlisted, unchanged since %s", f.changed.UTC().Format(time.RFC3339))}
		if c.cfg.Repair {
			fd.Repair = c.deleteOrphan(f)
		}
		c.finding(fd)
	}
	return nil
}

// corrupt records a damaged file and, with repair, quarantines it.
func (c *offlineCheck) corrupt(f localFile, version uint64, note string) {
	c.rep.Corrupt++
	detail := f.damage.Error()
	if note != "" {
		detail = note + ": " + detail
	}
	fd := replication.CheckFinding{Kind: replication.FindCorrupt, Volume: c.vols[f.id.Vol], Chunk: f.id.String(),
		Node: c.rep.NodeID, Version: version, Detail: detail}
	if c.cfg.Repair {
		fd.Repair = c.quarantine(f)
	}
	c.finding(fd)
}

// missing counts the replicas the metadata places on this node that have
// no file.
func (c *offlineCheck) missing(ids []chunkstore.ID) error {
	have := make(map[chunkstore.ID]bool, len(ids))
	for _, id := range ids {
		have[id] = true
	}
	return c.fsm.ForEachChunk(nil, func(ch meta.ChunkRef) bool {
		if !slices.Contains(ch.Replicas, c.rep.NodeID) {
			return true
		}
		c.rep.Listed++
		id := replication.ChunkID(ch.Vol, ch.Ino, ch.Index)
		if !have[id] {
			c.rep.Missing++
			c.finding(replication.CheckFinding{Kind: replication.FindMissing, Volume: c.vols[ch.Vol], Chunk: id.String(),
				Node: c.rep.NodeID, Version: ch.Version})
		}
		return true
	})
}

// deleteOrphan deletes an old unlisted file at the version seen.
func (c *offlineCheck) deleteOrphan(f localFile) string {
	if err := c.store.DeleteVersion(f.id, f.version, c.cfg.OrphanAge); err != nil {
		c.rep.Repaired.Failed++
		return "failed: " + err.Error()
	}
	c.rep.Repaired.Deleted++
	return "deleted"
}

// quarantine moves a damaged file out of the chunk store into
// DataDir/quarantine (the node never looks there), keeping its name.
func (c *offlineCheck) quarantine(f localFile) string {
	qdir := filepath.Join(c.cfg.DataDir, "quarantine")
	c.rep.Quarantine = qdir
	fail := func(err error) string {
		c.rep.Repaired.Failed++
		return "failed: " + err.Error()
	}
	if err := os.MkdirAll(qdir, 0o700); err != nil {
		return fail(err)
	}
	src := c.chunkPath(f.id)
	dst := filepath.Join(qdir, f.id.String())
	if _, err := os.Stat(dst); err == nil {
		dst += "." + time.Now().UTC().Format("20060102T150405.000000000")
	}
	if err := os.Rename(src, dst); err != nil {
		return fail(err)
	}
	for _, d := range []string{filepath.Dir(src), qdir, c.cfg.DataDir} {
		if err := chunkstore.SyncDir(d); err != nil {
			return fail(err)
		}
	}
	c.rep.Repaired.Quarantined++
	return "moved to " + dst
}

// chunkPath is the file of chunk id: in one of the store's fan-out
// subdirectories (the store does not say which; List only lists files in
// their right one, so there is exactly one).
func (c *offlineCheck) chunkPath(id chunkstore.ID) string {
	m, _ := filepath.Glob(filepath.Join(c.cfg.DataDir, "chunks", "??", id.String()))
	if len(m) == 0 {
		return filepath.Join(c.cfg.DataDir, "chunks", id.String())
	}
	return m[0]
}

func (c *offlineCheck) loadVolumes() error {
	vols, err := c.fsm.Volumes()
	if err != nil {
		return err
	}
	c.vols = map[uint32]string{}
	for _, v := range vols {
		c.vols[v.ID] = v.Name
	}
	return nil
}

// nodeIDFile names the file in the data directory that holds the ID of
// the node that last ran there.
const nodeIDFile = "node.id"

// writeNodeIDFile records id as the data directory's node, unless it is
// already.
func writeNodeIDFile(dir, id string) error {
	if b, err := os.ReadFile(filepath.Join(dir, nodeIDFile)); err == nil && strings.TrimSpace(string(b)) == id {
		return nil
	}
	return writeFile0600(filepath.Join(dir, nodeIDFile), []byte(id+"\n"))
}

// nodeID settles which node the directory belongs to: the one given, else
// the one its node.id file names, else the registered node whose replica
// sets list the most of the files found at their version (no help when
// every node holds every chunk).
func (c *offlineCheck) nodeID(files []localFile) error {
	nodes, err := c.fsm.Nodes()
	if err != nil {
		return err
	}
	id := c.cfg.NodeID
	if b, err := os.ReadFile(filepath.Join(c.cfg.DataDir, nodeIDFile)); id == "" && err == nil {
		id = strings.TrimSpace(string(b))
	}
	if id != "" {
		if !slices.ContainsFunc(nodes, func(n meta.NodeInfo) bool { return n.ID == id }) {
			return fmt.Errorf("node: %s is not a node of this data directory's metadata (nodes: %s)", id, nodeIDs(nodes))
		}
		c.rep.NodeID = id
		return nil
	}
	score := map[string]int{}
	for _, f := range files {
		if f.damage != nil {
			continue
		}
		ch, ok, err := c.fsm.Chunk(f.id.Vol, f.id.Ino, f.id.Index)
		if err != nil {
			return err
		}
		if ok && ch.Version == f.version {
			for _, r := range ch.Replicas {
				score[r]++
			}
		}
	}
	best, tie := "", false
	for id, n := range score {
		switch {
		case best == "" || n > score[best]:
			best, tie = id, false
		case n == score[best]:
			tie = true
		}
	}
	if best == "" || tie {
		return fmt.Errorf("%w (nodes: %s)", ErrNodeUnknown, nodeIDs(nodes))
	}
	c.rep.NodeID, c.rep.NodeIDInferred = best, true
	return nil
}

func nodeIDs(nodes []meta.NodeInfo) string {
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	return strings.Join(ids, ", ")
}

func (c *offlineCheck) finding(f replication.CheckFinding) {
	if c.shown[f.Kind] >= c.cfg.Examples {
		return
	}
	c.shown[f.Kind]++
	c.rep.Findings = append(c.rep.Findings, f)
}

// countTemps counts the temporary files of unfinished writes in the chunk
// store (chunkstore's ".tmp" suffix).
func countTemps(dir string) (int, error) {
	subs, err := os.ReadDir(dir)
	if errors.Is(err, iofs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range subs {
		if !s.IsDir() {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(dir, s.Name()))
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				n++
			}
		}
	}
	return n, nil
}
