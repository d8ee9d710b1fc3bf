// Package admin is fsrep's management API: HTTP+JSON served on every node's
// admin address, and the client fsrepctl uses to call it.
//
// Reads (status, nodes, volumes) are answered from the node's local FSM, so a
// follower may lag the leader by the commits in flight. Changes are proposed
// through the node's Backend, which forwards them to the Raft leader. The
// self-healing endpoints (repair, replicas, drain, remove) need the leader's
// healer, and a leadership transfer starts on the leader: a follower
// forwards them to the leader's admin API. Every path but
// /healthz and /readyz needs the admin bearer token, /metrics included. The
// wire format is described in docs/admin-api.md.
package admin

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// Paths of the API (version 1).
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathStatus  = "/v1/status"
	PathNodes   = "/v1/nodes"
	PathVolumes = "/v1/volumes"
	// A volume's export options are at PathVolumes/{name}/export.
	exportSuffix = "/export"
	// A node is drained at PathNodes/{id}/drain and removed by DELETE PathNodes/{id}.
	drainSuffix = "/drain"

	PathRepair       = "/v1/repair"
	PathRepairPause  = "/v1/repair/pause"
	PathRepairResume = "/v1/repair/resume"
	PathReplicas     = "/v1/replicas"
	PathScrub        = "/v1/scrub"
	PathScrubStart   = "/v1/scrub/start"
	PathScrubPause   = "/v1/scrub/pause"
	PathScrubResume  = "/v1/scrub/resume"
	PathMetrics      = "/metrics"

	// A file's placement is at PathVolumes/{name}/locate?path=...
	locateSuffix = "/locate"
	// PathLeaderTransfer hands the Raft leadership to another voter.
	PathLeaderTransfer = "/v1/leader/transfer"
	// PathSnapshot streams a consistent copy of the node's meta.db.
	PathSnapshot = "/v1/snapshot"
)

// Error codes carried in ErrorBody.Code. Scripts and fsrepctl switch on them,
// never on the message.
const (
	CodeNotFound        = "not_found"        // 404
	CodeExists          = "exists"           // 409
	CodeInvalid         = "invalid"          // 400
	CodeUnsafePlacement = "unsafe_placement" // 409
	CodeNoLeader        = "no_leader"        // 503
	CodeUnauthorized    = "unauthorized"     // 401
	CodeInternal        = "internal"         // 500
	// CodeHoldsOnlyCopy: a node cannot be removed while it holds the only
	// healthy replica of a chunk (drain it first).
	CodeHoldsOnlyCopy = "holds_only_copy" // 409
	// CodeNotImplemented: this node's build has no healer or scrubber.
	CodeNotImplemented = "not_implemented" // 501
	// CodeUnreachable: this node could not reach another node's admin API
	// on the caller's behalf (the leader, for a forwarded request).
	CodeUnreachable = "unreachable" // 502
	// CodeNotReady is never sent in an ErrorBody: Client.Ready reports a 503
	// from /readyz with it.
	CodeNotReady = "not_ready"
)

// ErrorBody is the JSON body of every failed call (except /readyz).
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Health is the cluster's condition as one node sees it.
type Health string

const (
	// HealthOK: a leader exists, every registered node is a Raft member and
	// the AZs can hold every volume's replicas apart.
	HealthOK Health = "ok"
	// HealthDegraded: serving, but something needs an operator (see Reasons).
	HealthDegraded Health = "degraded"
	// HealthAtRisk: some chunk has a single healthy replica left, so one more
	// failure loses data.
	HealthAtRisk Health = "at_risk"
	// HealthDown: no metadata leader; nothing can change until one is elected.
	HealthDown Health = "down"
)

// StatusResponse is the body of GET /v1/status.
type StatusResponse struct {
	Node    string          `json:"node"`
	AZ      string          `json:"az"`
	Raft    meta.Status     `json:"raft"`
	Nodes   []meta.NodeInfo `json:"nodes"`
	Volumes []meta.Volume   `json:"volumes"`
	Health  Health          `json:"health"`
	Reasons []string        `json:"reasons"`
	// Repair is the leader's healer (node liveness, AZs, repair queue),
	// absent when the node has no healer or the leader could not be asked.
	Repair *replication.RepairStatus `json:"repair,omitempty"`
}

// DrainRequest is the body of POST /v1/nodes/{id}/drain.
type DrainRequest struct {
	// Drain true moves the node's chunks off it and keeps new ones away;
	// false returns it to service.
	Drain bool `json:"drain"`
}

// NodeScrub is one node's answer to a cluster-wide scrub call (?all=1):
// its scrubber's status, or why it could not be had.
type NodeScrub struct {
	Node  string                   `json:"node"`
	AZ    string                   `json:"az"`
	Scrub *replication.ScrubStatus `json:"scrub,omitempty"`
	Error *ErrorBody               `json:"error,omitempty"`
}

// ReadyResponse is the body of GET /readyz (and {"status":"alive"} of /healthz).
type ReadyResponse struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// CreateVolumeRequest is the body of POST /v1/volumes. Zero values take the
// defaults: 3 replicas, a majority write quorum, 4 MiB chunks, root
// directory mode 0755 owned by 0:0, and meta.DefaultExport.
type CreateVolumeRequest struct {
	Name        string `json:"name"`
	Replicas    int    `json:"replicas,omitempty"`
	WriteQuorum int    `json:"write_quorum,omitempty"`
	ChunkSize   int64  `json:"chunk_size,omitempty"`
	// RootMode is the permission bits of the volume's root directory.
	RootMode *FileMode `json:"root_mode,omitempty"`
	// Export is the volume's NFS export options, given whole; nil means
	// meta.DefaultExport (read-write, every client, root squashed to 65534).
	Export *meta.Export `json:"export,omitempty"`
	// AllowUnsafePlacement creates the volume even when losing one AZ would
	// stop its writes (replication.CheckPolicy).
	AllowUnsafePlacement bool `json:"allow_unsafe_placement,omitempty"`
	// QuotaBytes and QuotaFiles limit the volume's logical data size and
	// its inodes (the root directory included); 0 means no quota.
	QuotaBytes int64 `json:"quota_bytes,omitempty"`
	QuotaFiles int64 `json:"quota_files,omitempty"`
}

