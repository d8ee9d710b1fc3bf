package meta

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// testTime is the proposer clock every test command starts from: a realistic
// unix-nanosecond value, advanced by each command the harness stamps.
const testTime int64 = 1_750_000_000_000_000_000

// cs is the chunk size of test volumes (the smallest allowed, to keep chunk
// arithmetic readable).
const cs = MinChunkSize

// harness drives one FSM on a real bbolt file the way raft does: every
// command becomes a raft.Log with the next index.
type harness struct {
	t    testing.TB
	path string
	fsm  *FSM
	next uint64 // index of the next log entry
	now  int64  // proposer clock
	logs []*raft.Log
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "meta.db"), next: 1, now: testTime}
	h.fsm = openFSM(t, h.path)
	t.Cleanup(func() {
		if err := h.fsm.Close(); err != nil {
			t.Errorf("close FSM: %v", err)
		}
	})
	return h
}

func openFSM(t testing.TB, path string) *FSM {
	t.Helper()
	f, err := OpenFSM(path, testLogger(t))
	if err != nil {
		t.Fatalf("OpenFSM(%s): %v", path, err)
	}
	return f
}

// reopen closes the FSM and opens the same file again, as after a restart.
func (h *harness) reopen() {
	h.t.Helper()
	if err := h.fsm.Close(); err != nil {
		h.t.Fatalf("close: %v", err)
	}
	h.fsm = openFSM(h.t, h.path)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// encode returns the log entry for cmd at index.
func encode(t testing.TB, index uint64, cmd Command) *raft.Log {
	t.Helper()
	data, err := EncodeCommand(cmd)
	if err != nil {
		t.Fatalf("encode %s: %v", cmd.Type(), err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// entry stamps cmd with the proposer clock (unless the caller set a time),
// encodes it at the next index and records it in h.logs.
func (h *harness) entry(cmd Command) *raft.Log {
	h.t.Helper()
	if hd := HeaderOf(cmd); hd.Time == 0 {
		h.now += 1000
		hd.Time = h.now
	}
	l := encode(h.t, h.next, cmd)
	h.next++
	h.logs = append(h.logs, l)
	return l
}

// apply applies cmd through FSM.Apply and returns its result.
func (h *harness) apply(cmd Command) *Result {
	h.t.Helper()
	l := h.entry(cmd)
	r, ok := h.fsm.Apply(l).(*Result)
	if !ok || r == nil {
		h.t.Fatalf("Apply(%s) returned %#v, want *Result", cmd.Type(), r)
	}
	if got := h.fsm.AppliedIndex(); got != l.Index {
		h.t.Fatalf("after Apply(%s) at %d AppliedIndex is %d", cmd.Type(), l.Index, got)
	}
	return r
}

// ok applies cmd and fails the test if it returned an error.
func (h *harness) ok(cmd Command) *Result {
	h.t.Helper()
	r := h.apply(cmd)
	if err := r.Err(); err != nil {
		h.t.Fatalf("%s %+v: %v", cmd.Type(), cmd, err)
	}
	return r
}

// fails applies cmd, checks that its error matches every target, and that it
// changed nothing in meta.db but the applied index (and, when the command
// carries a request ID, the duplicate-request table).
func (h *harness) fails(cmd Command, targets ...error) *Result {
	h.t.Helper()
	before := dumpDB(h.t, h.fsm)
	r := h.apply(cmd)
	err := r.Err()
	if err == nil {
		h.t.Fatalf("%s %+v succeeded, want an error matching %v", cmd.Type(), cmd, targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			h.t.Errorf("%s %+v: error %q (code %d) does not match %v", cmd.Type(), cmd, err, CodeOf(err), target)
		}
	}
	if diff := diffDumps(before, dumpDB(h.t, h.fsm), ignoreBookkeeping); diff != "" {
		h.t.Errorf("failed %s changed meta.db:\n%s", cmd.Type(), diff)
	}
	return r
}

// Helpers for common commands.

func (h *harness) volume(name string) uint32 {
	h.t.Helper()
	r := h.ok(&CreateVolume{Name: name, Replicas: 3, WriteQuorum: 2, ChunkSize: cs, RootMode: 0o755})
	return r.Volume.ID
}

func (h *harness) create(vol uint32, parent uint64, name string, kind FileType) *Inode {
	h.t.Helper()
	c := &Create{Vol: vol, Parent: parent, Name: name, Kind: kind, Mode: 0o644, UID: 1000, GID: 1000}
	if kind == TypeDir {
		c.Mode = 0o755
	}
	if kind == TypeSymlink {
		c.Target = "target/of/" + name
	}
	return h.ok(c).Inode
}

// write commits one chunk write of length bytes at chunk index and grows the
// file to the end of it.
func (h *harness) write(vol uint32, ino, index, base, version uint64, length int64, replicas ...string) *Inode {
	h.t.Helper()
	return h.ok(&CommitWrite{Vol: vol, Ino: ino, Size: index*cs + uint64(length), Chunks: []ChunkWrite{
		{Index: index, BaseVersion: base, Version: version, Length: length, Replicas: replicas},
	}}).Inode
}

func (h *harness) inode(vol uint32, ino uint64) *Inode {
	h.t.Helper()
	n, err := h.fsm.Inode(vol, ino)
	if err != nil {
		h.t.Fatalf("Inode(%d, %d): %v", vol, ino, err)
	}
	return n
}

func (h *harness) lookup(vol uint32, parent uint64, name string) *Inode {
	h.t.Helper()
	n, err := h.fsm.Lookup(vol, parent, name)
	if err != nil {
		h.t.Fatalf("Lookup(%d, %d, %q): %v", vol, parent, name, err)
	}
	return n
}

func (h *harness) gone(vol uint32, parent uint64, name string) {
	h.t.Helper()
	if n, err := h.fsm.Lookup(vol, parent, name); !errors.Is(err, ErrNotExist) {
		h.t.Fatalf("Lookup(%d, %d, %q) = %+v, %v; want ErrNotExist", vol, parent, name, n, err)
	}
}

func (h *harness) freed(vol uint32, ino uint64) {
	h.t.Helper()
	if n, err := h.fsm.Inode(vol, ino); !errors.Is(err, ErrNotExist) {
		h.t.Fatalf("Inode(%d, %d) = %+v, %v; want ErrNotExist", vol, ino, n, err)
	}
	if chunks, err := h.fsm.Chunks(vol, ino); err != nil || len(chunks) != 0 {
		h.t.Fatalf("freed inode %d still has chunks %+v (%v)", ino, chunks, err)
	}
	if in, err := h.fsm.Inline(vol, ino); err != nil || in != nil {
		h.t.Fatalf("freed inode %d still has inline data %+v (%v)", ino, in, err)
	}
}

func (h *harness) vol(name string) *Volume {
	h.t.Helper()
	v, err := h.fsm.Volume(name)
	if err != nil {
		h.t.Fatalf("Volume(%q): %v", name, err)
	}
	return v
}

func (h *harness) garbage() map[GarbageKey][]string {
	h.t.Helper()
	list, err := h.fsm.Garbage(0)
	if err != nil {
		h.t.Fatalf("Garbage: %v", err)
	}
	out := map[GarbageKey][]string{}
	for _, g := range list {
		r := slices.Clone(g.Replicas)
		slices.Sort(r)
		out[g.Key] = r
	}
	return out
}

func (h *harness) chunks(vol uint32, ino uint64) []Chunk {
	h.t.Helper()
	chunks, err := h.fsm.Chunks(vol, ino)
	if err != nil {
		h.t.Fatalf("Chunks(%d, %d): %v", vol, ino, err)
	}
	return chunks
}

func ptr[T any](v T) *T { return &v }

// dump is every key and value of meta.db: bucket -> hex(key) -> value.
type dump map[string]map[string]string

// dumpDB reads every bucket of the FSM's file, including ones this build does
// not name, in one read transaction.
func dumpDB(t testing.TB, f *FSM) dump {
	t.Helper()
	out := dump{}
	err := f.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			kv := map[string]string{}
			out[string(name)] = kv
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					return fmt.Errorf("nested bucket %s/%x: the schema has none", name, k)
				}
				kv[hex.EncodeToString(k)] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return out
}

// ignoreBookkeeping skips what every applied command may change even when it
// fails: the applied index and the duplicate-request table.
func ignoreBookkeeping(bucket, key string) bool {
	switch bucket {
	case string(bucketRequests), string(bucketReqTimes):
		return true
	case string(bucketMeta):
		return key == hex.EncodeToString(keyApplied)
	}
	return false
}

// diffDumps lists the differences between two dumps ("" if none), skipping
// the keys ignore selects (ignore may be nil).
func diffDumps(a, b dump, ignore func(bucket, key string) bool) string {
	var lines []string
	buckets := map[string]bool{}
	for name := range a {
		buckets[name] = true
	}
	for name := range b {
		buckets[name] = true
	}
	names := make([]string, 0, len(buckets))
	for name := range buckets {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		ka, okA := a[name]
		kb, okB := b[name]
		if okA != okB {
			lines = append(lines, fmt.Sprintf("bucket %s: present before %v, after %v", name, okA, okB))
		}
		keys := map[string]bool{}
		for k := range ka {
			keys[k] = true
		}
		for k := range kb {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		slices.Sort(sorted)
		for _, k := range sorted {
			if ignore != nil && ignore(name, k) {
				continue
			}
			va, inA := ka[k]
			vb, inB := kb[k]
			switch {
			case !inA:
				lines = append(lines, fmt.Sprintf("+ %s/%s = %s", name, k, vb))
			case !inB:
				lines = append(lines, fmt.Sprintf("- %s/%s = %s", name, k, va))
			case va != vb:
				lines = append(lines, fmt.Sprintf("~ %s/%s: %s -> %s", name, k, va, vb))
			}
		}
	}
	return strings.Join(lines, "\n")
}

// sink is a raft.SnapshotSink backed by a buffer.
type sink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Close() error  { s.closed = true; return nil }
func (s *sink) Cancel() error { s.cancelled = true; return nil }

var _ raft.SnapshotSink = (*sink)(nil)

// snapshot returns the bytes a snapshot of f persists.
func snapshot(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	if !s.closed || s.cancelled {
		t.Fatalf("Persist left the sink closed=%v cancelled=%v, want closed", s.closed, s.cancelled)
	}
	return s.Bytes()
}
