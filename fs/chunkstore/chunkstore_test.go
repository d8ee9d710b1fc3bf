package chunkstore

import (
	"bytes"
	"errors"
	iofs "io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testBlock = 512
	testMax   = 64 << 10
)

// testConfig uses the smallest block size so that tests cross many block
// boundaries with little data.
func testConfig(t testing.TB) Config {
	return Config{Dir: t.TempDir(), BlockSize: testBlock, MaxChunkSize: testMax, NoSync: true}
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func mustWrite(t *testing.T, s *Store, id ID, base, next uint64, baseLen, off int64, data []byte) int64 {
	t.Helper()
	n, err := s.Write(id, base, next, baseLen, off, data)
	if err != nil {
		t.Fatalf("Write(%s, base %d, new %d, baseLen %d, off %d, %d bytes): %v", id, base, next, baseLen, off, len(data), err)
	}
	return n
}

func mustReadAll(t *testing.T, s *Store, id ID) ([]byte, uint64) {
	t.Helper()
	data, v, err := s.ReadAll(id)
	if err != nil {
		t.Fatalf("ReadAll(%s): %v", id, err)
	}
	return data, v
}

func TestIDStringParse(t *testing.T) {
	for _, id := range []ID{{}, {1, 42, 0}, {Vol: 1<<32 - 1, Ino: 1<<64 - 1, Index: 1<<64 - 1}, {7, 0, 3}} {
		s := id.String()
		got, err := ParseID(s)
		if err != nil || got != id {
			t.Errorf("ParseID(%q) = %v, %v; want %v", s, got, err, id)
		}
	}
	if got := (ID{Vol: 1, Ino: 42}).String(); got != "v1-i42-c0" {
		t.Errorf("String = %q, want v1-i42-c0", got)
	}
	for _, s := range []string{"", "v1", "v1-i2", "v1-i2-c", "x1-i2-c3", "v01-i2-c3", "v1-i+2-c3", "v1-i2-c-3",
		"v4294967296-i2-c3", "v1-i18446744073709551616-c0", "v1-i2-c3 ", "v1-i2-c3.tmp", "v1-i2-c3-c4", "v1_0-i2-c3"} {
		if id, err := ParseID(s); err == nil {
			t.Errorf("ParseID(%q) = %v, want error", s, id)
		} else if !errors.Is(err, iofs.ErrInvalid) {
			t.Errorf("ParseID(%q) error %v does not match io/fs.ErrInvalid", s, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	def := DefaultConfig("/x")
	if err := def.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if got := def.dataOffset(); got != 8192 {
		t.Errorf("default data offset = %d, want 8192 (header and table in the first 8 KiB)", got)
	}
	for name, mod := range map[string]func(*Config){
		"no dir":          func(c *Config) { c.Dir = "" },
		"zero block":      func(c *Config) { c.BlockSize = 0 },
		"odd block":       func(c *Config) { c.BlockSize = 3000 },
		"tiny block":      func(c *Config) { c.BlockSize = 256 },
		"huge block":      func(c *Config) { c.BlockSize = 32 << 20 },
		"zero max":        func(c *Config) { c.MaxChunkSize = 0 },
		"too many blocks": func(c *Config) { c.BlockSize = 512; c.MaxChunkSize = 1 << 40 },
	} {
		c := def
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
		if _, err := Open(c, nil); err == nil {
			t.Errorf("%s: Open accepted %+v", name, c)
		}
	}
}

// model is the in-memory truth the random test compares the store with.
type model struct {
	version uint64
	data    []byte
}

// apply is the specification of Write, written as plainly as possible.
func (m *model) apply(baseLen, off int64, data []byte, version uint64) int64 {
	cut := make([]byte, baseLen)
	copy(cut, m.data)
	if end := off + int64(len(data)); end > baseLen {
		cut = append(cut, make([]byte, end-baseLen)...)
	}
	copy(cut[off:], data)
	m.data, m.version = cut, version
	return int64(len(cut))
}

// TestModel runs random operations on a few chunks and on a model of them,
// comparing every result.
func TestModel(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	cfg := testConfig(t)
	s := openStore(t, cfg)
	ids := []ID{{1, 1, 0}, {1, 1, 1}, {2, 7, 0}, {3, 1 << 40, 9}}
	models := map[ID]*model{}
	var version uint64
	nextVersion := func() uint64 { version += 1 + uint64(r.IntN(3)); return version }
	// pos picks an offset in [0, limit], often on or next to a block
	// boundary, where the bugs live.
	pos := func(limit int64) int64 {
		if limit <= 0 {
			return 0
		}
		if r.IntN(3) == 0 {
			b := r.Int64N(limit/testBlock + 1)
			p := b*testBlock + int64(r.IntN(3)) - 1
			return min(max(p, 0), limit)
		}
		return r.Int64N(limit + 1)
	}
	size := func(limit int64) int {
		if limit <= 0 {
			return 0
		}
		switch r.IntN(4) {
		case 0:
			return int(min(limit, int64(r.IntN(4))))
		case 1:
			return int(min(limit, int64(testBlock*(1+r.IntN(3)))))
		default:
			return int(r.Int64N(min(limit, 4*testBlock) + 1))
		}
	}

	check := func(id ID) {
		t.Helper()
		m := models[id]
		v, n, err := s.Stat(id)
		if m == nil {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Stat(%s) of missing chunk: %v", id, err)
			}
			return
		}
		if err != nil || v != m.version || n != int64(len(m.data)) {
			t.Fatalf("Stat(%s) = %d, %d, %v; model %d, %d", id, v, n, err, m.version, len(m.data))
		}
		data, v := mustReadAll(t, s, id)
		if v != m.version || !bytes.Equal(data, m.data) {
			t.Fatalf("ReadAll(%s): version %d, %d bytes; model %d, %d bytes", id, v, len(data), m.version, len(m.data))
		}
	}

	for op := range 3000 {
		id := ids[r.IntN(len(ids))]
		m := models[id]
		switch k := r.IntN(20); {
		case k < 2: // create (after deleting whatever is there)
			baseLen := pos(3 * testBlock)
			off := pos(testMax / 4)
			data := randBytes(r, size(testMax-off))
			v := nextVersion()
			if m != nil {
				if _, err := s.Write(id, 0, v, baseLen, off, data); !errors.Is(err, ErrVersionMismatch) {
					t.Fatalf("op %d: create over an existing chunk: %v, want ErrVersionMismatch", op, err)
				}
				if err := s.Delete(id); err != nil {
					t.Fatal(err)
				}
			}
			n := mustWrite(t, s, id, 0, v, baseLen, off, data)
			m = &model{}
			models[id] = m
			if want := m.apply(baseLen, off, data, v); n != want {
				t.Fatalf("op %d: create returned length %d, want %d", op, n, want)
			}
		case k < 10: // update at the right version
			if m == nil {
				_, err := s.Write(id, 5, 6, 0, 0, []byte("x"))
				if !errors.Is(err, ErrNotFound) || !errors.Is(err, iofs.ErrNotExist) {
					t.Fatalf("op %d: Write to missing chunk: %v", op, err)
				}
				continue
			}
			baseLen := int64(len(m.data))
			switch r.IntN(4) {
			case 0:
				baseLen = pos(baseLen) // truncate
			case 1:
				baseLen = pos(min(baseLen+3*testBlock, testMax)) // maybe extend
			}
			off := pos(min(baseLen+2*testBlock, testMax))
			data := randBytes(r, size(testMax-off))
			v := nextVersion()
			n := mustWrite(t, s, id, m.version, v, baseLen, off, data)
			if want := m.apply(baseLen, off, data, v); n != want {
				t.Fatalf("op %d: write returned length %d, want %d", op, n, want)
			}
		case k < 11: // update at a wrong version: refused, nothing changes
			if m == nil {
				continue
			}
			_, err := s.Write(id, m.version+1, nextVersion(), 0, 0, []byte("nope"))
			if !errors.Is(err, ErrVersionMismatch) {
				t.Fatalf("op %d: Write at wrong base: %v", op, err)
			}
			check(id)
		case k < 16: // read a random range at the right version
			if m == nil {
				if _, err := s.Read(id, 1, 0, 1); !errors.Is(err, ErrNotFound) {
					t.Fatalf("op %d: Read of missing chunk: %v", op, err)
				}
				continue
			}
			off := pos(int64(len(m.data)) + testBlock)
			length := size(testMax - off)
			got, err := s.Read(id, m.version, off, length)
			if err != nil {
				t.Fatalf("op %d: Read(%s, %d, %d, %d): %v", op, id, m.version, off, length, err)
			}
			want := make([]byte, length)
			if off < int64(len(m.data)) {
				copy(want, m.data[off:])
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("op %d: Read(%s, off %d, len %d) differs from model", op, id, off, length)
			}
			if m.version > 1 {
				if _, err := s.Read(id, m.version-1, off, length); !errors.Is(err, ErrVersionMismatch) {
					t.Fatalf("op %d: Read at old version: %v", op, err)
				}
			}
		case k < 17:
			check(id)
		case k < 18: // put a whole chunk
			data := randBytes(r, size(testMax))
			v := nextVersion()
			if err := s.Put(id, v, data); err != nil {
				t.Fatalf("op %d: Put: %v", op, err)
			}
			models[id] = &model{version: v, data: data}
		case k < 19:
			if err := s.Delete(id); err != nil {
				t.Fatalf("op %d: Delete: %v", op, err)
			}
			delete(models, id)
		default: // reopen: everything lives in the files
			s.Close()
			s = openStore(t, cfg)
		}
	}
	for _, id := range ids {
		check(id)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(models) {
		t.Fatalf("List = %v, model has %d chunks", list, len(models))
	}
	for _, id := range list {
		if models[id] == nil {
			t.Fatalf("List has %s, model does not", id)
		}
	}
}

func TestVersionMismatch(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	mustWrite(t, s, id, 0, 3, 0, 0, []byte("hello"))
	_, err := s.Write(id, 2, 4, 0, 0, []byte("XXXXXXXX"))
	if !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("Write at wrong base: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "local version 3") || !strings.Contains(msg, "expected 2") ||
		!strings.Contains(msg, id.String()) {
		t.Errorf("mismatch error %q should name the chunk, the local and the expected version", msg)
	}
	data, v := mustReadAll(t, s, id)
	if v != 3 || string(data) != "hello" {
		t.Errorf("after refused write: version %d, data %q", v, data)
	}
	if _, err := s.Read(id, 4, 0, 5); !errors.Is(err, ErrVersionMismatch) {
		t.Errorf("Read at wrong version: %v", err)
	}
}

func TestWriteMissingChunk(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	_, err := s.Write(id, 1, 2, 0, 0, []byte("x"))
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("Write to missing chunk: %v", err)
	}
	if _, _, err := s.Stat(id); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("Stat of missing chunk: %v", err)
	}
	if _, _, err := s.ReadAll(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadAll of missing chunk: %v", err)
	}
}

func TestCreateRefusesExistingChunk(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	first := bytes.Repeat([]byte{0xaa}, 3*testBlock)
	mustWrite(t, s, id, 0, 7, 0, 0, first)
	if _, err := s.Write(id, 0, 9, 0, 10, []byte("new")); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("create over an existing chunk: %v, want ErrVersionMismatch", err)
	}
	data, v := mustReadAll(t, s, id)
	if v != 7 || !bytes.Equal(data, first) {
		t.Fatalf("a refused create changed the chunk: version %d, %d bytes", v, len(data))
	}
	info, err := s.Inspect(id)
	if err != nil || info.Version != 7 || info.Length != int64(len(first)) || info.Age < 0 || info.Age > time.Minute {
		t.Fatalf("Inspect = %+v, %v", info, err)
	}
	// After a delete, a create may also name a base length: that many zeros.
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	n := mustWrite(t, s, id, 0, 11, 2*testBlock, 1, []byte("z"))
	data, _ = mustReadAll(t, s, id)
	want := make([]byte, 2*testBlock)
	want[1] = 'z'
	if n != int64(len(want)) || !bytes.Equal(data, want) {
		t.Fatalf("create with base length: length %d, data differs", n)
	}
}

func TestCutThenGapReadsZeros(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	full := bytes.Repeat([]byte{0xff}, 4*testBlock)
	mustWrite(t, s, id, 0, 1, 0, 0, full)
	// Cut inside block 0, then write in block 2: the bytes in between were
	// 0xff on disk and must now read as zeros.
	n := mustWrite(t, s, id, 1, 2, 100, 2*testBlock+5, []byte("abc"))
	if want := int64(2*testBlock + 8); n != want {
		t.Fatalf("length %d, want %d", n, want)
	}
	want := make([]byte, n)
	copy(want, full[:100])
	copy(want[2*testBlock+5:], "abc")
	data, _ := mustReadAll(t, s, id)
	if !bytes.Equal(data, want) {
		t.Fatalf("data after cut and gap differs")
	}
	// Reading past the data gives zeros too.
	got, err := s.Read(id, 2, n-3, 10)
	if err != nil || !bytes.Equal(got, append([]byte("abc"), make([]byte, 7)...)) {
		t.Fatalf("Read past end = %q, %v", got, err)
	}
	// A cut with nothing written shortens the chunk.
	if n := mustWrite(t, s, id, 2, 3, 50, 0, nil); n != 50 {
		t.Fatalf("cut-only write: length %d", n)
	}
	if _, n, _ := s.Stat(id); n != 50 {
		t.Fatalf("Stat length %d after cut", n)
	}
	// An empty write past the end extends with zeros.
	if n := mustWrite(t, s, id, 3, 4, 50, 3*testBlock, nil); n != 3*testBlock {
		t.Fatalf("extending empty write: length %d", n)
	}
	data, _ = mustReadAll(t, s, id)
	if !bytes.Equal(data, append(full[:50:50], make([]byte, 3*testBlock-50)...)) {
		t.Fatalf("data after extension differs")
	}
}

// flipByte inverts one byte of a file.
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

func TestFlippedDataByteIsCorrupt(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	r := rand.New(rand.NewPCG(1, 2))
	mustWrite(t, s, id, 0, 1, 0, 0, randBytes(r, 4*testBlock+100))
	dataOff := int64(s.cfg.dataOffset())
	flipByte(t, s.path(id), dataOff+2*testBlock+17)

	_, err := s.Read(id, 1, 2*testBlock, 10)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read of flipped block: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, id.String()) || !strings.Contains(msg, "block 2") {
		t.Errorf("corruption error %q should name the chunk and block 2", msg)
	}
	// Any read touching the block sees it, even one byte of another part.
	if _, err := s.Read(id, 1, 3*testBlock-1, 2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read overlapping flipped block: %v", err)
	}
	if _, _, err := s.ReadAll(id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadAll of corrupt chunk: %v", err)
	}
	// Reads of other blocks still work: checksums are per block.
	if _, err := s.Read(id, 1, 0, 2*testBlock); err != nil {
		t.Fatalf("Read of intact blocks: %v", err)
	}
	// A write can replace the damage: rewriting the whole block fixes it.
	mustWrite(t, s, id, 1, 2, 4*testBlock+100, 2*testBlock, make([]byte, testBlock))
	if _, _, err := s.ReadAll(id); err != nil {
		t.Fatalf("ReadAll after rewriting the block: %v", err)
	}
}

func TestFlippedHoleByteIsCorrupt(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	// Blocks 0..4 are never written: a hole, which must still verify.
	mustWrite(t, s, id, 0, 1, 0, 5*testBlock, []byte("tail"))
	if got, err := s.Read(id, 1, 0, 5*testBlock); err != nil || !bytes.Equal(got, make([]byte, 5*testBlock)) {
		t.Fatalf("Read of hole: %v", err)
	}
	flipByte(t, s.path(id), int64(s.cfg.dataOffset())+3*testBlock+1)
	if _, err := s.Read(id, 1, 3*testBlock, 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Read of damaged hole: %v", err)
	}
}

func TestFlippedHeaderOrTableByteIsCorrupt(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	data := bytes.Repeat([]byte("0123456789"), 300)
	// Every byte of the header and of the used table, one at a time.
	for at := range int64(headerSize + 4*6) {
		if err := s.Put(id, 5, data); err != nil {
			t.Fatal(err)
		}
		flipByte(t, s.path(id), at)
		if _, _, err := s.Stat(id); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Stat with byte %d flipped: %v", at, err)
		}
		if _, err := s.Read(id, 5, 0, 10); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Read with byte %d flipped: %v", at, err)
		}
		if _, err := s.Write(id, 5, 6, int64(len(data)), 0, []byte("x")); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Write with byte %d flipped: %v", at, err)
		}
	}
}

