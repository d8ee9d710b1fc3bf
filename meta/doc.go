// Package meta is fsrep's replicated metadata: one Raft group per cluster
// (hashicorp/raft, log and stable store in raft.db via raft-boltdb/v2) whose
// state machine lives in its own bbolt file, meta.db, keyed by inode.
//
// Commands are a typed, append-only list (command.go) applied
// deterministically (apply.go); the applied index is written in the same
// bbolt transaction as the change (fsm.go). Node (node.go) proposes locally
// on the leader or forwards through a Forwarder, retries across leader
// changes with the command's request ID, and answers only after its own
// FSM applied the command, so a client reads its own writes on the node it
// uses. Reads (read.go) are served from the local FSM. The bucket layout and
// the storage version live in schema.go and docs/meta-format.md.
package meta
