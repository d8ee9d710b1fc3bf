// Package admintest provides an admin.Backend for tests: a real meta.FSM in
// a temporary directory, with commands applied directly (no Raft), plus an
// in-memory healer and scrubber (admin.Healer, admin.Scrubber),
// admin.NFSStats, fake replica checks and leadership transfers
// (admin.Locator, admin.LeaderTransferer; ops.go), and a fake consistency
// checker (admin.Checker; check.go). It cannot import admin (admin's own
// tests import it), so those assertions live in admin's tests.
package admintest

import (
	"context"
	"sync"
	"testing"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/meta/metatest"
)

// Backend implements admin.Backend over a real FSM (metatest.Store:
// Propose applies the command at the next log index, as Raft would on a
// single-node cluster).
type Backend struct {
	ID, Zone string
	*metatest.Store

	mu     sync.Mutex
	status meta.Status
	ready  error
	heal   healState // guarded by mu; see healer.go
	// tokenGen counts admin token rotations (token.go).
	tokenGen uint64
	// handleKeyGen counts file handle key rotations (token.go).
	handleKeyGen uint64

	// replica answers and leadership transfers (ops.go), guarded by mu
	answers   map[replicaKey]replicaAnswer
	verifies  int
	transfers []string

	check checkState // the fake consistency checker (check.go), guarded by mu
}

// New opens an FSM in t.TempDir and registers nodes in it; they all become
// Raft voters and the first one the leader. The FSM is closed when the test ends.
func New(t testing.TB, nodes ...meta.NodeInfo) *Backend {
	t.Helper()
	b := &Backend{ID: "n1", Zone: "az1", Store: metatest.New(t), heal: newHealState()}
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

func (b *Backend) NodeID() string { return b.ID }
func (b *Backend) AZ() string     { return b.Zone }

func (b *Backend) Status() meta.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.status
	st.CommitIndex, st.AppliedIndex = b.Index(), b.FSM().AppliedIndex()
	return st
}

func (b *Backend) Ready() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ready
}
