package gateway

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
)

// nullOn sends an NFS NULL call on c and reports whether a reply came.
func nullOn(c net.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	null := &replyWriter{}
	for _, v := range []uint32{0xbeef, rpcCall, 2, 100003, 3, 0, authNone, 0, authNone, 0} {
		null.u32(v)
	}
	if _, err := c.Write(frame(null.b)); err != nil {
		return err
	}
	_, err := readRecord(c, maxReply)
	return err
}

// One client address may hold MaxConnsPerClient connections; the next is
// closed, and a slot frees when one of its connections ends.
func TestConnectionsPerClient(t *testing.T) {
	cfg := DefaultFrontConfig()
	cfg.MaxConnsPerClient = 2
	addr, _, _ := newTestServer(t, cfg)
	var conns []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := nullOn(c); err != nil {
			t.Fatalf("connection %d within the limit: %v", i+1, err)
		}
		conns = append(conns, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if err := nullOn(extra); err == nil {
		t.Fatal("a third connection from one client was served with a limit of 2")
	}
	conns[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		err = nullOn(c)
		c.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot freed after a connection closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	if err := nullOn(conns[1]); err != nil {
		t.Fatalf("the connection within the limit stopped answering: %v", err)
	}
}

// gatedData is sizeOnlyData whose WriteAt waits for release after telling
// entered, so a test holds a WRITE in flight.
type gatedData struct {
	sizeOnlyData
	entered chan struct{}
	release chan struct{}
}

func (d gatedData) WriteAt(ctx context.Context, vol *meta.Volume, ino uint64, off int64, data []byte) (*meta.Inode, error) {
	d.entered <- struct{}{}
	<-d.release
	return d.sizeOnlyData.WriteAt(ctx, vol, ino, off, data)
}

// TestDrainAnswersCallsInFlight proves the graceful stop a rolling restart
// relies on: once Drain starts, no connection is accepted and no further
// call is read, but a WRITE already in flight is answered (its client does
// not have to time out and retransmit elsewhere), then the connection
// closes and Drain returns.
func TestDrainAnswersCallsInFlight(t *testing.T) {
	gd := gatedData{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s, _, file := newTestServerWith(t, DefaultFrontConfig(), func(m fuzzMeta) vfs.Data {
		gd.sizeOnlyData = sizeOnlyData{m}
		return gd
	})
	addr := s.Addr().String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	call := func(xid, proc uint32, args []byte) []byte {
		w := &replyWriter{}
		for _, v := range []uint32{xid, rpcCall, 2, nfsProg, 3, proc, authNone, 0, authNone, 0} {
			w.u32(v)
		}
		return frame(append(w.b, args...))
	}
	args := &replyWriter{}
	args.opaque(file)
	args.u64(0)
	args.u32(4)
	args.u32(2) // FILE_SYNC
	args.opaque([]byte("data"))
	if _, err := c.Write(call(7, nfsProcWrite, args.b)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gd.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the WRITE never reached the data path")
	}

	drained := make(chan error, 1)
	go func() { drained <- s.Drain(t.Context()) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // the listener is closed
		}
		err = nullOn(nc)
		nc.Close()
		if err != nil {
			break // accepted by the kernel's backlog, then closed unanswered
		}
		if time.Now().After(deadline) {
			t.Fatal("a draining gateway still answers new connections")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	// A call sent now is not read: only the WRITE in flight is answered.
	if _, err := c.Write(call(8, 0, nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) with a WRITE in flight", err)
	default:
	}
	close(gd.release)

	reply, err := readRecord(c, maxReply)
	if err != nil {
		t.Fatalf("the WRITE in flight got no reply: %v", err)
	}
	if xid := binary.BigEndian.Uint32(reply); xid != 7 {
		t.Fatalf("first reply after drain is for xid %d, want the WRITE's 7", xid)
	}
	if at := replyStatusOffset(reply); at < 0 || binary.BigEndian.Uint32(reply[at:]) != 0 {
		t.Fatalf("WRITE in flight answered %x, want NFS3_OK", reply[:min(len(reply), 32)])
	}
	if extra, err := readRecord(c, maxReply); err == nil {
		t.Fatalf("a call sent after Drain started was answered (xid %d)", binary.BigEndian.Uint32(extra))
	}
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Drain did not return after its last call was answered")
	}
}
