package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/gateway"
	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/internal/netlimit"
	"github.com/fsrep/fsrep/internal/pki"
	"github.com/fsrep/fsrep/internal/rpc"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// Clock is the wall clock, injected.
type Clock interface{ Now() time.Time }

// SystemClock reads time.Now.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// The pieces a node wires together, checked at compile time.
var (
	_ admin.Backend          = (*Node)(nil)
	_ admin.NFSStats         = (*Node)(nil)
	_ rpc.Joiner             = (*Node)(nil)
	_ rpc.MetaService        = (*meta.Node)(nil)
	_ rpc.ChunkService       = (*chunkstore.Store)(nil)
	_ replication.Metadata   = (*meta.Node)(nil)
	_ replication.Peers      = (*rpc.Client)(nil)
	_ replication.LocalStore = (*chunkstore.Store)(nil)
	_ gateway.Metadata       = (*meta.Node)(nil)
	_ vfs.Data               = (*replication.Replicator)(nil)
)

// Node is one running fsrepd node.
type Node struct {
	cfg   Config
	log   *slog.Logger
	clock Clock

	secret []byte
	tls    *pki.Identity
	token  string

	tlsFailures, tlsFailLogged atomic.Int64 // handshakeFailed (tls.go)

	store  *chunkstore.Store
	meta   *meta.Node
	rpcCli *rpc.Client
	rpcSrv *rpc.Server
	repl   *replication.Replicator
	heal   *healing // liveness, healer (heal.go)
	nfs    *gateway.Server
	admin  *http.Server
	integ  integrity // scrub, sweep, GC (integrity.go)

	metrics *metrics // the registry /metrics serves (metrics.go)

	rpcLn, nfsLn, adminLn net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
}

