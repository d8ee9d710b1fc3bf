// Package tests holds fsrep's integration tests and the one in-process
// cluster helper they all use: real nodes (Raft, bbolt files, chunk stores,
// NFS gateways) on loopback listeners in temporary directories, with stop,
// restart and kill.
package tests

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/node"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// Cluster is a set of fsrep nodes in this process.
type Cluster struct {
	t      testing.TB
	dir    string
	secret []byte
	// caFile, caKey: the cluster CA every node issues its certificate with.
	caFile, caKey string
	log           *slog.Logger

	net  *network // every internode connection goes through it
	opts ClusterOptions

	mu    sync.Mutex
	nodes []*Member
}

// Member is one node slot: its fixed configuration (so a restart reuses the
// same addresses and data) and the running node, nil while stopped.
type Member struct {
	Cfg  node.Config
	Node *node.Node
	// started is set once the node has run: its addresses are then in the
	// Raft configuration and must not change.
	started bool
}

// ClusterOptions tune a test cluster.
type ClusterOptions struct {
	Nodes     int           // default 3, AZs az1..az3 round-robin
	OpTimeout time.Duration // NFS operation bound, default 5 s
	// Configure, if set, adjusts each node's configuration before its
	// first start (e.g. the integrity loops' intervals).
	Configure func(*node.Config)
}

// NewCluster starts a cluster, waits until every node is ready and creates
// volume "vol" (3 replicas, write quorum 2, 1 MiB chunks so tests cross
// chunk boundaries). Everything is torn down by t.Cleanup.
func NewCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = 5 * time.Second
	}
	c := &Cluster{
		t: t, dir: t.TempDir(), secret: []byte("test-cluster-secret-0123456789abcdef"), net: newNetwork(),
		log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLogLevel()})),
	}
	c.opts = opts
	var err error
	if c.caFile, c.caKey, err = node.EnsureCA(filepath.Join(c.dir, "tls"), "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for i := 0; i < opts.Nodes; i++ {
		c.nodes = append(c.nodes, &Member{Cfg: c.config(i, fmt.Sprintf("az%d", i%3+1))})
		c.Start(i)
		if i == 0 {
			c.WaitReady(0)
		}
	}
	for i := range c.nodes {
		c.WaitReady(i)
	}
	c.CreateVolume("vol", 3, 1<<20)
	return c
}

// config is the configuration of a new node in slot i: n<i+1> in az, on
// free loopback ports, joining through n1 (or bootstrapping, for slot 0).
func (c *Cluster) config(i int, az string) node.Config {
	cfg := node.Config{
		NodeID: fmt.Sprintf("n%d", i+1), AZ: az, Region: "test",
		DataDir:  filepath.Join(c.dir, fmt.Sprintf("n%d", i+1)),
		RaftAddr: freeAddr(c.t), RPCAddr: freeAddr(c.t), NFSAddr: freeAddr(c.t), AdminAddr: freeAddr(c.t),
		Secret: c.secret, OpTimeout: c.opts.OpTimeout, ChunkNoSync: false,
		TLSCAFile: c.caFile, TLSCAKeyFile: c.caKey,
	}
	cfg.Dial = c.net.dialer(i)
	c.net.register(i, cfg.RaftAddr, cfg.RPCAddr)
	if i == 0 {
		cfg.Bootstrap = true
	} else {
		cfg.Join = c.nodes[0].Cfg.RPCAddr
	}
	if c.opts.Configure != nil {
		c.opts.Configure(&cfg)
	}
	return cfg
}

// AddNode starts a fresh node in az that joins the running cluster (through
// n1's address, which any member forwards to the leader) and waits until
// it is ready. It returns the new slot.
func (c *Cluster) AddNode(az string) int {
	c.t.Helper()
	c.mu.Lock()
	i := len(c.nodes)
	c.mu.Unlock()
	cfg := c.config(i, az)
	for j := 0; j < i; j++ {
		if c.Node(j) != nil {
			cfg.Join = c.Member(j).Cfg.RPCAddr
			break
		}
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, &Member{Cfg: cfg})
	c.mu.Unlock()
	c.Start(i)
	c.WaitReady(i)
	return i
}

// testLogLevel is warn unless FSREP_TEST_LOG names another level.
func testLogLevel() slog.Level {
	var l slog.Level = slog.LevelWarn
	if v := os.Getenv("FSREP_TEST_LOG"); v != "" {
		_ = l.UnmarshalText([]byte(v))
	}
	return l
}

