//go:build crash

// Package crash kills fsrepd processes at their fault points under a
// running workload and checks what the design promises of a crash
// (DESIGN.md §7): restart recovers, no acknowledged write is lost, the
// node's files pass the offline check, and the cluster converges. The
// nodes are real processes built with -tags faultpoints (internal/fault),
// on loopback, with real TLS, Raft, bbolt files and fsync.
//
// Run with `make test-crash` (docs/crash-testing.md).
package crash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/replication"
)

// fsrepdBin is the fault-point build of fsrepd (TestMain).
var fsrepdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fsrep-crash-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fsrepdBin = filepath.Join(dir, "fsrepd")
	build := exec.Command("go", "build", "-tags", "faultpoints", "-o", fsrepdBin, "github.com/fsrep/fsrep/cmd/fsrepd")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building fsrepd with fault points: %v\n%s", err, out)
		os.Exit(1)
	}
	// No goroutine leak check here: go-nfs-client starts a cache cleaner
	// per mount that never stops.
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one fsrepd process slot.
type proc struct {
	id, az, dir                      string
	raftAddr, rpcAddr, nfsAddr, admn string
	bootstrap                        bool
	join                             string

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd ends
	status error         // cmd's exit, after exited
	runs   int
}

// cluster is three fsrepd processes in three AZs.
type cluster struct {
	t          *testing.T
	dir        string
	secretFile string
	caFile     string
	caKey      string
	procs      []*proc
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir()}
	c.secretFile = filepath.Join(c.dir, "secret")
	if err := os.WriteFile(c.secretFile, []byte("crash-test-cluster-secret-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	caDir := filepath.Join(c.dir, "ca")
	if out, err := exec.Command(fsrepdBin, "tls", "ca", "--dir", caDir).CombinedOutput(); err != nil {
		t.Fatalf("fsrepd tls ca: %v\n%s", err, out)
	}
	c.caFile, c.caKey = filepath.Join(caDir, "ca.crt"), filepath.Join(caDir, "ca.key")
	for i := 0; i < 3; i++ {
		p := &proc{id: fmt.Sprintf("n%d", i+1), az: fmt.Sprintf("az%d", i+1), dir: filepath.Join(c.dir, fmt.Sprintf("n%d", i+1)),
			raftAddr: freeAddr(t), rpcAddr: freeAddr(t), nfsAddr: freeAddr(t), admn: freeAddr(t)}
		if i == 0 {
			p.bootstrap = true
		} else {
			p.join = c.procs[0].rpcAddr
		}
		c.procs = append(c.procs, p)
	}
	t.Cleanup(c.killAll)
	for i := range c.procs {
		c.start(i, "")
		c.waitReady(i, time.Minute)
	}
	return c
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs node i with the fault schedule faults ("" none).
func (c *cluster) start(i int, faults string) {
	c.t.Helper()
	p := c.procs[i]
	if p.cmd != nil {
		c.t.Fatalf("%s is running", p.id)
	}
	args := []string{"--node-id", p.id, "--az", p.az, "--data-dir", p.dir,
		"--raft-addr", p.raftAddr, "--rpc-addr", p.rpcAddr, "--nfs-addr", p.nfsAddr, "--admin-addr", p.admn,
		"--secret-file", c.secretFile, "--tls-ca", c.caFile, "--tls-ca-key", c.caKey,
		"--log-level", "warn", "--scrub-rate", "0",
		// Quick healing, so that convergence after a crash is seen within
		// the test (docs/healing.md has the production defaults).
		"--heartbeat-interval", "200ms", "--suspect-after", "1s", "--down-after", "3s", "--repair-grace", "2s",
		// Small snapshots, so that a node that was away is sent one.
		"--raft-snapshot-threshold", "256", "--raft-snapshot-interval", "1s", "--raft-trailing-logs", "64"}
	if p.bootstrap {
		args = append(args, "--bootstrap")
	} else {
		args = append(args, "--join", p.join)
	}
	log, err := os.OpenFile(filepath.Join(c.dir, p.id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(log, "=== run %d, faults %q\n", p.runs+1, faults)
	cmd := exec.Command(fsrepdBin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "FSREP_FAULTPOINTS="+faults)
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", p.id, err)
	}
	p.cmd, p.exited, p.runs = cmd, make(chan struct{}), p.runs+1
	go func(p *proc, cmd *exec.Cmd, done chan struct{}, log *os.File) {
		p.status = cmd.Wait()
		log.Close()
		close(done)
	}(p, cmd, p.exited, log)
}

// waitExit waits for node i's process to end by itself (a fault point
// killed it) and reports whether it was killed by SIGKILL.
func (c *cluster) waitExit(i int, timeout time.Duration) (killed bool, err error) {
	p := c.procs[i]
	select {
	case <-p.exited:
	case <-time.After(timeout):
		return false, fmt.Errorf("%s still running after %v", p.id, timeout)
	}
	p.cmd = nil
	var ee *exec.ExitError
	if errors.As(p.status, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true, nil
		}
	}
	return false, fmt.Errorf("%s ended with %v, not by SIGKILL", p.id, p.status)
}

// waitAnyExit waits for one of the nodes in slots to end by itself and
// returns its slot, or -1 after timeout.
func (c *cluster) waitAnyExit(slots []int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, i := range slots {
			select {
			case <-c.procs[i].exited:
				return i
			default:
			}
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	return -1
}

// stop ends node i gracefully (SIGTERM).
func (c *cluster) stop(i int) {
	c.t.Helper()
	p := c.procs[i]
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		c.t.Errorf("%s did not stop within 30 s of SIGTERM", p.id)
	}
	p.cmd = nil
}

func (c *cluster) killAll() {
	for _, p := range c.procs {
		if p.cmd != nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.cmd = nil
		}
	}
}

// waitReady polls node i's /readyz until it answers 200.
func (c *cluster) waitReady(i int, timeout time.Duration) {
	c.t.Helper()
	p := c.procs[i]
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get("http://" + p.admn + admin.PathReadyz)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			c.t.Fatalf("%s exited while starting: %v; its log ends:\n%s", p.id, p.status, c.logTail(i, 40))
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not ready after %v: %v", p.id, timeout, err)
		}
		time.Sleep(100 * time.Millisecond) // poll interval
	}
}

