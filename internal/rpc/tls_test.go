package rpc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/internal/pki"
	"github.com/fsrep/fsrep/meta"
)

// TestStrangerRefused: a caller that holds the cluster secret but no
// certificate from the cluster CA (a node of another cluster, or one
// given a certificate of its own making) can neither read a chunk, nor
// write one, nor forward a command, nor join; a caller without TLS gets
// nothing either. The same calls from a member succeed, so the refusal is
// the certificate's doing.
func TestStrangerRefused(t *testing.T) {
	h := newHarness(t)
	id := chunkstore.ID{Vol: 1, Ino: 7, Index: 0}
	secretBytes := []byte("the bytes of a file no stranger may read")
	if err := h.client.PutChunk(t.Context(), "n1", id, 1, secretBytes); err != nil {
		t.Fatal(err)
	}
	if got, err := h.client.ReadChunk(t.Context(), "n1", id, 1, 0, len(secretBytes)); err != nil || !bytes.Equal(got, secretBytes) {
		t.Fatalf("a member's ReadChunk = %q, %v", got, err)
	}

	otherCA, err := pki.NewCA("another cluster", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := otherCA.Identity("n1", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(testSecret, stranger.ClientConfig(), func(string) (string, error) { return h.addr, nil }, 5*time.Second, nil)
	t.Cleanup(c.Close)
	if got, err := c.ReadChunk(t.Context(), "n1", id, 1, 0, len(secretBytes)); err == nil || !errors.Is(err, ErrUnreachable) {
		t.Errorf("a stranger's ReadChunk = %q, %v; want a refused handshake", got, err)
	}
	if err := c.PutChunk(t.Context(), "n1", chunkstore.ID{Vol: 1, Ino: 8}, 1, []byte("planted")); err == nil {
		t.Error("a stranger's PutChunk succeeded")
	}
	if _, err := c.ForwardApply(t.Context(), "n1", []byte{1, 2, 3}); err == nil {
		t.Error("a stranger's ForwardApply succeeded")
	}
	if err := c.Join(t.Context(), h.addr, meta.NodeInfo{ID: "intruder", RaftAddr: "127.0.0.1:1"}); err == nil {
		t.Error("a stranger's Join succeeded")
	}
	if got := h.meta.applied(); len(got) != 0 {
		t.Errorf("a stranger's command reached the meta service: %d of them", len(got))
	}
	if got := h.join.joined(); len(got) != 0 {
		t.Errorf("a stranger joined: %+v", got)
	}
	if _, _, err := h.store.ReadAll(chunkstore.ID{Vol: 1, Ino: 8}); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("a stranger's chunk was stored: %v", err)
	}

	// The member's server certificate does not satisfy a client that
	// trusts only the other CA either: the trust is mutual.
	if _, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: stranger.ClientConfig()}}).Get("https://" + h.addr + pathStat); err == nil {
		t.Error("a client trusting another CA accepted the member's certificate")
	}

	// Plain HTTP with the right token: no answer with data in it.
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s?id=%s&version=1&off=0&len=%d HTTP/1.1\r\nHost: x\r\n%s: %s\r\n\r\n",
		pathChunk, id, len(secretBytes), authHeader, Token(testSecret))
	reply, _ := io.ReadAll(conn)
	if bytes.Contains(reply, secretBytes) {
		t.Errorf("plain HTTP read the chunk: %q", reply)
	}
	h.alive(t)
}
