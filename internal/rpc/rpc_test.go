package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestToken(t *testing.T) {
	a, b := Token(testSecret), Token(otherSecret)
	if a != Token(testSecret) {
		t.Error("Token is not deterministic")
	}
	if a == b {
		t.Error("different secrets give the same token")
	}
	if !strings.HasPrefix(a, "Bearer ") || strings.Contains(a, string(testSecret)) {
		t.Errorf("Token = %q: want a bearer token that does not reveal the secret", a)
	}
}

func TestAuthRejectsMissingOrWrongToken(t *testing.T) {
	h := newHarness(t)
	id := chunkstore.ID{Vol: 1, Ino: 2, Index: 0}
	stat := pathStat + "?id=" + id.String()

	for name, token := range map[string]string{
		"missing":      "",
		"garbage":      "Bearer 0000",
		"other secret": Token(otherSecret),
		"no scheme":    strings.TrimPrefix(Token(testSecret), "Bearer "),
		"prefix":       Token(testSecret)[:len(Token(testSecret))-1],
	} {
		t.Run(name, func(t *testing.T) {
			r := h.raw(t, "GET", stat, token, nil)
			if r.status != 401 {
				t.Fatalf("status %d, want 401 (body %q)", r.status, r.body)
			}
			if we := r.wire(t); we.Kind != "other" {
				t.Errorf("error kind %q, want other", we.Kind)
			}
		})
	}
	// The right token gets through to the store (which has no such chunk).
	if r := h.raw(t, "GET", stat, Token(testSecret), nil); r.status != 404 {
		t.Fatalf("with the right token: status %d, want 404 (body %q)", r.status, r.body)
	}

	// A client with the wrong secret gets an error from every call, and
	// nothing reaches the services behind the server.
	bad := h.newClient(t, otherSecret, 10*time.Second)
	ctx := t.Context()
	checks := map[string]error{}
	_, checks["WriteChunk"] = bad.WriteChunk(ctx, "n1", id, 0, 1, 0, 0, []byte("x"))
	checks["PutChunk"] = bad.PutChunk(ctx, "n1", id, 1, []byte("x"))
	_, checks["ReadChunk"] = bad.ReadChunk(ctx, "n1", id, 1, 0, 1)
	_, _, checks["FetchChunk"] = bad.FetchChunk(ctx, "n1", id)
	_, checks["StatChunk"] = bad.StatChunk(ctx, "n1", id)
	checks["DeleteChunk"] = bad.DeleteChunk(ctx, "n1", id, 1, 0)
	_, checks["ForwardApply"] = bad.ForwardApply(ctx, "n1", []byte{1, 1, '{', '}'})
	_, checks["LeaderIndex"] = bad.LeaderIndex(ctx, "n1")
	checks["Join"] = bad.Join(ctx, h.addr, meta.NodeInfo{ID: "n9"})
	for call, err := range checks {
		switch {
		case err == nil:
			t.Errorf("%s with the wrong secret succeeded", call)
		case errors.Is(err, ErrUnreachable):
			t.Errorf("%s: %v: a refusal is an answer, not an unreachable peer", call, err)
		case !strings.Contains(err.Error(), "token"):
			t.Errorf("%s: %v: want the server's reason", call, err)
		}
	}
	if got := h.meta.applied(); len(got) != 0 {
		t.Errorf("unauthenticated apply reached the meta service: %q", got)
	}
	if got := h.join.joined(); len(got) != 0 {
		t.Errorf("unauthenticated join reached the joiner: %+v", got)
	}
	if _, _, err := h.store.Stat(id); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("unauthenticated write reached the store: Stat = %v", err)
	}
}

