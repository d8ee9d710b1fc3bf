package netlimit

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestBounds: a client over its bound is closed at once while another
// client still gets in; the total bound holds too; closing a connection
// frees its place.
func TestBounds(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, 3, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(local string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer reports whether the server closed c (EOF on read).
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}

	dial("127.0.0.1")
	dial("127.0.0.1")
	srvA1, _ := <-accepted, <-accepted
	if !closedByServer(dial("127.0.0.1")) {
		t.Fatal("a third connection from one client was kept")
	}
	dial("127.0.0.2") // another client still gets in
	<-accepted
	if !closedByServer(dial("127.0.0.3")) { // over the total
		t.Fatal("a connection over the total bound was kept")
	}
	if l.Refused() != 2 {
		t.Fatalf("refused %d, want 2", l.Refused())
	}
	srvA1.Close() // frees one of 127.0.0.1's places
	dial("127.0.0.1")
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a freed place was not reused")
	}
}
