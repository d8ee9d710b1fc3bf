package meta

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/fsrep/fsrep/internal/fault"
)

// FSM is the replicated metadata state machine, kept in its own bbolt file
// (meta.db). Apply is deterministic: it reads nothing but the log entry and
// its bbolt transaction, and it stores the applied index in the same
// transaction as the change, so a crash can neither skip nor repeat a command.
type FSM struct {
	path string
	log  *slog.Logger
	opts FSMOptions
	lock *os.File // meta.db.lock, held from open to Close (fsm_sync.go)

	mu sync.RWMutex // guards db against Restore swapping the file
	db *bolt.DB

	cache readCache // decoded volumes and nodes (cache.go)
	// hkey is the file handle key's generation (HandleKeyGen): read at
	// open and after each applied RotateHandleKey, so that the NFS calls
	// that ask it on every handle pay one atomic load.
	hkey atomic.Pointer[handleKey]

	appliedMu sync.Mutex
	applied   uint64
	appliedCh chan struct{} // closed and replaced whenever applied moves
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// initialMmapSize is the address space bbolt maps for meta.db up front.
const initialMmapSize = 1 << 30

// MaxRequestIDLen bounds request IDs (they are bbolt keys).
const MaxRequestIDLen = 128

// requestTTL is how long a request ID is remembered for retries. NFS clients
// retransmit for minutes at most; a retry older than this applies again.
const requestTTL = 15 * time.Minute

// Result is what applying one command returns to its proposer.
type Result struct {
	Code   Code    `json:"code"`
	Msg    string  `json:"msg,omitempty"`
	Inode  *Inode  `json:"inode,omitempty"`
	Volume *Volume `json:"volume,omitempty"`
	// Index is the log index the command was applied at; the proposer waits
	// for its own node to reach it before answering a client.
	Index uint64 `json:"index"`
}

// Err returns the command's error, or nil.
func (r *Result) Err() error {
	if r == nil {
		return nil
	}
	return ErrorFor(r.Code, r.Msg)
}

type requestRecord struct {
	Time   int64  `json:"time"`
	Result Result `json:"result"`
}

// OpenFSM opens (creating if needed) the bbolt file at path, synced on
// every apply.
func OpenFSM(path string, log *slog.Logger) (*FSM, error) {
	return OpenFSMWith(path, log, FSMOptions{BootID: BootID()})
}

// OpenFSMWith opens the bbolt file at path kept as o says (fsm_sync.go). A
// meta.db that a machine crash may have torn is set aside first, and the
// FSM starts empty: raft fills it from the snapshot and the log.
func OpenFSMWith(path string, log *slog.Logger, o FSMOptions) (*FSM, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &FSM{path: path, log: log, opts: o, appliedCh: make(chan struct{})}
	wait := o.LockWait
	if wait <= 0 {
		wait = 5 * time.Second
	}
	lock, err := lockDB(path, wait)
	if err != nil {
		return nil, err
	}
	discarded, err := prepareDB(path, o)
	if err != nil {
		lock.Close()
		return nil, err
	}
	if discarded {
		log.Warn("meta.db was open unsynced when the machine stopped; set aside, rebuilding it from the raft log and snapshots",
			"set_aside", discardedPath(path))
	}
	if err := f.open(); err != nil {
		lock.Close()
		return nil, err
	}
	f.lock = lock
	return f, nil
}

func (f *FSM) open() error {
	// A large initial mmap (address space, not memory) keeps bbolt from
	// remapping as the file grows: a remap waits for every read transaction,
	// so Apply would stall for as long as a snapshot is being persisted.
	db, err := bolt.Open(f.path, 0o600, &bolt.Options{Timeout: 5 * time.Second, InitialMmapSize: initialMmapSize})
	if err != nil {
		return fmt.Errorf("meta: open %s: %w", f.path, err)
	}
	db.NoSync = f.opts.NoSync
	if !f.opts.NoSync && hasMarker(f.path) {
		// An unsynced session of this boot left commits that may be only in
		// the page cache: make them durable before dropping the marker.
		if err := db.Sync(); err != nil {
			db.Close()
			return fmt.Errorf("meta: sync %s: %w", f.path, err)
		}
		if err := releaseMarker(f.path); err != nil {
			db.Close()
			return err
		}
	}
	var applied uint64
	err = db.Update(func(tx *bolt.Tx) error {
		if err := initSchema(tx); err != nil {
			return err
		}
		if v := tx.Bucket(bucketMeta).Get(keyApplied); v != nil {
			applied = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return err
	}
	f.db = db
	f.setApplied(applied)
	return f.loadHandleKey()
}

// Close closes the bbolt file.
func (f *FSM) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.db == nil {
		return nil
	}
	var err error
	if f.opts.NoSync {
		err = f.db.Sync()
	}
	if cerr := f.db.Close(); err == nil {
		err = cerr
	}
	f.db = nil
	if err == nil && f.opts.NoSync {
		err = releaseMarker(f.path)
	}
	if f.lock != nil {
		f.lock.Close() // releases the lock
		f.lock = nil
	}
	return err
}

// AppliedIndex is the last log index applied to meta.db.
func (f *FSM) AppliedIndex() uint64 {
	f.appliedMu.Lock()
	defer f.appliedMu.Unlock()
	return f.applied
}

// appliedChange returns the applied index and a channel closed when it moves.
func (f *FSM) appliedChange() (uint64, <-chan struct{}) {
	f.appliedMu.Lock()
	defer f.appliedMu.Unlock()
	return f.applied, f.appliedCh
}

func (f *FSM) setApplied(idx uint64) {
	f.appliedMu.Lock()
	defer f.appliedMu.Unlock()
	if idx <= f.applied && f.applied != 0 {
		return
	}
	f.applied = idx
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
}

// Apply applies one log entry.
func (f *FSM) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies consecutive log entries in one bbolt transaction. Each
// command checks all of its preconditions before it changes anything, so a
// failing command leaves no trace but its recorded result.
func (f *FSM) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	f.mu.RLock()
	defer f.mu.RUnlock()
	var last uint64
	err := f.db.Update(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		applied := uint64(0)
		if v := m.Get(keyApplied); v != nil {
			applied = binary.BigEndian.Uint64(v)
		}
		for i, l := range logs {
			if l.Index <= applied {
				// Already in meta.db (replay after restart): never apply twice.
				out[i] = &Result{Code: CodeOK, Index: l.Index}
				continue
			}
			if l.Type == raft.LogCommand {
				out[i] = f.applyEntry(tx, l)
			}
			last = l.Index
		}
		if last == 0 {
			return nil
		}
		if err := m.Put(keyApplied, u64(last)); err != nil {
			return err
		}
		return fault.Point(fault.MetaBeforeCommit)
	})
	if err != nil {
		// A bbolt failure (disk full, I/O error) here would let this replica
		// diverge from the others; stopping is the only safe answer.
		panic(fmt.Sprintf("meta: cannot commit applied entries: %v", err))
	}
	if last != 0 {
		_ = fault.Point(fault.MetaAfterCommit) // kill only: the commit is done
		f.cache.changed()
		f.setApplied(last)
		for _, l := range logs {
			if l.Type == raft.LogCommand && len(l.Data) > 0 && CommandType(l.Data[0]) == CmdRotateHandleKey {
				if err := f.loadHandleKey(); err != nil {
					panic(fmt.Sprintf("meta: cannot read the handle key generation just committed: %v", err))
				}
				break
			}
		}
	}
	return out
}

