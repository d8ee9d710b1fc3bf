package workload

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsrep/fsrep/tests"
)

// lockedBuf collects the JSON lines.
type lockedBuf struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *lockedBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *lockedBuf) events(t *testing.T) []event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []event
	sc := bufio.NewScanner(strings.NewReader(b.sb.String()))
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// start runs w in the background; the returned stop ends Run and waits.
func start(w *Workload) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// proxy forwards TCP connections to a gateway until cut, as the network
// path to a node that dies. (Stopping an in-process node with a client
// connection open leaves the gateway's lane goroutines behind, which the
// leak check would report; the real node loss is the compose scenarios'.)
type proxy struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, to string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, to: to}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.to)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(out, in); out.Close() }()
		go func() { defer p.wg.Done(); _, _ = io.Copy(in, out); in.Close() }()
	}
}

// cut closes the listener and every connection.
func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestWorkloadSurvivesGatewayLoss runs the workload against a 3-node
// cluster, cuts it off the gateway it writes through, and checks that it
// moves to another gateway with the same handles, loses nothing and sees
// no ESTALE.
func TestWorkloadSurvivesGatewayLoss(t *testing.T) {
	c := tests.NewCluster(t, tests.ClusterOptions{})
	p := newProxy(t, c.NFSAddr(0))
	gws := []string{p.ln.Addr().String(), c.NFSAddr(1), c.NFSAddr(2)}
	out := &lockedBuf{}
	cfg := Default(gws, "/vol")
	cfg.Rate, cfg.BlockSize, cfg.BlocksPerFile, cfg.OpTimeout, cfg.Out = 100, 8192, 5, 3*time.Second, out
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(w)
	defer w.Close()
	defer stop()
	waitFor(t, 30*time.Second, "20 acknowledged writes", func() bool { return w.Report().AckedWrites >= 20 })

	// The workload starts on the first gateway; take that node away.
	if gw := w.Report().Gateway; gw != gws[0] {
		t.Fatalf("writing through %q, want %q", gw, gws[0])
	}
	p.cut()
	fault := time.Now()
	w.MarkFault(fault)
	before := w.Report().AckedWrites
	waitFor(t, 60*time.Second, "writes after the fault", func() bool {
		r := w.Report()
		return r.FaultToWrite != nil && r.AckedWrites >= before+20
	})
	stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	r := w.Report()
	for _, e := range r.FirstErrors {
		t.Log(e)
	}
	t.Logf("report: acked %d, files %d, errors %d, reconnects %d, gap %.2fs, fault to write %.2fs, via %s",
		r.AckedWrites, r.Files, r.Errors, r.Reconnects, r.LongestGap, *r.FaultToWrite, r.VerifiedVia)
	if r.LostWrites != 0 || r.CorruptReads != 0 || r.Stale != 0 || !r.Verified {
		t.Errorf("lost %d, corrupt %d, estale %d, verified %v; want 0, 0, 0, true", r.LostWrites, r.CorruptReads, r.Stale, r.Verified)
	}
	if r.VerifiedBlocks != r.AckedWrites {
		t.Errorf("verified %d blocks of %d acknowledged", r.VerifiedBlocks, r.AckedWrites)
	}
	if r.Reconnects < 1 || r.Gateway == gws[0] {
		t.Errorf("reconnects %d, gateway %q: did not move off the stopped node", r.Reconnects, r.Gateway)
	}
	if r.Files < 2 {
		t.Errorf("%d files: expected the run to cross file boundaries", r.Files)
	}

	// Every acknowledged write is in the log, once.
	seen := map[string]bool{}
	for _, e := range out.events(t) {
		if e.Ev == "ack" {
			k := fmt.Sprint(e.File, "/", *e.Block)
			if seen[k] {
				t.Errorf("block %s acknowledged twice", k)
			}
			seen[k] = true
		}
	}
	if int64(len(seen)) != r.AckedWrites {
		t.Errorf("%d ack lines, %d acknowledged writes", len(seen), r.AckedWrites)
	}
}

// TestWorkloadLeavesFrozenGateway puts a gateway that accepts connections
// and never answers (a paused node) first in the list: the workload must
// give up on it after OpTimeout and write through the next one.
func TestWorkloadLeavesFrozenGateway(t *testing.T) {
	c := tests.NewCluster(t, tests.ClusterOptions{})
	frozen, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	go func() {
		for {
			conn, err := frozen.Accept()
			if err != nil {
				return
			}
			held.Add(1)
			go func() { defer held.Done(); _, _ = io.Copy(io.Discard, conn); conn.Close() }()
		}
	}()
	defer held.Wait()
	defer frozen.Close()

	cfg := Default([]string{frozen.Addr().String(), c.NFSAddr(1)}, "/vol")
	cfg.Rate, cfg.OpTimeout = 50, 500*time.Millisecond
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	stop := start(w)
	defer w.Close()
	waitFor(t, 30*time.Second, "a write through the live gateway", func() bool { return w.Report().AckedWrites >= 5 })
	stop()
	r := w.Report()
	if r.Errors < 1 || r.WritesPerGateway[c.NFSAddr(1)] != int(r.AckedWrites) {
		t.Errorf("errors %d, writes per gateway %v", r.Errors, r.WritesPerGateway)
	}
	// A frozen peer costs one OpTimeout, not minutes of retransmissions.
	if took := time.Since(begin); took > 15*time.Second {
		t.Errorf("took %v to get past a frozen gateway", took)
	}
}
