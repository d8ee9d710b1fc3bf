package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/internal/node"
	"github.com/fsrep/fsrep/internal/pki"
)

// TestInternodeTrafficIsEncrypted captures every byte on the internode
// connections (Raft and RPC, both directions) while a file is written
// through one node and read through another, and finds none of the file's
// bytes or names in the capture: what crosses between AZs is TLS.
func TestInternodeTrafficIsEncrypted(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	captured := c.Capture()

	big := make([]byte, 3<<20) // chunks: the RPC data path
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	small := []byte("a small file's text, which lives in the metadata: SMALL-FILE-MARKER-7f3a")
	name := "secret-name-MARKER-9c21.txt"

	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for path, data := range map[string][]byte{"big.bin": big, name: small} {
		f, err := cl.Target.OpenFile(path, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cl2, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	for path, want := range map[string][]byte{"big.bin": big, name: small} {
		fh, err := cl2.Handle(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cl2.ReadHandle(fh)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s read through node 2: %d bytes, %v; want %d bytes", path, len(got), err, len(want))
		}
	}

	wire := captured()
	// The data crossed the network (two remote replicas of 3 MiB at least),
	// so a capture that misses it would fail here, not pass below.
	if len(wire) < 2*len(big) {
		t.Fatalf("captured %d bytes of internode traffic, want at least %d: the capture missed the data path", len(wire), 2*len(big))
	}
	for _, probe := range [][]byte{big[:64], big[1<<20 : 1<<20+64], big[len(big)-64:], []byte("SMALL-FILE-MARKER-7f3a"), []byte("secret-name-MARKER-9c21")} {
		if bytes.Contains(wire, probe) {
			t.Errorf("the internode capture holds plaintext %q...", probe[:16])
		}
	}
	t.Logf("captured %d bytes of internode traffic; no plaintext found", len(wire))
}

// TestNodeWithoutClusterCAIsRefused starts a node that has the cluster
// secret but a certificate from a CA of its own making: it cannot join (the
// members refuse its handshakes, and it is never registered), and it cannot
// speak Raft to a member either.
func TestNodeWithoutClusterCAIsRefused(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	leader := c.WaitLeader()
	before := c.Node(0).TLSFailures()

	dir := t.TempDir()
	caFile, caKey, err := node.EnsureCA(filepath.Join(dir, "rogue-ca"), "rogue", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.config(c.N(), "az1")
	cfg.NodeID, cfg.DataDir = "intruder", filepath.Join(dir, "intruder")
	cfg.TLSCAFile, cfg.TLSCAKeyFile = caFile, caKey
	cfg.Join = c.Member(0).Cfg.RPCAddr
	intruder, err := node.Start(cfg, node.SystemClock{}, c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()

	// It keeps trying (one join every 500 ms): wait for n1 to have refused
	// three of its handshakes.
	c.Eventually(30*time.Second, "n1 refuses the intruder's handshakes", func() error {
		if got := c.Node(0).TLSFailures() - before; got < 3 {
			return fmt.Errorf("n1 refused %d handshakes so far", got)
		}
		return nil
	})
	nodes, err := c.Node(leader).FSM().Nodes()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == "intruder" {
			t.Fatalf("the intruder was registered: %+v", n)
		}
	}
	members, err := c.Node(leader).Meta().Members()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := members["intruder"]; ok {
		t.Fatalf("the intruder is a Raft member: %v", members)
	}
	if vols, _ := intruder.FSM().Volumes(); len(vols) != 0 {
		t.Fatalf("the intruder learned the volumes: %+v", vols)
	}

	// Raft: a stranger's certificate fails the handshake on a member's
	// Raft port, so no AppendEntries or vote of its reaches Raft.
	stranger, err := pki.LoadIdentity(caFile, filepath.Join(cfg.DataDir, "tls", pki.CertFile), filepath.Join(cfg.DataDir, "tls", pki.KeyFile), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", c.Member(0).Cfg.RaftAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if conn, err := pki.Dial(ctx, raw, stranger.ClientConfig()); err == nil {
		// TLS 1.3: the server checks the client certificate after the
		// client's handshake ends; the first read shows the refusal.
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			t.Fatal("a member's Raft port accepted a stranger's certificate")
		}
		conn.Close()
	}
	// The cluster carries on.
	c.Eventually(10*time.Second, "the cluster has a leader", func() error {
		if c.Node(0).Meta().Leader() == "" {
			return fmt.Errorf("no leader")
		}
		return nil
	})
}

// TestAdminHTTPS: with admin-tls on, every node's admin API is https with
// its node certificate, verified against the cluster CA; plain http gets
// no answer with data; a follower forwards a leader-only call to the
// leader's https admin API (the caller's token crosses in TLS).
func TestAdminHTTPS(t *testing.T) {
	c := NewCluster(t, ClusterOptions{Configure: func(cfg *node.Config) { cfg.AdminTLS = "on" }})
	leader := c.WaitLeader()
	follower := (leader + 1) % c.N()
	addr := c.Node(follower).AdminAddr()
	if !strings.HasPrefix(addr, "https://") {
		t.Fatalf("admin address %q is not https", addr)
	}
	pemCA, err := os.ReadFile(c.caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemCA)
	cl := admin.NewClient(addr, c.Node(follower).Token(), 10*time.Second).WithTLS(&tls.Config{RootCAs: roots})
	st, err := cl.Status(t.Context())
	if err != nil || st.Raft.Leader == "" || st.Repair == nil {
		t.Fatalf("status over https: %+v, %v", st, err)
	}
	if _, err := cl.Repair(t.Context()); err != nil { // leader-only: forwarded
		t.Fatalf("repair status through the follower: %v", err)
	}
	// Without the CA the client refuses the node's certificate.
	if _, err := admin.NewClient(addr, c.Node(follower).Token(), 5*time.Second).Status(t.Context()); err == nil {
		t.Fatal("a client without the cluster CA accepted the admin certificate")
	}
	// Plain http to the https port.
	plain := admin.NewClient("http://"+strings.TrimPrefix(addr, "https://"), c.Node(follower).Token(), 5*time.Second)
	if st, err := plain.Status(t.Context()); err == nil {
		t.Fatalf("plain http answered: %+v", st)
	}
}
