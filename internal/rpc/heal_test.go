package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// fakeHeal is a HealService that records calls and answers what the test set.
type fakeHeal struct {
	mu      sync.Mutex
	beats   []replication.Heartbeat
	paused  []bool
	removed []string
	err     error
}

func (f *fakeHeal) LeaderHeartbeat(_ context.Context, hb replication.Heartbeat) (replication.HeartbeatReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beats = append(f.beats, hb)
	return replication.HeartbeatReply{Leader: "n1", Nodes: []replication.PeerState{{ID: hb.Node, State: replication.StateUp, FreeBytes: hb.FreeBytes}}}, f.err
}

func (f *fakeHeal) LeaderRepairStatus(context.Context) (replication.RepairStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return replication.RepairStatus{Leader: "n1", Queue: 7, Paused: len(f.paused) > 0 && f.paused[len(f.paused)-1]}, f.err
}

func (f *fakeHeal) LeaderPauseRepair(_ context.Context, paused bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused = append(f.paused, paused)
	return f.err
}

func (f *fakeHeal) LeaderRemoveNode(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, id)
	return f.err
}

func (f *fakeHeal) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// healHarness is a server with the healing calls enabled, over a real
// chunk store, and a client resolving "n1" to it and "bad" to extra.
type healHarness struct {
	store  *chunkstore.Store
	heal   *fakeHeal
	client *Client
	addr   string
}

func newHealHarness(t *testing.T, extra string) *healHarness {
	t.Helper()
	log := testLogger(t)
	store, err := chunkstore.Open(chunkstore.Config{Dir: t.TempDir(), BlockSize: 4096, MaxChunkSize: testMaxChunk, NoSync: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h := &healHarness{store: store, heal: &fakeHeal{}}
	srv := NewServer(testSecret, testIdentity().ServerConfig(), &fakeMeta{}, &fakeJoiner{}, store, log)
	srv.EnableHealing(h.heal)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	h.client = NewClient(testSecret, testIdentity().ClientConfig(), func(id string) (string, error) {
		switch id {
		case "n1":
			return h.addr, nil
		case "bad":
			return extra, nil
		}
		return "", fmt.Errorf("unknown node %q", id)
	}, 10*time.Second, nil)
	t.Cleanup(h.client.Close)
	return h
}

func TestHealCopyVerified(t *testing.T) {
	h := newHealHarness(t, "")
	ctx := t.Context()
	id := chunkstore.ID{Vol: 1, Ino: 2, Index: 3}
	data := bytes.Repeat([]byte("chunk data "), 5000)
	if err := h.client.PutVerified(ctx, "n1", id, 5, data, Checksum(data)); err != nil {
		t.Fatalf("PutVerified: %v", err)
	}
	got, version, sum, err := h.client.FetchVerified(ctx, "n1", id)
	if err != nil || version != 5 || sum != Checksum(data) || !bytes.Equal(got, data) {
		t.Fatalf("FetchVerified = %d bytes, version %d, crc %08x, %v", len(got), version, sum, err)
	}

	// A body that does not match the sender's checksum is not stored.
	other := chunkstore.ID{Vol: 1, Ino: 2, Index: 4}
	if err := h.client.PutVerified(ctx, "n1", other, 5, data, Checksum(data)^1); !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Fatalf("PutVerified with a wrong checksum = %v, want ErrCorrupt", err)
	}
	if _, _, err := h.store.ReadAll(other); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("the refused chunk was stored: %v", err)
	}
	if _, _, _, err := h.client.FetchVerified(ctx, "n1", other); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("FetchVerified of a missing chunk = %v, want ErrNotFound", err)
	}
	// The older calls are still served beside the healing ones.
	if info, err := h.client.StatChunk(ctx, "n1", id); err != nil || info.Version != 5 {
		t.Fatalf("StatChunk = %+v, %v", info, err)
	}
}

// TestHealFetchChecksMismatch: bytes damaged on the way are refused by the
// fetching side.
func TestHealFetchChecksMismatch(t *testing.T) {
	bad := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(versionHeader, "5")
		w.Header().Set(crcHeader, formatCRC(Checksum([]byte("the bytes sent"))))
		_, _ = w.Write([]byte("the bytes seen"))
	}))
	bad.TLS = testIdentity().ServerConfig()
	bad.StartTLS()
	defer bad.Close()
	h := newHealHarness(t, strings.TrimPrefix(bad.URL, "https://"))
	_, _, _, err := h.client.FetchVerified(t.Context(), "bad", chunkstore.ID{Vol: 1, Ino: 1})
	if !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Fatalf("FetchVerified of damaged bytes = %v, want ErrCorrupt", err)
	}
}

func TestHealControlCalls(t *testing.T) {
	h := newHealHarness(t, "")
	ctx := t.Context()
	reply, err := h.client.Heartbeat(ctx, "n1", replication.Heartbeat{Node: "n2", FreeBytes: 42, Chunks: 3})
	if err != nil || reply.Leader != "n1" || len(reply.Nodes) != 1 || reply.Nodes[0].FreeBytes != 42 {
		t.Fatalf("Heartbeat = %+v, %v", reply, err)
	}
	if err := h.client.PauseRepair(ctx, "n1", true); err != nil {
		t.Fatal(err)
	}
	if st, err := h.client.RepairStatus(ctx, "n1"); err != nil || !st.Paused || st.Queue != 7 {
		t.Fatalf("RepairStatus = %+v, %v", st, err)
	}
	if err := h.client.RemoveNode(ctx, "n1", "n4"); err != nil {
		t.Fatal(err)
	}
	// Refusals cross the network as codes and come back as sentinels.
	for _, want := range []error{replication.ErrOnlyCopy, replication.ErrNotDrained, meta.ErrNoLeader, meta.ErrNotExist} {
		h.heal.setErr(fmt.Errorf("refused: %w", want))
		if err := h.client.RemoveNode(ctx, "n1", "n3"); !errors.Is(err, want) || !strings.Contains(err.Error(), "refused") {
			t.Errorf("RemoveNode refused with %v: got %v", want, err)
		}
	}
	h.heal.mu.Lock()
	defer h.heal.mu.Unlock()
	if len(h.heal.beats) != 1 || h.heal.beats[0].Chunks != 3 || len(h.heal.removed) != 5 || h.heal.removed[0] != "n4" {
		t.Fatalf("calls seen: %+v", h.heal)
	}
}

// TestHealCallsNeedTheToken: the healing calls are authenticated like the others.
func TestHealCallsNeedTheToken(t *testing.T) {
	h := newHealHarness(t, "")
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, pathHeartbeat}, {http.MethodGet, pathHealChunk + "?id=1.1.1"},
		{http.MethodPost, pathHealRemove}, {http.MethodGet, pathHealStatus},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), c.method, "https://"+h.addr+c.path, strings.NewReader("{}"))
		req.Header.Set(authHeader, Token(otherSecret))
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: testIdentity().ClientConfig()}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s with a wrong token: %d", c.method, c.path, resp.StatusCode)
		}
	}
	if len(h.heal.removed) != 0 || len(h.heal.beats) != 0 {
		t.Fatal("an unauthenticated call reached the service")
	}
}

// TestLeaderUnreachable: a leader that cannot be reached is reported as no
// leader, so callers retry.
func TestLeaderUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	h := newHealHarness(t, dead)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := h.client.Heartbeat(ctx, "bad", replication.Heartbeat{Node: "n2"}); !errors.Is(err, meta.ErrNoLeader) {
		t.Fatalf("Heartbeat to a dead leader = %v, want ErrNoLeader", err)
	}
}
