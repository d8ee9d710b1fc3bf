package tests

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsrep/fsrep/gateway"
	"github.com/fsrep/fsrep/internal/node"
)

// Connection bounds of the listeners besides NFS, as internal/node/tls.go
// sets them (internodeMaxConnsPerClient, raftMaxConnsPerClient,
// adminMaxConnsPerClient).
const (
	rpcPerClient   = 512
	raftPerClient  = 64
	adminPerClient = 64
)

var (
	hostileIP = net.IPv4(127, 0, 0, 1)
	goodIP    = net.IPv4(127, 0, 0, 2)
)

// TestHostileClientFlood (issue 8): one client address opens thousands of
// connections to n1's NFS, internode RPC, Raft and admin ports and sends
// oversized requests on them, while a client at another address keeps
// working against n1. Every listener holds the hostile client to its
// per-client bound and closes the rest, the good client's every call
// succeeds within the operation timeout, the heap grows by a bounded
// amount, and afterwards the Raft membership is whole, writes replicate,
// goroutines are back, and n1 serves the hostile address again.
func TestHostileClientFlood(t *testing.T) {
	opTimeout := 5 * time.Second
	// The attacker, its target and both other nodes share this process's
	// few cores: with the default 250 ms leader lease, the CPU the flood
	// takes (not the node's bounds) made the leader step down in about half
	// the runs under -race, and the good client saw JUKEBOX while a new
	// leader was elected. A longer lease keeps the test about the bounds.
	c := NewCluster(t, ClusterOptions{OpTimeout: opTimeout, Configure: func(cfg *node.Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 2*time.Second, 2*time.Second
	}})
	const target = 0 // n1
	m := c.Member(target)
	nfsAddr, rpcAddr, raftAddr, adminAddr := c.NFSAddr(target), m.Cfg.RPCAddr, m.Cfg.RaftAddr, m.Cfg.AdminAddr
	front := gateway.DefaultFrontConfig() // what internal/node serves NFS with

	nNFS, nRPC, nRaft, nAdmin := 3000, rpcPerClient+200, 1000, adminPerClient+136
	if budget, total := fdBudget(t), nNFS+nRPC+nRaft+nAdmin; budget < total {
		scale := func(n int) int { return n * budget / total }
		nNFS, nRPC, nRaft, nAdmin = scale(nNFS), scale(nRPC), scale(nRaft), scale(nAdmin)
		t.Logf("RLIMIT_NOFILE allows %d hostile connections: scaled to %d NFS, %d RPC, %d Raft, %d admin", budget, nNFS, nRPC, nRaft, nAdmin)
	}

	g := startGoodClient(t, nfsAddr, opTimeout)
	defer g.stop()
	goroutines0 := runtime.NumGoroutine()
	heap := startHeapWatch()
	defer heap.stop()
	began := time.Now()

	// NFS: every connection from the hostile address past
	// MaxConnsPerClient is closed at once; the rest are served.
	nfsConns, dialFailed := dialMany(nfsAddr, hostileIP, nNFS)
	defer closeAll(&nfsConns)
	xid := uint32(0x70000000)
	served := probeNFS(nfsConns, &xid, opTimeout)
	t.Logf("NFS: %d connections dialed (%d dials failed), %d served, %d closed by n1", len(nfsConns), dialFailed, len(served), len(nfsConns)-len(served))
	if len(served) != front.MaxConnsPerClient {
		t.Fatalf("NFS served %d connections of one client, want MaxConnsPerClient = %d", len(served), front.MaxConnsPerClient)
	}

	// Internode RPC and Raft, and admin: connections held open, none says
	// anything yet (each listener would keep those within its bound until
	// its handshake or header timeout).
	rpcConns, rpcFailed := dialMany(rpcAddr, hostileIP, nRPC)
	defer closeAll(&rpcConns)
	raftConns, raftFailed := dialMany(raftAddr, hostileIP, nRaft)
	defer closeAll(&raftConns)
	adminConns, adminFailed := dialMany(adminAddr, hostileIP, nAdmin)
	defer closeAll(&adminConns)
	dialed := time.Since(began)

	// With every hostile connection open, the good client is served.
	g.waitRounds(t, 3)
	heldGrowth := heap.retained()

	// Oversized requests. Internode: a TLS record claiming 64 KiB (more
	// than TLS allows) gets an alert from a listener that accepted the
	// connection, and nothing but a close from one that refused it.
	for _, l := range []struct {
		name        string
		conns       []net.Conn
		fail, bound int
	}{{"RPC", rpcConns, rpcFailed, rpcPerClient}, {"Raft", raftConns, raftFailed, raftPerClient}} {
		engaged, closed, err := probeTLS(l.conns)
		if err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		t.Logf("%s: %d connections dialed (%d dials failed), %d answered an oversized TLS record, %d closed unanswered", l.name, len(l.conns), l.fail, engaged, closed)
		// Peers reach n1 from 127.0.0.1 as well, so the hostile
		// client may get fewer than the bound, never more.
		if engaged > l.bound || closed < len(l.conns)-l.bound {
			t.Fatalf("%s served %d connections of one client (bound %d)", l.name, engaged, l.bound)
		}
		if engaged == 0 {
			t.Fatalf("%s answered none of %d connections", l.name, len(l.conns))
		}
	}
	// Admin: request headers past MaxHeaderBytes, and a body claiming 1 GiB.
	engaged, closed, err := probeAdmin(adminConns, c.Node(target).Token())
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	t.Logf("admin: %d connections dialed (%d dials failed), %d answered 4xx to an oversized request, %d closed unanswered", len(adminConns), adminFailed, engaged, closed)
	if engaged > adminPerClient || closed < len(adminConns)-adminPerClient || engaged == 0 {
		t.Fatalf("admin served %d connections of one client (bound %d)", engaged, adminPerClient)
	}

	// NFS, on the served connections.
	oversizedNFS(t, served, &xid, opTimeout)
	// The slots the closed connections freed go back to the hostile
	// client, and no more than those.
	served = slices.DeleteFunc(served, func(c net.Conn) bool { return c == nil })
	again, refused := refill(t, nfsAddr, front.MaxConnsPerClient-len(served), &xid, opTimeout)
	defer closeAll(&again)
	t.Logf("NFS: %d freed slots taken again, then %d more connections closed by n1", len(again), refused)

	g.waitRounds(t, 3)
	floodGrowth := heap.retained()
	g.stop()
	if err := g.err(); err != nil {
		t.Fatalf("the good client at %s: %v", goodIP, err)
	}
	t.Logf("good client: %d rounds of GETATTR/WRITE/READ (and a new connection every %d rounds), slowest call %v",
		g.rounds.Load(), newConnEvery, time.Duration(g.slowest.Load()))
	peak := heap.stop()
	t.Logf("heap above its start: %d MiB with every connection open, %d MiB after the oversized requests, peak %d MiB; dials took %v, flood %v",
		heldGrowth>>20, floodGrowth>>20, peak>>20, dialed.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	// Held at once: 64 NFS connections, each with the one lane its calls
	// started (about 150 KiB) and nine with a half-read record of the
	// front's largest size; ~510 RPC connections of ~12 KiB; 64 Raft
	// connections of ~270 KiB (the transport's read buffer); 64 admin
	// ones: about 45 MiB. Lanes started with the connection and the RPC
	// bound on Raft made it 220 MiB.
	const retainedBound, peakBound = 96 << 20, 192 << 20
	if heldGrowth > retainedBound || floodGrowth > retainedBound {
		t.Fatalf("the live heap grew by %d MiB / %d MiB under the flood, bound %d MiB", heldGrowth>>20, floodGrowth>>20, retainedBound>>20)
	}
	if peak > peakBound {
		t.Fatalf("the heap peaked %d MiB above its start, bound %d MiB", peak>>20, peakBound>>20)
	}

	// The flood ends.
	for _, cs := range []*[]net.Conn{&nfsConns, &again, &rpcConns, &raftConns, &adminConns} {
		closeAll(cs)
	}
	floodOver := time.Now()

	// Raft: the same three voters, every node ready.
	leader := c.WaitLeader()
	members, err := c.Node(leader).Meta().Members()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"n1": true, "n2": true, "n3": true}; !maps.Equal(members, want) {
		t.Fatalf("Raft members after the flood: %v, want %v", members, want)
	}
	for i := 0; i < c.N(); i++ {
		c.WaitReady(i)
	}

	// n1 serves the hostile address again, on every port; a write
	// through n2 reads back through n1.
	var back *Client
	c.Eventually(20*time.Second, "an NFS mount from 127.0.0.1 on n1", func() error {
		var err error
		back, err = Mount(nfsAddr, "/vol")
		return err
	})
	defer back.Close()
	for _, a := range []string{rpcAddr, raftAddr} {
		c.Eventually(20*time.Second, "n1 answering 127.0.0.1 on "+a, func() error {
			conns, _ := dialMany(a, hostileIP, 1)
			defer closeAll(&conns)
			if engaged, _, err := probeTLS(conns); err != nil || engaged != 1 {
				return fmt.Errorf("no TLS answer (%v)", err)
			}
			return nil
		})
	}
	c.Eventually(20*time.Second, "n1's admin API answering 127.0.0.1", func() error { return healthz(adminAddr) })
	n2, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	f, err := n2.Target.OpenFile("after-the-flood", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("written through n2 after the flood")
	if _, err := f.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c.Eventually(10*time.Second, "n2's write read through n1", func() error {
		fh, err := back.Handle("after-the-flood")
		if err != nil {
			return err
		}
		got, err := back.ReadHandle(fh)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("read %q", got)
		}
		return nil
	})

	// What the flood started on n1 ends with it.
	back.Close()
	n2.Close()
	c.Eventually(30*time.Second, "goroutines back to their count before the flood", func() error {
		if n := runtime.NumGoroutine(); n > goroutines0+100 {
			return fmt.Errorf("%d goroutines, %d before the flood", n, goroutines0)
		}
		return nil
	})
	t.Logf("recovered %v after the flood ended", time.Since(floodOver).Round(time.Millisecond))
}

