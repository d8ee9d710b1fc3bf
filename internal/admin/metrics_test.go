package admin

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/internal/admin/admintest"
	"github.com/fsrep/fsrep/replication"
)

// scrape fetches /metrics with the token, checks the status and content
// type, and parses the body strictly.
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
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != metricsContentType {
		t.Fatalf("metrics: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	samples, err := parseExposition(string(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	return samples
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelName  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)`)
)

func metricType(s string) bool {
	switch s {
	case "counter", "gauge", "histogram", "summary", "untyped":
		return true
	}
	return false
}

// parseExposition checks text against the Prometheus text format as
// Prometheus reads it, and returns each series (name{labels} as written)
// with its value. It refuses what the real parser refuses and a little
// more: a sample outside its family, a family declared twice, a HELP
// without a TYPE, a counter not ending in _total, a duplicate series.
func parseExposition(text string) (map[string]float64, error) {
	out := map[string]float64{}
	declared := map[string]bool{}
	family, ftype := "", ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		fail := func(format string, args ...any) error {
			return fmt.Errorf("line %d %q: %s", n, line, fmt.Sprintf(format, args...))
		}
		switch {
		case strings.HasPrefix(line, "# HELP "):
			f := strings.SplitN(line[len("# HELP "):], " ", 2)
			if len(f) != 2 || !metricName.MatchString(f[0]) || f[1] == "" {
				return nil, fail("bad HELP")
			}
			if declared[f[0]] {
				return nil, fail("family declared twice")
			}
			declared[f[0]], family, ftype = true, f[0], ""
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line[len("# TYPE "):])
			if len(f) != 2 || f[0] != family || !metricType(f[1]) || ftype != "" {
				return nil, fail("TYPE must follow its HELP once")
			}
			ftype = f[1]
			if ftype == "counter" && !strings.HasSuffix(family, "_total") {
				return nil, fail("counter name must end in _total")
			}
		case strings.HasPrefix(line, "#"), line == "":
			return nil, fail("unexpected comment or blank line")
		default:
			m := sampleLine.FindStringSubmatch(line)
			if m == nil {
				return nil, fail("not a sample")
			}
			if m[1] != family || ftype == "" {
				return nil, fail("sample outside its family %q", family)
			}
			labels := m[3]
			seen := map[string]bool{}
			for labels != "" {
				lp := labelPair.FindStringSubmatch(labels)
				if lp == nil || !labelName.MatchString(lp[1]) || seen[lp[1]] {
					return nil, fail("bad labels")
				}
				seen[lp[1]] = true
				labels = labels[len(lp[0]):]
			}
			if m[2] == "{}" {
				return nil, fail("empty label set")
			}
			v, err := strconv.ParseFloat(m[4], 64)
			if err != nil {
				return nil, fail("bad value")
			}
			key := m[1] + m[2]
			if _, dup := out[key]; dup {
				return nil, fail("duplicate series")
			}
			out[key] = v
		}
	}
	return out, sc.Err()
}

func TestParseExpositionRejects(t *testing.T) {
	for _, bad := range []string{
		"x 1\n",
		"# HELP x h\nx 1\n",
		"# HELP x h\n# TYPE x gauge\ny 1\n",
		"# HELP x h\n# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n",
		"# HELP x h\n# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n",
		"# HELP x h\n# TYPE x gauge\nx{a=\"\"\"} 1\n",
		"# HELP x h\n# TYPE x gauge\nx 1e\n",
		"# HELP x h\n# TYPE x counter\nx 1\n",
		"# HELP x h\n# TYPE x gauge\n# HELP x h\n# TYPE x gauge\n",
	} {
		if _, err := parseExposition(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	got, err := parseExposition("# HELP x a \\\\ help\\n\n# TYPE x gauge\nx{a=\"q\\\"\\\\\\n\",b=\"\"} +Inf\n")
	if err != nil || len(got) != 1 {
		t.Fatalf("escaped sample: %v %v", got, err)
	}
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
		`fsrep_raft_term`:                                      1,
		`fsrep_raft_applied_index`:                             float64(b.FSM().AppliedIndex()),
		`fsrep_volume_files{volume="data"}`:                    1,
		`fsrep_volume_bytes{volume="data"}`:                    0,
		`fsrep_volume_quota_bytes{volume="capped"}`:            1 << 30,
		`fsrep_volume_quota_files{volume="capped"}`:            99,
		`fsrep_node_up{node="n1",az="az1"}`:                    1,
		`fsrep_node_up{node="n2",az="az2"}`:                    0,
		`fsrep_node_up{node="n3",az="az3"}`:                    0,
		`fsrep_node_state{node="n2",az="az2",state="suspect"}`: 1,
		`fsrep_node_state{node="n2",az="az2",state="up"}`:      0,
		`fsrep_node_state{node="n3",az="az3",state="down"}`:    1,
		`fsrep_node_chunks{node="n1",az="az1"}`:                17,
		`fsrep_node_free_bytes{node="n1",az="az1"}`:            1 << 40,
		`fsrep_node_draining{node="n1",az="az1"}`:              0,
		`fsrep_az_down{az="az3"}`:                              1,
		`fsrep_az_down{az="az1"}`:                              0,
		`fsrep_repair_paused`:                                  0,
		`fsrep_repair_queue`:                                   12,
		`fsrep_repair_queue_urgent`:                            2,
		`fsrep_repair_inflight`:                                3,
		`fsrep_repair_copied_total`:                            40,
		`fsrep_repair_copied_bytes_total`:                      160 << 20,
		`fsrep_repair_failed_total`:                            1,
		`fsrep_chunks{volume="data",state="healthy"}`:          6,
		`fsrep_chunks{volume="data",state="under_replicated"}`: 3,
		`fsrep_chunks{volume="data",state="unavailable"}`:      1,
		`fsrep_chunks{volume="data",state="corrupt"}`:          2,
		`fsrep_chunks{volume="data",state="misplaced"}`:        0,
		`fsrep_replicas_healthy{volume="data",az="az2"}`:       6,
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
	if _, ok := got[`fsrep_node_free_bytes{node="n2",az="az2"}`]; ok {
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
	if got["fsrep_raft_leader"] != 0 || got["fsrep_raft_has_leader"] != 1 {
		t.Errorf("follower raft metrics: %v %v", got["fsrep_raft_leader"], got["fsrep_raft_has_leader"])
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

func TestMetricWriterEscapes(t *testing.T) {
	var sb strings.Builder
	bw := bufio.NewWriter(&sb)
	m := newMetricWriter(bw)
	m.family("x_total", "counter", "back\\slash and\nnewline")
	m.sample("x_total", 3, "volume", "a\"b\\c\nd", "az", "")
	m.family("y", "gauge", "big and small")
	m.sample("y", 1e7)
	m.sample("y", 0.25, "k", "v")
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "# HELP x_total back\\\\slash and\\nnewline\n# TYPE x_total counter\n" +
		"x_total{volume=\"a\\\"b\\\\c\\nd\",az=\"\"} 3\n" +
		"# HELP y big and small\n# TYPE y gauge\ny 10000000\ny{k=\"v\"} 0.25\n"
	if sb.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", sb.String(), want)
	}
	if _, err := parseExposition(sb.String()); err != nil {
		t.Fatal(err)
	}
}
