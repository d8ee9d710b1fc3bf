package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin/admintest"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

var (
	_ Healer   = (*admintest.Backend)(nil)
	_ Scrubber = (*admintest.Backend)(nil)
	_ NFSStats = (*admintest.Backend)(nil)
)

// plainBackend hides everything but Backend, like a node built without a
// healer or scrubber.
type plainBackend struct{ Backend }

// newPeers starts n admin servers that know each other: node i is "n<i+1>"
// in AZ "az<i+1>", with its server's address as admin address, and n1 is
// the leader of every backend's Raft view.
func newPeers(t *testing.T, n int) ([]*admintest.Backend, []*httptest.Server) {
	t.Helper()
	handlers := make([]http.Handler, n)
	srvs := make([]*httptest.Server, n)
	nodes := make([]meta.NodeInfo, n)
	for i := range n {
		srvs[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handlers[i].ServeHTTP(w, r)
		}))
		t.Cleanup(srvs[i].Close)
		nodes[i] = meta.NodeInfo{ID: fmt.Sprintf("n%d", i+1), AZ: fmt.Sprintf("az%d", i+1),
			AdminAddr: strings.TrimPrefix(srvs[i].URL, "http://")}
	}
	bs := make([]*admintest.Backend, n)
	for i := range n {
		bs[i] = admintest.New(t, nodes...)
		bs[i].ID, bs[i].Zone = nodes[i].ID, nodes[i].AZ
		if i > 0 {
			st := bs[i].Status()
			st.State = "Follower"
			bs[i].SetStatus(st)
		}
		handlers[i] = NewServer(bs[i], testToken, testLogger(t))
	}
	return bs, srvs
}

func TestHealerNotImplemented(t *testing.T) {
	b := admintest.New(t, threeAZs...)
	srv := httptest.NewServer(NewServer(plainBackend{b}, testToken, testLogger(t)))
	defer srv.Close()
	for _, ep := range []struct{ method, path string }{
		{http.MethodGet, PathRepair}, {http.MethodPost, PathRepairPause}, {http.MethodPost, PathRepairResume},
		{http.MethodGet, PathReplicas}, {http.MethodGet, PathReplicas + "?volume=x"},
		{http.MethodPost, PathNodes + "/n2/drain"}, {http.MethodDelete, PathNodes + "/n2"},
		{http.MethodGet, PathScrub}, {http.MethodGet, PathScrub + "?all=1"}, {http.MethodPost, PathScrubStart},
		{http.MethodPost, PathScrubPause}, {http.MethodPost, PathScrubResume},
	} {
		status, data := call(t, srv, ep.method, ep.path, testToken, DrainRequest{Drain: true})
		wantError(t, status, data, http.StatusNotImplemented, CodeNotImplemented)
	}
	// Nothing was drained behind the 501.
	if n, err := b.FSM().Node("n2"); err != nil || n.Draining {
		t.Fatalf("n2 after a refused drain: %+v %v", n, err)
	}
	// The status has no repair section, and says nothing about it.
	status, data := call(t, srv, http.MethodGet, PathStatus, testToken, nil)
	if sr := decode[StatusResponse](t, data); status != http.StatusOK || sr.Repair != nil || sr.Health != HealthOK ||
		strings.Contains(string(data), `"repair"`) {
		t.Fatalf("status without a healer: %d %s", status, data)
	}
}