// Start opens the node's stores and starts every listener. It returns once
// the node is serving; joining the cluster and registering proceed in the
// background (see Ready).
func Start(cfg Config, clock Clock, log *slog.Logger) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data directory: %w", err)
	}
	// n is not the named result: the error returns below set that to nil,
	// and the goroutines started meanwhile hold n.
	n := &Node{cfg: cfg, log: log.With("node", cfg.NodeID, "az", cfg.AZ), clock: clock}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.secret, err = loadSecret(cfg); err != nil {
		return nil, err
	}
	n.token = AdminToken(n.secret, 0) // until the metadata is open; see token.go
	if n.tls, err = loadIdentity(cfg, clock.Now()); err != nil {
		return nil, err
	}

	if n.store, err = chunkstore.Open(cfg.chunkStoreConfig(), n.log.With("component", "chunkstore")); err != nil {
		return nil, err
	}

	// Bind the client-facing listeners first so port 0 resolves to the
	// addresses this node advertises.
	if n.rpcLn, err = listen(cfg.RPCAddr); err != nil {
		return nil, fmt.Errorf("node: rpc listener: %w", err)
	}
	if n.nfsLn, err = listen(cfg.NFSAddr); err != nil {
		return nil, fmt.Errorf("node: nfs listener: %w", err)
	}
	if n.adminLn, err = listen(cfg.AdminAddr); err != nil {
		return nil, fmt.Errorf("node: admin listener: %w", err)
	}

	mcfg := meta.DefaultConfig(cfg.NodeID, filepath.Join(cfg.DataDir, "meta"), cfg.RaftAddr)
	mcfg.Bootstrap = cfg.Bootstrap
	if cfg.HeartbeatTimeout > 0 {
		mcfg.HeartbeatTimeout = cfg.HeartbeatTimeout
		mcfg.LeaderLeaseTimeout = cfg.HeartbeatTimeout / 2
	}
	if cfg.ElectionTimeout > 0 {
		mcfg.ElectionTimeout = cfg.ElectionTimeout
	}
	mcfg.Dial = cfg.Dial
	if cfg.RaftSnapshotThreshold > 0 {
		mcfg.SnapshotThreshold = cfg.RaftSnapshotThreshold
	}
	mcfg.SnapshotInterval, mcfg.TrailingLogs = cfg.RaftSnapshotInterval, cfg.RaftTrailingLogs
	mcfg.MaxConns, mcfg.MaxConnsPerClient = raftMaxConns, raftMaxConnsPerClient
	mcfg.TLS = &meta.TLS{Server: n.tls.ServerConfig(), Client: n.tls.ClientConfig(), OnFail: n.handshakeFailed}
	mcfg.SyncFSM, mcfg.BootID = cfg.SyncMeta, cfg.BootID
	if n.meta, err = meta.Open(mcfg, clock, n.log.With("component", "meta")); err != nil {
		return nil, err
	}
	n.rpcCli = rpc.NewClient(n.secret, n.tls.ClientConfig(), n.resolve, 30*time.Second, cfg.Dial)
	n.meta.SetForwarder(n.rpcCli)
	if n.metrics, err = newMetrics(n); err != nil {
		return nil, err
	}
	n.rpcSrv = rpc.NewServer(n.secret, n.tls.ServerConfig(), n.meta, n, n.store, n.log.With("component", "rpc"))
	n.rpcSrv.OnTLSFailure(n.handshakeFailed)
	if err := n.initHealing(); err != nil {
		return nil, err
	}
	if err := n.initCheck(); err != nil {
		return nil, err
	}
	n.goServe("rpc", func() error {
		return n.rpcSrv.Serve(netlimit.Listen(n.rpcLn, internodeMaxConns, internodeMaxConnsPerClient))
	})

	rcfg := replication.DefaultConfig(cfg.NodeID, cfg.AZ)
	if cfg.InlineMax != 0 {
		rcfg.InlineMax = max(cfg.InlineMax, 0) // negative: off
	}
	if n.repl, err = replication.New(rcfg, n.timedMeta(), n.rpcCli, n.store, clock, n.log.With("component", "replication")); err != nil {
		return nil, err
	}
	n.startHealing()
	if err := n.startIntegrity(); err != nil {
		return nil, err
	}
	opTimeout := cfg.OpTimeout
	if opTimeout <= 0 {
		opTimeout = 30 * time.Second
	}
	gcfg := gateway.Config{DataDir: cfg.DataDir, OpTimeout: opTimeout, StaleCheckTimeout: 5 * time.Second}
	h := gateway.NewHandler(gcfg, n.timedMeta(), &readGate{Replicator: n.repl, meta: n.meta}, gateway.NewRotatingHandleCodec(n.secret, n.meta.FSM(), clock.Now), clock, n.log.With("component", "gateway"))
	var verifier [8]byte
	_, _ = rand.Read(verifier[:])
	fcfg := gateway.DefaultFrontConfig()
	fcfg.Metrics = n.metrics.nfs
	n.nfs = gateway.Serve(n.nfsLn, h, fcfg, verifier)

	n.admin = &http.Server{
		Handler:           admin.NewServer(n, n.token, n.log.With("component", "admin")),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
	var adminLn net.Listener = netlimit.Listen(n.adminLn, adminMaxConns, adminMaxConnsPerClient)
	if https, _ := cfg.adminHTTPS(); https {
		adminLn = tls.NewListener(adminLn, n.tls.AdminServerConfig())
	}
	n.goServe("admin", func() error {
		if err := n.admin.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})

	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.register()
	}()
	// The token of the generation this node's metadata holds now; a
	// rotation committed later rewrites the files.
	gen, _, err := n.meta.FSM().TokenGen()
	if err != nil {
		return nil, err
	}
	n.token = AdminToken(n.secret, gen)
	for _, f := range append([]string{filepath.Join(cfg.DataDir, "admin.token")}, cfg.TokenFiles...) {
		if err := writeFile0600(f, []byte(n.token+"\n")); err != nil {
			return nil, err
		}
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.writeTokenFiles(gen)
	}()
	return n, nil
}

func (n *Node) goServe(name string, serve func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := serve(); err != nil {
			n.log.Error("listener stopped", "listener", name, "err", err)
		}
	}()
}

// Info is this node as the cluster registers it.
func (n *Node) Info() meta.NodeInfo {
	return meta.NodeInfo{
		ID: n.cfg.NodeID, AZ: n.cfg.AZ, Region: n.cfg.Region,
		RaftAddr: n.meta.RaftAddr(), RPCAddr: advertised(n.cfg.RPCAddr, n.rpcLn),
		NFSAddr: advertised(n.cfg.NFSAddr, n.nfsLn), AdminAddr: n.AdminAddr(),
	}
}