func TestChunkRoundTrip(t *testing.T) {
	h := newHarness(t)
	c, ctx := h.client, t.Context()
	id := chunkstore.ID{Vol: 1, Ino: 42, Index: 3}

	// A new chunk: 3 blocks and a bit.
	model := randBytes(1, 3*4096+100)
	if n, err := c.WriteChunk(ctx, "n1", id, 0, 1, 0, 0, model); err != nil || n != int64(len(model)) {
		t.Fatalf("WriteChunk new = %d, %v; want %d", n, err, len(model))
	}
	info, err := c.StatChunk(ctx, "n1", id)
	if err != nil || info.Version != 1 || info.Length != int64(len(model)) {
		t.Fatalf("StatChunk = %+v, %v; want version 1, length %d", info, err, len(model))
	}
	// The age is the peer's own measure of its file's last change.
	if info.Age < 0 || info.Age > time.Minute {
		t.Errorf("StatChunk age %v of a chunk just written", info.Age)
	}
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(chunkFile(t, h.storeDir, id), hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	if info, err := c.StatChunk(ctx, "n1", id); err != nil || info.Age < time.Hour || info.Age > time.Hour+time.Minute {
		t.Errorf("StatChunk of a chunk last changed an hour ago = %+v, %v", info, err)
	}
	got, err := c.ReadChunk(ctx, "n1", id, 1, 100, 5000)
	if err != nil || !bytes.Equal(got, model[100:5100]) {
		t.Fatalf("ReadChunk [100, 5100) = %d bytes, %v; want the written bytes", len(got), err)
	}
	// Past the stored data reads as zeros (the caller knows the length).
	got, err = c.ReadChunk(ctx, "n1", id, 1, int64(len(model))-10, 20)
	if want := append(bytes.Clone(model[len(model)-10:]), make([]byte, 10)...); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadChunk across the end = %v, %v; want %v", got, err, want)
	}
	if got, err := c.ReadChunk(ctx, "n1", id, 1, 7, 0); err != nil || len(got) != 0 {
		t.Fatalf("ReadChunk of 0 bytes = %q, %v", got, err)
	}

	// An overwrite in the middle at the next version.
	patch := randBytes(2, 3000)
	if n, err := c.WriteChunk(ctx, "n1", id, 1, 2, int64(len(model)), 5000, patch); err != nil || n != int64(len(model)) {
		t.Fatalf("WriteChunk overwrite = %d, %v", n, err)
	}
	copy(model[5000:], patch)
	// Cut then write: the chunk becomes baseLen+len(data) long.
	if n, err := c.WriteChunk(ctx, "n1", id, 2, 3, 6000, 6000, []byte("tail")); err != nil || n != 6004 {
		t.Fatalf("WriteChunk cut = %d, %v; want 6004", n, err)
	}
	model = append(model[:6000], "tail"...)
	data, v, err := c.FetchChunk(ctx, "n1", id)
	if err != nil || v != 3 || !bytes.Equal(data, model) {
		t.Fatalf("FetchChunk = %d bytes at version %d, %v; want %d bytes at version 3", len(data), v, err, len(model))
	}

	// Put replaces a chunk whole (re-replication); empty chunks too.
	id2 := chunkstore.ID{Vol: 1, Ino: 43, Index: 0}
	whole := randBytes(3, 70000)
	if err := c.PutChunk(ctx, "n1", id2, 7, whole); err != nil {
		t.Fatalf("PutChunk: %v", err)
	}
	if data, v, err := c.FetchChunk(ctx, "n1", id2); err != nil || v != 7 || !bytes.Equal(data, whole) {
		t.Fatalf("FetchChunk after Put = %d bytes at %d, %v", len(data), v, err)
	}
	if err := c.PutChunk(ctx, "n1", id2, 8, nil); err != nil {
		t.Fatalf("PutChunk empty: %v", err)
	}
	if info, err := c.StatChunk(ctx, "n1", id2); err != nil || info.Version != 8 || info.Length != 0 {
		t.Fatalf("StatChunk after empty Put = %+v, %v; want version 8, length 0", info, err)
	}
	if data, v, err := c.FetchChunk(ctx, "n1", id2); err != nil || v != 8 || len(data) != 0 {
		t.Fatalf("FetchChunk of empty chunk = %q at %d, %v", data, v, err)
	}

	// What the client saw is what the local store holds.
	local, lv, err := h.store.ReadAll(id)
	if err != nil || lv != 3 || !bytes.Equal(local, model) {
		t.Fatalf("store.ReadAll = %d bytes at %d, %v", len(local), lv, err)
	}

	// Delete, and delete again (retries succeed).
	for i := range 2 {
		if err := c.DeleteChunk(ctx, "n1", id, 3, 0); err != nil {
			t.Fatalf("DeleteChunk #%d: %v", i+1, err)
		}
	}
	if _, err := c.StatChunk(ctx, "n1", id); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("StatChunk after delete: %v, want ErrNotFound", err)
	}
	if _, err := c.StatChunk(ctx, "n1", id2); err != nil {
		t.Fatalf("deleting one chunk touched another: %v", err)
	}
}

