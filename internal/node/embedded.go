package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// EmbeddedConfig describes the ready-to-mount development cluster: three
// nodes in three AZs on loopback in one process.
type EmbeddedConfig struct {
	DataDir string
	Host    string
	// Base ports; node i (0..2) listens on base+i.
	NFSPort, AdminPort, RaftPort, RPCPort int
	// Volume is created when missing, exported as /<Volume>.
	Volume string
	// ReadyTimeout bounds the wait for the cluster to form.
	ReadyTimeout time.Duration
}

// DefaultEmbedded is the embedded default of fsrepd: NFS on 20490-20492,
// admin on 19090-19092, volume "default".
func DefaultEmbedded(dataDir string) EmbeddedConfig {
	return EmbeddedConfig{
		DataDir: dataDir, Host: "127.0.0.1",
		NFSPort: 20490, AdminPort: 19090, RaftPort: 21000, RPCPort: 21100,
		Volume: "default", ReadyTimeout: 60 * time.Second,
	}
}

// Embedded is a running embedded cluster.
type Embedded struct {
	Nodes []*Node
}

// StartEmbedded starts (or restarts, reusing DataDir) the three nodes and
// waits until the volume exists and every node is ready.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig, clock Clock, log *slog.Logger) (*Embedded, error) {
	e := &Embedded{}
	addr := func(base, i int) string { return fmt.Sprintf("%s:%d", cfg.Host, base+i) }
	caFile, caKey, err := EnsureCA(filepath.Join(cfg.DataDir, "tls"), "embedded", clock.Now())
	if err != nil {
		return nil, err
	}
	for i := 0; i < 3; i++ {
		nc := Config{
			NodeID: fmt.Sprintf("n%d", i+1), AZ: fmt.Sprintf("az%d", i+1), Region: "local",
			DataDir:  filepath.Join(cfg.DataDir, fmt.Sprintf("n%d", i+1)),
			RaftAddr: addr(cfg.RaftPort, i), RPCAddr: addr(cfg.RPCPort, i),
			NFSAddr: addr(cfg.NFSPort, i), AdminAddr: addr(cfg.AdminPort, i),
			TLSCAFile: caFile, TLSCAKeyFile: caKey,
		}
		if i == 0 {
			nc.TokenFiles = []string{filepath.Join(cfg.DataDir, "admin.token")}
			nc.Bootstrap = true
		} else {
			nc.Join = e.Nodes[0].RPCAddr()
			nc.Secret = e.Nodes[0].Secret()
		}
		n, err := Start(nc, clock, log)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.Nodes = append(e.Nodes, n)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	if err := e.ensureVolume(ctx, cfg.Volume); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// ensureVolume waits for all nodes to be ready and creates the volume if
// it is missing: root directory world-writable with the sticky bit (like
// /tmp), exported with no_root_squash, so that root clients of the
// development cluster can use it as a local disk.
func (e *Embedded) ensureVolume(ctx context.Context, name string) error {
	var lastErr error
	for {
		lastErr = e.tryEnsureVolume(ctx, name)
		if lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node: embedded cluster not ready: %w", lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (e *Embedded) tryEnsureVolume(ctx context.Context, name string) error {
	for _, n := range e.Nodes {
		if err := n.Ready(); err != nil {
			return fmt.Errorf("%s: %w", n.NodeID(), err)
		}
	}
	n := e.Nodes[0]
	if _, err := n.FSM().Volume(name); err == nil {
		for _, o := range e.Nodes[1:] {
			if _, err := o.FSM().Volume(name); err != nil {
				return fmt.Errorf("%s: %w", o.NodeID(), err)
			}
		}
		return nil
	}
	// The development cluster trusts its root clients (no_root_squash);
	// volumes made with fsrepctl squash root by default.
	ex := meta.DefaultExport()
	ex.Squash = meta.SquashNone
	_, err := n.Propose(ctx, &meta.CreateVolume{
		Name: name, Replicas: 3, WriteQuorum: replication.DefaultWriteQuorum(3),
		ChunkSize: 4 << 20, RootMode: 0o1777, Export: &ex,
	})
	if err != nil && !errors.Is(err, meta.ErrVolumeExist) {
		return err
	}
	return errors.New("volume created; waiting for every node to apply it")
}

// Close stops the nodes.
func (e *Embedded) Close() error {
	var errs []error
	for i := len(e.Nodes) - 1; i >= 0; i-- {
		errs = append(errs, e.Nodes[i].Close())
	}
	return errors.Join(errs...)
}