func (f *FSM) applyEntry(tx *bolt.Tx, l *raft.Log) *Result {
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		// An entry this build cannot read means a newer node wrote it; going
		// on would let this replica's state diverge.
		panic(fmt.Sprintf("meta: log entry %d: %v", l.Index, err))
	}
	h := HeaderOf(cmd)
	if len(h.RequestID) > MaxRequestIDLen {
		// Too long to be a bbolt key: refuse the command (deterministically,
		// on every replica) rather than fail the transaction.
		return &Result{Code: CodeInvalid, Msg: "meta: request ID too long", Index: l.Index}
	}
	reqs := tx.Bucket(bucketRequests)
	if h.RequestID != "" {
		if v := reqs.Get([]byte(h.RequestID)); v != nil {
			var rec requestRecord
			if err := json.Unmarshal(v, &rec); err == nil {
				r := rec.Result
				return &r
			}
		}
	}
	res := applyCommand(tx, l.Index, cmd)
	if err := res.err; err != nil {
		if CodeOf(err) == CodeInternal {
			panic(fmt.Sprintf("meta: log entry %d (%s): %v", l.Index, cmd.Type(), err))
		}
		res.Result.Code = CodeOf(err)
		res.Result.Msg = err.Error()
	}
	res.Result.Index = l.Index
	if h.RequestID != "" {
		rememberRequest(tx, h, res.Result)
	}
	return &res.Result
}

