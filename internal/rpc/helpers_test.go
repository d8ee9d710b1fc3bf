package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/internal/pki"
	"github.com/fsrep/fsrep/meta"
)

var (
	testSecret  = []byte("test cluster secret")
	otherSecret = []byte("some other cluster")
)

// testMaxChunk is the store's chunk limit: far below the server's body limit
// (maxChunk), so both limits can be crossed cheaply.
const testMaxChunk = 1 << 20

// fakeMeta is a MetaService that records forwarded entries and answers
// what the test set.
type fakeMeta struct {
	mu       sync.Mutex
	entries  [][]byte
	res      *meta.Result
	err      error
	index    uint64
	indexErr error
}

func (f *fakeMeta) ApplyForwarded(_ context.Context, entry []byte) (*meta.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, bytes.Clone(entry))
	return f.res, f.err
}

func (f *fakeMeta) LeaderAppliedIndex() (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.index, f.indexErr
}

func (f *fakeMeta) setApply(res *meta.Result, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.res, f.err = res, err
}

func (f *fakeMeta) setIndex(idx uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index, f.indexErr = idx, err
}

func (f *fakeMeta) applied() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.entries...)
}

// fakeJoiner records join requests.
type fakeJoiner struct {
	mu  sync.Mutex
	got []meta.NodeInfo
	err error
}

func (j *fakeJoiner) Join(_ context.Context, info meta.NodeInfo) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.got = append(j.got, info)
	return j.err
}

func (j *fakeJoiner) setErr(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.err = err
}

func (j *fakeJoiner) joined() []meta.NodeInfo {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]meta.NodeInfo(nil), j.got...)
}

// harness is a real Server on a loopback socket over a real chunk store,
// and a Client that resolves node "n1" to it.
type harness struct {
	addr     string
	storeDir string
	store    *chunkstore.Store
	// free is the store's free space (its reserve is 1 MiB): a test
	// lowers it to play a full disk.
	free   atomic.Int64
	meta   *fakeMeta
	join   *fakeJoiner
	client *Client
	// peers maps further node IDs to addresses for the client's resolver.
	peers map[string]string
}

// testIdentity is a node identity from a CA made for this test binary.
var testIdentity = sync.OnceValue(func() *pki.Identity {
	ca, err := pki.NewCA("rpc test", time.Now())
	if err != nil {
		panic(err)
	}
	id, err := ca.Identity("n1", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		panic(err)
	}
	return id
})

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	log := testLogger(t)
	h := &harness{storeDir: t.TempDir(), meta: &fakeMeta{}, join: &fakeJoiner{}, peers: map[string]string{}}
	h.free.Store(1 << 40)
	store, err := chunkstore.Open(chunkstore.Config{
		Dir: h.storeDir, BlockSize: 4096, MaxChunkSize: testMaxChunk, NoSync: true,
		Reserve: 1 << 20, FreeSpace: func() (int64, error) { return h.free.Load(), nil },
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h.store = store

	srv := NewServer(testSecret, testIdentity().ServerConfig(), h.meta, h.join, store, log)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	h.client = h.newClient(t, testSecret, 10*time.Second)
	return h
}

// newClient returns a client with secret whose resolver knows "n1" (the
// harness server) and h.peers.
func (h *harness) newClient(t *testing.T, secret []byte, timeout time.Duration) *Client {
	c := NewClient(secret, testIdentity().ClientConfig(), func(id string) (string, error) {
		if id == "n1" {
			return h.addr, nil
		}
		if a, ok := h.peers[id]; ok {
			return a, nil
		}
		return "", fmt.Errorf("unknown node %q", id)
	}, timeout, nil)
	t.Cleanup(c.Close)
	return c
}

// rawReply is a server answer to a hand-made request.
type rawReply struct {
	status      int
	contentType string
	body        []byte
}

// wire decodes the JSON error body; it fails the test if there is none.
func (r rawReply) wire(t *testing.T) wireError {
	t.Helper()
	if r.contentType != "application/json" {
		t.Errorf("status %d with Content-Type %q, want application/json (body %q)", r.status, r.contentType, r.body)
	}
	var we wireError
	if err := json.Unmarshal(r.body, &we); err != nil {
		t.Fatalf("status %d: body %q is not a JSON error: %v", r.status, r.body, err)
	}
	if we.Msg == "" {
		t.Errorf("status %d: JSON error %+v has no message", r.status, we)
	}
	return we
}

// raw sends one request without the Client. token "" sends no
// Authorization header.
func (h *harness) raw(t *testing.T, method, pathQuery, token string, body io.Reader) rawReply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "https://"+h.addr+pathQuery, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set(authHeader, token)
	}
	tr := &http.Transport{TLSClientConfig: testIdentity().ClientConfig()}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, pathQuery, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading reply: %v", method, pathQuery, err)
	}
	return rawReply{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: b}
}

// alive checks that the server still answers a well-formed call.
func (h *harness) alive(t *testing.T) {
	t.Helper()
	id := chunkstore.ID{Vol: 9, Ino: 9, Index: 9}
	if err := h.client.PutChunk(t.Context(), "n1", id, 1, []byte("still here")); err != nil {
		t.Fatalf("server stopped serving: PutChunk: %v", err)
	}
	if info, err := h.client.StatChunk(t.Context(), "n1", id); err != nil || info.Version != 1 || info.Length != 10 {
		t.Fatalf("server stopped serving: StatChunk = %+v, %v", info, err)
	}
}
