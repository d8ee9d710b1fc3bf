// Package fault names the crash-critical steps of fsrep (fault points) and,
// in test builds only, lets a test kill the process or fail the step there.
//
// A normal build compiles Point to a function that returns nil, which the
// compiler inlines away: nothing a user runs can be made to fail by it.
// Built with -tags faultpoints, Point consults the schedule the process was
// started with, in the environment (FSREP_FAULTPOINTS, docs/crash-testing.md):
//
//	FSREP_FAULTPOINTS=meta.apply.after-commit=kill@3,chunk.write.before-sync=error@1
//
// fires the third time the first point is reached by killing the process
// with SIGKILL (no deferred function, no flush: a crash), and the first
// time the second is reached by returning ErrInjected from Point. The
// schedule is read once, at the first Point, and is the only
// process-global state of fsrep (fault points are by nature global: the
// code that reaches them has no handle on the test).
package fault

import "errors"

// ErrInjected is what an "error" fault returns.
var ErrInjected = errors.New("fault: injected failure")

// EnvVar holds a test build's fault schedule.
const EnvVar = "FSREP_FAULTPOINTS"

// The fault points: where a crash or a failure can hurt most. Each is
// placed at one step of a write's way to durability.
const (
	// MetaBeforeCommit: commands applied in the bbolt transaction, which is
	// not committed yet (the applied index is in the same transaction).
	MetaBeforeCommit = "meta.apply.before-commit"
	// MetaAfterCommit: the transaction committed, the proposer not told.
	MetaAfterCommit = "meta.apply.after-commit"
	// ChunkBeforeSync: chunk bytes written to the file, not fsynced.
	ChunkBeforeSync = "chunk.write.before-sync"
	// ChunkBeforeRename: a new chunk file complete and fsynced under its
	// temporary name.
	ChunkBeforeRename = "chunk.write.before-rename"
	// ChunkAfterRename: a new chunk file renamed into place, its directory
	// not fsynced.
	ChunkAfterRename = "chunk.write.after-rename"
	// ReplicaAcked: a write's replicas acknowledged it durably; the
	// metadata commit (size, version, replica set) not proposed yet.
	ReplicaAcked = "replication.write.acked"
	// BeforeReply: the write committed in the metadata and applied on this
	// node; the NFS reply not sent.
	BeforeReply = "gateway.write.before-reply"
	// SnapshotInstall: a Raft snapshot being installed into meta.db, its
	// temporary file written, not yet swapped in.
	SnapshotInstall = "meta.snapshot.install"
	// HealCopied: re-replication copied a chunk to its new node; the
	// replica set change not committed.
	HealCopied = "replication.heal.copied"
)

// Points lists every fault point.
func Points() []string {
	return []string{
		MetaBeforeCommit, MetaAfterCommit, ChunkBeforeSync, ChunkBeforeRename, ChunkAfterRename,
		ReplicaAcked, BeforeReply, SnapshotInstall, HealCopied,
	}
}
