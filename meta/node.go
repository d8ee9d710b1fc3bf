package meta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Config configures a metadata node.
type Config struct {
	NodeID  string
	DataDir string
	// RaftAddr is the address raft listens on and advertises to its peers.
	RaftAddr string
	// Bootstrap makes this node form a new single-voter cluster when it has
	// no Raft state yet. Exactly one node of a new cluster bootstraps.
	Bootstrap bool

	// Raft timing. The defaults are tuned for fast failover on a LAN
	// (measured: 500 ms heartbeat/election gave a median 1.1 s to a new
	// leader against 2.4 s with hashicorp/raft's defaults).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// ProposeTimeout bounds how long Propose waits for a leader and a commit.
	ProposeTimeout time.Duration
	// SnapshotThreshold is the number of log entries between snapshots;
	// SnapshotInterval how often raft checks it (zero: raft's 120 s);
	// TrailingLogs the entries kept after a snapshot for followers that
	// lag (zero: raft's 10240; fewer sends lagging followers snapshots).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// Dial, if set, opens every Raft connection to a peer (tests cut the
	// network with it); nil dials TCP directly.
	Dial DialFunc
	// TLS secures the Raft transport with mutual TLS; nil is plain TCP,
	// which only this package's tests use (fsrep nodes always set it).
	TLS *TLS
	// MaxConns and MaxConnsPerClient bound the Raft listener's open
	// connections (internal/netlimit); zero is no bound.
	MaxConns, MaxConnsPerClient int
	// SyncFSM fsyncs meta.db on every apply. Off (the default), the Raft
	// log's fsync is the only one on the metadata path and meta.db is
	// rebuilt from the log after a machine crash (fsm_sync.go).
	SyncFSM bool
	// BootID names the kernel boot for that rebuild decision; "" reads it
	// from the kernel (tests set it to play a machine restart).
	BootID string
}

// DialFunc opens a connection the way net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// DefaultConfig returns a Config with the tuned timings.
func DefaultConfig(nodeID, dataDir, raftAddr string) Config {
	return Config{
		NodeID: nodeID, DataDir: dataDir, RaftAddr: raftAddr,
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		ProposeTimeout:     10 * time.Second,
		SnapshotThreshold:  8192,
	}
}

// Validate checks the fields against each other.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("meta: node ID is required")
	case c.DataDir == "":
		return errors.New("meta: data directory is required")
	case c.RaftAddr == "":
		return errors.New("meta: raft address is required")
	case c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return errors.New("meta: leader lease timeout must not exceed the heartbeat timeout")
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return errors.New("meta: election timeout must be at least the heartbeat timeout")
	case c.ProposeTimeout <= 0:
		return errors.New("meta: propose timeout must be positive")
	}
	return nil
}

// Forwarder sends work to the leader over internode RPC. The RPC layer
// implements it; meta only knows the leader's node ID.
type Forwarder interface {
	// ForwardApply asks the leader to apply a command entry and returns its result.
	ForwardApply(ctx context.Context, leaderID string, entry []byte) (*Result, error)
	// LeaderIndex returns the leader's applied index (a read barrier).
	LeaderIndex(ctx context.Context, leaderID string) (uint64, error)
}

// Clock is the time source of the proposer (Apply never reads one).
type Clock interface{ Now() time.Time }

// MaxEntrySize bounds one command entry in the Raft log.
const MaxEntrySize = 1 << 20

// Node is one member of the metadata Raft group.
type Node struct {
	cfg   Config
	log   *slog.Logger
	clock Clock
	fsm   *FSM
	raft  *raft.Raft
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore

	fwdMu sync.RWMutex
	fwd   Forwarder

	leaderMu     sync.Mutex
	leaderCancel context.CancelFunc
	leaderLoops  []func(ctx context.Context)
	leaderWG     sync.WaitGroup
	done         chan struct{}
	watchDone    chan struct{}

	// leaderChanges counts the new leaders this node has seen (metrics).
	leaderChanges atomic.Uint64
}

