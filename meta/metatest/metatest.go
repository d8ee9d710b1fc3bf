// Package metatest is a metadata store for tests: a real meta.FSM in a
// temporary directory with commands applied directly, as Raft would on a
// single-node cluster. It imports nothing of fsrep but meta, so the tests of
// any package (replication included) can use it.
package metatest

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

// Store is an FSM with Propose.
type Store struct {
	fsm *meta.FSM

	mu       sync.Mutex
	index    uint64
	noLeader bool
}

// New opens an FSM in t.TempDir and registers nodes in it. The FSM is
// closed when the test ends.
func New(t testing.TB, nodes ...meta.NodeInfo) *Store {
	t.Helper()
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fsm, err := meta.OpenFSM(filepath.Join(t.TempDir(), "meta.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsm.Close() })
	s := &Store{fsm: fsm}
	for _, n := range nodes {
		res, err := s.Propose(context.Background(), &meta.RegisterNode{Node: n})
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			t.Fatalf("register %s: %v", n.ID, err)
		}
	}
	return s
}

// FSM is the state machine.
func (s *Store) FSM() *meta.FSM { return s.fsm }

// Index is the index of the last command applied.
func (s *Store) Index() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index
}

// SetNoLeader makes Propose fail with meta.ErrNoLeader.
func (s *Store) SetNoLeader(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noLeader = v
}

// Propose applies cmd to the FSM at the next index. The proposer's time is
// a fixed epoch plus the index, so results are reproducible.
func (s *Store) Propose(_ context.Context, cmd meta.Command) (*meta.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noLeader {
		return nil, meta.ErrNoLeader
	}
	h := meta.HeaderOf(cmd)
	if h.Time == 0 {
		h.Time = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano() + int64(s.index)
	}
	if h.RequestID == "" {
		h.RequestID = meta.NewRequestID()
	}
	entry, err := meta.EncodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	s.index++
	res, _ := s.fsm.Apply(&raft.Log{Index: s.index, Type: raft.LogCommand, Data: entry}).(*meta.Result)
	return res, nil
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