// chunkFile finds the file of chunk id under dir.
func chunkFile(t *testing.T, dir string, id chunkstore.ID) string {
	t.Helper()
	var found string
	err := filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == id.String() {
			found = p
		}
		return err
	})
	if err != nil || found == "" {
		t.Fatalf("no file for chunk %s under %s: %v", id, dir, err)
	}
	return found
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func TestChunkErrorsAreSentinels(t *testing.T) {
	h := newHarness(t)
	c, ctx := h.client, t.Context()
	id := chunkstore.ID{Vol: 2, Ino: 5, Index: 1}
	missing := chunkstore.ID{Vol: 2, Ino: 6, Index: 0}
	data := randBytes(4, 3*4096)
	if _, err := c.WriteChunk(ctx, "n1", id, 0, 1, 0, 0, data); err != nil {
		t.Fatal(err)
	}

	check := func(call string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v; want %v", call, err, want)
			return
		}
		if errors.Is(err, ErrUnreachable) {
			t.Errorf("%s: %v also matches ErrUnreachable", call, err)
		}
	}

	// Not found, which is also io/fs.ErrNotExist for the gateway.
	_, err := c.ReadChunk(ctx, "n1", missing, 1, 0, 10)
	check("ReadChunk missing", err, chunkstore.ErrNotFound)
	check("ReadChunk missing", err, iofs.ErrNotExist)
	_, _, err = c.FetchChunk(ctx, "n1", missing)
	check("FetchChunk missing", err, chunkstore.ErrNotFound)
	_, err = c.StatChunk(ctx, "n1", missing)
	check("StatChunk missing", err, chunkstore.ErrNotFound)
	_, err = c.WriteChunk(ctx, "n1", missing, 1, 2, 10, 0, []byte("x"))
	check("WriteChunk on missing base", err, chunkstore.ErrNotFound)
	if err != nil && !strings.Contains(err.Error(), missing.String()) {
		t.Errorf("remote error %q lost the peer's message naming the chunk", err)
	}

	// Version mismatch, both ways.
	_, err = c.ReadChunk(ctx, "n1", id, 2, 0, 10)
	check("ReadChunk at the wrong version", err, chunkstore.ErrVersionMismatch)
	_, err = c.WriteChunk(ctx, "n1", id, 5, 6, int64(len(data)), 0, []byte("x"))
	check("WriteChunk on the wrong base", err, chunkstore.ErrVersionMismatch)

	// Too large for the store (but within the server's body limit).
	_, err = c.WriteChunk(ctx, "n1", id, 1, 2, int64(len(data)), testMaxChunk, []byte("x"))
	check("WriteChunk past the store limit", err, chunkstore.ErrTooLarge)
	err = c.PutChunk(ctx, "n1", missing, 1, make([]byte, testMaxChunk+1))
	check("PutChunk past the store limit", err, chunkstore.ErrTooLarge)

	// Bad arguments, whether the server or the store catches them.
	_, err = c.ReadChunk(ctx, "n1", id, 1, -1, 10)
	check("ReadChunk at a negative offset", err, iofs.ErrInvalid)
	err = c.PutChunk(ctx, "n1", missing, 0, []byte("x"))
	check("PutChunk at version 0", err, iofs.ErrInvalid)
	check("PutChunk at version 0", err, meta.ErrInvalid)

	// A flipped data byte on disk: reads of that block are corrupt, reads
	// of other blocks are not, and a whole-chunk fetch never passes it on.
	path := chunkFile(t, h.storeDir, id)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, path, fi.Size()-1) // the last data byte: block 2
	_, err = c.ReadChunk(ctx, "n1", id, 1, 2*4096, 10)
	check("ReadChunk of a flipped block", err, chunkstore.ErrCorrupt)
	_, _, err = c.FetchChunk(ctx, "n1", id)
	check("FetchChunk of a corrupt chunk", err, chunkstore.ErrCorrupt)
	if got, err := c.ReadChunk(ctx, "n1", id, 1, 0, 2*4096); err != nil || !bytes.Equal(got, data[:2*4096]) {
		t.Errorf("ReadChunk of intact blocks = %d bytes, %v", len(got), err)
	}

	// Sentinels of one package do not match the other's.
	_, err = c.StatChunk(ctx, "n1", missing)
	if errors.Is(err, meta.ErrNotExist) || errors.Is(err, chunkstore.ErrCorrupt) {
		t.Errorf("ErrNotFound from the wire also matches %v", err)
	}
}

