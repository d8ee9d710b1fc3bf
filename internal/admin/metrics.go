package admin

import (
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fsrep/fsrep/replication"
)

// /metrics is served by client_golang from a prometheus.Registry that
// belongs to the node (there is no global registry: several nodes share
// one process in tests and in the embedded cluster). The admin package
// contributes one collector, NewCollector, which reads the backend's status
// structs at scrape time; the node adds the gateway's, Raft's and the chunk
// store's instruments to the same registry.
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

// MetricsGatherer is optional on a Backend: the node's own registry, which
// /metrics then serves instead of one the server builds. The node owns it
// because the gateway and Raft instruments live there too; in return it
// must register NewCollector(b) in it, or /metrics loses the admin
// families. Without it the server serves a registry of NewCollector(b)
// alone.
type MetricsGatherer interface {
	MetricsGatherer() prometheus.Gatherer
}

// metricsHandler serves the backend's registry. A collector that fails
// costs its own families, not the scrape: ContinueOnError serves the rest
// and the error is logged, so an FSM read error cannot hide the gateway's
// counters.
func (s *server) metricsHandler() http.Handler {
	var g prometheus.Gatherer
	if mg, ok := s.b.(MetricsGatherer); ok {
		g = mg.MetricsGatherer()
	} else {
		reg := prometheus.NewRegistry()
		reg.MustRegister(NewCollector(s.b))
		g = reg
	}
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      promLogger{s.log},
		ErrorHandling: promhttp.ContinueOnError,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A cache between Prometheus and the node would serve old values.
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// promLogger is promhttp's error log on slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn("metrics scrape incomplete", "err", fmt.Sprint(v...))
}

// NewCollector returns the collector of the admin families: Raft status,
// volumes, the healer's view (on the leader) and the scrubber, read from b
// and its optional Healer, Scrubber and NFSStats at every scrape. Register
// it once per backend. A failed read (the FSM's volumes, the replica
// status) fails its families alone.
func NewCollector(b Backend) prometheus.Collector {
	c := &collector{b: b}
	c.healer, _ = b.(Healer)
	c.scrubber, _ = b.(Scrubber)
	c.nfs, _ = b.(NFSStats)
	d := func(name, help string, labels ...string) *prometheus.Desc {
		x := prometheus.NewDesc(name, help, labels, nil)
		c.all = append(c.all, x)
		return x
	}
	c.raftLeader = d("fsrep_raft_leader", "1 when this node is the metadata Raft leader, else 0.")
	c.raftHasLeader = d("fsrep_raft_has_leader", "1 when this node knows a metadata Raft leader, else 0.")
	c.raftState = d("fsrep_raft_state", "This node's Raft state: 1 for the current one.", "state")
	c.raftTerm = d("fsrep_raft_term", "Current Raft term as this node sees it.")
	c.raftCommit = d("fsrep_raft_commit_index", "Raft commit index on this node.")
	c.raftApplied = d("fsrep_raft_applied_index", "Raft log index last applied to this node's metadata.")

	c.volFiles = d("fsrep_volume_files", "Inodes in the volume, the root directory included.", "volume")
	c.volBytes = d("fsrep_volume_bytes", "Logical size of the volume's file data in bytes (not multiplied by the replica count).", "volume")
	c.volQuotaBytes = d("fsrep_volume_quota_bytes", "Byte quota of the volume (series only for volumes with one).", "volume")
	c.volQuotaFiles = d("fsrep_volume_quota_files", "File quota of the volume, the root directory included (series only for volumes with one).", "volume")

	c.nodeUp = d("fsrep_node_up", "1 when the leader hears the node's heartbeats on time, else 0 (suspect or down).", "node", "az")
	c.nodeState = d("fsrep_node_state", "The node's liveness state as the leader sees it: 1 for the current state.", "node", "az", "state")
	c.nodeDraining = d("fsrep_node_draining", "1 while the node is being drained.", "node", "az")
	c.nodeChunks = d("fsrep_node_chunks", "Chunk replicas the metadata places on the node.", "node", "az")
	c.nodeFree = d("fsrep_node_free_bytes", "Free bytes on the node's data disk from its last heartbeat.", "node", "az")
	c.azDown = d("fsrep_az_down", "1 when every node of the AZ is down.", "az")

	c.repairPaused = d("fsrep_repair_paused", "1 while repair is paused by an operator.")
	c.repairQueue = d("fsrep_repair_queue", "Chunks waiting for a copy or a move.")
	c.repairQueueUrgent = d("fsrep_repair_queue_urgent", "Chunks waiting for a copy with a single healthy replica left.")
	c.repairInflight = d("fsrep_repair_inflight", "Chunk copies in flight.")
	c.repairCopied = d("fsrep_repair_copied_total", "Chunk copies completed since this node became leader.")
	c.repairCopiedBytes = d("fsrep_repair_copied_bytes_total", "Bytes copied by repair since this node became leader.")
	c.repairFailed = d("fsrep_repair_failed_total", "Chunk copies that failed since this node became leader.")
	c.chunks = d("fsrep_chunks", "Chunks of the volume by replication state (corrupt counts replicas).", "volume", "state")
	c.replicasHealthy = d("fsrep_replicas_healthy", "Healthy chunk replicas of the volume in the AZ.", "volume", "az")

	c.scrubPaused = d("fsrep_scrub_paused", "1 while this node's scrubber is paused.")
	c.scrubPassChunks = d("fsrep_scrub_pass_chunks", "Chunks on this node when the current scrub pass began.")
	c.scrubPassScanned = d("fsrep_scrub_pass_scanned_chunks", "Chunks verified so far in the current scrub pass.")
	c.scrubPassBytes = d("fsrep_scrub_pass_scanned_bytes", "Bytes verified so far in the current scrub pass.")
	c.scrubPasses = d("fsrep_scrub_passes_total", "Scrub passes completed since the node started.")
	c.scrubCorrupt = d("fsrep_scrub_corrupt_total", "Corrupt replicas the scrubber found since the node started.")
	c.scrubRepaired = d("fsrep_scrub_repaired_total", "Of the corrupt replicas found, those dropped for repair or removed.")
	c.scrubErrors = d("fsrep_scrub_errors_total", "Chunk files the scrubber could not check or report.")
	c.readCorrupt = d("fsrep_read_corrupt_total", "Replicas that answered a read through this node with a checksum error.")

	c.nfsInflight = d("fsrep_nfs_inflight", "NFS requests being served by this node's gateway.")
	return c
}

