package replication

import "time"

// The views of the self-healing machinery that the admin API, fsrepctl and
// metrics show. They are plain values: copies taken under the owner's lock.

// NodeState is the leader's view of a node's liveness.
type NodeState string

const (
	// StateUp: the node's last heartbeat is recent.
	StateUp NodeState = "up"
	// StateSuspect: heartbeats are late; no new replicas go there, nothing
	// is moved yet.
	StateSuspect NodeState = "suspect"
	// StateDown: heartbeats stopped for longer than the down timeout; after
	// the repair grace time its chunks are re-replicated elsewhere.
	StateDown NodeState = "down"
)

// NodeHealth is one node as the leader sees it.
type NodeHealth struct {
	ID       string    `json:"id"`
	AZ       string    `json:"az"`
	State    NodeState `json:"state"`
	LastSeen time.Time `json:"last_seen"`
	// DownSince is when the node was declared down (zero unless down).
	DownSince time.Time `json:"down_since,omitzero"`
	Draining  bool      `json:"draining"`
	// Chunks is how many chunk replicas the metadata places on the node.
	Chunks int `json:"chunks"`
	// FreeBytes and UsedBytes are from the node's last heartbeat (-1: unknown).
	FreeBytes int64 `json:"free_bytes"`
	UsedBytes int64 `json:"used_bytes"`
	// Files is the number of chunk files on the node's disk, garbage
	// included, from its last heartbeat.
	Files int `json:"files"`
	// Full: its last heartbeat said its chunk disk is below the reserve
	// (it refuses writes and gets no new replicas).
	Full bool `json:"full,omitempty"`
}

// AZHealth is the AZ-level view: an AZ is down when all its nodes are.
type AZHealth struct {
	AZ    string `json:"az"`
	Nodes int    `json:"nodes"`
	Up    int    `json:"up"`
	Down  bool   `json:"down"`
}

// RepairStatus is the healer's state on the leader.
type RepairStatus struct {
	Leader string        `json:"leader"`
	Paused bool          `json:"paused"`
	Grace  time.Duration `json:"grace_ns"`
	// RateLimit is the copy bandwidth limit in bytes per second.
	RateLimit int64 `json:"rate_limit"`
	// Queue counts chunks waiting for a copy or a move, by urgency.
	Queue       int `json:"queue"`
	QueueUrgent int `json:"queue_urgent"` // chunks with one healthy replica left
	InFlight    int `json:"in_flight"`
	// Totals since this node became leader.
	Copied      int64     `json:"copied"`
	CopiedBytes int64     `json:"copied_bytes"`
	Failed      int64     `json:"failed"`
	LastPass    time.Time `json:"last_pass,omitzero"`
	// Chunks is how many chunks the last pass read; Unavailable those
	// needing a copy with no replica able to serve it (all down), and
	// Unplaceable those with no node to copy to.
	Chunks      int          `json:"chunks"`
	Unavailable int          `json:"unavailable"`
	Unplaceable int          `json:"unplaceable"`
	Nodes       []NodeHealth `json:"nodes"`
	AZs         []AZHealth   `json:"azs"`
}

// ReplicaStatus counts the chunks of one volume by replication health.
type ReplicaStatus struct {
	Volume   string `json:"volume"`
	Replicas int    `json:"replicas"`
	Chunks   int    `json:"chunks"`
	Healthy  int    `json:"healthy"` // R healthy replicas in distinct AZs where the topology allows
	// UnderReplicated: fewer than R healthy replicas, at least one.
	UnderReplicated int `json:"under_replicated"`
	// Unavailable: no healthy replica at all.
	Unavailable int `json:"unavailable"`
	// Misplaced: R healthy replicas but two share an AZ while another AZ could hold one.
	Misplaced int `json:"misplaced"`
	// Draining: replicas on draining nodes still to be moved.
	Draining int `json:"draining"`
	// Corrupt counts replicas reported corrupt and not yet repaired.
	Corrupt int `json:"corrupt"`
	// PerAZ counts healthy replicas per AZ.
	PerAZ map[string]int `json:"per_az"`
}

// ScrubStatus is one node's scrubber.
type ScrubStatus struct {
	Node      string `json:"node"`
	Paused    bool   `json:"paused"`
	RateLimit int64  `json:"rate_limit"` // bytes per second
	// The current pass.
	PassStarted  time.Time `json:"pass_started,omitzero"`
	PassChunks   int       `json:"pass_chunks"` // chunks on the node when the pass began
	Scanned      int       `json:"scanned"`
	ScannedBytes int64     `json:"scanned_bytes"`
	// Totals since start.
	Passes        int       `json:"passes"`
	LastPassEnded time.Time `json:"last_pass_ended,omitzero"`
	Corrupt       int64     `json:"corrupt"`  // corrupt replicas found
	Repaired      int64     `json:"repaired"` // of those, dropped for repair (or removed: no replica set listed them)
	// Kept: of those, left in place as their chunk's last copy.
	Kept int64 `json:"kept"`
	// Errors counts chunk files that could not be checked (I/O errors other
	// than a checksum mismatch) or whose damage could not be reported.
	Errors int64 `json:"errors"`
	// NextPass is when the next pass is due (zero while one runs or when
	// scrubbing is off).
	NextPass time.Time `json:"next_pass,omitzero"`
	// ReadCorrupt are the damaged replicas that reads through this node
	// found, and what became of them (see CorruptCounts).
	ReadCorrupt CorruptCounts `json:"read_corrupt"`
}

// GCStatus is the leader's garbage collector: chunk versions no longer
// referenced (deleted or truncated files, replicas left out) whose files
// are deleted on every node that may hold one.
type GCStatus struct {
	// Running: this node is the leader and its collector runs.
	Running bool `json:"running"`
	// Pending is the number of garbage records the last pass left (of the
	// ones it looked at), e.g. for nodes that are down.
	Pending int `json:"pending"`
	// Blocked lists the nodes the last pass gave up on (unreachable).
	Blocked  []string  `json:"blocked"`
	LastPass time.Time `json:"last_pass,omitzero"`
	// Totals since this node became leader.
	Deleted   int64 `json:"deleted"`   // chunk files deleted
	Collected int64 `json:"collected"` // garbage records completed
	Failed    int64 `json:"failed"`    // delete calls that failed
}

// SweepStatus is one node's orphan sweep: chunk files the metadata does
// not reference on this node, deleted once older than the safety delay.
type SweepStatus struct {
	Node      string        `json:"node"`
	OrphanAge time.Duration `json:"orphan_age_ns"`
	Passes    int           `json:"passes"`
	LastPass  time.Time     `json:"last_pass,omitzero"`
	// From the last pass: files looked at, live ones, unreferenced ones
	// still younger than the safety delay, ones ahead of the committed
	// version (left to the reconciler), ones behind it though listed, and
	// damaged ones left to the scrubber.
	Files   int `json:"files"`
	Live    int `json:"live"`
	Young   int `json:"young"`
	Ahead   int `json:"ahead"`
	Behind  int `json:"behind"`
	Corrupt int `json:"corrupt"`
	// Deleted counts files deleted since start.
	Deleted int64 `json:"deleted"`
}
