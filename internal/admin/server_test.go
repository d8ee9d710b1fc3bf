package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin/admintest"
	"github.com/fsrep/fsrep/meta"
)

var _ Backend = (*admintest.Backend)(nil)

const testToken = "s3cret-token"

// threeAZs is a healthy 3-node, 3-AZ cluster.
var threeAZs = []meta.NodeInfo{
	{ID: "n1", AZ: "az1", NFSAddr: "10.0.0.1:2049", AdminAddr: "10.0.0.1:9090"},
	{ID: "n2", AZ: "az2", NFSAddr: "10.0.0.2:2049", AdminAddr: "10.0.0.2:9090"},
	{ID: "n3", AZ: "az3", NFSAddr: "10.0.0.3:2049", AdminAddr: "10.0.0.3:9090"},
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newTestServer(t *testing.T, nodes ...meta.NodeInfo) (*admintest.Backend, *httptest.Server) {
	t.Helper()
	b := admintest.New(t, nodes...)
	srv := httptest.NewServer(NewServer(b, testToken, testLogger(t)))
	t.Cleanup(srv.Close)
	return b, srv
}

// call sends a request with the test token (unless token is "-") and returns
// the status and body.
func call(t *testing.T, srv *httptest.Server, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "-" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, data
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

func wantError(t *testing.T, status int, data []byte, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d (body %s)", status, wantStatus, data)
	}
	eb := decode[ErrorBody](t, data)
	if eb.Code != wantCode || eb.Message == "" {
		t.Fatalf("error body %+v, want code %q and a message", eb, wantCode)
	}
}

// wantRefused: a request with a wrong token is refused, with 401, or 429
// once its address has failed too often (ratelimit.go).
func wantRefused(t *testing.T, status int, data []byte) {
	t.Helper()
	if status == http.StatusTooManyRequests {
		wantError(t, status, data, http.StatusTooManyRequests, CodeUnauthorized)
		return
	}
	wantError(t, status, data, http.StatusUnauthorized, CodeUnauthorized)
}

// TestAuthRateLimit: after authBurst wrong tokens an address is answered
// 429 without a token check, even with the right token, for about a second
// per failure; another address is not affected; waiting lets it in again.
func TestAuthRateLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newAuthLimiter(func() time.Time { return now })
	for i := 0; i < authBurst; i++ {
		if l.blocked("10.0.0.1") > 0 {
			t.Fatalf("blocked after %d failures", i)
		}
		l.failed("10.0.0.1")
	}
	if w := l.blocked("10.0.0.1"); w <= 0 || w > authRefill {
		t.Fatalf("after %d failures: wait %v, want (0, %v]", authBurst, w, authRefill)
	}
	if l.blocked("10.0.0.2") > 0 {
		t.Fatal("another address is blocked")
	}
	now = now.Add(authRefill)
	if l.blocked("10.0.0.1") > 0 {
		t.Fatal("still blocked after a refill period")
	}
	l.failed("10.0.0.1")
	if l.blocked("10.0.0.1") <= 0 {
		t.Fatal("one more failure did not block again")
	}
	// Memory stays bounded under a flood from many addresses.
	for i := 0; i < 3*authTrack; i++ {
		l.failed(fmt.Sprintf("10.1.%d.%d", i/256, i%256))
	}
	if len(l.by) > authTrack {
		t.Fatalf("%d addresses tracked, bound %d", len(l.by), authTrack)
	}
}

// TestAuthRateLimitOverHTTP: through the server, the right token is turned
// away with 429 once an address has sent authBurst wrong ones.
func TestAuthRateLimitOverHTTP(t *testing.T) {
	_, srv := newTestServer(t, threeAZs...)
	for i := 0; i < authBurst; i++ {
		status, data := call(t, srv, http.MethodGet, PathStatus, "wrong", nil)
		wantError(t, status, data, http.StatusUnauthorized, CodeUnauthorized)
	}
	status, data := call(t, srv, http.MethodGet, PathStatus, testToken, nil)
	wantError(t, status, data, http.StatusTooManyRequests, CodeUnauthorized)
	// The unauthenticated health endpoints stay open.
	if status, _ := call(t, srv, http.MethodGet, PathHealthz, "", nil); status != http.StatusOK {
		t.Fatalf("healthz: %d", status)
	}
}