func TestMetaErrorsAreSentinels(t *testing.T) {
	h := newHarness(t)
	c, ctx := h.client, t.Context()

	// A forwarded entry arrives byte for byte; the result comes back whole.
	entry, err := meta.EncodeCommand(&meta.Create{Vol: 1, Parent: 1, Name: "f", Kind: meta.TypeFile, Mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	want := &meta.Result{Code: meta.CodeOK, Index: 17, Inode: &meta.Inode{Ino: 5, Gen: 3, Type: meta.TypeFile, Mode: 0o644, Nlink: 1}}
	h.meta.setApply(want, nil)
	res, err := c.ForwardApply(ctx, "n1", entry)
	if err != nil || !reflect.DeepEqual(res, want) {
		t.Fatalf("ForwardApply = %+v, %v; want %+v", res, err, want)
	}
	if got := h.meta.applied(); len(got) != 1 || !bytes.Equal(got[0], entry) {
		t.Fatalf("meta service got %q, want %q", got, entry)
	}
	// A command that failed in Apply is a result, not a call error.
	h.meta.setApply(&meta.Result{Code: meta.CodeExist, Msg: "meta: file exists", Index: 18}, nil)
	res, err = c.ForwardApply(ctx, "n1", entry)
	if err != nil || !errors.Is(res.Err(), meta.ErrExist) || res.Index != 18 {
		t.Fatalf("ForwardApply of a failing command = %+v, %v", res, err)
	}

	for _, tc := range []struct {
		name string
		err  error
		want []error
		msg  string
	}{
		{"no leader", meta.ErrNoLeader, []error{meta.ErrNoLeader}, ""},
		{"exist", fmt.Errorf("%w: name f taken", meta.ErrExist), []error{meta.ErrExist, iofs.ErrExist}, "name f taken"},
		{"not empty", meta.ErrNotEmpty, []error{meta.ErrNotEmpty}, ""},
		{"invalid", fmt.Errorf("%w: bad entry", meta.ErrInvalid), []error{meta.ErrInvalid, iofs.ErrInvalid}, "bad entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.meta.setApply(nil, tc.err)
			_, err := c.ForwardApply(ctx, "n1", entry)
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("ForwardApply: %v; want it to match %v", err, w)
				}
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("ForwardApply: %q lost the peer's message %q", err, tc.msg)
			}
			if meta.CodeOf(err) != meta.CodeOf(tc.err) {
				t.Errorf("code %d crossed the wire as %d", meta.CodeOf(tc.err), meta.CodeOf(err))
			}
			h.meta.setIndex(0, tc.err)
			_, err = c.LeaderIndex(ctx, "n1")
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("LeaderIndex: %v; want it to match %v", err, w)
				}
			}
		})
	}

	// A foreign error is an error, but matches no sentinel.
	h.meta.setApply(nil, errors.New("disk on fire"))
	_, err = c.ForwardApply(ctx, "n1", entry)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("ForwardApply with a foreign error: %v", err)
	}
	for _, s := range []error{meta.ErrNoLeader, meta.ErrExist, meta.ErrNotExist, ErrUnreachable, chunkstore.ErrNotFound} {
		if errors.Is(err, s) {
			t.Errorf("foreign error %v matches %v", err, s)
		}
	}

	h.meta.setIndex(99, nil)
	if idx, err := c.LeaderIndex(ctx, "n1"); err != nil || idx != 99 {
		t.Fatalf("LeaderIndex = %d, %v; want 99", idx, err)
	}
}

