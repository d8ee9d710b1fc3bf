package chunkstore

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// TestReadsThroughOpenHandles: reads keep chunk files open between calls,
// yet every change through the store is seen by the next read, damage
// done behind the store's back is still reported, and more chunks than
// the store keeps open read correctly.
func TestReadsThroughOpenHandles(t *testing.T) {
	s := openStore(t, testConfig(t))
	r := rand.New(rand.NewPCG(3, 4))
	id := ID{1, 2, 0}
	v1 := randBytes(r, 3*testBlock)
	mustWrite(t, s, id, 0, 1, 0, 0, v1)
	read := func(version uint64, off int64, n int) ([]byte, error) { return s.Read(id, version, off, n) }
	if b, err := read(1, 10, 100); err != nil || !bytes.Equal(b, v1[10:110]) {
		t.Fatalf("first read: %v", err)
	}
	hd := s.handles.get(id)
	if hd == nil {
		t.Fatal("no open handle kept after a read")
	}
	s.handles.release(hd)

	// A write moves the chunk to version 2: the kept handle must not
	// serve version 1's header or bytes.
	patch := randBytes(r, 50)
	mustWrite(t, s, id, 1, 2, int64(len(v1)), 20, patch)
	if _, err := read(1, 0, 10); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("read of the old version after a write: %v", err)
	}
	b, err := read(2, 0, 100)
	want := append(append(append([]byte{}, v1[:20]...), patch...), v1[70:100]...)
	if err != nil || !bytes.Equal(b, want) {
		t.Fatalf("read after the write: %v", err)
	}

	// Damage on disk is found through the kept handle (blocks are checked
	// on every read).
	flipByte(t, s.path(id), int64(s.cfg.dataOffset())+testBlock+5)
	if _, err := read(2, testBlock, 10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a flipped block through a kept handle: %v", err)
	}

	// Deleted through the store: gone for readers at once.
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	if _, err := read(2, 0, 10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after Delete: %v", err)
	}

	// More chunks than handles: every read still right, at most
	// maxHandles kept open.
	datas := map[ID][]byte{}
	for i := range maxHandles + 40 {
		cid := ID{1, 3, uint64(i)}
		datas[cid] = randBytes(r, 100)
		mustWrite(t, s, cid, 0, 1, 0, 0, datas[cid])
	}
	for pass := range 2 {
		for cid, d := range datas {
			if b, err := s.Read(cid, 1, 0, 100); err != nil || !bytes.Equal(b, d) {
				t.Fatalf("pass %d: read %s: %v", pass, cid, err)
			}
		}
	}
	if n := len(s.handles.m); n > maxHandles {
		t.Fatalf("%d handles open, at most %d", n, maxHandles)
	}
}

// TestReadInto: whole-block reads land in the caller's buffer verified,
// with zeros past the data; other reads go through Read; damage and a
// wrong version are reported as by Read.
func TestReadInto(t *testing.T) {
	s := openStore(t, testConfig(t))
	r := rand.New(rand.NewPCG(5, 6))
	id := ID{2, 3, 0}
	data := randBytes(r, 3*testBlock+123)
	mustWrite(t, s, id, 0, 1, 0, 0, data)
	want := append(append([]byte{}, data...), make([]byte, testBlock-123)...) // whole blocks, zero tail
	for _, tc := range []struct{ off, n int64 }{
		{0, 4 * testBlock}, {testBlock, 2 * testBlock}, {3 * testBlock, testBlock}, // aligned
		{10, 100}, {testBlock - 5, 10}, {0, 3*testBlock + 123}, // not
	} {
		dst := make([]byte, tc.n)
		for i := range dst {
			dst[i] = 0xAA // must be overwritten everywhere
		}
		if err := s.ReadInto(id, 1, tc.off, dst); err != nil {
			t.Fatalf("ReadInto(%d, %d): %v", tc.off, tc.n, err)
		}
		if !bytes.Equal(dst, want[tc.off:tc.off+tc.n]) {
			t.Fatalf("ReadInto(%d, %d) read other bytes", tc.off, tc.n)
		}
	}
	if err := s.ReadInto(id, 2, 0, make([]byte, testBlock)); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("ReadInto at another version: %v", err)
	}
	flipByte(t, s.path(id), int64(s.cfg.dataOffset())+2*testBlock+1)
	if err := s.ReadInto(id, 1, 2*testBlock, make([]byte, testBlock)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadInto of a flipped block: %v", err)
	}
}