func TestAuthRequired(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	for _, path := range []string{PathStatus, PathNodes, PathVolumes, PathVolumes + "/x", "/v1/unknown",
		PathRepair, PathReplicas, PathScrub, PathScrub + "?all=1", PathMetrics, PathPprof, PathPprof + "heap",
		PathPprof + "profile?seconds=1"} {
		for _, tok := range []string{"-", "", "wrong", testToken + "x", strings.ToUpper(testToken)} {
			status, data := call(t, srv, http.MethodGet, path, tok, nil)
			wantRefused(t, status, data)
		}
	}
	// Changes without the token change nothing.
	for _, ep := range []struct{ method, path string }{
		{http.MethodPost, PathRepairPause}, {http.MethodPost, PathScrubPause}, {http.MethodPost, PathScrubStart},
		{http.MethodPost, PathNodes + "/n2/drain"}, {http.MethodDelete, PathNodes + "/n2"},
	} {
		status, data := call(t, srv, ep.method, ep.path, "wrong", DrainRequest{Drain: true})
		wantRefused(t, status, data)
	}
	if n, err := b.FSM().Node("n2"); err != nil || n.Draining || b.RepairStatus().Paused || b.ScrubStatus().Paused || b.ScrubStarts() != 0 {
		t.Fatalf("refused calls changed something: %+v %v", n, err)
	}
	// A write without the token must not reach the FSM.
	status, data := call(t, srv, http.MethodPost, PathVolumes, "wrong", CreateVolumeRequest{Name: "v"})
	wantRefused(t, status, data)
	if vols, err := b.FSM().Volumes(); err != nil || len(vols) != 0 {
		t.Fatalf("volumes after refused create: %+v, %v", vols, err)
	}
	// Basic auth or a bare token is not a bearer token (asked of a fresh
	// server: this one now rate-limits the test's address).
	_, fresh := newTestServer(t, threeAZs...)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, fresh.URL+PathStatus, nil)
	req.Header.Set("Authorization", testToken)
	resp, err := fresh.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("bare token: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestPprof: the profiling endpoints answer with the token (and, above,
// refuse without it).
func TestPprof(t *testing.T) {
	_, srv := newTestServer(t, threeAZs...)
	for path, want := range map[string]string{
		PathPprof:                       "goroutine",
		PathPprof + "goroutine?debug=1": "goroutine profile: total",
		PathPprof + "mutex?debug=1":     "mutex",
		PathPprof + "cmdline":           "",
		PathPprof + "symbol":            "num_symbols",
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(data), want) {
			t.Errorf("GET %s: %d, %v, %.200q; want 200 with %q", path, resp.StatusCode, err, data, want)
		}
	}
}

func TestEmptyTokenRefusesEverything(t *testing.T) {
	b := admintest.New(t, threeAZs...)
	srv := httptest.NewServer(NewServer(b, "", testLogger(t)))
	defer srv.Close()
	status, data := call(t, srv, http.MethodGet, PathStatus, "", nil)
	wantError(t, status, data, http.StatusUnauthorized, CodeUnauthorized)
	if status, _ := call(t, srv, http.MethodGet, PathReadyz, "-", nil); status != http.StatusOK {
		t.Fatalf("readyz with no token configured: %d", status)
	}
}