func TestRepairStatusAndPause(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	b.SetRepair(replication.RepairStatus{Grace: time.Minute, RateLimit: 50 << 20, Queue: 7, QueueUrgent: 2, InFlight: 1, Copied: 3, CopiedBytes: 12 << 20})
	b.SetNodeState("n3", replication.StateDown)
	b.SetNodeChunks("n3", 40)

	status, data := call(t, srv, http.MethodGet, PathRepair, testToken, nil)
	if status != http.StatusOK {
		t.Fatalf("repair: %d %s", status, data)
	}
	rs := decode[replication.RepairStatus](t, data)
	if rs.Leader != "n1" || rs.Paused || rs.Queue != 7 || rs.QueueUrgent != 2 || rs.InFlight != 1 || rs.Grace != time.Minute ||
		len(rs.Nodes) != 3 || rs.Nodes[2].State != replication.StateDown || rs.Nodes[2].Chunks != 40 ||
		len(rs.AZs) != 3 || !rs.AZs[2].Down || rs.AZs[0].Down {
		t.Fatalf("repair status %+v", rs)
	}

	status, data = call(t, srv, http.MethodPost, PathRepairPause, testToken, nil)
	if rs = decode[replication.RepairStatus](t, data); status != http.StatusOK || !rs.Paused || rs.Queue != 7 {
		t.Fatalf("pause: %d %s", status, data)
	}
	if !b.RepairStatus().Paused {
		t.Fatal("the healer was not paused")
	}
	status, data = call(t, srv, http.MethodPost, PathRepairResume, testToken, nil)
	if rs = decode[replication.RepairStatus](t, data); status != http.StatusOK || rs.Paused {
		t.Fatalf("resume: %d %s", status, data)
	}
	// Only POST changes anything.
	status, data = call(t, srv, http.MethodGet, PathRepairPause, testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	if b.RepairStatus().Paused {
		t.Fatal("GET paused the healer")
	}

	// The client.
	c := NewClient(srv.URL, testToken, 5*time.Second)
	if got, err := c.PauseRepair(t.Context(), true); err != nil || !got.Paused {
		t.Fatalf("Client.PauseRepair: %+v %v", got, err)
	}
	if got, err := c.Repair(t.Context()); err != nil || !got.Paused || got.Queue != 7 {
		t.Fatalf("Client.Repair: %+v %v", got, err)
	}
	if got, err := c.PauseRepair(t.Context(), false); err != nil || got.Paused {
		t.Fatalf("Client.PauseRepair(false): %+v %v", got, err)
	}
}

func TestLeaderOnlyForwarding(t *testing.T) {
	bs, srvs := newPeers(t, 3)
	bs[0].SetRepair(replication.RepairStatus{Queue: 5})

	// A follower answers with the leader's healer...
	status, data := call(t, srvs[1], http.MethodGet, PathRepair, testToken, nil)
	if rs := decode[replication.RepairStatus](t, data); status != http.StatusOK || rs.Leader != "n1" || rs.Queue != 5 {
		t.Fatalf("repair through a follower: %d %s", status, data)
	}
	// ...and changes it there, not on itself.
	status, data = call(t, srvs[2], http.MethodPost, PathRepairPause, testToken, nil)
	if status != http.StatusOK || !bs[0].RepairStatus().Paused || bs[2].RepairStatus().Paused {
		t.Fatalf("pause through a follower: %d %s", status, data)
	}
	status, data = call(t, srvs[1], http.MethodPost, PathNodes+"/n3/drain", testToken, DrainRequest{Drain: true})
	if n := decode[meta.NodeInfo](t, data); status != http.StatusOK || !n.Draining || n.ID != "n3" {
		t.Fatalf("drain through a follower: %d %s", status, data)
	}
	if n, _ := bs[0].FSM().Node("n3"); !n.Draining {
		t.Fatal("the drain did not reach the leader")
	}
	// Errors come back as the leader sent them.
	status, data = call(t, srvs[1], http.MethodDelete, PathNodes+"/n9", testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	status, data = call(t, srvs[1], http.MethodGet, PathReplicas+"?volume=nope", testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	// The token travels with the request; a wrong one stops at the follower.
	status, data = call(t, srvs[1], http.MethodGet, PathRepair, "wrong", nil)
	wantError(t, status, data, http.StatusUnauthorized, CodeUnauthorized)

	// A forwarded request that reaches a non-leader is not forwarded again.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srvs[1].URL+PathRepair, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set(ForwardedHeader, "n3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("forwarded request on a follower: %d", resp.StatusCode)
	}

	// No leader known: 503 no_leader.
	st := bs[1].Status()
	st.Leader = ""
	bs[1].SetStatus(st)
	status, data = call(t, srvs[1], http.MethodGet, PathRepair, testToken, nil)
	wantError(t, status, data, http.StatusServiceUnavailable, CodeNoLeader)

	// The leader's admin API is gone: 502 unreachable.
	srvs[0].Close()
	status, data = call(t, srvs[2], http.MethodGet, PathRepair, testToken, nil)
	wantError(t, status, data, http.StatusBadGateway, CodeUnreachable)
	// The status screen still answers, without the repair section.
	status, data = call(t, srvs[2], http.MethodGet, PathStatus, testToken, nil)
	if sr := decode[StatusResponse](t, data); status != http.StatusOK || sr.Repair != nil {
		t.Fatalf("status with the leader gone: %d %s", status, data)
	}

	// A leader that registered no admin address cannot be forwarded to.
	b, srv := newTestServer(t, threeAZs...)
	b.Register(t, meta.NodeInfo{ID: "n4", AZ: "az1"}, true)
	st = b.Status()
	st.Leader = "n4"
	b.SetStatus(st)
	status, data = call(t, srv, http.MethodGet, PathRepair, testToken, nil)
	wantError(t, status, data, http.StatusBadGateway, CodeUnreachable)
}

func TestReplicas(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	status, data := call(t, srv, http.MethodGet, PathReplicas, testToken, nil)
	if status != http.StatusOK || strings.TrimSpace(string(data)) != "[]" {
		t.Fatalf("replicas with no volumes: %d %s", status, data)
	}
	for _, name := range []string{"data", "logs"} {
		if status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: name}); status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, status, data)
		}
	}
	b.SetReplicaStatus(replication.ReplicaStatus{Volume: "data", Replicas: 3, Chunks: 10, Healthy: 7, UnderReplicated: 2,
		Unavailable: 1, PerAZ: map[string]int{"az1": 9, "az2": 8, "az3": 7}})

	status, data = call(t, srv, http.MethodGet, PathReplicas, testToken, nil)
	all := decode[[]replication.ReplicaStatus](t, data)
	if status != http.StatusOK || len(all) != 2 || all[0].Volume != "data" || all[0].UnderReplicated != 2 ||
		all[0].PerAZ["az2"] != 8 || all[1].Volume != "logs" || all[1].Chunks != 0 || all[1].PerAZ == nil {
		t.Fatalf("replicas: %d %s", status, data)
	}
	if !strings.Contains(string(data), `"per_az": {}`) {
		t.Errorf("an empty per-AZ map must encode as {}: %s", data)
	}
	status, data = call(t, srv, http.MethodGet, PathReplicas+"?volume=data", testToken, nil)
	if one := decode[[]replication.ReplicaStatus](t, data); status != http.StatusOK || len(one) != 1 || one[0].Healthy != 7 {
		t.Fatalf("replicas of data: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodGet, PathReplicas+"?volume=nope", testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	status, data = call(t, srv, http.MethodGet, PathReplicas+"?volume=-bad", testToken, nil)
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)

	c := NewClient(srv.URL, testToken, 5*time.Second)
	if got, err := c.Replicas(t.Context(), "data"); err != nil || len(got) != 1 || got[0].Unavailable != 1 {
		t.Fatalf("Client.Replicas: %+v %v", got, err)
	}
	if _, err := c.Replicas(t.Context(), "nope"); !IsCode(err, CodeNotFound) {
		t.Fatalf("Client.Replicas(nope): %v", err)
	}
}