// Open starts the metadata node: it opens meta.db and raft.db in DataDir,
// starts the Raft transport and, when asked and the node is new, bootstraps
// a one-voter cluster.
func Open(cfg Config, clock Clock, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	opts := FSMOptions{NoSync: !cfg.SyncFSM, BootID: cfg.BootID}
	if opts.BootID == "" {
		opts.BootID = BootID()
	}
	if opts.BootID == "" && opts.NoSync {
		log.Info("no kernel boot ID to tell a machine crash from a process crash: meta.db is synced on every apply")
		opts.NoSync = false
	}
	fsm, err := OpenFSMWith(filepath.Join(cfg.DataDir, "meta.db"), log.With("component", "fsm"), opts)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, clock: clock, fsm: fsm, done: make(chan struct{}), watchDone: make(chan struct{})}
	if err := n.startRaft(); err != nil {
		fsm.Close()
		return nil, err
	}
	go n.watchLeadership()
	return n, nil
}

func (n *Node) startRaft() error {
	hlog := newHCLog(n.log.With("component", "raft"))
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	// Applies queue (up to MaxAppendEntries) instead of each waiting for
	// the leader loop, which is busy in the log's fsync half the time:
	// measured on the embedded cluster, 17% more deletes per second. The
	// cost raft names, an Apply timeout that bounds only the enqueue, is
	// none here: applyLocal never relied on it (it waits for the future).
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	if n.cfg.SnapshotInterval > 0 {
		rc.SnapshotInterval = n.cfg.SnapshotInterval
	}
	if n.cfg.TrailingLogs > 0 {
		rc.TrailingLogs = n.cfg.TrailingLogs
	}
	rc.Logger = hlog

	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(n.cfg.DataDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("meta: open raft.db: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 2, hlog)
	if err != nil {
		store.Close()
		return fmt.Errorf("meta: snapshot store: %w", err)
	}
	// meta.db is durable on its own: when it is at least as new as the
	// latest snapshot, restoring that snapshot at start would only throw
	// work away (the replayed entries it already holds are skipped by index).
	if list, err := snaps.List(); err == nil && len(list) > 0 && n.fsm.AppliedIndex() >= list[0].Index {
		rc.NoSnapshotRestoreOnStart = true
	}
	trans, err := newTransport(n.cfg, hlog)
	if err != nil {
		store.Close()
		return fmt.Errorf("meta: raft transport on %s: %w", n.cfg.RaftAddr, err)
	}
	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		trans.Close()
		store.Close()
		return fmt.Errorf("meta: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		store.Close()
		return fmt.Errorf("meta: start raft: %w", err)
	}
	// Leader changes are counted in the observer's filter, which raft
	// calls synchronously for every observation: an atomic add there needs
	// no channel, no draining goroutine, and can drop nothing. The filter
	// rejects everything, so nothing is ever sent.
	r.RegisterObserver(raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != "" {
			n.leaderChanges.Add(1)
		}
		return false
	}))
	if n.cfg.Bootstrap && !existing {
		cfg := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.NodeID), Address: trans.LocalAddr(),
		}}}
		if err := r.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			r.Shutdown()
			trans.Close()
			store.Close()
			return fmt.Errorf("meta: bootstrap: %w", err)
		}
	}
	n.raft, n.trans, n.store = r, trans, store
	return nil
}

// SetForwarder installs the RPC client used to reach the leader. It is set
// after Open because the RPC layer itself needs the node.
func (n *Node) SetForwarder(f Forwarder) {
	n.fwdMu.Lock()
	n.fwd = f
	n.fwdMu.Unlock()
}

func (n *Node) forwarder() Forwarder {
	n.fwdMu.RLock()
	defer n.fwdMu.RUnlock()
	return n.fwd
}

// LeaderChanges is how many times this node has seen a new Raft leader
// (itself included) since it started; losing a leader without learning a
// new one does not count.
func (n *Node) LeaderChanges() uint64 { return n.leaderChanges.Load() }

// FSM exposes the local state for reads.
func (n *Node) FSM() *FSM { return n.fsm }

