package admin

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fsrep/fsrep/internal/admin/admintest"
	"github.com/fsrep/fsrep/replication"
)

// scrape fetches /metrics with the token, checks the status and content
// type, parses the body with Prometheus's own text parser and lints it
// against the naming conventions (base units, _total on counters, help on
// every family). It returns every sample as series -> value, the series
// written name{label="value",...} with the labels sorted by name.
func scrape(t *testing.T, srv *httptest.Server) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+PathMetrics, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %q\n%s", resp.StatusCode, ct, body)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	list := make([]*dto.MetricFamily, 0, len(families))
	for _, mf := range families {
		list = append(list, mf)
	}
	problems, err := promlint.NewWithMetricFamilies(list).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	return flatten(t, families)
}

// flatten turns parsed families into series -> value; a duplicate series
// fails the test (the text parser accepts them).
func flatten(t *testing.T, families map[string]*dto.MetricFamily) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	add := func(name string, labels []*dto.LabelPair, v float64, extra ...string) {
		pairs := make([]string, 0, len(labels)+1)
		for _, l := range labels {
			pairs = append(pairs, l.GetName()+`="`+l.GetValue()+`"`)
		}
		if len(extra) == 2 {
			pairs = append(pairs, extra[0]+`="`+extra[1]+`"`)
		}
		sort.Strings(pairs)
		key := name
		if len(pairs) > 0 {
			key += "{" + strings.Join(pairs, ",") + "}"
		}
		if _, dup := out[key]; dup {
			t.Errorf("duplicate series %s", key)
		}
		out[key] = v
	}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m.GetLabel(), m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m.GetLabel(), m.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				add(name+"_count", m.GetLabel(), float64(h.GetSampleCount()))
				add(name+"_sum", m.GetLabel(), h.GetSampleSum())
			default:
				add(name, m.GetLabel(), m.GetUntyped().GetValue())
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	if status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "data"}); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, data)
	}
	if status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "capped", QuotaBytes: 1 << 30, QuotaFiles: 99}); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, data)
	}
	b.SetRepair(replication.RepairStatus{Queue: 12, QueueUrgent: 2, InFlight: 3, Copied: 40, CopiedBytes: 160 << 20, Failed: 1})
	b.SetNodeState("n2", replication.StateSuspect)
	b.SetNodeState("n3", replication.StateDown)
	b.SetNodeChunks("n1", 17)
	b.SetNodeFree("n1", 1<<40)
	b.SetReplicaStatus(replication.ReplicaStatus{Volume: "data", Replicas: 3, Chunks: 10, Healthy: 6, UnderReplicated: 3,
		Unavailable: 1, Corrupt: 2, PerAZ: map[string]int{"az1": 10, "az2": 6}})
	b.SetScrub(replication.ScrubStatus{PassChunks: 100, Scanned: 30, ScannedBytes: 120 << 20, Passes: 4, Corrupt: 5, Repaired: 4, Errors: 1,
		ReadCorrupt: replication.CorruptCounts{Found: 2}})
	b.SetNFSInflight(7)

	got := scrape(t, srv)
	for series, want := range map[string]float64{
		`fsrep_raft_leader`:                                    1,
		`fsrep_raft_has_leader`:                                1,
		`fsrep_raft_state{state="Leader"}`:                     1,
		`fsrep_raft_state{state="Follower"}`:                   0,
		`fsrep_raft_state{state="Candidate"}`:                  0,
		`fsrep_raft_term`:                                      1,
		`fsrep_raft_applied_index`:                             float64(b.FSM().AppliedIndex()),
		`fsrep_volume_files{volume="data"}`:                    1,
		`fsrep_volume_bytes{volume="data"}`:                    0,
		`fsrep_volume_quota_bytes{volume="capped"}`:            1 << 30,
		`fsrep_volume_quota_files{volume="capped"}`:            99,
		`fsrep_node_up{az="az1",node="n1"}`:                    1,
		`fsrep_node_up{az="az2",node="n2"}`:                    0,
		`fsrep_node_up{az="az3",node="n3"}`:                    0,
		`fsrep_node_state{az="az2",node="n2",state="suspect"}`: 1,
		`fsrep_node_state{az="az2",node="n2",state="up"}`:      0,
		`fsrep_node_state{az="az3",node="n3",state="down"}`:    1,
		`fsrep_node_chunks{az="az1",node="n1"}`:                17,
		`fsrep_node_free_bytes{az="az1",node="n1"}`:            1 << 40,
		`fsrep_node_draining{az="az1",node="n1"}`:              0,
		`fsrep_az_down{az="az3"}`:                              1,
		`fsrep_az_down{az="az1"}`:                              0,
		`fsrep_repair_paused`:                                  0,
		`fsrep_repair_queue`:                                   12,
		`fsrep_repair_queue_urgent`:                            2,
		`fsrep_repair_inflight`:                                3,
		`fsrep_repair_copied_total`:                            40,
		`fsrep_repair_copied_bytes_total`:                      160 << 20,
		`fsrep_repair_failed_total`:                            1,
		`fsrep_chunks{state="healthy",volume="data"}`:          6,
		`fsrep_chunks{state="under_replicated",volume="data"}`: 3,
		`fsrep_chunks{state="unavailable",volume="data"}`:      1,
		`fsrep_chunks{state="corrupt",volume="data"}`:          2,
		`fsrep_chunks{state="misplaced",volume="data"}`:        0,
		`fsrep_replicas_healthy{az="az2",volume="data"}`:       6,
		`fsrep_scrub_paused`:                                   0,
		`fsrep_scrub_pass_chunks`:                              100,
		`fsrep_scrub_pass_scanned_chunks`:                      30,
		`fsrep_scrub_pass_scanned_bytes`:                       120 << 20,
		`fsrep_scrub_passes_total`:                             4,
		`fsrep_scrub_corrupt_total`:                            5,
		`fsrep_scrub_repaired_total`:                           4,
		`fsrep_scrub_errors_total`:                             1,
		`fsrep_read_corrupt_total`:                             2,
		`fsrep_nfs_inflight`:                                   7,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if _, ok := got[`fsrep_node_free_bytes{az="az2",node="n2"}`]; ok {
		t.Error("an unknown free space must not be exported")
	}
	if _, ok := got[`fsrep_volume_quota_bytes{volume="data"}`]; ok {
		t.Error("a volume without a quota must have no quota series")
	}

	// The values move with the backend.
	b.SetRepair(replication.RepairStatus{Queue: 0, Copied: 52})
	b.PauseScrub(true)
	got = scrape(t, srv)
	if got["fsrep_repair_queue"] != 0 || got["fsrep_repair_copied_total"] != 52 || got["fsrep_scrub_paused"] != 1 {
		t.Errorf("after progress: queue %v copied %v scrub paused %v", got["fsrep_repair_queue"], got["fsrep_repair_copied_total"], got["fsrep_scrub_paused"])
	}

	// A follower leaves the healer's view to the leader.
	st := b.Status()
	st.Leader, st.State = "n2", "Follower"
	b.SetStatus(st)
	got = scrape(t, srv)
	if got["fsrep_raft_leader"] != 0 || got["fsrep_raft_has_leader"] != 1 || got[`fsrep_raft_state{state="Follower"}`] != 1 || got[`fsrep_raft_state{state="Leader"}`] != 0 {
		t.Errorf("follower raft metrics: leader %v has leader %v follower %v", got["fsrep_raft_leader"], got["fsrep_raft_has_leader"], got[`fsrep_raft_state{state="Follower"}`])
	}
	for series := range got {
		if strings.HasPrefix(series, "fsrep_repair_") || strings.HasPrefix(series, "fsrep_node_") || strings.HasPrefix(series, "fsrep_chunks") {
			t.Errorf("follower exports the leader's %s", series)
		}
	}
	if _, ok := got["fsrep_scrub_passes_total"]; !ok {
		t.Error("a follower must export its own scrubber")
	}
}