// register makes sure the cluster knows this node under its current
// addresses: a new joining node asks a member to admit it; every other node
// proposes its own registration. It retries until done or Close.
func (n *Node) register() {
	info := n.Info()
	joining := n.cfg.Join != ""
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
		if n.registered(info) {
			if _, member := n.members()[info.ID]; member || !joining {
				return
			}
		}
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		var err error
		if joining {
			if _, member := n.members()[info.ID]; member {
				_, err = n.meta.Propose(ctx, &meta.RegisterNode{Node: info})
			} else {
				err = n.rpcCli.Join(ctx, n.cfg.Join, info)
			}
		} else if n.meta.Leader() != "" {
			_, err = n.meta.Propose(ctx, &meta.RegisterNode{Node: info})
		}
		cancel()
		if err != nil && attempt%10 == 9 {
			n.log.Warn("still registering with the cluster", "err", err)
		}
	}
}

func (n *Node) members() map[string]bool {
	m, err := n.meta.Members()
	if err != nil {
		return nil
	}
	return m
}

func (n *Node) registered(info meta.NodeInfo) bool {
	nodes, err := n.meta.FSM().Nodes()
	if err != nil {
		return false
	}
	for _, x := range nodes {
		if x.ID == info.ID {
			return x.RaftAddr == info.RaftAddr && x.RPCAddr == info.RPCAddr &&
				x.NFSAddr == info.NFSAddr && x.AdminAddr == info.AdminAddr && x.AZ == info.AZ
		}
	}
	return false
}

// Join admits a new node (rpc.Joiner). On a follower it forwards to the
// leader. The leader registers the node, then adds it to Raft: as a voter
// when its AZ has no voter yet and there are fewer than 5 voters (so losing
// any one AZ keeps a majority), otherwise as a non-voter.
func (n *Node) Join(ctx context.Context, info meta.NodeInfo) error {
	if info.ID == "" || info.RaftAddr == "" || info.RPCAddr == "" || info.AZ == "" {
		return fmt.Errorf("%w: join needs node ID, AZ, raft and rpc addresses", meta.ErrInvalid)
	}
	if !n.meta.IsLeader() {
		leader := n.meta.Leader()
		if leader == "" {
			return meta.ErrNoLeader
		}
		return n.rpcCli.JoinLeader(ctx, leader, info)
	}
	if _, err := n.meta.Propose(ctx, &meta.RegisterNode{Node: info}); err != nil {
		return err
	}
	members, err := n.meta.Members()
	if err != nil {
		return err
	}
	if _, ok := members[info.ID]; ok {
		return nil
	}
	return n.meta.AddMember(info.ID, info.RaftAddr, n.wantVoter(info, members))
}

func (n *Node) wantVoter(info meta.NodeInfo, members map[string]bool) bool {
	nodes, _ := n.meta.FSM().Nodes()
	azOf := map[string]string{}
	for _, x := range nodes {
		azOf[x.ID] = x.AZ
	}
	voters := 0
	for id, voter := range members {
		if !voter {
			continue
		}
		voters++
		if azOf[id] == info.AZ {
			return false
		}
	}
	return voters < 5
}

// resolve maps a node ID to its RPC address from the registered nodes.
func (n *Node) resolve(id string) (string, error) {
	if id == n.cfg.NodeID {
		return advertised(n.cfg.RPCAddr, n.rpcLn), nil
	}
	nodes, err := n.meta.FSM().Nodes()
	if err != nil {
		return "", err
	}
	for _, x := range nodes {
		if x.ID == id {
			return x.RPCAddr, nil
		}
	}
	return "", fmt.Errorf("node %s is not registered", id)
}

// Admin backend (admin.Backend).

// NodeID is this node's ID.
func (n *Node) NodeID() string { return n.cfg.NodeID }

// AZ is this node's availability zone.
func (n *Node) AZ() string { return n.cfg.AZ }

// Status is this node's Raft view.
func (n *Node) Status() meta.Status { return n.meta.Status() }

// FSM is the local metadata state.
func (n *Node) FSM() *meta.FSM { return n.meta.FSM() }

// Propose commits a command (forwarded to the leader when needed).
func (n *Node) Propose(ctx context.Context, cmd meta.Command) (*meta.Result, error) {
	return n.meta.Propose(ctx, cmd)
}

