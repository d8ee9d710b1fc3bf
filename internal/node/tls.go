package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/fsrep/fsrep/internal/pki"
)

// Transport security (docs/security.md). Every internode connection, Raft
// and RPC, is mutual TLS with the cluster CA as the only root: a process
// without a certificate from that CA cannot join, replicate, read chunks
// or forward commands, whatever secret it holds.

// tlsFiles are the paths of a node's TLS material, defaults filled in.
type tlsFiles struct {
	ca, cert, key, caKey string
}

func (c Config) tlsFiles() tlsFiles {
	dir := filepath.Join(c.DataDir, "tls")
	f := tlsFiles{ca: c.TLSCAFile, cert: c.TLSCertFile, key: c.TLSKeyFile, caKey: c.TLSCAKeyFile}
	def := func(p *string, name string) {
		if *p == "" {
			*p = filepath.Join(dir, name)
		}
	}
	def(&f.ca, pki.CAFile)
	def(&f.cert, pki.CertFile)
	def(&f.key, pki.KeyFile)
	def(&f.caKey, pki.CAKeyFile)
	return f
}

// loadIdentity returns the node's TLS identity: the certificate it has,
// or one it issues itself with the CA key it was given, or, bootstrapping
// a new cluster with no CA, a new CA and certificate in <data-dir>/tls.
func loadIdentity(cfg Config, now time.Time) (*pki.Identity, error) {
	f := cfg.tlsFiles()
	id, err := pki.LoadIdentity(f.ca, f.cert, f.key, now)
	if !errors.Is(err, pki.ErrNoCertificate) && !errors.Is(err, os.ErrNotExist) {
		return id, err
	}
	haveCA, haveKey := exists(f.ca), exists(f.caKey)
	switch {
	case haveCA && haveKey:
		ca, err := pki.LoadCA(f.ca, f.caKey)
		if err != nil {
			return nil, err
		}
		if err := issueOwn(ca, cfg, f, now); err != nil {
			return nil, err
		}
	case !haveCA && !haveKey && cfg.Bootstrap && cfg.TLSCAFile == "" && cfg.TLSCAKeyFile == "":
		ca, err := pki.NewCA(cfg.NodeID+" "+now.UTC().Format("2006-01-02"), now)
		if err != nil {
			return nil, err
		}
		dir := filepath.Dir(f.ca)
		if err := ca.Save(dir); err != nil {
			return nil, err
		}
		if err := issueOwn(ca, cfg, f, now); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("node: no TLS certificate at %s: give this node a certificate signed by the cluster CA "+
			"(--tls-cert, --tls-key, and the CA certificate with --tls-ca), or the CA's certificate and key "+
			"(--tls-ca, --tls-ca-key) so that it issues its own; `fsrepd tls` makes both (docs/security.md)", f.cert)
	}
	return pki.LoadIdentity(f.ca, f.cert, f.key, now)
}

// issueOwn writes a certificate for this node, naming the hosts of its
// listen addresses, where the node looks for its certificate.
func issueOwn(ca *pki.CA, cfg Config, f tlsFiles, now time.Time) error {
	certPEM, keyPEM, err := ca.Issue(cfg.NodeID, CertHosts(cfg.RaftAddr, cfg.RPCAddr, cfg.AdminAddr), now)
	if err != nil {
		return err
	}
	for _, p := range []string{f.cert, f.key} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	if !exists(f.ca) {
		if err := pki.WriteFile(f.ca, ca.CertPEM(), 0o644); err != nil {
			return err
		}
	}
	if err := pki.WriteFile(f.key, keyPEM, 0o600); err != nil {
		return err
	}
	return pki.WriteFile(f.cert, certPEM, 0o644)
}

// CertHosts are the names a node certificate carries besides the node ID:
// the hosts of the node's addresses, and loopback (health checks and
// fsrepctl on the node's own machine dial 127.0.0.1).
func CertHosts(addrs ...string) []string {
	seen := map[string]bool{}
	out := []string{}
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err == nil {
			add(h)
		}
	}
	add("127.0.0.1")
	add("localhost")
	return out
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TLSFailures counts the failed TLS handshakes on this node's internode
// listeners (Raft and RPC) since it started.
func (n *Node) TLSFailures() int64 { return n.tlsFailures.Load() }

// handshakeFailed hears a failed TLS handshake on an internode listener: a
// peer without a certificate from the cluster CA, a scanner, or a node of
// another cluster. It logs the first one and then at most one line a
// minute with the count, so that a flood cannot fill the log.
func (n *Node) handshakeFailed(remote net.Addr, err error) {
	total := n.tlsFailures.Add(1)
	now := n.clock.Now().UnixNano()
	last := n.tlsFailLogged.Load()
	if last != 0 && now-last < int64(time.Minute) || !n.tlsFailLogged.CompareAndSwap(last, now) {
		return
	}
	n.log.Warn("refused an internode connection: TLS handshake failed", "remote", remote.String(), "err", err, "failures_total", total)
}

// EnsureCA returns the CA certificate and key files in dir, creating a new
// cluster CA there first when dir has none (the embedded cluster and the
// test cluster keep one CA for all their nodes).
func EnsureCA(dir, name string, now time.Time) (caFile, caKeyFile string, err error) {
	caFile, caKeyFile = filepath.Join(dir, pki.CAFile), filepath.Join(dir, pki.CAKeyFile)
	if exists(caFile) && exists(caKeyFile) {
		return caFile, caKeyFile, nil
	}
	ca, err := pki.NewCA(name, now)
	if err != nil {
		return "", "", err
	}
	return caFile, caKeyFile, ca.Save(dir)
}

// Connection bounds of the listeners besides NFS (whose front has its own,
// gateway.FrontConfig): internode RPC and Raft serve a handful of peers
// with pooled connections, the admin API a few operators and scrapers.
// A client past a bound has its new connections closed at once
// (internal/netlimit); established connections keep working.
const (
	internodeMaxConns          = 2048
	internodeMaxConnsPerClient = 512
	adminMaxConns              = 256
	adminMaxConnsPerClient     = 64
	// Raft's transport gives every accepted connection a 256 KiB read
	// buffer before the TLS handshake is even read (hashicorp/raft
	// handleConn): at the RPC bounds, one client that connects and says
	// nothing would hold 135 MiB. A peer needs a few connections (a pool
	// of three, the replication pipeline, a vote or a snapshot at once).
	raftMaxConns          = 256
	raftMaxConnsPerClient = 64
)
