package admin

import (
	"bufio"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/fsrep/fsrep/replication"
)

// /metrics speaks the Prometheus text exposition format (version 0.0.4)
// directly: the handful of gauges and counters below are read from the
// backend at scrape time, so there is no registry to keep and no
// dependency to add. Moving to client_golang later means turning each
// family into a collector with the same name and labels.
//
// Which node exports what:
//   - every node: its Raft view (fsrep_raft_*), the volumes of its FSM
//     (fsrep_volume_*), its scrubber (fsrep_scrub_*) and its NFS gateway;
//   - the leader only: the healer's view (fsrep_node_*, fsrep_az_down,
//     fsrep_repair_*, fsrep_chunks, fsrep_replicas_healthy). Only the leader
//     tracks liveness and the repair queue; a follower exporting its stale
//     or empty copy would double-count in sums across instances.

// NFSStats is optional on a Backend: the gateway's load, for /metrics.
type NFSStats interface {
	// NFSInflight is the number of NFS requests being served now.
	NFSInflight() int
}

// metricsContentType is the text format's content type.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

func (s *server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", metricsContentType)
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriter(w)
	s.writeMetrics(newMetricWriter(bw))
	// A write error means the scraper went away; there is no one to tell.
	_ = bw.Flush()
}

func (s *server) writeMetrics(m *metricWriter) {
	st := s.b.Status()
	self := s.b.NodeID()
	leader := st.Leader == self

	m.family("fsrep_raft_leader", "gauge", "1 when this node is the metadata Raft leader, else 0.")
	m.sample("fsrep_raft_leader", b2f(leader))
	m.family("fsrep_raft_has_leader", "gauge", "1 when this node knows a metadata Raft leader, else 0.")
	m.sample("fsrep_raft_has_leader", b2f(st.Leader != ""))
	m.family("fsrep_raft_term", "gauge", "Current Raft term as this node sees it.")
	m.sample("fsrep_raft_term", float64(st.Term))
	m.family("fsrep_raft_commit_index", "gauge", "Raft commit index on this node.")
	m.sample("fsrep_raft_commit_index", float64(st.CommitIndex))
	m.family("fsrep_raft_applied_index", "gauge", "Raft log index last applied to this node's metadata.")
	m.sample("fsrep_raft_applied_index", float64(st.AppliedIndex))

	if vols, err := s.b.FSM().Volumes(); err != nil {
		s.log.Warn("metrics: reading volumes", "err", err)
	} else {
		m.family("fsrep_volume_files", "gauge", "Inodes in the volume, the root directory included.")
		for _, v := range vols {
			m.sample("fsrep_volume_files", float64(v.Files), "volume", v.Name)
		}
		m.family("fsrep_volume_bytes", "gauge", "Logical size of the volume's file data in bytes (not multiplied by the replica count).")
		for _, v := range vols {
			m.sample("fsrep_volume_bytes", float64(v.Bytes), "volume", v.Name)
		}
		// Only volumes with a quota have a series, so that
		// fsrep_volume_bytes / fsrep_volume_quota_bytes needs no filter.
		m.family("fsrep_volume_quota_bytes", "gauge", "Byte quota of the volume (series only for volumes with one).")
		for _, v := range vols {
			if v.QuotaBytes > 0 {
				m.sample("fsrep_volume_quota_bytes", float64(v.QuotaBytes), "volume", v.Name)
			}
		}
		m.family("fsrep_volume_quota_files", "gauge", "File quota of the volume, the root directory included (series only for volumes with one).")
		for _, v := range vols {
			if v.QuotaFiles > 0 {
				m.sample("fsrep_volume_quota_files", float64(v.QuotaFiles), "volume", v.Name)
			}
		}
	}

	if s.healer != nil && leader {
		s.writeHealerMetrics(m)
	}
	if s.scrubber != nil {
		writeScrubMetrics(m, s.scrubber.ScrubStatus())
	}
	if s.nfs != nil {
		m.family("fsrep_nfs_inflight", "gauge", "NFS requests being served by this node's gateway.")
		m.sample("fsrep_nfs_inflight", float64(s.nfs.NFSInflight()))
	}
}

