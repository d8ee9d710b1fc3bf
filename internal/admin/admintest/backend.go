// Package admintest provides an admin.Backend for tests: a real meta.FSM in
// a temporary directory, with commands applied directly (no Raft).
package admintest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/fsrep/fsrep/meta"
)

// Backend implements admin.Backend over a real FSM. Propose encodes the
// command and applies it at the next log index, as Raft would on a
// single-node cluster.
type Backend struct {
	ID, Zone string
	fsm      *meta.FSM

	mu       sync.Mutex
	index    uint64
	status   meta.Status
	ready    error
	noLeader bool
}

// New opens an FSM in t.TempDir and registers nodes in it; they all become
// Raft voters and the first one the leader. The FSM is closed when the test ends.
func New(t testing.TB, nodes ...meta.NodeInfo) *Backend {
	t.Helper()
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fsm, err := meta.OpenFSM(filepath.Join(t.TempDir(), "meta.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsm.Close() })
	b := &Backend{ID: "n1", Zone: "az1", fsm: fsm}
	b.status = meta.Status{State: "Leader", Term: 1}
	for i, n := range nodes {
		if i == 0 {
			b.ID, b.Zone, b.status.Leader = n.ID, n.AZ, n.ID
		}
		b.Register(t, n, true)
	}
	return b
}

// Register applies a RegisterNode command and, when member, adds the node
// to the Raft configuration as a voter.
func (b *Backend) Register(t testing.TB, n meta.NodeInfo, member bool) {
	t.Helper()
	res, err := b.Propose(context.Background(), &meta.RegisterNode{Node: n})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("register %s: %v", n.ID, err)
	}
	if member {
		b.mu.Lock()
		b.status.Voters = append(b.status.Voters, n.ID)
		b.mu.Unlock()
	}
}

// SetStatus replaces the Raft status the backend reports.
func (b *Backend) SetStatus(st meta.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = st
}

// SetReady sets what Ready returns.
func (b *Backend) SetReady(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ready = err
}

// SetNoLeader makes Propose fail with meta.ErrNoLeader.
func (b *Backend) SetNoLeader(v bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.noLeader = v
}

func (b *Backend) NodeID() string { return b.ID }
func (b *Backend) AZ() string     { return b.Zone }
func (b *Backend) FSM() *meta.FSM { return b.fsm }

func (b *Backend) Status() meta.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.status
	st.CommitIndex, st.AppliedIndex = b.index, b.fsm.AppliedIndex()
	return st
}

func (b *Backend) Ready() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ready
}

// Propose applies cmd to the FSM at the next index.
func (b *Backend) Propose(_ context.Context, cmd meta.Command) (*meta.Result, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.noLeader {
		return nil, meta.ErrNoLeader
	}
	h := meta.HeaderOf(cmd)
	if h.Time == 0 {
		h.Time = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano() + int64(b.index)
	}
	if h.RequestID == "" {
		h.RequestID = meta.NewRequestID()
	}
	entry, err := meta.EncodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	b.index++
	res, _ := b.fsm.Apply(&raft.Log{Index: b.index, Type: raft.LogCommand, Data: entry}).(*meta.Result)
	return res, nil
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
