package chunkstore

import (
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// age sets chunk id's modification time d in the past.
func age(t *testing.T, s *Store, id ID, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(s.path(id), old, old); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	cfg := testConfig(t)
	s := openStore(t, cfg)
	r := rand.New(rand.NewPCG(7, 8))
	// Longer than one verify segment would be with these blocks, with a
	// partial last block and a hole in the middle.
	id := ID{1, 2, 3}
	data := randBytes(r, 20*testBlock+77)
	mustWrite(t, s, id, 0, 4, 0, 0, data[:5*testBlock])
	mustWrite(t, s, id, 4, 5, 5*testBlock, 9*testBlock, data[9*testBlock:])
	info, err := s.Verify(id)
	if err != nil || info.Version != 5 || info.Length != int64(len(data)) {
		t.Fatalf("Verify = %+v, %v; want version 5, length %d", info, err, len(data))
	}
	empty := ID{1, 2, 4}
	if err := s.Put(empty, 1, nil); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Verify(empty); err != nil || info.Length != 0 {
		t.Fatalf("Verify of an empty chunk = %+v, %v", info, err)
	}
	if _, err := s.Verify(ID{9, 9, 9}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Verify of a missing chunk: %v, want ErrNotFound", err)
	}

	// Damage anywhere is found: data, hole, last partial block, header.
	dataOff := int64(s.cfg.dataOffset())
	for _, at := range []int64{dataOff, dataOff + 7*testBlock + 3, dataOff + int64(len(data)) - 1, 40} {
		if err := s.Put(id, 5, data); err != nil {
			t.Fatal(err)
		}
		flipByte(t, s.path(id), at)
		if _, err := s.Verify(id); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Verify with byte %d flipped: %v, want ErrCorrupt", at, err)
		}
	}
	// A file cut short is corrupt, not short.
	if err := s.Put(id, 5, data); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(s.path(id), dataOff+100); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(id); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Verify of a truncated file: %v", err)
	}
}

// TestVerifyLargeChunk crosses the verify segment with real block sizes.
func TestVerifyLargeChunk(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.NoSync = true
	s := openStore(t, cfg)
	id := ID{1, 1, 0}
	data := randBytes(rand.New(rand.NewPCG(1, 1)), 3*verifySegment+12345)
	if err := s.Put(id, 3, data); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Verify(id); err != nil || info.Length != int64(len(data)) {
		t.Fatalf("Verify = %+v, %v", info, err)
	}
	flipByte(t, s.path(id), int64(s.cfg.dataOffset())+2*verifySegment+70000)
	_, err := s.Verify(id)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify after a flip in the third segment: %v", err)
	}
	t.Logf("found: %v", err)
}

