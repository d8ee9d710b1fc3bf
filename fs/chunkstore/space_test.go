package chunkstore

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/fsrep/fsrep/internal/testutil"
)

// wantNoSpace fails unless err is ErrNoSpace, which must also be ENOSPC
// (what the gateway answers NFS3ERR_NOSPC).
func wantNoSpace(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("%s: %v, want ErrNoSpace matching ENOSPC", what, err)
	}
}

// tempFiles lists the temporary files under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, tempSuffix) {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReserve: below the reserve (free space injected) every Write and Put
// is refused with ErrNoSpace before anything changes, Full says so, and
// once there is room again writes pass: nothing stays "full".
func TestReserve(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 20)
	cfg := testConfig(t)
	cfg.Reserve = 64 << 10
	cfg.FreeSpace = func() (int64, error) { return free.Load(), nil }
	s := openStore(t, cfg)
	r := rand.New(rand.NewPCG(1, 2))
	id := ID{Vol: 1, Ino: 2, Index: 0}
	data := randBytes(r, 3000)
	mustWrite(t, s, id, 0, 1, 0, 0, data)
	if s.Full() {
		t.Fatal("Full with 1 MiB free and a 64 KiB reserve")
	}

	free.Store(64<<10 + 100) // above the reserve, but not by 3000 bytes
	_, err := s.Write(id, 1, 2, 3000, 3000, randBytes(r, 3000))
	wantNoSpace(t, "write that would eat into the reserve", err)
	if s.Full() {
		t.Fatal("Full while still above the reserve")
	}
	free.Store(1000)
	if !s.Full() {
		t.Fatal("not Full below the reserve")
	}
	_, err = s.Write(id, 1, 2, 3000, 0, []byte("x"))
	wantNoSpace(t, "overwrite below the reserve", err)
	_, err = s.Write(ID{Vol: 1, Ino: 3}, 0, 1, 0, 0, []byte("new"))
	wantNoSpace(t, "new chunk below the reserve", err)
	wantNoSpace(t, "put below the reserve", s.Put(ID{Vol: 1, Ino: 4}, 1, []byte("copy")))
	if got, v := mustReadAll(t, s, id); v != 1 || !bytes.Equal(got, data) {
		t.Fatalf("after refused writes: version %d, %d bytes; want version 1, the first write", v, len(got))
	}
	if _, _, err := s.Stat(ID{Vol: 1, Ino: 3}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused new chunk: Stat %v, want ErrNotFound", err)
	}

	free.Store(1 << 20)
	if s.Full() {
		t.Fatal("still Full after space was freed")
	}
	more := randBytes(r, 3000)
	mustWrite(t, s, id, 1, 2, 3000, 3000, more)
	if got, v := mustReadAll(t, s, id); v != 2 || !bytes.Equal(got, append(bytes.Clone(data), more...)) {
		t.Fatalf("after space was freed: version %d, %d bytes", v, len(got))
	}
}

