package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/internal/admin/admintest"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

var _ RoleSetter = (*admintest.Backend)(nil)

func TestNodeDetail(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	b.Register(t, meta.NodeInfo{ID: "n4", AZ: "az1"}, false)
	b.SetNodeState("n2", replication.StateDown)
	b.SetNodeChunks("n2", 17)
	b.SetNodeFree("n2", 5<<30)

	status, data := call(t, srv, http.MethodGet, PathNodes+"/n2", testToken, nil)
	n := decode[NodeResponse](t, data)
	if status != http.StatusOK || n.ID != "n2" || n.AZ != "az2" || n.AdminAddr != "10.0.0.2:9090" || !n.Voter || n.Role != RoleVoter {
		t.Fatalf("node n2: %d %s", status, data)
	}
	if h := n.Health; h == nil || h.State != replication.StateDown || h.Chunks != 17 || h.FreeBytes != 5<<30 || h.LastSeen.IsZero() {
		t.Fatalf("node n2 health: %s", data)
	}
	// The node object's fields are at the top level, as in GET /v1/nodes.
	if !strings.Contains(string(data), `"id": "n2"`) || !strings.Contains(string(data), `"role": "voter"`) {
		t.Errorf("node n2 body:\n%s", data)
	}

	status, data = call(t, srv, http.MethodGet, PathNodes+"/n1", testToken, nil)
	if n := decode[NodeResponse](t, data); status != http.StatusOK || n.Role != RoleLeader {
		t.Fatalf("node n1: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodGet, PathNodes+"/n4", testToken, nil)
	if n := decode[NodeResponse](t, data); status != http.StatusOK || n.Role != RoleNotMember || n.Voter {
		t.Fatalf("node n4: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodGet, PathNodes+"/n9", testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)

	// Without a healer the node is still described, without health.
	plain := httptest.NewServer(NewServer(plainBackend{b}, testToken, testLogger(t)))
	defer plain.Close()
	status, data = call(t, plain, http.MethodGet, PathNodes+"/n2", testToken, nil)
	if n := decode[NodeResponse](t, data); status != http.StatusOK || n.Health != nil || n.Role != RoleVoter {
		t.Fatalf("node n2 without a healer: %d %s", status, data)
	}
	// Setting a role needs a RoleSetter.
	status, data = call(t, plain, http.MethodPost, PathNodes+"/n2/role", testToken, map[string]any{"voter": false})
	wantError(t, status, data, http.StatusNotImplemented, CodeNotImplemented)
}

func TestNodeDetailOnFollower(t *testing.T) {
	bs, srvs := newPeers(t, 2)
	bs[0].SetNodeChunks("n2", 3)
	status, data := call(t, srvs[1], http.MethodGet, PathNodes+"/n2", testToken, nil)
	n := decode[NodeResponse](t, data)
	if status != http.StatusOK || n.Role != RoleVoter || n.Health == nil || n.Health.Chunks != 3 {
		t.Fatalf("node n2 through the follower: %d %s", status, data)
	}
}

func TestSetRole(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	b.Register(t, meta.NodeInfo{ID: "n4", AZ: "az1"}, false)

	// Not a member: {} admits it with the default role.
	status, data := call(t, srv, http.MethodPost, PathNodes+"/n4/role", testToken, map[string]any{})
	r := decode[RoleResponse](t, data)
	if status != http.StatusOK || r.Previous != RoleNotMember || r.Role != RoleNonVoter || r.Node.ID != "n4" ||
		len(r.Steps) != 1 || r.Steps[0] != (RoleStep{Node: "n4", Role: RoleNonVoter}) || r.Notes == nil {
		t.Fatalf("admit n4: %d %s", status, data)
	}
	// A member without a role asked for: nothing changes.
	status, data = call(t, srv, http.MethodPost, PathNodes+"/n4/role", testToken, nil)
	if r := decode[RoleResponse](t, data); status != http.StatusOK || r.Role != RoleNonVoter || len(r.Steps) != 0 {
		t.Fatalf("n4 again: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodPost, PathNodes+"/n4/role", testToken, RoleRequest{Voter: ptr(true)})
	if r := decode[RoleResponse](t, data); status != http.StatusOK || r.Previous != RoleNonVoter || r.Role != RoleVoter || !r.Node.Voter {
		t.Fatalf("promote n4: %d %s", status, data)
	}
	if st := b.Status(); !strings.Contains(fmt.Sprint(st.Voters), "n4") {
		t.Fatalf("voters %v", st.Voters)
	}

	status, data = call(t, srv, http.MethodPost, PathNodes+"/n9/role", testToken, RoleRequest{Voter: ptr(true)})
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	if eb := decode[ErrorBody](t, data); !strings.Contains(eb.Message, "--join") {
		t.Errorf("unknown node: %q does not say how to join", eb.Message)
	}
	status, data = call(t, srv, http.MethodPost, PathNodes+"/n4/role", testToken, map[string]any{"votr": true})
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
}

// refusingRoles refuses every role change with err.
type refusingRoles struct {
	*admintest.Backend
	err error
}

func (r refusingRoles) SetNodeRole(context.Context, string, *bool, bool) ([]string, error) {
	return nil, r.err
}

func TestSetRoleRefusals(t *testing.T) {
	b := admintest.New(t, threeAZs...)
	rb := &refusingRoles{Backend: b}
	srv := httptest.NewServer(NewServer(rb, testToken, testLogger(t)))
	defer srv.Close()
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("%w: n2 is down", ErrUnsafeVoters), http.StatusConflict, CodeUnsafeVoters},
		{fmt.Errorf("%w: n1 leads", meta.ErrInvalid), http.StatusBadRequest, CodeInvalid},
		{meta.ErrNoLeader, http.StatusServiceUnavailable, CodeNoLeader},
	} {
		rb.err = tc.err
		status, data := call(t, srv, http.MethodPost, PathNodes+"/n2/role", testToken, RoleRequest{Voter: ptr(false)})
		wantError(t, status, data, tc.status, tc.code)
		if eb := decode[ErrorBody](t, data); !strings.Contains(eb.Message, tc.err.Error()) {
			t.Errorf("message %q lacks %q", eb.Message, tc.err)
		}
	}
}

func TestSetRoleForwardedToLeader(t *testing.T) {
	bs, srvs := newPeers(t, 3)
	bs[0].Register(t, meta.NodeInfo{ID: "n4", AZ: "az2"}, false)
	bs[1].Register(t, meta.NodeInfo{ID: "n4", AZ: "az2"}, false)
	status, data := call(t, srvs[1], http.MethodPost, PathNodes+"/n4/role", testToken, RoleRequest{Voter: ptr(false)})
	if r := decode[RoleResponse](t, data); status != http.StatusOK || r.Role != RoleNonVoter {
		t.Fatalf("through the follower: %d %s", status, data)
	}
	// The leader (n1) made the change; the follower's view is unchanged.
	if st := bs[0].Status(); !strings.Contains(fmt.Sprint(st.NonVoters), "n4") {
		t.Errorf("leader's non-voters %v", st.NonVoters)
	}
	if st := bs[1].Status(); len(st.NonVoters) != 0 {
		t.Errorf("the follower changed its own configuration: %v", st.NonVoters)
	}
}