func TestHealthzAndReadyz(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	status, data := call(t, srv, http.MethodGet, PathHealthz, "-", nil)
	if status != http.StatusOK || decode[ReadyResponse](t, data).Status != "alive" {
		t.Fatalf("healthz: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodGet, PathReadyz, "-", nil)
	if status != http.StatusOK || decode[ReadyResponse](t, data).Status != "ready" {
		t.Fatalf("readyz: %d %s", status, data)
	}
	b.SetReady(errors.New("no metadata leader"))
	status, data = call(t, srv, http.MethodGet, PathReadyz, "-", nil)
	rr := decode[ReadyResponse](t, data)
	if status != http.StatusServiceUnavailable || rr.Status != "not ready" || rr.Reason != "no metadata leader" {
		t.Fatalf("readyz not ready: %d %s", status, data)
	}
}

func TestStatusAndNodes(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	b.Register(t, meta.NodeInfo{ID: "n4", AZ: "az1"}, false) // registered, never joined Raft
	st := b.Status()
	st.NonVoters = []string{"n4"}
	b.SetStatus(st)

	status, data := call(t, srv, http.MethodGet, PathStatus, testToken, nil)
	if status != http.StatusOK {
		t.Fatalf("status: %d %s", status, data)
	}
	sr := decode[StatusResponse](t, data)
	if sr.Node != "n1" || sr.AZ != "az1" || sr.Raft.Leader != "n1" || sr.Health != HealthOK || len(sr.Reasons) != 0 {
		t.Fatalf("status %+v", sr)
	}
	if len(sr.Nodes) != 4 || !sr.Nodes[0].Voter || sr.Nodes[3].ID != "n4" || sr.Nodes[3].Voter {
		t.Fatalf("status nodes %+v", sr.Nodes)
	}
	if !bytes.Contains(data, []byte(`"volumes": []`)) || !bytes.Contains(data, []byte(`"reasons": []`)) {
		t.Fatalf("empty lists must encode as []: %s", data)
	}

	status, data = call(t, srv, http.MethodGet, PathNodes, testToken, nil)
	nodes := decode[[]meta.NodeInfo](t, data)
	if status != http.StatusOK || len(nodes) != 4 || nodes[1].ID != "n2" || nodes[1].AZ != "az2" ||
		nodes[1].NFSAddr != "10.0.0.2:2049" || !nodes[1].Voter || nodes[3].Voter {
		t.Fatalf("nodes: %d %+v", status, nodes)
	}

	// A registered node outside the Raft configuration degrades the cluster.
	st.NonVoters = nil
	b.SetStatus(st)
	_, data = call(t, srv, http.MethodGet, PathStatus, testToken, nil)
	sr = decode[StatusResponse](t, data)
	if sr.Health != HealthDegraded || len(sr.Reasons) != 1 || !strings.Contains(sr.Reasons[0], "n4") {
		t.Fatalf("degraded status: %s %q", sr.Health, sr.Reasons)
	}

	st.Leader = ""
	st.State = "Candidate"
	b.SetStatus(st)
	_, data = call(t, srv, http.MethodGet, PathStatus, testToken, nil)
	if sr = decode[StatusResponse](t, data); sr.Health != HealthDown {
		t.Fatalf("leaderless status: %s %q", sr.Health, sr.Reasons)
	}
}

func TestVolumeLifecycle(t *testing.T) {
	_, srv := newTestServer(t, threeAZs...)

	status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "data"})
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, data)
	}
	v := decode[meta.Volume](t, data)
	if v.Name != "data" || v.ID == 0 || v.Replicas != 3 || v.WriteQuorum != 2 || v.ChunkSize != 4<<20 {
		t.Fatalf("created volume with defaults: %+v", v)
	}

	mode := FileMode(0o1777)
	status, data = call(t, srv, http.MethodPost, PathVolumes, testToken,
		CreateVolumeRequest{Name: "scratch", Replicas: 5, WriteQuorum: 3, ChunkSize: 1 << 20, RootMode: &mode})
	if status != http.StatusCreated {
		t.Fatalf("create scratch: %d %s", status, data)
	}
	v = decode[meta.Volume](t, data)
	if v.Replicas != 5 || v.WriteQuorum != 3 || v.ChunkSize != 1<<20 {
		t.Fatalf("scratch: %+v", v)
	}

	status, data = call(t, srv, http.MethodGet, PathVolumes, testToken, nil)
	vols := decode[[]meta.Volume](t, data)
	if status != http.StatusOK || len(vols) != 2 || vols[0].Name != "data" || vols[1].Name != "scratch" {
		t.Fatalf("list: %d %s", status, data)
	}

	status, data = call(t, srv, http.MethodGet, PathVolumes+"/scratch", testToken, nil)
	if status != http.StatusOK || decode[meta.Volume](t, data).Name != "scratch" {
		t.Fatalf("info: %d %s", status, data)
	}

	status, data = call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "data"})
	wantError(t, status, data, http.StatusConflict, CodeExists)

	status, data = call(t, srv, http.MethodDelete, PathVolumes+"/data", testToken, nil)
	if status != http.StatusOK || decode[meta.Volume](t, data).Name != "data" {
		t.Fatalf("delete: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodGet, PathVolumes+"/data", testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	status, data = call(t, srv, http.MethodDelete, PathVolumes+"/data", testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)

	// The name is free again, and the new volume gets a new ID.
	status, data = call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "data"})
	if status != http.StatusCreated || decode[meta.Volume](t, data).ID <= v.ID {
		t.Fatalf("re-create: %d %s", status, data)
	}
}

func TestRootMode(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	for name, body := range map[string]string{
		"octal":   `{"name":"octal","root_mode":"0700"}`,
		"number":  `{"name":"number","root_mode":448}`,
		"default": `{"name":"default"}`,
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+PathVolumes, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %d", name, resp.StatusCode)
		}
		v, err := b.FSM().Volume(name)
		if err != nil {
			t.Fatal(err)
		}
		root, err := b.FSM().Inode(v.ID, meta.RootIno)
		if err != nil {
			t.Fatal(err)
		}
		want := uint32(0o700)
		if name == "default" {
			want = 0o755
		}
		if root.Mode != want || root.UID != 0 || root.GID != 0 || root.Type != meta.TypeDir {
			t.Errorf("%s: root %+v, want mode %o owned by 0:0", name, root, want)
		}
	}
}

