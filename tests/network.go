package tests

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// network is the test cluster's internode network: every Raft and RPC
// connection a node opens is dialed through it, so a test can cut groups of
// nodes off from each other (both directions; connections already open
// across the cut are closed) and heal the cut. NFS clients are not
// affected: a test reaches both sides of a partition.
type network struct {
	mu    sync.Mutex
	group map[int]int         // node slot -> partition group; all 0 when healed
	addrs map[string]int      // internode address -> node slot
	conns map[*netConn]string // open connections -> the address dialed
	tap   *tap                // records every byte on the wire when set
}

// tap keeps a copy of the bytes read and written on internode
// connections: what someone capturing the internode network would see.
type tap struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tap) record(b []byte) {
	t.mu.Lock()
	t.buf = append(t.buf, b...)
	t.mu.Unlock()
}

// bytes returns a copy of what was captured.
func (t *tap) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

func newNetwork() *network {
	return &network{group: map[int]int{}, addrs: map[string]int{}, conns: map[*netConn]string{}}
}

// register records the internode addresses of slot i.
func (n *network) register(i int, addrs ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range addrs {
		n.addrs[a] = i
	}
}

// connected reports whether slots a and b can talk.
func (n *network) connected(a, b int) bool { return n.group[a] == n.group[b] }

// dialer returns the dial function of slot from.
func (n *network) dialer(from int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, netw, addr string) (net.Conn, error) {
		n.mu.Lock()
		to, known := n.addrs[addr]
		cut := known && !n.connected(from, to)
		n.mu.Unlock()
		if cut {
			return nil, fmt.Errorf("test network: n%d cannot reach %s (partitioned)", from+1, addr)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, netw, addr)
		if err != nil {
			return nil, err
		}
		nc := &netConn{Conn: c, from: from, to: to, known: known}
		n.mu.Lock()
		nc.tap.Store(n.tap)
		defer n.mu.Unlock()
		if known && !n.connected(from, to) { // cut while dialing
			c.Close()
			return nil, fmt.Errorf("test network: n%d cannot reach %s (partitioned)", from+1, addr)
		}
		n.conns[nc] = addr
		nc.onClose = func() {
			n.mu.Lock()
			delete(n.conns, nc)
			n.mu.Unlock()
		}
		return nc, nil
	}
}

// partition splits the nodes into groups: the slots listed form one side,
// all others the other side.
func (n *network) partition(side []int) {
	n.mu.Lock()
	for k := range n.group {
		delete(n.group, k)
	}
	for _, i := range side {
		n.group[i] = 1
	}
	var cut []*netConn
	for c := range n.conns {
		if c.known && !n.connected(c.from, c.to) {
			cut = append(cut, c)
		}
	}
	n.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}

// heal joins every group again.
func (n *network) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.group {
		delete(n.group, k)
	}
}

// netConn is a connection the network tracks so a cut can close it.
type netConn struct {
	net.Conn
	from, to int
	known    bool
	once     sync.Once
	onClose  func()
	tap      atomic.Pointer[tap]
}

func (c *netConn) Read(b []byte) (int, error) {
	k, err := c.Conn.Read(b)
	if t := c.tap.Load(); t != nil && k > 0 {
		t.record(b[:k])
	}
	return k, err
}

func (c *netConn) Write(b []byte) (int, error) {
	k, err := c.Conn.Write(b)
	if t := c.tap.Load(); t != nil && k > 0 {
		t.record(b[:k])
	}
	return k, err
}

func (c *netConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
	})
	return err
}

// Partition cuts the listed node slots off from the others (Raft and
// internode RPC, both directions) until Heal.
func (c *Cluster) Partition(side ...int) { c.net.partition(side) }

// Heal ends a partition.
func (c *Cluster) Heal() { c.net.heal() }

// Capture starts recording every byte of the internode connections opened
// from now on (both directions; every internode connection is dialed
// through the test network) and returns a function that gives a copy of
// what was recorded so far.
func (c *Cluster) Capture() func() []byte {
	t := &tap{}
	c.net.mu.Lock()
	c.net.tap = t
	for nc := range c.net.conns {
		nc.tap.Store(t)
	}
	c.net.mu.Unlock()
	return t.bytes
}
