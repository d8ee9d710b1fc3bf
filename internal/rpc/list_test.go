package rpc

import (
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// TestListChunks pages through a node's chunk files over the wire: every
// file once, in ID order, with version and age, a damaged one flagged;
// bad parameters are refused and the call needs the token.
func TestListChunks(t *testing.T) {
	log := testLogger(t)
	dir := t.TempDir()
	store, err := chunkstore.Open(chunkstore.Config{Dir: dir, BlockSize: 4096, MaxChunkSize: testMaxChunk, NoSync: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var want []chunkstore.ID
	for i := range 7 {
		id := chunkstore.ID{Vol: 1 + uint32(i%2), Ino: uint64(10 + i), Index: uint64(i % 3)}
		if err := store.Put(id, uint64(100+i), randBytes(uint64(i), 3000)); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	slices.SortFunc(want, func(a, b chunkstore.ID) int {
		if a.Vol != b.Vol {
			return int(a.Vol) - int(b.Vol)
		}
		return int(a.Ino) - int(b.Ino)
	})
	flipByte(t, chunkFile(t, dir, want[2]), 41) // its header

	srv := NewServer(testSecret, testIdentity().ServerConfig(), &fakeMeta{}, &fakeJoiner{}, store, log)
	srv.EnableListing(replication.NewFileLister(store, wallClock{}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	h := &harness{addr: l.Addr().String(), peers: map[string]string{}}
	c := h.newClient(t, testSecret, 10*time.Second)

	var got []chunkstore.ID
	from, pages := chunkstore.ID{}, 0
	for {
		page, err := c.ListChunks(t.Context(), "n1", from, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, f := range page.Files {
			got = append(got, f.ID)
			switch {
			case f.ID == want[2] && (!f.Corrupt || f.Detail == ""):
				t.Errorf("damaged file listed as %+v", f)
			case f.ID != want[2] && (f.Corrupt || f.Version < 100 || f.Length != 3000 || f.Age < 0 || f.Age > time.Hour):
				t.Errorf("file listed as %+v", f)
			}
		}
		if page.Done {
			break
		}
		from = page.Next
	}
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("listed %v in %d pages, want %v in 3", got, pages, want)
	}

	for _, q := range []string{"?limit=0", "?limit=10001", "?limit=x", "?limit=5&from=nope"} {
		if r := h.raw(t, "GET", pathList+q, Token(testSecret), nil); r.status != 400 || r.wire(t).Code != meta.CodeInvalid {
			t.Errorf("GET %s: %d %s", q, r.status, r.body)
		}
	}
	if r := h.raw(t, "GET", pathList+"?limit=5", "", nil); r.status != 401 {
		t.Errorf("without a token: %d", r.status)
	}
	// The other calls are still served.
	if _, err := c.StatChunk(t.Context(), "n1", want[0]); err != nil {
		t.Errorf("stat after EnableListing: %v", err)
	}
	if _, err := c.ListChunks(t.Context(), "nope", chunkstore.ID{}, 5); !errors.Is(err, ErrUnreachable) {
		t.Errorf("unknown node: %v", err)
	}
}
