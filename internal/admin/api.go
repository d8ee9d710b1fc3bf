// Package admin is fsrep's management API: HTTP+JSON served on every node's
// admin address, and the client fsrepctl uses to call it.
//
// Reads (status, nodes, volumes) are answered from the node's local FSM, so a
// follower may lag the leader by the commits in flight. Changes are proposed
// through the node's Backend, which forwards them to the Raft leader. Every
// path but /healthz and /readyz needs the admin bearer token. The wire format
// is described in docs/admin-api.md.
package admin

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/fsrep/fsrep/meta"
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
}

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
