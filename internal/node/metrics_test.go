package node

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/fsrep/fsrep/meta"
)

// The node's registry holds every part's metrics, gathers without
// inconsistency, and times the proposals of its data path.
func TestNodeMetrics(t *testing.T) {
	log := slog.New(slog.NewTextHandler(opsLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := Config{NodeID: "n1", AZ: "az1", DataDir: filepath.Join(t.TempDir(), "d"), Bootstrap: true,
		RaftAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", NFSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Secret: []byte("metrics-test-cluster-secret-0123"), ChunkNoSync: true, ScrubRate: -1}
	n, err := Start(cfg, SystemClock{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	eventually(t, "ready", n.Ready)

	// A proposal through the data path's metadata is timed.
	res, err := n.timedMeta().Propose(t.Context(), &meta.CreateVolume{Name: "v", Replicas: 1, WriteQuorum: 1,
		ChunkSize: meta.MinChunkSize, RootMode: 0o755})
	if err != nil || res.Err() != nil {
		t.Fatalf("create volume: %v %v", err, res)
	}

	gather := func() map[string]*dto.MetricFamily {
		mfs, err := n.MetricsGatherer().Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		out := map[string]*dto.MetricFamily{}
		for _, mf := range mfs {
			out[mf.GetName()] = mf
		}
		return out
	}
	value := func(mf *dto.MetricFamily) float64 {
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
		return m.GetUntyped().GetValue()
	}
	eventually(t, "metrics", func() error {
		got := gather()
		for name, check := range map[string]func(float64) bool{
			"fsrep_raft_leader":                    func(v float64) bool { return v == 1 },
			"fsrep_raft_leader_changes_total":      func(v float64) bool { return v >= 1 },
			"fsrep_raft_propose_duration_seconds":  func(v float64) bool { return v >= 1 },
			"fsrep_volume_files":                   func(v float64) bool { return v == 1 },
			"fsrep_chunkstore_chunk_files":         func(v float64) bool { return v == 0 },
			"fsrep_chunkstore_free_bytes":          func(v float64) bool { return v > 0 },
			"fsrep_nfs_connections_open":           func(v float64) bool { return v == 0 },
			"fsrep_nfs_connections_accepted_total": func(v float64) bool { return v == 0 },
			"fsrep_repair_queue":                   func(v float64) bool { return v == 0 },
			"go_goroutines":                        func(v float64) bool { return v > 0 },
		} {
			mf, ok := got[name]
			if !ok {
				return fmt.Errorf("%s missing", name)
			}
			if v := value(mf); !check(v) {
				return fmt.Errorf("%s = %v", name, v)
			}
		}
		return nil
	})
	for _, m := range gather()["fsrep_raft_propose_duration_seconds"].GetMetric() {
		result, count := m.GetLabel()[0].GetValue(), m.GetHistogram().GetSampleCount()
		if (result == "applied" && count == 0) || (result == "failed" && count != 0) {
			t.Errorf("proposals timed as %s: %d", result, count)
		}
	}
}