func TestDrainAndRemove(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)

	status, data := call(t, srv, http.MethodPost, PathNodes+"/n2/drain", testToken, DrainRequest{Drain: true})
	if n := decode[meta.NodeInfo](t, data); status != http.StatusOK || n.ID != "n2" || !n.Draining || !n.Voter {
		t.Fatalf("drain: %d %s", status, data)
	}
	if n, _ := b.FSM().Node("n2"); !n.Draining {
		t.Fatal("drain not applied")
	}
	status, data = call(t, srv, http.MethodPost, PathNodes+"/n2/drain", testToken, DrainRequest{Drain: false})
	if n := decode[meta.NodeInfo](t, data); status != http.StatusOK || n.Draining {
		t.Fatalf("undrain: %d %s", status, data)
	}

	status, data = call(t, srv, http.MethodPost, PathNodes+"/n9/drain", testToken, DrainRequest{Drain: true})
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	status, data = call(t, srv, http.MethodPost, PathNodes+"/n2/drain", testToken, map[string]any{"drian": true})
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	status, data = call(t, srv, http.MethodPost, PathNodes+"/n2/drain", testToken, nil)
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	if err := b.DrainNode(t.Context(), "n2", true); err != nil {
		t.Fatal(err)
	}
	status, data = call(t, srv, http.MethodPost, PathNodes+"/n2/drain", testToken, map[string]any{})
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	if n, _ := b.FSM().Node("n2"); !n.Draining {
		t.Fatal("an empty drain body undrained the node")
	}
	if err := b.DrainNode(t.Context(), "n2", false); err != nil {
		t.Fatal(err)
	}

	// Refusals, whichever way the healer words them, are holds_only_copy.
	for _, err := range []error{
		fmt.Errorf("healer: %w: chunk 1/2/3", ErrHoldsOnlyCopy),
		fmt.Errorf("propose: %w", meta.ErrConflict),
		replication.ErrLastCopy,
	} {
		b.SetRemoveError("n3", err)
		status, data = call(t, srv, http.MethodDelete, PathNodes+"/n3", testToken, nil)
		wantError(t, status, data, http.StatusConflict, CodeHoldsOnlyCopy)
		if eb := decode[ErrorBody](t, data); !strings.Contains(eb.Message, "drain it first") {
			t.Errorf("refusal message %q", eb.Message)
		}
	}
	// Other failures keep their own mapping.
	b.SetRemoveError("n3", errors.New("disk on fire"))
	status, data = call(t, srv, http.MethodDelete, PathNodes+"/n3", testToken, nil)
	wantError(t, status, data, http.StatusInternalServerError, CodeInternal)
	b.SetRemoveError("n3", meta.ErrNoLeader)
	status, data = call(t, srv, http.MethodDelete, PathNodes+"/n3", testToken, nil)
	wantError(t, status, data, http.StatusServiceUnavailable, CodeNoLeader)

	b.SetRemoveError("n3", nil)
	status, data = call(t, srv, http.MethodDelete, PathNodes+"/n3", testToken, nil)
	if n := decode[meta.NodeInfo](t, data); status != http.StatusOK || n.ID != "n3" || n.AZ != "az3" {
		t.Fatalf("remove: %d %s", status, data)
	}
	if nodes, _ := b.FSM().Nodes(); len(nodes) != 2 {
		t.Fatalf("nodes after remove: %+v", nodes)
	}
	status, data = call(t, srv, http.MethodDelete, PathNodes+"/n3", testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)

	// The client.
	c := NewClient(srv.URL, testToken, 5*time.Second)
	if n, err := c.DrainNode(t.Context(), "n2", true); err != nil || !n.Draining {
		t.Fatalf("Client.DrainNode: %+v %v", n, err)
	}
	b.SetRemoveError("n2", ErrHoldsOnlyCopy)
	if _, err := c.RemoveNode(t.Context(), "n2"); !IsCode(err, CodeHoldsOnlyCopy) {
		t.Fatalf("Client.RemoveNode refused: %v", err)
	}
	b.SetRemoveError("n2", nil)
	if n, err := c.RemoveNode(t.Context(), "n2"); err != nil || n.ID != "n2" {
		t.Fatalf("Client.RemoveNode: %+v %v", n, err)
	}
	if _, err := c.DrainNode(t.Context(), "n2", true); !IsCode(err, CodeNotFound) {
		t.Fatalf("Client.DrainNode of a removed node: %v", err)
	}
}

