package admintest

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// The fake replica checks (admin.Locator) and leadership transfer
// (admin.LeaderTransferer). A replica answers what the metadata says it
// holds unless the test set another answer; a transfer moves the reported
// leader at once.

type replicaKey struct {
	node string
	id   chunkstore.ID
}

type replicaAnswer struct {
	info chunkstore.Info
	err  error
}

// SetReplicaAnswer makes StatReplica(node, id) answer info and err.
func (b *Backend) SetReplicaAnswer(node string, id chunkstore.ID, info chunkstore.Info, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.answers == nil {
		b.answers = map[replicaKey]replicaAnswer{}
	}
	b.answers[replicaKey{node, id}] = replicaAnswer{info, err}
}

// Verifies counts StatReplica calls made with verify.
func (b *Backend) Verifies() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.verifies
}

// StatReplica implements admin.Locator: the answer set with
// SetReplicaAnswer, else the chunk as the metadata lists it (a node the
// metadata does not list for it has no copy).
func (b *Backend) StatReplica(_ context.Context, node string, id chunkstore.ID, verify bool) (chunkstore.Info, error) {
	b.mu.Lock()
	if verify {
		b.verifies++
	}
	a, ok := b.answers[replicaKey{node, id}]
	b.mu.Unlock()
	if ok {
		return a.info, a.err
	}
	ch, found, err := b.FSM().Chunk(id.Vol, id.Ino, id.Index)
	if err != nil {
		return chunkstore.Info{}, err
	}
	if !found || !slices.Contains(ch.Replicas, node) {
		return chunkstore.Info{}, fmt.Errorf("chunk %s on %s: %w", id, node, chunkstore.ErrNotFound)
	}
	return chunkstore.Info{Version: ch.Version, Length: ch.Length}, nil
}

// TransferLeadership implements admin.LeaderTransferer: the leader becomes
// id (or, for "", the first other voter) in a new term, and this backend a
// follower.
func (b *Backend) TransferLeadership(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := &b.status
	if st.Leader != b.ID {
		return fmt.Errorf("%w: %s does not lead", meta.ErrNoLeader, b.ID)
	}
	if id == "" {
		for _, v := range st.Voters {
			if v != b.ID {
				id = v
				break
			}
		}
		if id == "" {
			return errors.New("admintest: no other voter to transfer to")
		}
	}
	if !slices.Contains(st.Voters, id) {
		return fmt.Errorf("%w: %s is not a voter", meta.ErrInvalid, id)
	}
	b.transfers = append(b.transfers, id)
	if id != b.ID {
		st.Leader, st.State = id, "Follower"
		st.Term++
	}
	return nil
}

// Transfers lists the targets of the transfers made, "" resolved.
func (b *Backend) Transfers() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.transfers)
}