// logTail is the last n lines of node i's log.
func (c *cluster) logTail(i, n int) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, c.procs[i].id+".log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// admin is an admin API client of node i.
func (c *cluster) admin(i int) *admin.Client {
	c.t.Helper()
	tok, err := os.ReadFile(filepath.Join(c.procs[i].dir, "admin.token"))
	if err != nil {
		c.t.Fatal(err)
	}
	return admin.NewClient(c.procs[i].admn, strings.TrimSpace(string(tok)), 30*time.Second)
}

// offlineCheck runs `fsrepd check` on stopped node i's data directory;
// it returns the report's text and whether it was clean (exit 0).
func (c *cluster) offlineCheck(i int) (string, bool) {
	p := c.procs[i]
	cmd := exec.Command(fsrepdBin, "check", "--data-dir", p.dir, "--node-id", p.id)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err == nil
}

// eventually polls fn until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
}

// converged waits until every node has applied the same index and the
// leader's consistency check finds every chunk with its replicas, none
// missing, stale, corrupt or orphaned.
func (c *cluster) converged(timeout time.Duration) {
	c.t.Helper()
	ctx := context.Background()
	eventually(c.t, timeout, "every node applies the same index", func() error {
		var idx []uint64
		for i := range c.procs {
			st, err := c.admin(i).Status(ctx)
			if err != nil {
				return err
			}
			idx = append(idx, st.Raft.AppliedIndex)
		}
		for _, x := range idx[1:] {
			if x != idx[0] {
				return fmt.Errorf("applied indexes %v", idx)
			}
		}
		return nil
	})
	eventually(c.t, timeout, "the consistency check is clean", func() error {
		rep, err := c.admin(0).Check(ctx, checkOptions())
		if err != nil {
			return err
		}
		if rep.Problems() != 0 {
			return fmt.Errorf("%d problems: %d under-replicated, %d missing, %d stale, %d corrupt, %d orphans, %d unavailable",
				rep.Problems(), rep.UnderReplicated, rep.Missing, rep.Stale, rep.Corrupt, rep.Orphans, rep.Unavailable)
		}
		return nil
	})
}

func gateways(c *cluster) []string {
	var out []string
	for _, p := range c.procs {
		out = append(out, p.nfsAddr)
	}
	return out
}

func volumeRequest() admin.CreateVolumeRequest {
	mode := admin.FileMode(0o1777)
	return admin.CreateVolumeRequest{Name: "vol", Replicas: 3, ChunkSize: 1 << 20, RootMode: &mode}
}

func checkOptions() replication.CheckOptions { return replication.CheckOptions{Volume: "vol"} }

// dumpGoroutines writes every running node's goroutines (the admin API's
// pprof) to the test log: a write that got no answer is a server bug to
// find, and the stacks are where it is.
func (c *cluster) dumpGoroutines(why string) {
	c.t.Logf("%s: dumping the goroutines of every node", why)
	for i, p := range c.procs {
		if p.cmd == nil {
			continue
		}
		tok, _ := os.ReadFile(filepath.Join(p.dir, "admin.token"))
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.admn+"/debug/pprof/goroutine?debug=1", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			c.t.Logf("%s: %v", p.id, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		path := filepath.Join(os.TempDir(), fmt.Sprintf("fsrep-crash-%s-goroutines.txt", p.id))
		_ = os.WriteFile(path, b, 0o644)
		c.t.Logf("node %d (%s) goroutines in %s:\n%s", i, p.id, path, b)
	}
}