// newConnEvery: the good client also dials a new connection every so many
// rounds (new clients are admitted during the flood, not only old ones).
const newConnEvery = 4

// goodClient is a well-behaved NFS client at goodIP doing GETATTR, WRITE
// and READ of one file on one connection, in a loop, each call bounded by
// the operation timeout.
type goodClient struct {
	addr    string
	timeout time.Duration
	conn    net.Conn
	fh      []byte
	xid     atomic.Uint32
	rounds  atomic.Int64
	slowest atomic.Int64

	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	mu       sync.Mutex
	failed   error
}

func startGoodClient(t *testing.T, addr string, timeout time.Duration) *goodClient {
	t.Helper()
	conn, err := dialFrom(addr, goodIP)
	if err != nil {
		t.Fatalf("the good client cannot connect from %s: %v", goodIP, err)
	}
	g := &goodClient{addr: addr, timeout: timeout, conn: conn, done: make(chan struct{})}
	t.Cleanup(func() { conn.Close() })
	g.xid.Store(0x10000000)
	acc, body, err := g.call(conn, mountProgram, mountMnt, (&xdrBuf{}).opaque([]byte("/vol")).b)
	if err != nil || acc != 0 {
		t.Fatalf("MNT /vol from %s: accept %d, %v", goodIP, acc, err)
	}
	d := &xdrDec{t: t, what: "MNT", b: body}
	if st := d.u32(); st != 0 {
		t.Fatalf("MNT /vol: mountstat %d", st)
	}
	root := d.opaque()
	acc, body, err = g.call(conn, nfsProgram, nfsCreate, createArgs(root, "flood-good", 0, 0o644))
	if err != nil || acc != 0 {
		t.Fatalf("CREATE: accept %d, %v", acc, err)
	}
	d = &xdrDec{t: t, what: "CREATE", b: body}
	if st := d.u32(); st != st3OK {
		t.Fatalf("CREATE: %s", stName(st))
	}
	if g.fh = d.postOpFH(); g.fh == nil {
		t.Fatal("CREATE returned no handle")
	}
	g.wg.Add(1)
	go g.run()
	return g
}