// collector reads the backend on every scrape; it keeps no state but its
// descriptors.
type collector struct {
	b        Backend
	healer   Healer
	scrubber Scrubber
	nfs      NFSStats

	all []*prometheus.Desc // every descriptor below, for Describe

	raftLeader, raftHasLeader, raftState, raftTerm, raftCommit, raftApplied *prometheus.Desc
	volFiles, volBytes, volQuotaBytes, volQuotaFiles                        *prometheus.Desc
	nodeUp, nodeState, nodeDraining, nodeChunks, nodeFree, azDown           *prometheus.Desc
	repairPaused, repairQueue, repairQueueUrgent, repairInflight            *prometheus.Desc
	repairCopied, repairCopiedBytes, repairFailed, chunks, replicasHealthy  *prometheus.Desc
	scrubPaused, scrubPassChunks, scrubPassScanned, scrubPassBytes          *prometheus.Desc
	scrubPasses, scrubCorrupt, scrubRepaired, scrubErrors, readCorrupt      *prometheus.Desc
	nfsInflight                                                             *prometheus.Desc
}

// Describe sends every descriptor, also those of the optional parts the
// backend lacks: a checked collector may send fewer metrics than it
// describes, never more.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.all {
		ch <- d
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Status()
	leader := st.Leader == c.b.NodeID()
	gauge(ch, c.raftLeader, b2f(leader))
	gauge(ch, c.raftHasLeader, b2f(st.Leader != ""))
	// Every state has a series, so that a change of state is a change of
	// value rather than a series appearing and another disappearing.
	for _, s := range []string{"Follower", "Candidate", "Leader", "Shutdown"} {
		gauge(ch, c.raftState, b2f(st.State == s), s)
	}
	gauge(ch, c.raftTerm, float64(st.Term))
	gauge(ch, c.raftCommit, float64(st.CommitIndex))
	gauge(ch, c.raftApplied, float64(st.AppliedIndex))

	if vols, err := c.b.FSM().Volumes(); err != nil {
		ch <- prometheus.NewInvalidMetric(c.volFiles, fmt.Errorf("reading volumes: %w", err))
	} else {
		for _, v := range vols {
			gauge(ch, c.volFiles, float64(v.Files), v.Name)
			gauge(ch, c.volBytes, float64(v.Bytes), v.Name)
			// Only volumes with a quota have a series, so that
			// fsrep_volume_bytes / fsrep_volume_quota_bytes needs no filter.
			if v.QuotaBytes > 0 {
				gauge(ch, c.volQuotaBytes, float64(v.QuotaBytes), v.Name)
			}
			if v.QuotaFiles > 0 {
				gauge(ch, c.volQuotaFiles, float64(v.QuotaFiles), v.Name)
			}
		}
	}

	if c.healer != nil && leader {
		c.collectHealer(ch)
	}
	if c.scrubber != nil {
		c.collectScrub(ch, c.scrubber.ScrubStatus())
	}
	if c.nfs != nil {
		gauge(ch, c.nfsInflight, float64(c.nfs.NFSInflight()))
	}
}