func TestDeleteVersion(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	mustWrite(t, s, id, 0, 7, 0, 0, []byte("hello"))

	// Too young: refused whatever the version.
	if err := s.DeleteVersion(id, 7, time.Hour); !errors.Is(err, ErrTooRecent) {
		t.Fatalf("DeleteVersion of a young file: %v, want ErrTooRecent", err)
	}
	age(t, s, id, 2*time.Hour)
	// Another version: refused, nothing removed.
	for _, v := range []uint64{6, 8, 0} {
		if err := s.DeleteVersion(id, v, time.Hour); !errors.Is(err, ErrVersionMismatch) {
			t.Fatalf("DeleteVersion(%d) of version 7: %v, want ErrVersionMismatch", v, err)
		}
	}
	if _, _, err := s.Stat(id); err != nil {
		t.Fatalf("a refused delete removed the chunk: %v", err)
	}
	if err := s.DeleteVersion(id, 7, time.Hour); err != nil {
		t.Fatalf("DeleteVersion(7): %v", err)
	}
	if _, _, err := s.Stat(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after DeleteVersion: %v, want ErrNotFound", err)
	}
	// Missing: success, so a retry succeeds.
	if err := s.DeleteVersion(id, 7, time.Hour); err != nil {
		t.Fatalf("second DeleteVersion: %v", err)
	}
	if err := s.DeleteVersion(id, 7, -1); err == nil {
		t.Fatalf("negative minimum age accepted")
	}

	// A file whose header is damaged matches any version, 0 included.
	for _, v := range []uint64{0, 3} {
		if err := s.Put(id, 5, []byte("data")); err != nil {
			t.Fatal(err)
		}
		flipByte(t, s.path(id), offVersion)
		if err := s.DeleteVersion(id, v, 0); err != nil {
			t.Fatalf("DeleteVersion(%d) of a damaged file: %v", v, err)
		}
		if _, err := os.Stat(s.path(id)); !os.IsNotExist(err) {
			t.Fatalf("damaged file still there: %v", err)
		}
	}
	// Damaged data blocks leave the header readable: the version decides.
	mustWrite(t, s, id, 0, 5, 0, 0, []byte("data"))
	flipByte(t, s.path(id), int64(s.cfg.dataOffset()))
	if err := s.DeleteVersion(id, 4, 0); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("DeleteVersion(4) of version 5 with a bad block: %v", err)
	}
	if err := s.DeleteVersion(id, 5, 0); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteCorrupt(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	data := randBytes(rand.New(rand.NewPCG(3, 3)), 3*testBlock)
	if err := s.Put(id, 2, data); err != nil {
		t.Fatal(err)
	}
	if gone, err := s.DeleteCorrupt(id); gone || err != nil {
		t.Fatalf("DeleteCorrupt of a sound chunk = %v, %v; want kept", gone, err)
	}
	flipByte(t, s.path(id), int64(s.cfg.dataOffset())+2*testBlock)
	// A good copy put over the damage (re-replication) is kept.
	if err := s.Put(id, 2, data); err != nil {
		t.Fatalf("Put over a corrupt file: %v", err)
	}
	if gone, err := s.DeleteCorrupt(id); gone || err != nil {
		t.Fatalf("DeleteCorrupt after the repair = %v, %v; want kept", gone, err)
	}
	flipByte(t, s.path(id), int64(s.cfg.dataOffset())+2*testBlock)
	if gone, err := s.DeleteCorrupt(id); !gone || err != nil {
		t.Fatalf("DeleteCorrupt of a damaged chunk = %v, %v; want removed", gone, err)
	}
	if _, _, err := s.Stat(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after DeleteCorrupt: %v", err)
	}
	if gone, err := s.DeleteCorrupt(id); gone || err != nil {
		t.Fatalf("DeleteCorrupt of a missing chunk = %v, %v", gone, err)
	}
}

// A write that rewrites part of a rotted block must fail, not checksum the
// rot as if it were data: the rot would then pass every read and scrub.
func TestPartialRewriteOfRottedBlockFails(t *testing.T) {
	s := openStore(t, testConfig(t))
	r := rand.New(rand.NewPCG(3, 4))
	data := randBytes(r, 4*testBlock+100)
	dataOff := int64(s.cfg.dataOffset())
	for _, tc := range []struct {
		name         string
		at           int64 // byte flipped, relative to the data
		baseLen, off int64
		n            int
		wantCorrupt  bool
	}{
		{"inside the block written", testBlock + 5, int64(len(data)), testBlock + 100, 10, true},
		{"in the block a cut goes through", 2*testBlock + 3, 2*testBlock + 50, 3 * testBlock, 10, true},
		{"in a block the write replaces whole", testBlock + 5, int64(len(data)), testBlock, testBlock, false},
		{"in a block the write does not touch", 3*testBlock + 1, int64(len(data)), 10, 10, false},
	} {
		id := ID{7, 7, 7}
		if err := s.Put(id, 1, data); err != nil {
			t.Fatal(err)
		}
		flipByte(t, s.path(id), dataOff+tc.at)
		_, err := s.Write(id, 1, 2, tc.baseLen, tc.off, randBytes(r, tc.n))
		if tc.wantCorrupt != errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Write = %v, want corrupt %v", tc.name, err, tc.wantCorrupt)
		}
		if tc.wantCorrupt {
			if info, err := s.Inspect(id); err != nil || info.Version != 1 {
				t.Errorf("%s: after the refused write the chunk is %+v, %v; want version 1 untouched", tc.name, info, err)
			}
		}
	}
}