// testWriter sends logs to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// N is the number of node slots.
func (c *Cluster) N() int { return len(c.nodes) }

// Member returns slot i.
func (c *Cluster) Member(i int) *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Node returns the running node of slot i (nil if stopped).
func (c *Cluster) Node(i int) *node.Node { return c.Member(i).Node }

// Start starts (or restarts) node i with its data.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	m := c.Member(i)
	if m.Node != nil {
		c.t.Fatalf("node %d already running", i)
	}
	var n *node.Node
	var err error
	// A port freed by a stopped node can be briefly taken: retry.
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 1; ; attempt++ {
		n, err = node.Start(m.Cfg, node.SystemClock{}, c.log)
		if err == nil || time.Now().After(deadline) {
			break
		}
		if !m.started && strings.Contains(err.Error(), "address already in use") {
			// freeAddr's port was free when picked, not when bound (an
			// outgoing connection may hold it as its own port for long).
			// A node that never ran is referred to by nothing yet: give it
			// other ports and a fresh data directory (the failed start may
			// have bootstrapped Raft there with the old address).
			cfg := c.config(i, m.Cfg.AZ)
			cfg.Join = m.Cfg.Join // AddNode joins through a running node
			cfg.DataDir = fmt.Sprintf("%s-retry%d", cfg.DataDir, attempt)
			c.mu.Lock()
			m.Cfg = cfg
			c.mu.Unlock()
			c.t.Logf("start node %d: %v; retrying on other ports", i, err)
		}
		time.Sleep(100 * time.Millisecond) // backoff between bind attempts, not synchronisation
	}
	if err != nil {
		c.t.Fatalf("start node %d: %v", i, err)
	}
	c.mu.Lock()
	m.Node = n
	m.started = true
	c.mu.Unlock()
}

// Stop shuts node i down (listeners closed, clients dropped, Raft stopped).
// In process this is also what a kill does: nothing is flushed beyond what
// every write already fsynced.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	m := c.Member(i)
	c.mu.Lock()
	n := m.Node
	m.Node = nil
	c.mu.Unlock()
	if n == nil {
		return
	}
	if err := n.Close(); err != nil {
		c.t.Logf("stop node %d: %v", i, err)
	}
}

// Close stops every node.
func (c *Cluster) Close() {
	for i := range c.nodes {
		c.Stop(i)
	}
}

// WaitReady waits until node i has a leader and is registered.
func (c *Cluster) WaitReady(i int) {
	c.t.Helper()
	c.Eventually(30*time.Second, fmt.Sprintf("node %d ready", i), func() error { return c.Node(i).Ready() })
}

// Eventually polls fn until it returns nil or the deadline passes.
func (c *Cluster) Eventually(timeout time.Duration, what string, fn func() error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not reached within %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// Leader returns the slot of the current leader among running nodes, or -1.
func (c *Cluster) Leader() int {
	for i := range c.nodes {
		if n := c.Node(i); n != nil && n.Meta().IsLeader() {
			return i
		}
	}
	return -1
}

// WaitLeader waits for a leader among the running nodes and returns it.
func (c *Cluster) WaitLeader() int {
	c.t.Helper()
	var l int
	c.Eventually(30*time.Second, "a leader", func() error {
		if l = c.Leader(); l < 0 {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	return l
}

// CreateVolume creates a volume through node 0 (or the first running node)
// and waits until every running node has applied it.
func (c *Cluster) CreateVolume(name string, replicas int, chunkSize int64) *meta.Volume {
	c.t.Helper()
	var via *node.Node
	for i := range c.nodes {
		if via = c.Node(i); via != nil {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := via.Propose(ctx, &meta.CreateVolume{
		Name: name, Replicas: replicas, WriteQuorum: replication.DefaultWriteQuorum(replicas),
		ChunkSize: chunkSize, RootMode: 0o1777,
	})
	if err != nil {
		c.t.Fatalf("create volume %s: %v", name, err)
	}
	for i := range c.nodes {
		if n := c.Node(i); n != nil {
			if err := n.Meta().WaitApplied(ctx, res.Index); err != nil {
				c.t.Fatalf("node %d applying volume: %v", i, err)
			}
		}
	}
	return res.Volume
}

// NFSAddr is node i's NFS address (fixed across restarts).
func (c *Cluster) NFSAddr(i int) string { return c.Member(i).Cfg.NFSAddr }