func TestMetricsNeedToken(t *testing.T) {
	_, srv := newTestServer(t, threeAZs...)
	for _, tok := range []string{"-", "wrong"} {
		status, data := call(t, srv, http.MethodGet, PathMetrics, tok, nil)
		wantError(t, status, data, http.StatusUnauthorized, CodeUnauthorized)
	}
}

func TestMetricsWithoutHealer(t *testing.T) {
	b := admintest.New(t, threeAZs...)
	srv := httptest.NewServer(NewServer(plainBackend{b}, testToken, testLogger(t)))
	defer srv.Close()
	got := scrape(t, srv)
	if got["fsrep_raft_leader"] != 1 {
		t.Errorf("raft metrics missing: %v", got)
	}
	for series := range got {
		if strings.HasPrefix(series, "fsrep_repair_") || strings.HasPrefix(series, "fsrep_scrub_") || strings.HasPrefix(series, "fsrep_nfs_") {
			t.Errorf("exported %s without a healer, scrubber or gateway", series)
		}
	}
}

// registryBackend brings its own registry, as the node does.
type registryBackend struct {
	*admintest.Backend
	reg *prometheus.Registry
}

func (b registryBackend) MetricsGatherer() prometheus.Gatherer { return b.reg }

// A backend with a registry has it served, with the admin collector in it.
func TestMetricsBackendRegistry(t *testing.T) {
	b := admintest.New(t, threeAZs...)
	reg := prometheus.NewPedanticRegistry()
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "fsrep_test_events_total", Help: "Events of the test."})
	extra.Add(3)
	reg.MustRegister(NewCollector(b), extra)
	srv := httptest.NewServer(NewServer(registryBackend{b, reg}, testToken, testLogger(t)))
	defer srv.Close()
	got := scrape(t, srv)
	if got["fsrep_test_events_total"] != 3 || got["fsrep_raft_leader"] != 1 || got["fsrep_repair_queue"] != 0 {
		t.Errorf("backend registry not served whole: %v", got)
	}
	if _, ok := got["fsrep_repair_queue"]; !ok {
		t.Error("the admin collector is missing from the backend's registry")
	}
}