// call sends one call on conn and reads its reply within the timeout.
func (g *goodClient) call(conn net.Conn, prog, proc uint32, args []byte) (uint32, []byte, error) {
	xid := g.xid.Add(1)
	start := time.Now()
	if err := conn.SetDeadline(start.Add(g.timeout)); err != nil {
		return 0, nil, err
	}
	if _, err := conn.Write(rpcCallHeader{xid: xid, rpcvers: 2, prog: prog, vers: 3, proc: proc}.encode(args)); err != nil {
		return 0, nil, err
	}
	acc, body, err := readReply(conn, xid)
	if d := int64(time.Since(start)); d > g.slowest.Load() {
		g.slowest.Store(d) // only run's goroutine stores after start
	}
	return acc, body, err
}

// nfs is call for an NFS procedure that must succeed with NFS3_OK.
func (g *goodClient) nfs(conn net.Conn, what string, proc uint32, args []byte) ([]byte, error) {
	acc, body, err := g.call(conn, nfsProgram, proc, args)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", what, err)
	case acc != 0:
		return nil, fmt.Errorf("%s: accept status %d", what, acc)
	case len(body) < 4 || binary.BigEndian.Uint32(body) != st3OK:
		return nil, fmt.Errorf("%s: NFS status %x", what, body[:min(4, len(body))])
	}
	return body[4:], nil
}

