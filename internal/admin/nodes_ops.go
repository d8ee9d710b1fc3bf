package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// One node in detail (GET /v1/nodes/{id}) and its role in the metadata Raft
// group (POST /v1/nodes/{id}/role): what fsrepctl node info and node add
// call.

// roleSuffix: a node's Raft role is set at PathNodes/{id}/role.
const roleSuffix = "/role"

// CodeUnsafeVoters: a role change would leave the Raft voters unable to
// keep a majority after losing one AZ, exceed the voter limit, promote a
// node that is not up, or be undone by the healer; the message says why.
const CodeUnsafeVoters = "unsafe_voters" // 409

// ErrUnsafeVoters is how a RoleSetter refuses a role change on the voter
// policy's grounds: wrap it (with %w) so the API answers 409 unsafe_voters.
var ErrUnsafeVoters = errors.New("admin: unsafe change of the Raft voters")

// A node's place in the metadata Raft group, as NodeResponse.Role and
// RoleResponse report it.
const (
	RoleLeader    = "leader"
	RoleVoter     = "voter"
	RoleNonVoter  = "nonvoter"
	RoleNotMember = "not-member" // registered, not (yet) in the Raft configuration
)

// NodeResponse is the body of GET /v1/nodes/{id}: the node object of GET
// /v1/nodes with its Raft role and the leader's view of it.
type NodeResponse struct {
	meta.NodeInfo
	Role string `json:"role"`
	// Health is the node as the leader's healer sees it (liveness, last
	// heartbeat, chunks, free space); absent when the node has no healer
	// or the leader could not be asked, as in /v1/status.
	Health *replication.NodeHealth `json:"health,omitempty"`
}

// RoleRequest is the body of POST /v1/nodes/{id}/role.
type RoleRequest struct {
	// Voter true makes the node a Raft voter, false a non-voter. Absent
	// (null or {}) admits a registered node that is not a member yet with
	// the role a join gives (a voter when its AZ has none and there are
	// fewer than 5), and changes nothing for a member.
	Voter *bool `json:"voter"`
	// AllowUnsafe accepts a change that leaves the voters unable to keep a
	// majority after losing one AZ. It never lifts the limit of 5 voters,
	// the refusal to give a vote to a node that is not up, or the refusal
	// of a change the healer would undo.
	AllowUnsafe bool `json:"allow_unsafe,omitempty"`
}

// RoleStep is one membership change made for a RoleRequest.
type RoleStep struct {
	Node string `json:"node"`
	Role string `json:"role"` // RoleVoter or RoleNonVoter: what the node became
}

// RoleResponse answers POST /v1/nodes/{id}/role: the node after the change
// and what was done to get there (no steps: nothing needed doing).
type RoleResponse struct {
	Node     meta.NodeInfo `json:"node"`
	Previous string        `json:"previous"` // the role before the change
	Role     string        `json:"role"`
	// Steps are the role changes of the Raft configuration seen across
	// the call, promotions first (they were made first, so that the
	// voters never drop below their number); none: nothing needed doing.
	Steps []RoleStep `json:"steps"`
	// Notes are what the operator should know about the result.
	Notes []string `json:"notes"`
}

// RoleSetter changes a registered node's role in the metadata Raft group.
// A Backend may implement it; without it the role endpoint answers 501
// not_implemented. The server calls it on the leader only (a follower
// forwards), after checking that the node is registered.
type RoleSetter interface {
	// SetNodeRole makes registered node id a voter (voter true) or a
	// non-voter (false), adding it to the Raft configuration when it is
	// not a member; voter nil admits a non-member with the role a join
	// gives it and leaves a member as it is. It may change other members
	// too (moving a vote within an AZ); the server reports every change
	// it sees in the Raft configuration. It returns once the configuration
	// holds the change, with notes for the operator. It refuses with an
	// error wrapping ErrUnsafeVoters a change against the voter policy
	// (allowUnsafe lifts only the one-AZ-loss rule), and with one matching
	// meta.ErrInvalid a demotion of the leader itself or a vote for a
	// draining node.
	SetNodeRole(ctx context.Context, id string, voter *bool, allowUnsafe bool) (notes []string, err error)
}