// Ready reports nil when the node has a leader and is registered.
func (n *Node) Ready() error {
	if n.meta.Leader() == "" {
		return errors.New("no metadata leader")
	}
	if !n.registered(n.Info()) {
		return errors.New("not registered with the cluster yet")
	}
	if err := n.healReady(); err != nil {
		return err
	}
	return nil
}

// Meta is the metadata node (tests and the embedded cluster use it).
func (n *Node) Meta() *meta.Node { return n.meta }

// NFSInflight is the number of NFS requests the gateway is serving now
// (admin.NFSStats, for /metrics).
func (n *Node) NFSInflight() int {
	now, _ := n.nfs.InFlight()
	return int(now)
}

// Gateway is the NFS gateway's server.
func (n *Node) Gateway() *gateway.Server { return n.nfs }

// Store is the local chunk store.
func (n *Node) Store() *chunkstore.Store { return n.store }

// NFSAddr, AdminAddr and RPCAddr are the advertised listener addresses.
func (n *Node) NFSAddr() string { return advertised(n.cfg.NFSAddr, n.nfsLn) }

// AdminAddr is the admin API's address, as a URL ("https://host:port")
// when it serves https.
func (n *Node) AdminAddr() string {
	a := advertised(n.cfg.AdminAddr, n.adminLn)
	if https, _ := n.cfg.adminHTTPS(); https {
		return "https://" + a
	}
	return a
}

// AdminPeerTLS verifies other nodes' https admin APIs: the cluster CA, and
// the name every node certificate carries (admin.PeerTLS).
func (n *Node) AdminPeerTLS() *tls.Config { return n.tls.ClientConfig() }
func (n *Node) RPCAddr() string           { return advertised(n.cfg.RPCAddr, n.rpcLn) }

// listen binds an advertised address (a host name binds every interface).
func listen(addr string) (net.Listener, error) {
	bind, err := meta.ListenAddr(addr)
	if err != nil {
		return nil, err
	}
	return net.Listen("tcp", bind)
}

// advertised is the address peers use: as configured, except that port 0
// (tests) becomes the port actually bound.
func advertised(configured string, l net.Listener) string {
	host, port, err := net.SplitHostPort(configured)
	if err != nil || port != "0" {
		return configured
	}
	_, bound, _ := net.SplitHostPort(l.Addr().String())
	return net.JoinHostPort(host, bound)
}

// Token is the admin API token.

// Secret is the cluster secret.
func (n *Node) Secret() []byte { return n.secret }

// Close stops every listener and closes the stores. It is what a clean
// shutdown (SIGTERM, Ctrl-C) does; the node stays a member of the cluster.
func (n *Node) Close() error {
	var errs []error
	n.closed.Do(func() {
		if n.cancel != nil {
			n.cancel()
		}
		if n.nfs != nil {
			errs = append(errs, n.nfs.Close())
		} else if n.nfsLn != nil {
			n.nfsLn.Close()
		}
		if n.admin != nil {
			errs = append(errs, n.admin.Close())
		} else if n.adminLn != nil {
			n.adminLn.Close()
		}
		if n.rpcSrv != nil {
			errs = append(errs, n.rpcSrv.Close())
		} else if n.rpcLn != nil {
			n.rpcLn.Close()
		}
		n.wg.Wait()
		if n.rpcCli != nil {
			n.rpcCli.Close()
		}
		if n.meta != nil {
			errs = append(errs, n.meta.Close())
		}
		if n.store != nil {
			errs = append(errs, n.store.Close())
		}
	})
	return errors.Join(errs...)
}

// loadSecret returns the configured secret, the one in the data directory,
// or (bootstrapping a new cluster) a new one written there.
func loadSecret(cfg Config) ([]byte, error) {
	path := filepath.Join(cfg.DataDir, "cluster.secret")
	if len(cfg.Secret) > 0 {
		if len(cfg.Secret) < 16 {
			return nil, errors.New("node: the cluster secret must be at least 16 bytes")
		}
		return cfg.Secret, writeFile0600(path, cfg.Secret)
	}
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 16 {
		return b, nil
	}
	if !cfg.Bootstrap {
		return nil, fmt.Errorf("node: no cluster secret in %s: give the cluster's secret with --secret-file", path)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b = []byte(hex.EncodeToString(b))
	return b, writeFile0600(path, b)
}

func writeFile0600(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("node: write %s: %w", path, err)
	}
	return nil
}