func (s *server) writeHealerMetrics(m *metricWriter) {
	rs := s.healer.RepairStatus()

	m.family("fsrep_node_up", "gauge", "1 when the leader hears the node's heartbeats on time, else 0 (suspect or down).")
	for _, n := range rs.Nodes {
		m.sample("fsrep_node_up", b2f(n.State == replication.StateUp), "node", n.ID, "az", n.AZ)
	}
	// Every state is written for every node, so that a state change is a
	// change of value rather than a series appearing and disappearing.
	m.family("fsrep_node_state", "gauge", "The node's liveness state as the leader sees it: 1 for the current state.")
	for _, n := range rs.Nodes {
		for _, state := range []replication.NodeState{replication.StateUp, replication.StateSuspect, replication.StateDown} {
			m.sample("fsrep_node_state", b2f(n.State == state), "node", n.ID, "az", n.AZ, "state", string(state))
		}
	}
	m.family("fsrep_node_draining", "gauge", "1 while the node is being drained.")
	for _, n := range rs.Nodes {
		m.sample("fsrep_node_draining", b2f(n.Draining), "node", n.ID, "az", n.AZ)
	}
	m.family("fsrep_node_chunks", "gauge", "Chunk replicas the metadata places on the node.")
	for _, n := range rs.Nodes {
		m.sample("fsrep_node_chunks", float64(n.Chunks), "node", n.ID, "az", n.AZ)
	}
	m.family("fsrep_node_free_bytes", "gauge", "Free bytes on the node's data disk from its last heartbeat.")
	for _, n := range rs.Nodes {
		if n.FreeBytes >= 0 {
			m.sample("fsrep_node_free_bytes", float64(n.FreeBytes), "node", n.ID, "az", n.AZ)
		}
	}
	m.family("fsrep_az_down", "gauge", "1 when every node of the AZ is down.")
	for _, az := range rs.AZs {
		m.sample("fsrep_az_down", b2f(az.Down), "az", az.AZ)
	}

	m.family("fsrep_repair_paused", "gauge", "1 while repair is paused by an operator.")
	m.sample("fsrep_repair_paused", b2f(rs.Paused))
	m.family("fsrep_repair_queue", "gauge", "Chunks waiting for a copy or a move.")
	m.sample("fsrep_repair_queue", float64(rs.Queue))
	m.family("fsrep_repair_queue_urgent", "gauge", "Chunks waiting for a copy with a single healthy replica left.")
	m.sample("fsrep_repair_queue_urgent", float64(rs.QueueUrgent))
	m.family("fsrep_repair_inflight", "gauge", "Chunk copies in flight.")
	m.sample("fsrep_repair_inflight", float64(rs.InFlight))
	m.family("fsrep_repair_copied_total", "counter", "Chunk copies completed since this node became leader.")
	m.sample("fsrep_repair_copied_total", float64(rs.Copied))
	m.family("fsrep_repair_copied_bytes_total", "counter", "Bytes copied by repair since this node became leader.")
	m.sample("fsrep_repair_copied_bytes_total", float64(rs.CopiedBytes))
	m.family("fsrep_repair_failed_total", "counter", "Chunk copies that failed since this node became leader.")
	m.sample("fsrep_repair_failed_total", float64(rs.Failed))

	vols, err := s.healer.ReplicaStatus("")
	if err != nil {
		s.log.Warn("metrics: replica status", "err", err)
		return
	}
	m.family("fsrep_chunks", "gauge", "Chunks of the volume by replication state (corrupt counts replicas).")
	for _, v := range vols {
		for _, c := range []struct {
			state string
			n     int
		}{
			{"healthy", v.Healthy}, {"under_replicated", v.UnderReplicated}, {"unavailable", v.Unavailable},
			{"misplaced", v.Misplaced}, {"draining", v.Draining}, {"corrupt", v.Corrupt},
		} {
			m.sample("fsrep_chunks", float64(c.n), "volume", v.Volume, "state", c.state)
		}
	}
	m.family("fsrep_replicas_healthy", "gauge", "Healthy chunk replicas of the volume in the AZ.")
	for _, v := range vols {
		azs := make([]string, 0, len(v.PerAZ))
		for az := range v.PerAZ {
			azs = append(azs, az)
		}
		sort.Strings(azs)
		for _, az := range azs {
			m.sample("fsrep_replicas_healthy", float64(v.PerAZ[az]), "volume", v.Volume, "az", az)
		}
	}
}