func TestUnsafePlacement(t *testing.T) {
	twoAZs := []meta.NodeInfo{{ID: "n1", AZ: "az1"}, {ID: "n2", AZ: "az2"}, {ID: "n3", AZ: "az2"}}
	_, srv := newTestServer(t, twoAZs...)

	status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "v"})
	wantError(t, status, data, http.StatusConflict, CodeUnsafePlacement)
	if eb := decode[ErrorBody](t, data); !strings.Contains(eb.Message, "allow-unsafe-placement") {
		t.Errorf("unsafe placement message should say how to override: %q", eb.Message)
	}
	if status, _ := call(t, srv, http.MethodGet, PathVolumes+"/v", testToken, nil); status != http.StatusNotFound {
		t.Fatalf("refused volume exists: %d", status)
	}

	// 2 replicas with a quorum of 1 survive the loss of either AZ.
	status, data = call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "two", Replicas: 2, WriteQuorum: 1})
	if status != http.StatusCreated {
		t.Fatalf("safe policy over 2 AZs: %d %s", status, data)
	}

	status, data = call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "v", AllowUnsafePlacement: true})
	if status != http.StatusCreated {
		t.Fatalf("create with allow_unsafe_placement: %d %s", status, data)
	}

	// The override does not excuse an invalid policy.
	status, data = call(t, srv, http.MethodPost, PathVolumes, testToken,
		CreateVolumeRequest{Name: "w", Replicas: 2, WriteQuorum: 3, AllowUnsafePlacement: true})
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)

	// Now the cluster is degraded: a 3-replica volume over 2 AZs.
	_, data = call(t, srv, http.MethodGet, PathStatus, testToken, nil)
	if sr := decode[StatusResponse](t, data); sr.Health != HealthDegraded {
		t.Fatalf("status with an unsafe volume: %s %q", sr.Health, sr.Reasons)
	}
}

func TestInvalidRequests(t *testing.T) {
	_, srv := newTestServer(t, threeAZs...)
	for _, req := range []CreateVolumeRequest{
		{Name: ""},
		{Name: "a/b"},
		{Name: ".hidden"},
		{Name: "-dash"},
		{Name: "sp ace"},
		{Name: strings.Repeat("x", 65)},
		{Name: "v", Replicas: -1},
		{Name: "v", Replicas: 3, WriteQuorum: 4},
		{Name: "v", ChunkSize: 1000},
		{Name: "v", ChunkSize: 1 << 40},
	} {
		status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, req)
		wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	}
	for _, body := range []string{`{`, `{"name":"v","bogus":1}`, `{"name":"v","root_mode":"999"}`, `{"name":"v","root_mode":70000}`, `[]`} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+PathVolumes, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantError(t, resp.StatusCode, data, http.StatusBadRequest, CodeInvalid)
	}
	status, data := call(t, srv, http.MethodGet, PathVolumes+"/.bad", testToken, nil)
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	status, data = call(t, srv, http.MethodDelete, PathVolumes+"/a%20b", testToken, nil)
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	status, data = call(t, srv, http.MethodGet, "/v1/nope", testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
}

func TestNoLeader(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	b.SetNoLeader(true)
	status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "v"})
	wantError(t, status, data, http.StatusServiceUnavailable, CodeNoLeader)
	status, data = call(t, srv, http.MethodDelete, PathVolumes+"/v", testToken, nil)
	wantError(t, status, data, http.StatusServiceUnavailable, CodeNoLeader)
}

func TestRequestIDMakesCreateIdempotent(t *testing.T) {
	_, srv := newTestServer(t, threeAZs...)
	send := func() (int, []byte) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+PathVolumes, strings.NewReader(`{"name":"v"}`))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set(RequestIDHeader, "retry-1")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, data
	}
	s1, d1 := send()
	s2, d2 := send() // a retry after a lost answer gets the first answer, not "exists"
	if s1 != http.StatusCreated || s2 != http.StatusCreated || !bytes.Equal(d1, d2) {
		t.Fatalf("retry: %d %s / %d %s", s1, d1, s2, d2)
	}
}

func TestErrorFor(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{meta.ErrNoVolume, 404, CodeNotFound},
		{meta.ErrNotExist, 404, CodeNotFound},
		{meta.ErrVolumeExist, 409, CodeExists},
		{meta.ErrExist, 409, CodeExists},
		{meta.ErrInvalid, 400, CodeInvalid},
		{meta.ErrNameTooLong, 400, CodeInvalid},
		{meta.ErrNoLeader, 503, CodeNoLeader},
		{meta.ErrorFor(meta.CodeNoLeader, "meta: no leader (deadline)"), 503, CodeNoLeader},
		{errors.New("disk on fire"), 500, CodeInternal},
	} {
		status, body := errorFor(tc.err)
		if status != tc.status || body.Code != tc.code || body.Message == "" {
			t.Errorf("errorFor(%v) = %d %+v, want %d %s", tc.err, status, body, tc.status, tc.code)
		}
	}
}
