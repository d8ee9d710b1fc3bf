package rpc

import (
	"bytes"
	"errors"
	"syscall"
	"testing"

	"github.com/fsrep/fsrep/fs/chunkstore"
)

// TestNoSpaceCrossesTheWire: a peer whose chunk disk is full answers
// writes and puts with the no_space code (HTTP 507), which the caller gets
// back as chunkstore.ErrNoSpace, matching syscall.ENOSPC and none of the
// other chunk errors nor ErrUnreachable (the write path tells "full" from
// "gone"); reads still work; once space is freed writes pass again.
func TestNoSpaceCrossesTheWire(t *testing.T) {
	h := newHarness(t)
	c, ctx := h.client, t.Context()
	id := chunkstore.ID{Vol: 1, Ino: 5, Index: 0}
	data := randBytes(11, 5000)
	if err := c.PutChunk(ctx, "n1", id, 3, data); err != nil {
		t.Fatal(err)
	}

	h.free.Store(1000)
	wantNoSpace := func(call string, err error) {
		t.Helper()
		if !errors.Is(err, chunkstore.ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("%s on a full peer: %v, want ErrNoSpace matching ENOSPC", call, err)
		}
		for _, other := range []error{chunkstore.ErrNotFound, chunkstore.ErrVersionMismatch, chunkstore.ErrCorrupt,
			chunkstore.ErrTooLarge, chunkstore.ErrTooRecent, ErrUnreachable} {
			if errors.Is(err, other) {
				t.Errorf("%s: %v also matches %v", call, err, other)
			}
		}
	}
	_, err := c.WriteChunk(ctx, "n1", id, 3, 4, 5000, 5000, []byte("more"))
	wantNoSpace("WriteChunk", err)
	wantNoSpace("PutChunk", c.PutChunk(ctx, "n1", chunkstore.ID{Vol: 1, Ino: 6}, 1, data))
	if r := h.raw(t, "POST", "/v1/chunk?id="+id.String()+"&version=9", Token(testSecret), bytes.NewReader(data)); r.status != 507 {
		t.Errorf("raw POST (put) on a full peer: status %d, want 507 (body %q)", r.status, r.body)
	} else if we := r.wire(t); we.Kind != "chunk" || we.Name != "no_space" {
		t.Errorf("raw POST (put) on a full peer: %+v, want chunk error no_space", we)
	}
	got, err := c.ReadChunk(ctx, "n1", id, 3, 0, len(data))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read from a full peer: %d bytes, %v", len(got), err)
	}

	h.free.Store(1 << 40)
	if _, err := c.WriteChunk(ctx, "n1", id, 3, 4, 5000, 5000, []byte("more")); err != nil {
		t.Fatalf("WriteChunk after space was freed: %v", err)
	}
}
