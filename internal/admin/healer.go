package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// Healer is the self-healing machinery as the admin API sees it: repair
// queue and liveness, replication health, drain and removal. A Backend may
// implement it; when it does not, the endpoints that need it answer
// 501 not_implemented (checked by type assertion, so Backend does not grow).
//
// The admin server calls these methods on the Raft leader only: a follower
// forwards the HTTP request to the leader's admin API, so an implementation
// may assume it runs where the healer runs. A node that lost leadership
// between the check and the call may return meta.ErrNoLeader (503, retried
// by the client). Every method is safe for concurrent use.
type Healer interface {
	// RepairStatus is the healer's state: queue, totals, node liveness and
	// the AZ view.
	RepairStatus() replication.RepairStatus
	// PauseRepair stops (true) or resumes (false) the start of new copies
	// and moves; copies in flight finish.
	PauseRepair(paused bool)
	// ReplicaStatus counts the chunks of volume by replication health, or
	// of every volume sorted by name when volume is "". An unknown volume is
	// an error matching meta.ErrNoVolume.
	ReplicaStatus(volume string) ([]replication.ReplicaStatus, error)
	// DrainNode marks node id draining (drain true: no new replicas, its
	// chunks are moved off keeping the AZ spread) or returns it to service
	// (false), and returns once the change is applied on this node. An
	// unknown node is an error matching io/fs.ErrNotExist.
	DrainNode(ctx context.Context, id string, drain bool) error
	// RemoveNode forgets node id and takes it out of the Raft configuration.
	// It refuses with an error matching ErrHoldsOnlyCopy (or meta.ErrConflict,
	// as the meta.RemoveNode command does) while the node holds the only
	// healthy replica of any chunk.
	RemoveNode(ctx context.Context, id string) error
}

// Scrubber is this node's scrubber. Like Healer it is optional; unlike it,
// every node answers for its own scrubber.
type Scrubber interface {
	ScrubStatus() replication.ScrubStatus
	// PauseScrub stops (true) or resumes (false) the paced re-reading.
	PauseScrub(paused bool)
	// StartScrub begins a pass now, unless one is running.
	StartScrub()
}

// ErrHoldsOnlyCopy is how a Healer refuses RemoveNode: wrap it (with %w)
// so the API answers 409 holds_only_copy whatever the message says.
var ErrHoldsOnlyCopy = errors.New("admin: the node holds the only healthy replica of some chunk")

// errNotImplemented answers for a node built without a healer or scrubber.
func errNotImplemented(what string) error {
	return &APIError{Status: http.StatusNotImplemented, Code: CodeNotImplemented,
		Message: "admin: this node has no " + what}
}

// withHealer answers 501 when the backend has no healer. It comes before
// leader forwarding: every node runs the same build, so asking the leader
// would not help.
func (s *server) withHealer(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.healer == nil {
			s.fail(w, r, errNotImplemented("healer (repair, replica status, drain and remove)"))
			return
		}
		h(w, r)
	}
}

func (s *server) withScrubber(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.scrubber == nil {
			s.fail(w, r, errNotImplemented("scrubber"))
			return
		}
		h(w, r)
	}
}

func (s *server) handleRepair(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, repairView(s.healer.RepairStatus()))
}

// handlePauseRepair serves POST /v1/repair/pause and /resume; it answers
// the status after the change so the caller sees the queue it paused.
func (s *server) handlePauseRepair(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.healer.PauseRepair(paused)
		st := s.healer.RepairStatus()
		s.log.Info("repair paused", "paused", paused, "queue", st.Queue, "in_flight", st.InFlight)
		writeJSON(w, http.StatusOK, repairView(st))
	}
}

// repairView makes the lists of a RepairStatus encode as [] rather than null.
func repairView(st replication.RepairStatus) replication.RepairStatus {
	st.Nodes, st.AZs = nonNil(st.Nodes), nonNil(st.AZs)
	return st
}

func (s *server) handleReplicas(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("volume")
	if name != "" {
		// Checked here so that a bad or unknown name gets the same answer
		// as everywhere else in the API, whatever the healer says.
		if err := meta.ValidVolumeName(name); err != nil {
			s.fail(w, r, err)
			return
		}
		if _, err := s.b.FSM().Volume(name); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	st, err := s.healer.ReplicaStatus(name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for i := range st {
		if st[i].PerAZ == nil {
			st[i].PerAZ = map[string]int{}
		}
	}
	writeJSON(w, http.StatusOK, nonNil(st))
}

// nodeInPath returns the registered node the request's {id} names, or
// answers 404 itself and returns false.
func (s *server) nodeInPath(w http.ResponseWriter, r *http.Request) (*meta.NodeInfo, bool) {
	id := r.PathValue("id")
	n, err := s.b.FSM().Node(id)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return n, true
}

func (s *server) handleDrain(w http.ResponseWriter, r *http.Request) {
	// The field is required: {} must not quietly mean "undrain".
	var req struct {
		Drain *bool `json:"drain"`
	}
	if err := decodeBody(w, r, "drain", &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Drain == nil {
		s.fail(w, r, invalid(`admin: drain body needs "drain": true or false`))
		return
	}
	if _, ok := s.nodeInPath(w, r); !ok {
		return
	}
	id := r.PathValue("id")
	if err := s.healer.DrainNode(r.Context(), id, *req.Drain); err != nil {
		s.fail(w, r, err)
		return
	}
	n, ok := s.nodeInPath(w, r)
	if !ok {
		return
	}
	s.log.Info("node drain set", "node", id, "draining", *req.Drain)
	writeJSON(w, http.StatusOK, withVoters([]meta.NodeInfo{*n}, s.b.Status())[0])
}

func (s *server) handleRemoveNode(w http.ResponseWriter, r *http.Request) {
	n, ok := s.nodeInPath(w, r)
	if !ok {
		return
	}
	if err := s.healer.RemoveNode(r.Context(), n.ID); err != nil {
		// meta.ErrConflict is what the RemoveNode command answers for a
		// chunk whose only replica is on the node; replication.ErrLastCopy
		// is the healer's word for the same thing. Only here do they mean
		// "holds the only copy".
		if errors.Is(err, ErrHoldsOnlyCopy) || errors.Is(err, meta.ErrConflict) || errors.Is(err, replication.ErrLastCopy) {
			err = &APIError{Status: http.StatusConflict, Code: CodeHoldsOnlyCopy,
				Message: fmt.Sprintf("admin: node %s still holds the only healthy replica of some chunk; drain it first (fsrepctl node drain %s --wait): %v", n.ID, n.ID, err)}
		}
		s.fail(w, r, err)
		return
	}
	s.log.Info("node removed", "node", n.ID, "az", n.AZ)
	writeJSON(w, http.StatusOK, n)
}