func (g *goodClient) run() {
	defer g.wg.Done()
	for i := 0; ; i++ {
		select {
		case <-g.done:
			return
		default:
		}
		if err := g.round(i); err != nil {
			g.mu.Lock()
			g.failed = fmt.Errorf("round %d: %w", i, err)
			g.mu.Unlock()
			return
		}
		g.rounds.Add(1)
	}
}

func (g *goodClient) round(i int) error {
	data := bytes.Repeat([]byte{byte(i)}, 4096)
	off := uint64(i%16) * 4096
	if _, err := g.nfs(g.conn, "GETATTR", nfsGetattr, (&xdrBuf{}).opaque(g.fh).b); err != nil {
		return err
	}
	if _, err := g.nfs(g.conn, "WRITE", nfsWrite, writeArgs(g.fh, off, 2, data)); err != nil {
		return err
	}
	res, err := g.nfs(g.conn, "READ", nfsRead, readArgs(g.fh, off, 4096))
	if err != nil {
		return err
	}
	// post_op_attr (present: a boolean and 84 bytes), count, eof, data.
	if len(res) < 4+84+12 || binary.BigEndian.Uint32(res) != 1 || !bytes.Equal(res[4+84+12:], data) {
		return fmt.Errorf("READ at %d did not return what was written", off)
	}
	if i%newConnEvery == 0 {
		conn, err := dialFrom(g.addr, goodIP)
		if err != nil {
			return fmt.Errorf("a new connection from %s: %w", goodIP, err)
		}
		defer conn.Close()
		if _, err := g.nfs(conn, "GETATTR on a new connection", nfsGetattr, (&xdrBuf{}).opaque(g.fh).b); err != nil {
			return err
		}
	}
	return nil
}