func writeScrubMetrics(m *metricWriter, sc replication.ScrubStatus) {
	m.family("fsrep_scrub_paused", "gauge", "1 while this node's scrubber is paused.")
	m.sample("fsrep_scrub_paused", b2f(sc.Paused))
	m.family("fsrep_scrub_pass_chunks", "gauge", "Chunks on this node when the current scrub pass began.")
	m.sample("fsrep_scrub_pass_chunks", float64(sc.PassChunks))
	m.family("fsrep_scrub_pass_scanned_chunks", "gauge", "Chunks verified so far in the current scrub pass.")
	m.sample("fsrep_scrub_pass_scanned_chunks", float64(sc.Scanned))
	// A gauge, not fsrep_scrub_scanned_bytes_total: ScrubStatus counts the
	// bytes of the current pass only, and a counter must never go down.
	m.family("fsrep_scrub_pass_scanned_bytes", "gauge", "Bytes verified so far in the current scrub pass.")
	m.sample("fsrep_scrub_pass_scanned_bytes", float64(sc.ScannedBytes))
	m.family("fsrep_scrub_passes_total", "counter", "Scrub passes completed since the node started.")
	m.sample("fsrep_scrub_passes_total", float64(sc.Passes))
	m.family("fsrep_scrub_corrupt_total", "counter", "Corrupt replicas the scrubber found since the node started.")
	m.sample("fsrep_scrub_corrupt_total", float64(sc.Corrupt))
	m.family("fsrep_scrub_repaired_total", "counter", "Of the corrupt replicas found, those dropped for repair or removed.")
	m.sample("fsrep_scrub_repaired_total", float64(sc.Repaired))
	m.family("fsrep_scrub_errors_total", "counter", "Chunk files the scrubber could not check or report.")
	m.sample("fsrep_scrub_errors_total", float64(sc.Errors))
	m.family("fsrep_read_corrupt_total", "counter", "Replicas that answered a read through this node with a checksum error.")
	m.sample("fsrep_read_corrupt_total", float64(sc.ReadCorrupt.Found))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metricWriter writes the text exposition format. Families are written
// whole, one after another: HELP and TYPE, then every sample.
type metricWriter struct {
	w            *bufio.Writer
	help, labels *strings.Replacer
}

func newMetricWriter(w *bufio.Writer) *metricWriter {
	return &metricWriter{
		w:      w,
		help:   strings.NewReplacer(`\`, `\\`, "\n", `\n`),
		labels: strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`),
	}
}

func (m *metricWriter) family(name, typ, help string) {
	m.w.WriteString("# HELP " + name + " " + m.help.Replace(help) + "\n")
	m.w.WriteString("# TYPE " + name + " " + typ + "\n")
}

// sample writes one sample; labels are name, value pairs.
func (m *metricWriter) sample(name string, v float64, labels ...string) {
	m.w.WriteString(name)
	if len(labels) > 0 {
		m.w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				m.w.WriteByte(',')
			}
			m.w.WriteString(labels[i] + `="` + m.labels.Replace(labels[i+1]) + `"`)
		}
		m.w.WriteByte('}')
	}
	m.w.WriteByte(' ')
	m.w.WriteString(formatValue(v))
	m.w.WriteByte('\n')
}

// formatValue writes integers exactly (an index of 10^7 as 10000000, not
// 1e+07) and anything else in Go's shortest float form.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case v == math.Trunc(v) && math.Abs(v) < 1<<53:
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
