package node

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/gateway"
	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
)

var (
	_ admin.MetricsGatherer = (*Node)(nil)
	_ gateway.Metadata      = timedMeta{}
)

// metrics is the node's Prometheus registry and the instruments the node
// hands to its parts. Each node has its own registry (never the global
// one): the embedded cluster and the tests run several nodes in one
// process, and each must report only itself.
type metrics struct {
	reg *prometheus.Registry
	// nfs goes to the gateway's front.
	nfs *gateway.Metrics
	// applied and failed time proposals (timedMeta).
	applied, failed prometheus.Observer
}

// newMetrics builds n's registry: the admin collector (Raft status,
// volumes, healer, scrubber), the gateway's instruments, proposal latency,
// Raft leader changes, the chunk store's size, and the Go runtime and
// process collectors. n.meta and n.store must be open; the rest of n is
// read at scrape time.
func newMetrics(n *Node) (*metrics, error) {
	reg := prometheus.NewRegistry()
	m := &metrics{reg: reg}
	var err error
	if m.nfs, err = gateway.NewMetrics(reg); err != nil {
		return nil, err
	}
	propose := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "fsrep_raft_propose_duration_seconds",
		Help: "Time for a metadata command proposed by this node's NFS gateway or data path to commit through Raft " +
			"and apply on this node, leader forwarding and retries across elections included, by result: " +
			"applied (it ran, perhaps failing a precondition) or failed (no leader, timeout, shutdown).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"result"})
	m.applied, m.failed = propose.WithLabelValues("applied"), propose.WithLabelValues("failed")
	leaderChanges := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "fsrep_raft_leader_changes_total",
		Help: "New Raft leaders this node has seen since it started (itself included).",
	}, func() float64 { return float64(n.meta.LeaderChanges()) })
	tlsFailures := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "fsrep_internode_tls_failures_total",
		Help: "Failed TLS handshakes on this node's Raft and RPC listeners since it started: callers without a certificate from the cluster CA.",
	}, func() float64 { return float64(n.TLSFailures()) })
	err = errors.Join(
		reg.Register(admin.NewCollector(n)),
		reg.Register(tlsFailures),
		reg.Register(propose),
		reg.Register(leaderChanges),
		reg.Register(newStoreCollector(n.store, filepath.Join(n.cfg.DataDir, "chunks"), n.clock)),
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// MetricsGatherer is the node's registry, which its admin API serves on
// /metrics (admin.MetricsGatherer).
func (n *Node) MetricsGatherer() prometheus.Gatherer { return n.metrics.reg }

// timedMeta is the metadata node as the gateway and the replicated data
// path use it, with every proposal timed: those proposals are the
// metadata latency an NFS client waits for.
type timedMeta struct {
	*meta.Node
	m *metrics
}

func (n *Node) timedMeta() timedMeta { return timedMeta{Node: n.meta, m: n.metrics} }

// Propose proposes through the metadata node and records how long it took.
func (t timedMeta) Propose(ctx context.Context, cmd meta.Command) (*meta.Result, error) {
	start := time.Now()
	res, err := t.Node.Propose(ctx, cmd)
	// A result means the command was applied, even when it refused (an
	// existing name): the latency is Raft's all the same.
	o := t.m.applied
	if res == nil {
		o = t.m.failed
	}
	o.Observe(time.Since(start).Seconds())
	return res, err
}

// storeCollector reports the local chunk store's size. Counting the files
// walks every chunk directory, so the count is cached for usageEvery (as
// heartbeats do); the free space is one statfs, read at every scrape.
type storeCollector struct {
	store *chunkstore.Store
	dir   string
	clock Clock

	files, used, free *prometheus.Desc

	mu    sync.Mutex // serialises scrapes over the cache
	at    time.Time
	count int
	bytes int64
	ok    bool
}

func newStoreCollector(store *chunkstore.Store, dir string, clock Clock) *storeCollector {
	return &storeCollector{store: store, dir: dir, clock: clock,
		files: prometheus.NewDesc("fsrep_chunkstore_chunk_files", "Chunk files in this node's chunk store (every version kept counts).", nil, nil),
		used:  prometheus.NewDesc("fsrep_chunkstore_used_bytes", "Size of the chunk files in this node's chunk store, headers included.", nil, nil),
		free:  prometheus.NewDesc("fsrep_chunkstore_free_bytes", "Bytes available to fsrepd on the file system of this node's chunk store.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.files
	ch <- c.used
	ch <- c.free
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	now := c.clock.Now()
	if !c.ok || now.Sub(c.at) >= usageEvery || now.Before(c.at) {
		if files, bytes, err := c.store.Usage(); err != nil {
			ch <- prometheus.NewInvalidMetric(c.files, err)
			c.ok = false
		} else {
			c.at, c.count, c.bytes, c.ok = now, files, bytes, true
		}
	}
	ok, files, bytes := c.ok, c.count, c.bytes
	c.mu.Unlock()
	if ok {
		ch <- prometheus.MustNewConstMetric(c.files, prometheus.GaugeValue, float64(files))
		ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(bytes))
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(c.dir, &st); err != nil {
		ch <- prometheus.NewInvalidMetric(c.free, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(st.Bavail)*float64(st.Bsize))
}