// SetVolumeRequest is the body of PATCH /v1/volumes/{name}: the settings to
// change (a field left out keeps its value). At least one is required.
type SetVolumeRequest struct {
	// Replicas changes R. Without WriteQuorum the quorum becomes a majority
	// of the new count.
	Replicas    *int `json:"replicas,omitempty"`
	WriteQuorum *int `json:"write_quorum,omitempty"`
	// QuotaBytes and QuotaFiles replace the quotas; 0 removes one. A quota
	// below the current usage is accepted: the volume then only shrinks.
	QuotaBytes *int64 `json:"quota_bytes,omitempty"`
	QuotaFiles *int64 `json:"quota_files,omitempty"`
	// Export replaces the export options, given whole (as in PUT .../export).
	Export *meta.Export `json:"export,omitempty"`
	// AllowUnsafePlacement accepts a replica count and quorum that would
	// stop the volume's writes after losing one AZ (as at create).
	AllowUnsafePlacement bool `json:"allow_unsafe_placement,omitempty"`
}

// TransferRequest is the body of POST /v1/leader/transfer.
type TransferRequest struct {
	// Node is the voter to hand the leadership to; "" lets Raft pick the
	// most up-to-date one.
	Node string `json:"node"`
}

// TransferResponse answers POST /v1/leader/transfer.
type TransferResponse struct {
	// Previous led when the request arrived; Leader leads now (the same
	// node when it was asked to hand the leadership to itself).
	Previous string `json:"previous"`
	Leader   string `json:"leader"`
	Term     uint64 `json:"term"`
}

// LocateResponse answers GET /v1/volumes/{name}/locate: where a file's
// chunks are and, when checked, what each replica holds.
type LocateResponse struct {
	Volume    string     `json:"volume"`
	Path      string     `json:"path"`
	Inode     meta.Inode `json:"inode"`
	Type      string     `json:"type"` // file, dir or symlink
	ChunkSize int64      `json:"chunk_size"`
	// Replicas is the volume's replica count R, to compare with the
	// replicas each chunk lists.
	Replicas int `json:"replicas"`
	// Chunks are the file's chunks with index >= the request's from, at
	// most its limit; Next is the index to continue from when there are
	// more, else absent.
	Chunks []ChunkLocation `json:"chunks"`
	Next   *uint64         `json:"next,omitempty"`
	// InlineBytes is how many bytes of chunk 0 are kept in the metadata
	// (a small file, meta/inline.go) instead of in a chunk.
	InlineBytes int `json:"inline_bytes,omitempty"`
	// Checked says whether the replicas were asked (check=1); Verified
	// whether they re-read every block (verify=1).
	Checked  bool `json:"checked"`
	Verified bool `json:"verified"`
}

// ChunkLocation is one chunk of a located file.
type ChunkLocation struct {
	Index    uint64            `json:"index"`
	Offset   uint64            `json:"offset"` // byte offset in the file
	Version  uint64            `json:"version"`
	Length   int64             `json:"length"`
	Replicas []ReplicaLocation `json:"replicas"`
	// OK counts the replicas found holding the chunk intact at Version
	// (only when checked).
	OK int `json:"ok"`
}

// ReplicaLocation is one replica of a chunk.
type ReplicaLocation struct {
	Node string `json:"node"`
	AZ   string `json:"az"` // "" when the node is not registered
	// State is what the node said (ReplicaOK, ReplicaStale, ...), or
	// ReplicaUnchecked.
	State string `json:"state"`
	// Version and Length are the node's copy, when it has one.
	Version uint64 `json:"version,omitempty"`
	Length  int64  `json:"length,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Replica states in a LocateResponse.
const (
	ReplicaOK        = "ok"        // the version the metadata names, checksums sound
	ReplicaStale     = "stale"     // an older version: missed a write (repair replaces it)
	ReplicaAhead     = "ahead"     // a newer version: a write that never committed
	ReplicaMissing   = "missing"   // the node has no file for the chunk
	ReplicaCorrupt   = "corrupt"   // the file fails its checksums
	ReplicaError     = "error"     // the node could not be asked (see Error)
	ReplicaUnchecked = "unchecked" // not asked (check=0)
)

// Defaults applied to a CreateVolumeRequest.
const (
	DefaultReplicas  = 3
	DefaultChunkSize = 4 << 20
	DefaultRootMode  = FileMode(0o755)
)

// FileMode is permission bits (07777 at most). JSON has no octal numbers, so
// it is written as an octal string ("0755") and read from either such a
// string or a plain number (493).
type FileMode uint32

// MarshalJSON writes the mode as an octal string.
func (m FileMode) MarshalJSON() ([]byte, error) {
	return json.Marshal(fmt.Sprintf("%04o", uint32(m)))
}

// UnmarshalJSON reads an octal string or a number.
func (m *FileMode) UnmarshalJSON(b []byte) error {
	var v uint64
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O"), 8, 32)
		if err != nil {
			return fmt.Errorf("mode %q is not an octal number", s)
		}
		v = n
	} else if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("mode %s is not a number or an octal string", b)
	}
	if v > 0o7777 {
		return fmt.Errorf("mode %#o has bits beyond 07777", v)
	}
	*m = FileMode(v)
	return nil
}