// waitRounds waits until the client has done n more rounds, and fails the
// test if it has failed.
func (g *goodClient) waitRounds(t *testing.T, n int64) {
	t.Helper()
	want := g.rounds.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for g.rounds.Load() < want {
		if err := g.err(); err != nil {
			t.Fatalf("the good client at %s: %v", goodIP, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the good client did %d of %d rounds in 30 s", g.rounds.Load()-(want-n), n)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

func (g *goodClient) err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failed
}

func (g *goodClient) stop() {
	g.stopOnce.Do(func() { close(g.done) })
	g.wg.Wait()
}

// heapWatch samples HeapAlloc for its peak above the start (a live heap
// after a collection).
type heapWatch struct {
	base uint64
	peak atomic.Uint64
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func startHeapWatch() *heapWatch {
	h := &heapWatch{done: make(chan struct{})}
	h.base = liveHeap()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > h.peak.Load() {
				h.peak.Store(ms.HeapAlloc)
			}
			select {
			case <-h.done:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

// retained is the live heap's growth since the start.
func (h *heapWatch) retained() int64 { return int64(liveHeap()) - int64(h.base) }

// stop ends the sampling and returns the peak's height above the start.
func (h *heapWatch) stop() int64 {
	h.once.Do(func() { close(h.done) })
	h.wg.Wait()
	return int64(h.peak.Load()) - int64(h.base)
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// fdBudget raises the soft RLIMIT_NOFILE to the hard limit and returns how
// many hostile connections fit: each costs a descriptor on both ends (the
// cluster is in this process), and the cluster keeps some of its own.
func fdBudget(t *testing.T) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	return (int(min(lim.Cur, 1<<20)) - 2048) / 2
}

func dialFrom(addr string, ip net.IP) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	return d.Dial("tcp", addr)
}

// dialMany opens n connections to addr from ip, a few dozen at a time,
// and returns those that opened and how many dials failed.
func dialMany(addr string, ip net.IP, n int) ([]net.Conn, int) {
	conns := make([]net.Conn, n)
	var failed atomic.Int64
	parallel(n, func(i int) {
		c, err := dialFrom(addr, ip)
		if err != nil {
			failed.Add(1)
			return
		}
		conns[i] = c
	})
	return slices.DeleteFunc(conns, func(c net.Conn) bool { return c == nil }), int(failed.Load())
}

// parallel runs fn(0..n-1) on 8 goroutines: a flood, not a burst that
// starves the in-process cluster of CPU.
func parallel(n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

func closeAll(conns *[]net.Conn) {
	for _, c := range *conns {
		if c != nil {
			c.Close()
		}
	}
	*conns = nil
}

// probeNFS sends NULL on every connection and returns those answered; the
// others were closed by the server (a closed connection answers nothing,
// so only a reply counts as served).
func probeNFS(conns []net.Conn, xid *uint32, timeout time.Duration) []net.Conn {
	base := *xid
	*xid += uint32(len(conns))
	ok := make([]bool, len(conns))
	parallel(len(conns), func(i int) {
		ok[i] = nullCall(conns[i], base+uint32(i), timeout) == nil
	})
	var served []net.Conn
	for i, c := range conns {
		if ok[i] {
			served = append(served, c)
		}
	}
	return served
}

func nullCall(c net.Conn, xid uint32, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(rpcCallHeader{xid: xid, rpcvers: 2, prog: nfsProgram, vers: 3, proc: nfsNull}.encode(nil)); err != nil {
		return err
	}
	_, _, err := readReply(c, xid)
	return err
}

// probeTLS sends, on every connection, a TLS handshake record header
// claiming 64 KiB (TLS allows 16 KiB plus expansion) and counts the
// connections answered (an alert) and those closed with no answer. A
// connection neither answered nor closed within 15 s is an error: the
// listener's handshake deadline is 10 s.
func probeTLS(conns []net.Conn) (engaged, closed int, err error) {
	var nEngaged, nClosed atomic.Int64
	var mu sync.Mutex
	parallel(len(conns), func(i int) {
		c := conns[i]
		_ = c.SetDeadline(time.Now().Add(15 * time.Second))
		_, _ = c.Write([]byte{0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00, 0xff, 0xfb})
		var b [1]byte
		_, rerr := io.ReadFull(c, b[:])
		switch {
		case rerr == nil && b[0] == 0x15: // an alert record
			nEngaged.Add(1)
		case rerr == nil:
			mu.Lock()
			err = fmt.Errorf("an oversized TLS record got a record of type %d, want an alert", b[0])
			mu.Unlock()
		case isTimeout(rerr):
			mu.Lock()
			err = fmt.Errorf("a connection was neither answered nor closed: %v", rerr)
			mu.Unlock()
		default:
			nClosed.Add(1)
		}
	})
	return int(nEngaged.Load()), int(nClosed.Load()), err
}

// probeAdmin sends, on every connection, an oversized request: headers
// past the server's MaxHeaderBytes, or a volume creation whose body claims
// 1 GiB. It counts the connections answered 4xx and those closed with no
// answer.
func probeAdmin(conns []net.Conn, token string) (engaged, closed int, err error) {
	bigHeader := "GET /healthz HTTP/1.1\r\nHost: n1\r\nX-Pad: " + strings.Repeat("a", 96<<10) + "\r\n\r\n"
	bigBody := "POST /v1/volumes HTTP/1.1\r\nHost: n1\r\nAuthorization: Bearer " + token +
		"\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{\"name\":\"" + strings.Repeat("x", 96<<10)
	var nEngaged, nClosed atomic.Int64
	var mu sync.Mutex
	parallel(len(conns), func(i int) {
		c := conns[i]
		req, want := bigHeader, "HTTP/1.1 431 "
		if i%2 == 1 {
			req, want = bigBody, "HTTP/1.1 4"
		}
		_ = c.SetDeadline(time.Now().Add(15 * time.Second))
		_, _ = io.WriteString(c, req) // a refused connection fails here or on the read
		line, rerr := bufio.NewReader(c).ReadString('\n')
		switch {
		case strings.HasPrefix(line, want):
			nEngaged.Add(1)
		case line != "":
			mu.Lock()
			err = fmt.Errorf("an oversized request was answered %q, want %q...", strings.TrimSpace(line), want)
			mu.Unlock()
		case isTimeout(rerr):
			mu.Lock()
			err = fmt.Errorf("a connection was neither answered nor closed: %v", rerr)
			mu.Unlock()
		default:
			nClosed.Add(1)
		}
	})
	return int(nEngaged.Load()), int(nClosed.Load()), err
}

// oversizedNFS sends oversized calls on the served NFS connections. Record
// claims past the front's bound close the connection (and it is set to
// nil in conns); a WRITE past the advertised maximum is GARBAGE_ARGS and
// the connection carries on; a record of the maximum size left half sent
// holds its connection.
func oversizedNFS(t *testing.T, conns []net.Conn, xid *uint32, timeout time.Duration) {
	t.Helper()
	const maxIO = 1 << 20 // FSINFO wtmax
	fh := make([]byte, 32)
	kinds := []struct {
		what   string
		send   func(c net.Conn, xid uint32) []byte
		closes bool
	}{
		{"a record claiming 2 GiB", func(net.Conn, uint32) []byte { return []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4} }, true},
		{"a record claiming 2 MiB", func(net.Conn, uint32) []byte { return []byte{0x80, 0x20, 0, 0, 1, 2, 3, 4} }, true},
		{"fragments adding up past the bound", func(net.Conn, uint32) []byte {
			// Non-final fragments of 512 KiB each: the third crosses
			// the bound.
			frag := append(binary.BigEndian.AppendUint32(nil, 512<<10), make([]byte, 512<<10)...)
			return bytes.Repeat(frag, 3)
		}, true},
		{"a WRITE whose data claims 16 MiB", func(_ net.Conn, xid uint32) []byte {
			args := (&xdrBuf{}).opaque(fh).u64(0).u32(16 << 20).u32(2).u32(16 << 20).b
			return rpcCallHeader{xid: xid, rpcvers: 2, prog: nfsProgram, vers: 3, proc: nfsWrite}.encode(args)
		}, false},
		{"a WRITE of more than wtmax", func(_ net.Conn, xid uint32) []byte {
			args := writeArgs(fh, 0, 2, make([]byte, maxIO+4096))
			return rpcCallHeader{xid: xid, rpcvers: 2, prog: nfsProgram, vers: 3, proc: nfsWrite}.encode(args)
		}, false},
	}
	per := len(conns) / (len(kinds) + 2) // the rest: half-sent records, and idle
	var mu sync.Mutex
	var failures []string
	parallel(len(kinds)*per, func(i int) {
		k, c, x := kinds[i/per], conns[i], *xid+uint32(i)
		_ = c.SetDeadline(time.Now().Add(timeout))
		_, werr := c.Write(k.send(c, x))
		var fail string
		if k.closes {
			if n, err := c.Read(make([]byte, 64)); err == nil || isTimeout(err) {
				fail = fmt.Sprintf("%s: got %d bytes, %v; want the connection closed", k.what, n, err)
			}
		} else if acc, _, err := readReply(c, x); werr != nil || err != nil || acc != 4 {
			fail = fmt.Sprintf("%s: accept status %d, %v %v; want 4 (GARBAGE_ARGS)", k.what, acc, werr, err)
		} else if err := nullCall(c, x+1<<20, timeout); err != nil {
			fail = fmt.Sprintf("after %s the connection stopped answering: %v", k.what, err)
		}
		if fail != "" {
			mu.Lock()
			failures = append(failures, fail)
			mu.Unlock()
		}
	})
	*xid += 2 << 20
	if len(failures) > 0 {
		t.Fatalf("%d oversized NFS calls handled wrongly; first: %s", len(failures), failures[0])
	}
	// Half-sent records of the largest size the front reads.
	const maxRecord = maxIO + 64<<10
	for _, c := range conns[len(kinds)*per : (len(kinds)+1)*per] {
		hdr := binary.BigEndian.AppendUint32(nil, maxRecord|1<<31)
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write(append(hdr, make([]byte, maxRecord/2)...)); err != nil {
			t.Fatalf("a half-sent record: %v", err)
		}
	}
	for i := range conns[:len(kinds)*per] {
		if kinds[i/per].closes {
			conns[i].Close()
			conns[i] = nil
		}
	}
}

// refill dials the hostile address until freed more connections are
// served (slots free once the server has torn the closed connections
// down), then checks that 100 more are refused. It returns the served
// connections and the refused count.
func refill(t *testing.T, addr string, freed int, xid *uint32, timeout time.Duration) ([]net.Conn, int) {
	t.Helper()
	var served []net.Conn
	deadline := time.Now().Add(20 * time.Second)
	for len(served) < freed {
		if time.Now().After(deadline) {
			closeAll(&served)
			t.Fatalf("%d of %d freed NFS slots taken again in 20 s", len(served), freed)
		}
		c, err := dialFrom(addr, hostileIP)
		if err != nil {
			t.Fatal(err)
		}
		*xid++
		if nullCall(c, *xid, timeout) == nil {
			served = append(served, c)
			continue
		}
		c.Close()
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	more, _ := dialMany(addr, hostileIP, 100)
	defer closeAll(&more)
	if extra := probeNFS(more, xid, timeout); len(extra) > 0 {
		closeAll(&served)
		t.Fatalf("%d connections past MaxConnsPerClient served after the freed slots were taken", len(extra))
	}
	return served, len(more)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func healthz(addr string) error {
	c, err := dialFrom(addr, hostileIP)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: n1\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 200") {
		return fmt.Errorf("healthz: %q, %v", line, err)
	}
	return nil
}