// failingReplicas is a healer whose replica status cannot be read.
type failingReplicas struct{ *admintest.Backend }

func (failingReplicas) ReplicaStatus(string) ([]replication.ReplicaStatus, error) {
	return nil, errors.New("replica status unavailable")
}

// A family that cannot be read is left out; the rest is still served.
func TestMetricsPartialFailure(t *testing.T) {
	b := admintest.New(t, threeAZs...)
	b.SetRepair(replication.RepairStatus{Queue: 5})
	srv := httptest.NewServer(NewServer(failingReplicas{b}, testToken, testLogger(t)))
	defer srv.Close()
	got := scrape(t, srv)
	if got["fsrep_repair_queue"] != 5 || got["fsrep_raft_leader"] != 1 {
		t.Errorf("the readable families are missing: %v", got)
	}
	for series := range got {
		if strings.HasPrefix(series, "fsrep_chunks") {
			t.Errorf("exported %s from a failed replica status", series)
		}
	}
}

// The collector describes what it collects: a pedantic registry checks
// every metric against the descriptors, for a leader with every optional
// part.
func TestCollectorPedantic(t *testing.T) {
	b := admintest.New(t, threeAZs...)
	b.SetReplicaStatus(replication.ReplicaStatus{Volume: "data", PerAZ: map[string]int{"az1": 1}})
	b.SetNodeFree("n1", 1)
	b.SetNFSInflight(1)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(b))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) == 0 {
		t.Error("gathered nothing")
	}
}
