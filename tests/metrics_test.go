package tests

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricSamples is one scrape: series -> value, the series written
// name{label="value",...} with labels sorted by name; histograms appear as
// name_count and name_sum.
type metricSamples map[string]float64

// sum adds the samples of name whose labels include every want pair
// (`proc="WRITE"`), e.g. a histogram's _count over every status.
func (s metricSamples) sum(name string, want ...string) float64 {
	var total float64
	for series, v := range s {
		base, labels, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		labels = strings.TrimSuffix(labels, "}")
		match := true
		for _, w := range want {
			if !strings.Contains(","+labels+",", ","+w+",") {
				match = false
			}
		}
		if match {
			total += v
		}
	}
	return total
}

func (s metricSamples) has(name string) bool {
	for series := range s {
		if base, _, _ := strings.Cut(series, "{"); base == name {
			return true
		}
	}
	return false
}

// scrapeMetrics fetches node i's /metrics with the admin token, parses it
// with Prometheus's text parser and lints fsrep's own families against the
// naming conventions.
func scrapeMetrics(t *testing.T, c *Cluster, i int) metricSamples {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+c.Member(i).Cfg.AdminAddr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Node(i).Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape node %d: %v", i, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape node %d: %d %q\n%s", i, resp.StatusCode, ct, body)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("node %d metrics do not parse: %v", i, err)
	}
	var ours []*dto.MetricFamily
	out := metricSamples{}
	for name, mf := range families {
		if strings.HasPrefix(name, "fsrep_") {
			ours = append(ours, mf)
		}
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, l.GetName()+`="`+l.GetValue()+`"`)
			}
			sort.Strings(pairs)
			labels := ""
			if len(pairs) > 0 {
				labels = "{" + strings.Join(pairs, ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name+labels] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name+labels] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count"+labels] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+labels] = m.GetHistogram().GetSampleSum()
			case dto.MetricType_SUMMARY:
				out[name+"_count"+labels] = float64(m.GetSummary().GetSampleCount())
			default:
				out[name+labels] = m.GetUntyped().GetValue()
			}
		}
	}
	problems, err := promlint.NewWithMetricFamilies(ours).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("node %d: lint %s: %s", i, p.Metric, p.Text)
	}
	return out
}