func TestJoin(t *testing.T) {
	h := newHarness(t)
	c, ctx := h.client, t.Context()
	info := meta.NodeInfo{ID: "n4", AZ: "az2", RaftAddr: "10.0.0.4:7000", RPCAddr: "10.0.0.4:7001",
		NFSAddr: "10.0.0.4:2049", AdminAddr: "10.0.0.4:9090", Voter: true}
	if err := c.Join(ctx, h.addr, info); err != nil {
		t.Fatalf("Join: %v", err)
	}
	if err := c.JoinLeader(ctx, "n1", info); err != nil {
		t.Fatalf("JoinLeader: %v", err)
	}
	if got := h.join.joined(); len(got) != 2 || got[0] != info || got[1] != info {
		t.Fatalf("joiner got %+v, want %+v twice", got, info)
	}
	h.join.setErr(meta.ErrNoLeader)
	if err := c.Join(ctx, h.addr, info); !errors.Is(err, meta.ErrNoLeader) {
		t.Fatalf("Join with no leader: %v", err)
	}
	if err := c.JoinLeader(ctx, "n7", info); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("JoinLeader to an unknown node: %v; want ErrUnreachable", err)
	}
}

func TestUnreachable(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()

	// A port nothing listens on any more.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.peers["dead"] = l.Addr().String()
	l.Close()
	c := h.newClient(t, testSecret, 30*time.Second)

	id := chunkstore.ID{Vol: 1, Ino: 1, Index: 0}
	for _, node := range []string{"dead", "unknown"} {
		start := time.Now()
		calls := map[string]error{}
		_, calls["WriteChunk"] = c.WriteChunk(ctx, node, id, 0, 1, 0, 0, []byte("x"))
		calls["PutChunk"] = c.PutChunk(ctx, node, id, 1, []byte("x"))
		_, calls["ReadChunk"] = c.ReadChunk(ctx, node, id, 1, 0, 1)
		_, _, calls["FetchChunk"] = c.FetchChunk(ctx, node, id)
		_, calls["StatChunk"] = c.StatChunk(ctx, node, id)
		calls["DeleteChunk"] = c.DeleteChunk(ctx, node, id, 1, 0)
		calls["JoinLeader"] = c.JoinLeader(ctx, node, meta.NodeInfo{ID: "n9"})
		for call, err := range calls {
			if !errors.Is(err, ErrUnreachable) {
				t.Errorf("%s to %s: %v; want ErrUnreachable", call, node, err)
			}
		}
		// Forwarding to a leader that cannot be reached means "no leader".
		_, err := c.ForwardApply(ctx, node, []byte{1, 1})
		if !errors.Is(err, meta.ErrNoLeader) {
			t.Errorf("ForwardApply to %s: %v; want ErrNoLeader", node, err)
		}
		if _, err := c.LeaderIndex(ctx, node); !errors.Is(err, meta.ErrNoLeader) {
			t.Errorf("LeaderIndex to %s: %v; want ErrNoLeader", node, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("calls to %s took %v: a refused connection should fail at once", node, d)
		}
	}

	// A peer that accepts connections but never answers: the caller's
	// deadline bounds the call.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	h.peers["hung"] = hung.Addr().String()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.StatChunk(short, "hung", id)
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("StatChunk to a hung peer: %v; want ErrUnreachable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("StatChunk to a hung peer took %v despite a 200ms deadline", d)
	}

	// The callTimeout bounds calls without a deadline of their own.
	quick := h.newClient(t, testSecret, 200*time.Millisecond)
	start = time.Now()
	if _, err := quick.StatChunk(ctx, "hung", id); !errors.Is(err, ErrUnreachable) {
		t.Errorf("StatChunk past the call timeout: %v; want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("StatChunk to a hung peer took %v despite a 200ms call timeout", d)
	}

	// A cancelled call is reported as such.
	cancelled, cancelNow := context.WithCancel(ctx)
	cancelNow()
	if _, err := c.StatChunk(cancelled, "n1", id); !errors.Is(err, context.Canceled) {
		t.Errorf("StatChunk with a cancelled context: %v", err)
	}

	// The live server is unaffected.
	h.alive(t)
}