// ID is this node's ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// RaftAddr is the address the Raft transport listens on.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// IsLeader reports whether this node is the Raft leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Fresh reports whether this node's metadata is known to be recent: it is
// the leader (a leader cut off from its majority steps down within the
// leader lease), or a follower that heard from its leader within d. A node
// on the minority side of a partition stops being fresh d after the cut;
// the data path then refuses reads rather than serve what may be old.
func (n *Node) Fresh(d time.Duration) bool {
	if n.IsLeader() {
		return true
	}
	last := n.raft.LastContact()
	return n.Leader() != "" && !last.IsZero() && time.Since(last) < d
}

// Leader returns the current leader's node ID, or "" when there is none.
func (n *Node) Leader() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// Status is a summary of this node's Raft state.
type Status struct {
	State        string   `json:"state"`
	Leader       string   `json:"leader"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	Voters       []string `json:"voters"`
	NonVoters    []string `json:"non_voters"`
}

// Status reports this node's view of the Raft group.
func (n *Node) Status() Status {
	st := Status{
		State: n.raft.State().String(), Leader: n.Leader(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.fsm.AppliedIndex(),
	}
	if t, err := parseUint(n.raft.Stats()["term"]); err == nil {
		st.Term = t
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				st.Voters = append(st.Voters, string(s.ID))
			} else {
				st.NonVoters = append(st.NonVoters, string(s.ID))
			}
		}
	}
	return st
}

func parseUint(s string) (uint64, error) {
	var v uint64
	_, err := fmt.Sscan(s, &v)
	return v, err
}

// NewRequestID returns a random request ID for an idempotent command.
func NewRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Propose commits cmd through Raft and returns its result once this node has
// applied it, so the caller reads its own write locally. It proposes locally
// on the leader and forwards otherwise, retrying across leader changes with
// the same request ID (a retry can never apply twice). Without a leader for
// ProposeTimeout it returns ErrNoLeader. A command that fails its
// preconditions returns its result and its error (res.Err()).
func (n *Node) Propose(ctx context.Context, cmd Command) (*Result, error) {
	h := HeaderOf(cmd)
	if h.Time == 0 {
		h.Time = n.clock.Now().UnixNano()
	}
	if h.RequestID == "" {
		h.RequestID = NewRequestID()
	}
	entry, err := EncodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ProposeTimeout)
	defer cancel()
	backoff := 20 * time.Millisecond
	for {
		res, err := n.proposeOnce(ctx, entry)
		if err == nil {
			if err := n.WaitApplied(ctx, res.Index); err != nil {
				return nil, err
			}
			return res, res.Err()
		}
		if !errors.Is(err, ErrNoLeader) {
			// The leader answered and refused, or raft is shutting down:
			// retrying cannot help.
			return nil, err
		}
		n.log.Debug("propose retried", "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%v)", ErrNoLeader, err)
		case <-n.done:
			return nil, fmt.Errorf("%w: node stopping", ErrNoLeader)
		case <-time.After(backoff):
		}
		if backoff < 200*time.Millisecond {
			backoff *= 2
		}
	}
}

func (n *Node) proposeOnce(ctx context.Context, entry []byte) (*Result, error) {
	if n.IsLeader() {
		return n.applyLocal(ctx, entry)
	}
	leader := n.Leader()
	fwd := n.forwarder()
	if leader == "" || fwd == nil {
		return nil, ErrNoLeader
	}
	return fwd.ForwardApply(ctx, leader, entry)
}

// ApplyForwarded applies an entry forwarded by another node. It checks that
// the entry decodes first: a peer must not be able to stop the cluster with
// an entry no node can apply.
func (n *Node) ApplyForwarded(ctx context.Context, entry []byte) (*Result, error) {
	if _, err := DecodeCommand(entry); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(entry) > MaxEntrySize {
		return nil, fmt.Errorf("%w: command of %d bytes exceeds %d", ErrInvalid, len(entry), MaxEntrySize)
	}
	if !n.IsLeader() {
		return nil, ErrNoLeader
	}
	return n.applyLocal(ctx, entry)
}

func (n *Node) applyLocal(ctx context.Context, entry []byte) (*Result, error) {
	timeout := n.cfg.ProposeTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := n.raft.Apply(entry, timeout)
	// Queued applies (BatchApplyCh) are not answered if raft shuts down
	// before taking them: wait for the context too. A command given up on
	// here may still commit; its request ID makes a retry safe.
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
	}
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
			errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrEnqueueTimeout) {
			return nil, fmt.Errorf("%w: %v", ErrNoLeader, err)
		}
		return nil, fmt.Errorf("meta: raft apply: %w", err)
	}
	res, ok := f.Response().(*Result)
	if !ok {
		return nil, fmt.Errorf("meta: unexpected apply response %T", f.Response())
	}
	return res, nil
}

// WaitApplied blocks until this node has applied index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		cur, ch := n.fsm.appliedChange()
		if cur >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("meta: waiting for index %d (at %d): %w", index, cur, ctx.Err())
		case <-n.done:
			return errors.New("meta: node stopped")
		}
	}
}

// LeaderAppliedIndex is served to followers for their read barrier: it
// confirms leadership with a barrier (every entry committed so far, by this
// leader or its predecessors, is applied here) and returns this FSM's
// applied index. Raft's commit index would not do: a new leader's first
// entry is a no-op the FSM never sees, so a follower could wait for it
// forever.
func (n *Node) LeaderAppliedIndex() (uint64, error) {
	if !n.IsLeader() {
		return 0, ErrNoLeader
	}
	if err := n.raft.Barrier(n.cfg.ProposeTimeout).Error(); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	return n.fsm.AppliedIndex(), nil
}

// CatchUp waits until this node has applied everything the leader had
// committed when CatchUp was called (a read barrier). The gateway uses it
// before answering "no such inode" for a handle minted elsewhere.
func (n *Node) CatchUp(ctx context.Context) error {
	for {
		err := n.catchUpOnce(ctx)
		if !errors.Is(err, ErrNoLeader) {
			return err
		}
		// No leader yet (an election is running): wait for one.
		select {
		case <-ctx.Done():
			return err
		case <-n.done:
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *Node) catchUpOnce(ctx context.Context) error {
	if n.IsLeader() {
		if err := n.raft.Barrier(n.cfg.ProposeTimeout).Error(); err != nil {
			return fmt.Errorf("%w: %v", ErrNoLeader, err)
		}
		return nil
	}
	leader, fwd := n.Leader(), n.forwarder()
	if leader == "" || fwd == nil {
		return ErrNoLeader
	}
	idx, err := fwd.LeaderIndex(ctx, leader)
	if err != nil {
		return err
	}
	return n.WaitApplied(ctx, idx)
}

// AddMember adds a node to the Raft configuration (leader only).
func (n *Node) AddMember(id, raftAddr string, voter bool) error {
	if !n.IsLeader() {
		return ErrNoLeader
	}
	var f raft.IndexFuture
	if voter {
		f = n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.cfg.ProposeTimeout)
	} else {
		f = n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.cfg.ProposeTimeout)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("meta: add %s: %w", id, err)
	}
	return nil
}

// RemoveMember removes a node from the Raft configuration (leader only).
func (n *Node) RemoveMember(id string) error {
	if !n.IsLeader() {
		return ErrNoLeader
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ProposeTimeout).Error(); err != nil {
		return fmt.Errorf("meta: remove %s: %w", id, err)
	}
	return nil
}

// Members returns the Raft configuration: ID -> voter.
func (n *Node) Members() (map[string]bool, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, s := range f.Configuration().Servers {
		out[string(s.ID)] = s.Suffrage == raft.Voter
	}
	return out, nil
}

// TransferLeadership hands leadership to voter id, or with id "" to the
// voter raft finds most up to date, and returns once raft has done so (the
// new leader won its election) or given up (ctx, or raft's own bound of an
// election timeout). It runs on the leader only: a follower returns an error
// matching ErrNoLeader that names the leader, and the caller forwards (the
// admin API forwards the request to the leader's admin API). Naming the
// leader itself changes nothing and succeeds; naming a node that is not a
// voter is ErrInvalid, one that is not a member ErrNotExist.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return fmt.Errorf("%w: %s is not the leader (the leader is %q); ask the leader", ErrNoLeader, n.cfg.NodeID, n.Leader())
	}
	if id == n.cfg.NodeID {
		return nil
	}
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		cf := n.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return fmt.Errorf("meta: leadership transfer: %w", err)
		}
		i := slices.IndexFunc(cf.Configuration().Servers, func(s raft.Server) bool { return string(s.ID) == id })
		if i < 0 {
			return fmt.Errorf("%w: %q is not a member of the Raft group", ErrNotExist, id)
		}
		srv := cf.Configuration().Servers[i]
		if srv.Suffrage != raft.Voter {
			return fmt.Errorf("%w: %q is not a voter, so it cannot lead", ErrInvalid, id)
		}
		f = n.raft.LeadershipTransferToServer(srv.ID, srv.Address)
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
				return fmt.Errorf("%w: %v", ErrNoLeader, err)
			}
			return fmt.Errorf("meta: leadership transfer to %q: %w", id, err)
		}
		return nil
	case <-ctx.Done():
		// raft finishes (or abandons) the transfer on its own within an
		// election timeout; the goroutine ends with it.
		return fmt.Errorf("meta: leadership transfer to %q: %w", id, ctx.Err())
	}
}

// RunWhileLeader registers a loop that runs, under a context cancelled on
// step-down or Close, each time this node becomes leader.
func (n *Node) RunWhileLeader(loop func(ctx context.Context)) {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	n.leaderLoops = append(n.leaderLoops, loop)
	if n.leaderCancel != nil {
		ctx, cancel := context.WithCancel(context.Background())
		prev := n.leaderCancel
		n.leaderCancel = func() { prev(); cancel() }
		n.startLoop(ctx, loop)
	}
}

// startLoop runs a leader loop once this leader's FSM holds every entry
// committed before its term (a barrier): a new leader may not yet have
// applied the last commits of the previous term, and the healer, the
// garbage collector and node removal must not judge from that state.
func (n *Node) startLoop(ctx context.Context, loop func(context.Context)) {
	n.leaderWG.Add(1)
	go func() {
		defer n.leaderWG.Done()
		for {
			err := n.raft.Barrier(n.cfg.ProposeTimeout).Error()
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond): // backoff before the next barrier
			}
		}
		if ctx.Err() == nil {
			loop(ctx)
		}
	}()
}

// watchLeadership is the one consumer of raft's leadership notifications.
func (n *Node) watchLeadership() {
	defer close(n.watchDone)
	ch := n.raft.LeaderCh()
	for {
		select {
		case <-n.done:
			n.stepDown()
			return
		case leader := <-ch:
			if leader {
				n.log.Info("became metadata leader")
				n.leaderMu.Lock()
				if n.leaderCancel == nil {
					ctx, cancel := context.WithCancel(context.Background())
					n.leaderCancel = cancel
					for _, l := range n.leaderLoops {
						n.startLoop(ctx, l)
					}
				}
				n.leaderMu.Unlock()
			} else {
				n.log.Info("lost metadata leadership")
				n.stepDown()
			}
		}
	}
}

func (n *Node) stepDown() {
	n.leaderMu.Lock()
	if n.leaderCancel != nil {
		n.leaderCancel()
		n.leaderCancel = nil
	}
	n.leaderMu.Unlock()
}

// Close stops Raft and closes the stores. It does not leave the cluster.
func (n *Node) Close() error {
	select {
	case <-n.done:
		return nil
	default:
	}
	close(n.done)
	<-n.watchDone
	n.leaderWG.Wait()
	err := n.raft.Shutdown().Error()
	// Close the pooled connections to peers too: the transport's Close
	// leaves them open, and with them a reader goroutine on each peer.
	n.trans.CloseStreams()
	if cerr := n.trans.Close(); err == nil {
		err = cerr
	}
	if cerr := n.store.Close(); err == nil {
		err = cerr
	}
	if cerr := n.fsm.Close(); err == nil {
		err = cerr
	}
	return err
}

// newHCLog bridges raft's hclog to slog (warnings and errors only: raft's
// info logs are chatty on every election).
func newHCLog(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.Warn,
		Output: slogWriter{l},
	})
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	for len(msg) > 0 && (msg[len(msg)-1] == '\n') {
		msg = msg[:len(msg)-1]
	}
	w.l.Warn(msg)
	return len(p), nil
}
