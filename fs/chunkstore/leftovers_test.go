package chunkstore

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
)

// TestLeftoversOfAnInterruptedWrite plays a crash in the middle of an
// append: the data went past the chunk's length (over the tail of its last
// block and beyond), the header was never rewritten. The chunk still
// reads and verifies at its old version, and the next write, which leaves
// a hole over the leftovers, drops them: the hole reads as zeros.
func TestLeftoversOfAnInterruptedWrite(t *testing.T) {
	s := openStore(t, testConfig(t))
	r := rand.New(rand.NewPCG(7, 7))
	id := ID{Vol: 1, Ino: 5, Index: 0}
	old := randBytes(r, 3*testBlock+100) // the last block is partial
	if err := s.Put(id, 1, old); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(s.path(id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randBytes(r, 2*testBlock)); err != nil { // the interrupted append
		t.Fatal(err)
	}
	f.Close()
	s.handles.drop(id)

	if got, v := mustReadAll(t, s, id); v != 1 || !bytes.Equal(got, old) {
		t.Fatalf("after an interrupted append: version %d, %d bytes (want 1, %d)", v, len(got), len(old))
	}
	if info, err := s.Verify(id); err != nil || info.Version != 1 || info.Length != int64(len(old)) {
		t.Fatalf("Verify after an interrupted append: %+v, %v", info, err)
	}

	// The retried write lands past a hole over the leftovers.
	tail := randBytes(r, 300)
	off := int64(len(old)) + testBlock
	mustWrite(t, s, id, 1, 2, int64(len(old)), off, tail)
	want := append(append(append([]byte{}, old...), make([]byte, testBlock)...), tail...)
	if got, v := mustReadAll(t, s, id); v != 2 || !bytes.Equal(got, want) {
		t.Fatalf("after the next write: version %d, %d bytes; the hole or the data differ", v, len(got))
	}
	if _, err := s.Verify(id); err != nil {
		t.Fatalf("Verify after the next write: %v", err)
	}
}