// TestENOSPCLeavesChunksIntact runs the store on a real 512 KiB tmpfs
// filled to the last page: a new chunk, an in-place update that grows a
// chunk, one that fills a hole, and a write that cuts a chunk all fail
// with ErrNoSpace; each chunk still reads, verified, at its old version
// with its old bytes; no temporary file is left; an overwrite of allocated
// bytes still passes; and once space is freed every refused write passes.
func TestENOSPCLeavesChunksIntact(t *testing.T) {
	dir, ok := testutil.SmallFS(t, 512<<10)
	if !ok {
		t.Skip("needs to mount a tmpfs (root with CAP_SYS_ADMIN); TestReserve covers the refusal")
	}
	cfg := testConfig(t)
	cfg.Dir = filepath.Join(dir, "chunks")
	s := openStore(t, cfg)
	r := rand.New(rand.NewPCG(3, 4))

	type chunk struct {
		id      ID
		version uint64
		data    []byte
	}
	grow := &chunk{id: ID{Vol: 1, Ino: 10}, data: randBytes(r, 1000)}
	holey := &chunk{id: ID{Vol: 1, Ino: 11}, data: randBytes(r, 2000)}
	cut := &chunk{id: ID{Vol: 1, Ino: 12}, data: randBytes(r, 30000)}
	over := &chunk{id: ID{Vol: 1, Ino: 13}, data: randBytes(r, 20000)}
	for _, c := range []*chunk{grow, holey, cut, over} {
		mustWrite(t, s, c.id, 0, 1, 0, 0, c.data)
		c.version = 1
	}
	// holey: 2000 bytes, then a 40000-byte hole (the write below lands in it).
	mustWrite(t, s, holey.id, 1, 2, 2000, 50000, []byte("tail"))
	holey.data = append(append(holey.data, make([]byte, 48000)...), "tail"...)
	holey.version = 2

	check := func(when string) {
		t.Helper()
		for _, c := range []*chunk{grow, holey, cut, over} {
			got, v, err := s.ReadAll(c.id)
			if err != nil || v != c.version || !bytes.Equal(got, c.data) {
				t.Fatalf("%s: chunk %s: version %d, %d bytes, %v; want version %d, %d bytes as written",
					when, c.id, v, len(got), err, c.version, len(c.data))
			}
			if _, err := s.Verify(c.id); err != nil {
				t.Fatalf("%s: verify %s: %v", when, c.id, err)
			}
		}
		if tmp := tempFiles(t, cfg.Dir); len(tmp) > 0 {
			t.Fatalf("%s: temporary files left: %v", when, tmp)
		}
	}

	ballast := filepath.Join(dir, "ballast")
	t.Logf("ballast took %d bytes", testutil.Fill(t, ballast))

	newID := ID{Vol: 1, Ino: 20}
	newData := randBytes(r, 20000)
	_, err := s.Write(newID, 0, 1, 0, 0, newData)
	wantNoSpace(t, "new chunk on a full disk", err)
	if _, _, err := s.Stat(newID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused new chunk: Stat %v, want ErrNotFound", err)
	}
	wantNoSpace(t, "put on a full disk", s.Put(ID{Vol: 1, Ino: 21}, 1, newData))

	growData := randBytes(r, 40000)
	_, err = s.Write(grow.id, 1, 2, 1000, 1000, growData)
	wantNoSpace(t, "growing a chunk in place on a full disk", err)
	holeData := randBytes(r, 30000)
	_, err = s.Write(holey.id, 2, 3, int64(len(holey.data)), 10000, holeData)
	wantNoSpace(t, "filling a hole on a full disk", err)
	cutData := randBytes(r, 5000)
	_, err = s.Write(cut.id, 1, 2, 10000, 10000, cutData)
	wantNoSpace(t, "cutting a chunk on a full disk", err)
	check("after the refused writes")

	// Allocated bytes are overwritten in place, full disk or not.
	patch := randBytes(r, 4096)
	mustWrite(t, s, over.id, 1, 2, 20000, 5000, patch)
	copy(over.data[5000:], patch)
	over.version = 2
	check("after an overwrite on a full disk")

	// The store reopens cleanly on the full disk (nothing to clean up).
	s.Close()
	s = openStore(t, cfg)
	check("after reopening on the full disk")

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, newID, 0, 1, 0, 0, newData)
	mustWrite(t, s, grow.id, 1, 2, 1000, 1000, growData)
	grow.data, grow.version = append(grow.data, growData...), 2
	mustWrite(t, s, holey.id, 2, 3, int64(len(holey.data)), 10000, holeData)
	copy(holey.data[10000:], holeData)
	holey.version = 3
	mustWrite(t, s, cut.id, 1, 2, 10000, 10000, cutData)
	cut.data, cut.version = append(cut.data[:10000:10000], cutData...), 2
	check("after space was freed")
	if got, _ := mustReadAll(t, s, newID); !bytes.Equal(got, newData) {
		t.Fatal("new chunk written after space was freed reads differently")
	}
}