func TestHostileFiles(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	other := ID{1, 2, 4}
	r := rand.New(rand.NewPCG(3, 4))
	good := randBytes(r, 3*testBlock)
	if err := s.Put(other, 1, good); err != nil {
		t.Fatal(err)
	}
	goodFile, err := os.ReadFile(s.path(other))
	if err != nil {
		t.Fatal(err)
	}
	dataOff := int(s.cfg.dataOffset())

	if err := os.MkdirAll(s.dir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":            {},
		"short":            goodFile[:50],
		"header only":      goodFile[:headerSize],
		"no data":          goodFile[:dataOff],
		"truncated data":   goodFile[:len(goodFile)-1],
		"garbage":          randBytes(r, 10000),
		"other chunk file": goodFile, // right format, wrong ID
	}
	newer := append([]byte{}, goodFile...)
	newer[offFormat] = formatVersion + 1
	cases["newer format"] = newer

	for name, content := range cases {
		if err := os.WriteFile(s.path(id), content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Stat(id); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Stat: %v", name, err)
		}
		if _, err := s.Read(id, 1, 0, 10); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Read: %v", name, err)
		}
		if _, _, err := s.ReadAll(id); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ReadAll: %v", name, err)
		}
		if _, err := s.Write(id, 1, 2, 0, 0, []byte("x")); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Write: %v", name, err)
		}
		// The replica can always be replaced (repair puts a whole chunk).
		if err := s.Put(id, 3, []byte("fresh")); err != nil {
			t.Errorf("%s: Put over a corrupt file: %v", name, err)
		}
		if data, _ := mustReadAll(t, s, id); string(data) != "fresh" {
			t.Errorf("%s: after recreate: %q", name, data)
		}
		if err := s.Delete(id); err != nil {
			t.Errorf("%s: Delete: %v", name, err)
		}
	}
	if _, _, err := s.Stat(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := s.Read(ID{1, 2, 4}, 1, 0, 10); err != nil {
		t.Fatalf("the healthy chunk is unaffected: %v", err)
	}
	if err := os.WriteFile(s.path(id), newer, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Stat(id); err == nil || !strings.Contains(err.Error(), "unsupported format version") {
		t.Errorf("a newer format should say so: %v", err)
	}
}

func TestReopen(t *testing.T) {
	cfg := testConfig(t)
	s := openStore(t, cfg)
	want := map[ID]string{{1, 1, 0}: "a", {1, 1, 1}: "bb", {2, 5, 0}: strings.Repeat("c", 3*testBlock)}
	for id, d := range want {
		mustWrite(t, s, id, 0, 4, 0, 0, []byte(d))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Stat(ID{1, 1, 0}); !errors.Is(err, iofs.ErrClosed) {
		t.Fatalf("Stat after Close: %v", err)
	}
	if _, err := s.Write(ID{1, 1, 0}, 4, 5, 1, 0, nil); !errors.Is(err, iofs.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}

	s = openStore(t, cfg)
	ids, err := s.List()
	if err != nil || len(ids) != len(want) {
		t.Fatalf("List after reopen = %v, %v", ids, err)
	}
	for id, d := range want {
		data, v := mustReadAll(t, s, id)
		if v != 4 || string(data) != d {
			t.Errorf("%s after reopen: version %d, %q", id, v, data)
		}
	}
}

func TestOpenRemovesStaleTempFiles(t *testing.T) {
	cfg := testConfig(t)
	cfg.Dir = filepath.Join(cfg.Dir, "new", "chunks") // Open creates it
	s := openStore(t, cfg)
	id := ID{1, 2, 3}
	mustWrite(t, s, id, 0, 1, 0, 0, []byte("keep"))
	stale := filepath.Join(s.dir(id), id.String()+".123456"+tempSuffix)
	if err := os.WriteFile(stale, []byte("half a chunk"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, cfg)
	if _, err := os.Stat(stale); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("stale temp file survived Open: %v", err)
	}
	if data, _ := mustReadAll(t, s, id); string(data) != "keep" {
		t.Fatalf("chunk damaged by Open: %q", data)
	}
	if info, err := os.Stat(cfg.Dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("store dir mode %v, %v; want 0700", info.Mode().Perm(), err)
	}
}

func TestListDeleteUsage(t *testing.T) {
	s := openStore(t, testConfig(t))
	if ids, err := s.List(); err != nil || len(ids) != 0 {
		t.Fatalf("List of empty store = %v, %v", ids, err)
	}
	if files, n, err := s.Usage(); err != nil || files != 0 || n != 0 {
		t.Fatalf("Usage of empty store = %d, %d, %v", files, n, err)
	}
	ids := []ID{{2, 1, 0}, {1, 9, 1}, {1, 9, 0}, {1, 10, 0}}
	var total int64
	for i, id := range ids {
		n := mustWrite(t, s, id, 0, 1, 0, 0, make([]byte, 100*(i+1)))
		total += int64(s.cfg.dataOffset()) + n
	}
	// Files that are not chunks are not listed.
	os.WriteFile(filepath.Join(s.dir(ids[0]), "README"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(s.cfg.Dir, "stray"), []byte("x"), 0o600)

	got, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	sorted := []ID{{1, 9, 0}, {1, 9, 1}, {1, 10, 0}, {2, 1, 0}}
	if len(got) != len(sorted) {
		t.Fatalf("List = %v", got)
	}
	for i := range sorted {
		if got[i] != sorted[i] {
			t.Fatalf("List = %v, want %v", got, sorted)
		}
	}
	if files, n, err := s.Usage(); err != nil || files != 4 || n != total {
		t.Fatalf("Usage = %d, %d, %v; want 4, %d", files, n, err, total)
	}
	if err := s.Delete(ID{1, 9, 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ID{1, 9, 1}); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := s.Delete(ID{7, 7, 7}); err != nil {
		t.Fatalf("Delete of a chunk never stored: %v", err)
	}
	if got, _ := s.List(); len(got) != 3 {
		t.Fatalf("List after delete = %v", got)
	}
	if files, _, _ := s.Usage(); files != 3 {
		t.Fatalf("Usage after delete counts %d files", files)
	}
}

func TestPutReadAll(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	r := rand.New(rand.NewPCG(5, 6))
	mustWrite(t, s, id, 0, 1, 0, 0, randBytes(r, 5*testBlock))
	for _, n := range []int{0, 1, testBlock, 3*testBlock + 7, testMax} {
		data := randBytes(r, n)
		v := uint64(10 + n)
		if err := s.Put(id, v, data); err != nil {
			t.Fatalf("Put %d bytes: %v", n, err)
		}
		got, gv := mustReadAll(t, s, id)
		if gv != v || !bytes.Equal(got, data) {
			t.Fatalf("ReadAll after Put of %d bytes: version %d, %d bytes", n, gv, len(got))
		}
		// A copy made with ReadAll is the same chunk on another node.
		other := openStore(t, testConfig(t))
		if err := other.Put(id, gv, got); err != nil {
			t.Fatal(err)
		}
		if c, cv := mustReadAll(t, other, id); cv != v || !bytes.Equal(c, data) {
			t.Fatalf("copied chunk differs")
		}
	}
	if err := s.Put(id, 0, nil); !errors.Is(err, iofs.ErrInvalid) {
		t.Fatalf("Put at version 0: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	if _, err := s.Write(id, 0, 1, 0, testMax, []byte("x")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Write past max: %v", err)
	}
	if _, err := s.Write(id, 0, 1, testMax+1, 0, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Write with base length past max: %v", err)
	}
	if _, err := s.Write(id, 0, 1, 0, 1<<62, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Write at huge offset: %v", err)
	}
	if err := s.Put(id, 1, make([]byte, testMax+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put past max: %v", err)
	}
	if _, _, err := s.Stat(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused writes created the chunk: %v", err)
	}
	// Exactly the maximum is fine.
	if n := mustWrite(t, s, id, 0, 1, 0, testMax-1, []byte("x")); n != testMax {
		t.Fatalf("length %d", n)
	}
	if _, err := s.Read(id, 1, testMax-1, 2); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read past max: %v", err)
	}
	if _, err := s.Read(id, 1, 1, int(^uint(0)>>1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read of huge length: %v", err)
	}
	if _, err := s.Read(id, 1, -1, 1); !errors.Is(err, iofs.ErrInvalid) {
		t.Fatalf("Read at negative offset: %v", err)
	}
	if _, err := s.Write(id, 1, 2, testMax, -1, nil); !errors.Is(err, iofs.ErrInvalid) {
		t.Fatalf("Write at negative offset: %v", err)
	}
}

// TestFileCapacity checks that a file made under a smaller MaxChunkSize is
// still usable after the limit grows, up to what its table can describe.
func TestFileCapacity(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxChunkSize = 4 * testBlock
	s := openStore(t, cfg)
	id := ID{1, 2, 3}
	mustWrite(t, s, id, 0, 1, 0, 0, []byte("x"))
	s.Close()
	cfg.MaxChunkSize = testMax
	s = openStore(t, cfg)
	// The first file's table has room for (4096-128)/4 = 992 blocks.
	h := header{dataOffset: dataAlign, blockSize: testBlock}
	if _, err := s.Write(id, 1, 2, 1, h.maxLength(), []byte("y")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("write past the file's table capacity: %v", err)
	}
	if n := mustWrite(t, s, id, 1, 2, 1, 10*testBlock, []byte("y")); n != 10*testBlock+1 {
		t.Fatalf("length %d", n)
	}
}

func TestConcurrentWrites(t *testing.T) {
	s := openStore(t, testConfig(t))
	const workers, writes = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*2)
	for w := range workers {
		wg.Go(func() {
			id := ID{1, uint64(w), 0}
			r := rand.New(rand.NewPCG(uint64(w), 7))
			m := &model{}
			for i := range writes {
				off := r.Int64N(8 * testBlock)
				data := randBytes(r, r.IntN(3*testBlock))
				base := m.version
				baseLen := int64(len(m.data))
				if base == 0 {
					baseLen = 0
				}
				if _, err := s.Write(id, base, uint64(i+1), baseLen, off, data); err != nil {
					errs <- err
					return
				}
				m.apply(baseLen, off, data, uint64(i+1))
			}
			got, v, err := s.ReadAll(id)
			if err != nil || v != writes || !bytes.Equal(got, m.data) {
				errs <- errors.New(id.String() + ": final content differs from model")
			}
		})
	}
	// Meanwhile, readers on the same chunks must only ever see whole
	// writes: a version they can read is a version whose data verifies.
	for w := range workers {
		wg.Go(func() {
			id := ID{1, uint64(w), 0}
			for range 100 {
				_, _, err := s.ReadAll(id)
				if err != nil && !errors.Is(err, ErrNotFound) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestConcurrentSameChunk has writers race to append to one chunk with
// compare-and-swap on the version; the per-chunk lock must serialise them so
// that exactly one wins each version and no append is lost.
func TestConcurrentSameChunk(t *testing.T) {
	s := openStore(t, testConfig(t))
	id := ID{1, 2, 3}
	mustWrite(t, s, id, 0, 1, 0, 0, nil)
	const workers, appends = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for done := 0; done < appends; {
				v, n, err := s.Stat(id)
				if err != nil {
					errs <- err
					return
				}
				_, err = s.Write(id, v, v+1, n, n, []byte{byte('a' + w)})
				if errors.Is(err, ErrVersionMismatch) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				done++
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	data, v := mustReadAll(t, s, id)
	if len(data) != workers*appends || v != 1+workers*appends {
		t.Fatalf("after racing appends: %d bytes at version %d", len(data), v)
	}
	count := map[byte]int{}
	for _, c := range data {
		count[c]++
	}
	for w := range workers {
		if count[byte('a'+w)] != appends {
			t.Fatalf("writer %d has %d bytes, want %d", w, count[byte('a'+w)], appends)
		}
	}
}

// TestSync runs the durable path once, since the other tests skip fsync.
func TestSync(t *testing.T) {
	cfg := testConfig(t)
	cfg.NoSync = false
	s := openStore(t, cfg)
	id := ID{1, 2, 3}
	mustWrite(t, s, id, 0, 1, 0, 0, []byte("a"))
	mustWrite(t, s, id, 1, 2, 1, 1, []byte("b"))
	if err := s.Put(id, 3, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
}