func TestStatusWithRepair(t *testing.T) {
	bs, srvs := newPeers(t, 3)
	leader := bs[0]

	status, data := call(t, srvs[0], http.MethodGet, PathStatus, testToken, nil)
	sr := decode[StatusResponse](t, data)
	if status != http.StatusOK || sr.Health != HealthOK || sr.Repair == nil || len(sr.Repair.Nodes) != 3 {
		t.Fatalf("healthy status: %d %s", status, data)
	}

	leader.SetNodeState("n2", replication.StateDown)
	leader.SetNodeState("n3", replication.StateSuspect)
	leader.SetRepair(replication.RepairStatus{Queue: 4, Paused: true})
	// A follower shows the leader's view.
	status, data = call(t, srvs[1], http.MethodGet, PathStatus, testToken, nil)
	sr = decode[StatusResponse](t, data)
	if status != http.StatusOK || sr.Node != "n2" || sr.Health != HealthDegraded || sr.Repair == nil || sr.Repair.Queue != 4 {
		t.Fatalf("degraded status on a follower: %d %s", status, data)
	}
	want := []string{"AZ az2 is down", "node n2 (az2) is down since 2025-01-01T00:00:00Z", "node n3 (az3) is suspect", "repair is paused with 4 chunk(s) waiting"}
	if len(sr.Reasons) != len(want) {
		t.Fatalf("reasons %q, want %q", sr.Reasons, want)
	}
	for i, w := range want {
		if !strings.Contains(sr.Reasons[i], w) {
			t.Errorf("reason %d %q lacks %q", i, sr.Reasons[i], w)
		}
	}

	leader.SetRepair(replication.RepairStatus{Queue: 4, QueueUrgent: 3})
	_, data = call(t, srvs[2], http.MethodGet, PathStatus, testToken, nil)
	if sr = decode[StatusResponse](t, data); sr.Health != HealthAtRisk ||
		!strings.Contains(sr.Reasons[len(sr.Reasons)-1], "3 chunk(s) have a single healthy replica left") {
		t.Fatalf("at-risk status: %s %q", sr.Health, sr.Reasons)
	}
	// No leader beats everything.
	st := bs[2].Status()
	st.Leader = ""
	bs[2].SetStatus(st)
	_, data = call(t, srvs[2], http.MethodGet, PathStatus, testToken, nil)
	if sr = decode[StatusResponse](t, data); sr.Health != HealthDown || sr.Repair != nil {
		t.Fatalf("leaderless status: %s %+v", sr.Health, sr.Repair)
	}
}

