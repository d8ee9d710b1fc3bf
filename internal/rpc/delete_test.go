package rpc

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// TestDeleteChunkConditional proves that DELETE carries the version and the
// minimum age to the store, and that each refusal comes back as its own
// sentinel: garbage collection tells "not this version" (done here) from
// "too recent" (retry later) from an unreachable peer.
func TestDeleteChunkConditional(t *testing.T) {
	h := newHarness(t)
	c, ctx := h.client, t.Context()
	id := chunkstore.ID{Vol: 3, Ino: 9, Index: 0}
	if err := c.PutChunk(ctx, "n1", id, 7, randBytes(9, 5000)); err != nil {
		t.Fatal(err)
	}
	distinct := func(call string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v; want %v", call, err, want)
		}
		for _, other := range []error{chunkstore.ErrNotFound, chunkstore.ErrVersionMismatch, chunkstore.ErrCorrupt,
			chunkstore.ErrTooRecent, ErrUnreachable} {
			if other != want && errors.Is(err, other) {
				t.Errorf("%s: %v also matches %v", call, err, other)
			}
		}
	}
	distinct("DeleteChunk of a young file", c.DeleteChunk(ctx, "n1", id, 7, time.Hour), chunkstore.ErrTooRecent)
	distinct("DeleteChunk of another version", c.DeleteChunk(ctx, "n1", id, 6, 0), chunkstore.ErrVersionMismatch)
	if _, err := c.StatChunk(ctx, "n1", id); err != nil {
		t.Fatalf("a refused delete removed the chunk: %v", err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(chunkFile(t, h.storeDir, id), old, old); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteChunk(ctx, "n1", id, 7, time.Hour); err != nil {
		t.Fatalf("DeleteChunk of the old file at its version: %v", err)
	}
	distinct("StatChunk after delete", func() error { _, err := c.StatChunk(ctx, "n1", id); return err }(), chunkstore.ErrNotFound)

	// Corruption is its own code, not "missing" nor "another version".
	if err := c.PutChunk(ctx, "n1", id, 8, randBytes(10, 5000)); err != nil {
		t.Fatal(err)
	}
	path := chunkFile(t, h.storeDir, id)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, path, fi.Size()-1) // the last data byte
	_, err = c.ReadChunk(ctx, "n1", id, 8, 4096, 100)
	distinct("ReadChunk of a flipped block", err, chunkstore.ErrCorrupt)

	// The parameters are required and checked.
	for _, q := range []string{"id=" + id.String(), "id=" + id.String() + "&version=8&min_age_ms=-1",
		"id=" + id.String() + "&version=8&min_age_ms=9223372036854775807"} {
		r := h.raw(t, "DELETE", "/v1/chunk?"+q, Token(testSecret), nil)
		if r.status != 400 {
			t.Errorf("DELETE ?%s: status %d, want 400 (body %q)", q, r.status, r.body)
		}
		if we := r.wire(t); we.Code != meta.CodeInvalid {
			t.Errorf("DELETE ?%s: %+v, want code invalid", q, we)
		}
	}
}