// rememberRequest records a result for retries and forgets expired ones.
// The proposer's time orders the table, so the pruning is deterministic.
func rememberRequest(tx *bolt.Tx, h *Header, r Result) {
	reqs, times := tx.Bucket(bucketRequests), tx.Bucket(bucketReqTimes)
	rec, _ := json.Marshal(requestRecord{Time: h.Time, Result: r})
	must(reqs.Put([]byte(h.RequestID), rec))
	must(times.Put(append(u64(uint64(h.Time)), h.RequestID...), nil))
	if h.Time <= int64(requestTTL) {
		// Nothing can have expired yet; computing the cutoff would wrap
		// around to a huge value and forget every record, this one included.
		return
	}
	cutoff := u64(uint64(h.Time - int64(requestTTL)))
	c := times.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k[:8], cutoff) < 0; k, _ = c.First() {
		must(reqs.Delete(k[8:]))
		must(c.Delete())
	}
}

// must panics on a bbolt error inside Apply: such an error means the
// transaction is unusable and the replica must stop (see ApplyBatch).
func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("meta: bbolt: %v", err))
	}
}

// Snapshot streams a consistent copy of meta.db.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	tx, err := f.db.Begin(false)
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("meta: snapshot: %w", err)
	}
	return &fsmSnapshot{tx: tx}, nil
}

type fsmSnapshot struct{ tx *bolt.Tx }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("meta: write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { _ = s.tx.Rollback() }

// Restore replaces meta.db with a snapshot: the stream is written to a
// temporary file, synced, checked, and renamed over meta.db.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.path + ".restore"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("meta: restore: %w", err)
	}
	if _, err := io.Copy(out, rc); err != nil {
		out.Close()
		os.Remove(tmp)
		return fmt.Errorf("meta: restore: copy snapshot: %w", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(tmp)
		return fmt.Errorf("meta: restore: sync: %w", err)
	}
	out.Close()
	if err := checkDB(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := fault.Point(fault.SnapshotInstall); err != nil {
		os.Remove(tmp)
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("meta: restore: close: %w", err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fmt.Errorf("meta: restore: rename: %w", err)
	}
	if d, err := os.Open(filepath.Dir(f.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	f.appliedMu.Lock()
	f.applied = 0 // the snapshot may be older than what we had
	f.appliedMu.Unlock()
	// Cached values describe the old file: drop them before open publishes
	// the snapshot's index (readers that miss wait on f.mu), and after.
	f.cache.changed()
	defer f.cache.changed()
	return f.open()
}

func checkDB(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("meta: restore: snapshot is not a bbolt file: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		// A truncated stream has intact meta pages, so bbolt opens it; reading
		// a page past the end would then crash the process (SIGBUS), now or
		// after the rename. Check the size first, then every page.
		info, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("meta: restore: %w", err)
		}
		if info.Size() < tx.Size() {
			return fmt.Errorf("meta: restore: snapshot is truncated: %d of %d bytes", info.Size(), tx.Size())
		}
		var corrupt error
		for err := range tx.Check() { // drain: the checker goroutine sends until done
			if corrupt == nil {
				corrupt = err
			}
		}
		if corrupt != nil {
			return fmt.Errorf("meta: restore: snapshot is corrupt: %w", corrupt)
		}
		m := tx.Bucket(bucketMeta)
		if m == nil {
			return fmt.Errorf("meta: restore: snapshot has no meta bucket")
		}
		if v := m.Get(keyMetaVersion); v == nil || binary.BigEndian.Uint64(v) > StorageVersion {
			return fmt.Errorf("meta: restore: snapshot storage version unknown to this build")
		}
		return nil
	})
}

// view runs fn in a read transaction.
func (f *FSM) view(fn func(tx *bolt.Tx) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return fmt.Errorf("meta: closed")
	}
	return f.db.View(fn)
}