// TestMetrics scrapes every node, drives NFS traffic through one of them
// and checks that the metrics move where the traffic went: requests by
// procedure, bytes written and read, a forged handle refused, Raft's
// applied index, and the leader's chunk health.
func TestMetrics(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	leader := c.WaitLeader()
	served := (leader + 1) % c.N() // a follower: its writes are forwarded

	before := make([]metricSamples, c.N())
	for i := range before {
		s := scrapeMetrics(t, c, i)
		before[i] = s
		for _, name := range []string{
			"fsrep_raft_leader", "fsrep_raft_state", "fsrep_raft_term", "fsrep_raft_commit_index",
			"fsrep_raft_applied_index", "fsrep_raft_leader_changes_total", "fsrep_volume_files",
			"fsrep_nfs_connections_open", "fsrep_nfs_connections_accepted_total", "fsrep_nfs_read_bytes_total",
			"fsrep_nfs_write_bytes_total", "fsrep_nfs_stale_handles_total", "fsrep_chunkstore_free_bytes",
			"fsrep_scrub_passes_total", "go_goroutines",
		} {
			if !s.has(name) {
				t.Errorf("node %d exports no %s", i, name)
			}
		}
		if s.sum("fsrep_raft_leader_changes_total") < 1 {
			t.Errorf("node %d has seen no leader", i)
		}
		if s[`fsrep_volume_files{volume="vol"}`] != 1 {
			t.Errorf("node %d: volume vol has %v files, want its root", i, s[`fsrep_volume_files{volume="vol"}`])
		}
	}
	leaders := 0
	for i, s := range before {
		if s["fsrep_raft_leader"] == 1 {
			leaders++
			if i != leader || s[`fsrep_raft_state{state="Leader"}`] != 1 {
				t.Errorf("node %d reports itself leader; the leader is node %d", i, leader)
			}
			if !s.has("fsrep_repair_queue") || !s.has("fsrep_node_up") {
				t.Errorf("the leader exports no healer view")
			}
		} else if s.has("fsrep_repair_queue") || s.has("fsrep_chunks") {
			t.Errorf("follower %d exports the healer's view", i)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d nodes report themselves leader", leaders)
	}

	// Write a file through one node and read it back.
	cl, err := Mount(c.NFSAddr(served), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	data := make([]byte, 1500<<10) // crosses a 1 MiB chunk boundary
	rand.New(rand.NewSource(5)).Read(data)
	f, err := cl.Target.OpenFile("metrics.bin", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rf, err := cl.Target.Open("metrics.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rf)
	rf.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (err %v), want the %d written", len(got), err, len(data))
	}
	// A forged handle is refused (STALE or BADHANDLE) and counted.
	fh, err := cl.Handle("metrics.bin")
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), fh...)
	forged[len(forged)-1] ^= 0xff
	if _, err := cl.GetAttr(forged); err == nil {
		t.Fatal("GETATTR of a forged handle succeeded")
	}

	after := scrapeMetrics(t, c, served)
	b := before[served]
	for _, proc := range []string{"WRITE", "READ", "MNT", "LOOKUP"} {
		req := `proc="` + proc + `"`
		if after.sum("fsrep_nfs_request_duration_seconds_count", req, `status="ok"`) <= b.sum("fsrep_nfs_request_duration_seconds_count", req, `status="ok"`) {
			t.Errorf("node %d: successful %s requests did not grow", served, proc)
		}
	}
	if grew := after["fsrep_nfs_write_bytes_total"] - b["fsrep_nfs_write_bytes_total"]; grew < float64(len(data)) {
		t.Errorf("node %d: bytes written grew by %v, want at least %d", served, grew, len(data))
	}
	if grew := after["fsrep_nfs_read_bytes_total"] - b["fsrep_nfs_read_bytes_total"]; grew < float64(len(data)) {
		t.Errorf("node %d: bytes read grew by %v, want at least %d", served, grew, len(data))
	}
	if after["fsrep_nfs_connections_accepted_total"] <= b["fsrep_nfs_connections_accepted_total"] || after["fsrep_nfs_connections_open"] < 1 {
		t.Errorf("node %d: connections accepted %v -> %v, open %v", served, b["fsrep_nfs_connections_accepted_total"],
			after["fsrep_nfs_connections_accepted_total"], after["fsrep_nfs_connections_open"])
	}
	if after.sum("fsrep_raft_propose_duration_seconds_count", `result="applied"`) <= b.sum("fsrep_raft_propose_duration_seconds_count", `result="applied"`) {
		t.Errorf("node %d: no metadata proposal was timed", served)
	}
	if after["fsrep_nfs_stale_handles_total"] <= b["fsrep_nfs_stale_handles_total"] {
		t.Errorf("node %d: the forged handle was not counted", served)
	}
	if after.sum("fsrep_nfs_request_duration_seconds_sum") <= b.sum("fsrep_nfs_request_duration_seconds_sum") {
		t.Errorf("node %d: request latency did not accumulate", served)
	}

	// Every node applies the writes' metadata; only the served node saw
	// the NFS traffic; the leader sees the new chunks healthy.
	for i := range before {
		c.Eventually(30*time.Second, fmt.Sprintf("node %d metrics after the traffic", i), func() error {
			s := scrapeMetrics(t, c, i)
			if s["fsrep_raft_applied_index"] <= before[i]["fsrep_raft_applied_index"] {
				return fmt.Errorf("applied index still %v", s["fsrep_raft_applied_index"])
			}
			if s[`fsrep_volume_bytes{volume="vol"}`] < float64(len(data)) {
				return fmt.Errorf("volume bytes %v", s[`fsrep_volume_bytes{volume="vol"}`])
			}
			if i == leader && s[`fsrep_chunks{state="healthy",volume="vol"}`] < 2 {
				return fmt.Errorf("healthy chunks %v", s[`fsrep_chunks{state="healthy",volume="vol"}`])
			}
			if i == leader && s.sum("fsrep_replicas_healthy", `volume="vol"`) < 2 {
				return fmt.Errorf("healthy replicas %v", s.sum("fsrep_replicas_healthy", `volume="vol"`))
			}
			return nil
		})
		if i == served {
			continue
		}
		s := scrapeMetrics(t, c, i)
		if w := s.sum("fsrep_nfs_request_duration_seconds_count", `proc="WRITE"`); w != before[i].sum("fsrep_nfs_request_duration_seconds_count", `proc="WRITE"`) {
			t.Errorf("node %d, which served no client, counts %v WRITEs", i, w)
		}
	}
}