// routeNodeOps adds the node detail and role endpoints to api.
func (s *server) routeNodeOps(api *http.ServeMux) {
	roles, _ := s.b.(RoleSetter)
	api.HandleFunc("GET "+PathNodes+"/{id}", s.handleNode)
	api.HandleFunc("POST "+PathNodes+"/{id}"+roleSuffix, func(w http.ResponseWriter, r *http.Request) {
		if roles == nil {
			s.fail(w, r, errNotImplemented("way to change Raft roles"))
			return
		}
		// Raft membership changes are made by the leader.
		s.leaderOnly(func(w http.ResponseWriter, r *http.Request) { s.handleSetRole(w, r, roles) })(w, r)
	})
}

// nodeRole is a node's place in the Raft group by st.
func nodeRole(id string, st meta.Status) string {
	switch {
	case id == st.Leader && slices.Contains(st.Voters, id):
		return RoleLeader
	case slices.Contains(st.Voters, id):
		return RoleVoter
	case slices.Contains(st.NonVoters, id):
		return RoleNonVoter
	}
	return RoleNotMember
}

func (s *server) handleNode(w http.ResponseWriter, r *http.Request) {
	n, ok := s.nodeInPath(w, r)
	if !ok {
		return
	}
	st := s.b.Status()
	resp := NodeResponse{NodeInfo: withVoters([]meta.NodeInfo{*n}, st)[0], Role: nodeRole(n.ID, st)}
	if rs := s.leaderRepair(r); rs != nil {
		if i := slices.IndexFunc(rs.Nodes, func(h replication.NodeHealth) bool { return h.ID == n.ID }); i >= 0 {
			resp.Health = &rs.Nodes[i]
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *server) handleSetRole(w http.ResponseWriter, r *http.Request, roles RoleSetter) {
	var req RoleRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, "role", &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	id := r.PathValue("id")
	n, err := s.b.FSM().Node(id)
	if errors.Is(err, meta.ErrNotExist) {
		// Admission starts on the new node: the cluster cannot reach a
		// node it has never heard of.
		s.fail(w, r, &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(
			"admin: node %q is not registered: start fsrepd on it with --node-id %s --az AZ --join <RPC address of any member> "+
				"(and the cluster's --secret-file); it registers itself and joins the Raft group, then set its role here", id, id)})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	before := s.b.Status()
	notes, err := roles.SetNodeRole(r.Context(), id, req.Voter, req.AllowUnsafe)
	if errors.Is(err, ErrUnsafeVoters) {
		err = &APIError{Status: http.StatusConflict, Code: CodeUnsafeVoters, Message: err.Error()}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st := s.b.Status()
	resp := RoleResponse{Node: withVoters([]meta.NodeInfo{*n}, st)[0], Previous: nodeRole(id, before), Role: nodeRole(id, st),
		Steps: roleSteps(before, st), Notes: nonNil(notes)}
	if len(resp.Steps) > 0 {
		s.log.Info("raft roles changed", "node", id, "previous", resp.Previous, "role", resp.Role, "steps", resp.Steps)
	}
	writeJSON(w, http.StatusOK, resp)
}

// roleSteps lists the members whose vote differs between two Raft
// configurations: promotions, then demotions, each sorted by ID.
func roleSteps(before, after meta.Status) []RoleStep {
	steps := []RoleStep{}
	for _, id := range after.Voters {
		if !slices.Contains(before.Voters, id) {
			steps = append(steps, RoleStep{Node: id, Role: RoleVoter})
		}
	}
	for _, id := range after.NonVoters {
		if !slices.Contains(before.NonVoters, id) {
			steps = append(steps, RoleStep{Node: id, Role: RoleNonVoter})
		}
	}
	slices.SortStableFunc(steps, func(a, b RoleStep) int {
		if a.Role != b.Role {
			return strings.Compare(b.Role, a.Role) // voter before nonvoter
		}
		return strings.Compare(a.Node, b.Node)
	})
	return steps
}

// Node returns one registered node with its Raft role and, when the
// leader's healer could be asked, its liveness, chunks and free space.
func (c *Client) Node(ctx context.Context, id string) (*NodeResponse, error) {
	var n NodeResponse
	if err := c.do(ctx, http.MethodGet, nodePath(id), nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// SetNodeRole changes a node's role in the Raft group (see RoleRequest)
// and returns the node after the change.
func (c *Client) SetNodeRole(ctx context.Context, id string, req RoleRequest) (*RoleResponse, error) {
	var out RoleResponse
	if err := c.do(ctx, http.MethodPost, nodePath(id)+roleSuffix, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