func TestRepairHealth(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rs      replication.RepairStatus
		want    Health
		reasons int
	}{
		{"idle", replication.RepairStatus{}, HealthOK, 0},
		{"queue alone is fine", replication.RepairStatus{Queue: 9, InFlight: 2}, HealthOK, 0},
		{"draining is fine", replication.RepairStatus{Nodes: []replication.NodeHealth{{ID: "n1", State: replication.StateUp, Draining: true}}}, HealthOK, 0},
		{"paused and idle is fine", replication.RepairStatus{Paused: true}, HealthOK, 0},
		{"paused with a queue", replication.RepairStatus{Paused: true, Queue: 1}, HealthDegraded, 1},
		{"node down", replication.RepairStatus{Nodes: []replication.NodeHealth{{ID: "n1", State: replication.StateDown}}}, HealthDegraded, 1},
		{"az down", replication.RepairStatus{AZs: []replication.AZHealth{{AZ: "a", Nodes: 2, Down: true}}}, HealthDegraded, 1},
		{"urgent", replication.RepairStatus{Queue: 1, QueueUrgent: 1}, HealthAtRisk, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reasons := repairHealth(tc.rs)
			if got != tc.want || len(reasons) != tc.reasons || reasons == nil {
				t.Fatalf("repairHealth = %s %q, want %s with %d reason(s)", got, reasons, tc.want, tc.reasons)
			}
		})
	}
	for _, tc := range []struct{ a, b, want Health }{
		{HealthOK, HealthDegraded, HealthDegraded}, {HealthAtRisk, HealthDegraded, HealthAtRisk},
		{HealthDown, HealthAtRisk, HealthDown}, {HealthOK, HealthOK, HealthOK},
	} {
		if got := worse(tc.a, tc.b); got != tc.want {
			t.Errorf("worse(%s, %s) = %s", tc.a, tc.b, got)
		}
	}
}