func (c *collector) collectHealer(ch chan<- prometheus.Metric) {
	rs := c.healer.RepairStatus()
	for _, n := range rs.Nodes {
		gauge(ch, c.nodeUp, b2f(n.State == replication.StateUp), n.ID, n.AZ)
		for _, state := range []replication.NodeState{replication.StateUp, replication.StateSuspect, replication.StateDown} {
			gauge(ch, c.nodeState, b2f(n.State == state), n.ID, n.AZ, string(state))
		}
		gauge(ch, c.nodeDraining, b2f(n.Draining), n.ID, n.AZ)
		gauge(ch, c.nodeChunks, float64(n.Chunks), n.ID, n.AZ)
		if n.FreeBytes >= 0 { // -1: not reported yet
			gauge(ch, c.nodeFree, float64(n.FreeBytes), n.ID, n.AZ)
		}
	}
	for _, az := range rs.AZs {
		gauge(ch, c.azDown, b2f(az.Down), az.AZ)
	}
	gauge(ch, c.repairPaused, b2f(rs.Paused))
	gauge(ch, c.repairQueue, float64(rs.Queue))
	gauge(ch, c.repairQueueUrgent, float64(rs.QueueUrgent))
	gauge(ch, c.repairInflight, float64(rs.InFlight))
	counter(ch, c.repairCopied, float64(rs.Copied))
	counter(ch, c.repairCopiedBytes, float64(rs.CopiedBytes))
	counter(ch, c.repairFailed, float64(rs.Failed))

	vols, err := c.healer.ReplicaStatus("")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.chunks, fmt.Errorf("replica status: %w", err))
		return
	}
	for _, v := range vols {
		for _, s := range []struct {
			state string
			n     int
		}{
			{"healthy", v.Healthy}, {"under_replicated", v.UnderReplicated}, {"unavailable", v.Unavailable},
			{"misplaced", v.Misplaced}, {"draining", v.Draining}, {"corrupt", v.Corrupt},
		} {
			gauge(ch, c.chunks, float64(s.n), v.Volume, s.state)
		}
		azs := make([]string, 0, len(v.PerAZ))
		for az := range v.PerAZ {
			azs = append(azs, az)
		}
		sort.Strings(azs)
		for _, az := range azs {
			gauge(ch, c.replicasHealthy, float64(v.PerAZ[az]), v.Volume, az)
		}
	}
}

func (c *collector) collectScrub(ch chan<- prometheus.Metric, sc replication.ScrubStatus) {
	gauge(ch, c.scrubPaused, b2f(sc.Paused))
	gauge(ch, c.scrubPassChunks, float64(sc.PassChunks))
	gauge(ch, c.scrubPassScanned, float64(sc.Scanned))
	// A gauge, not fsrep_scrub_scanned_bytes_total: ScrubStatus counts the
	// bytes of the current pass only, and a counter must never go down.
	gauge(ch, c.scrubPassBytes, float64(sc.ScannedBytes))
	counter(ch, c.scrubPasses, float64(sc.Passes))
	counter(ch, c.scrubCorrupt, float64(sc.Corrupt))
	counter(ch, c.scrubRepaired, float64(sc.Repaired))
	counter(ch, c.scrubErrors, float64(sc.Errors))
	counter(ch, c.readCorrupt, float64(sc.ReadCorrupt.Found))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
