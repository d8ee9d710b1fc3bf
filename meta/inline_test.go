package meta

import (
	"bytes"
	"strings"
	"testing"
)

func (h *harness) inline(vol uint32, ino uint64) []byte {
	h.t.Helper()
	return h.inlineGen(vol, ino).Data
}

func (h *harness) inlineGen(vol uint32, ino uint64) *Inline {
	h.t.Helper()
	in, err := h.fsm.Inline(vol, ino)
	if err != nil {
		h.t.Fatalf("Inline(%d, %d): %v", vol, ino, err)
	}
	if in == nil {
		return &Inline{}
	}
	return in
}

func TestWriteInline(t *testing.T) {
	h := newHarness(t)
	vol := h.volume("v")
	f := h.create(vol, RootIno, "f", TypeFile)

	n := h.ok(&WriteInline{Vol: vol, Ino: f.Ino, Off: 0, Data: []byte("hello")}).Inode
	if n.Size != 5 || n.Mtime != h.now {
		t.Fatalf("after an inline write: size %d mtime %d, want 5 %d", n.Size, n.Mtime, h.now)
	}
	// A write past the data leaves zeros between; one inside overwrites.
	h.ok(&WriteInline{Vol: vol, Ino: f.Ino, Off: 8, Data: []byte("xy")})
	h.ok(&WriteInline{Vol: vol, Ino: f.Ino, Off: 1, Data: []byte("E")})
	if got, want := h.inline(vol, f.Ino), []byte("hEllo\x00\x00\x00xy"); !bytes.Equal(got, want) {
		t.Fatalf("inline data %q, want %q", got, want)
	}
	if v := h.vol("v"); v.Bytes != 10 {
		t.Fatalf("volume bytes %d, want 10", v.Bytes)
	}

	// Truncating cuts the data; growing the size leaves it.
	h.ok(&SetAttr{Vol: vol, Ino: f.Ino, Size: ptr(uint64(3))})
	h.ok(&SetAttr{Vol: vol, Ino: f.Ino, Size: ptr(uint64(100_000))})
	if got := h.inline(vol, f.Ino); string(got) != "hEl" {
		t.Fatalf("after truncate to 3 and growth: inline %q, want \"hEl\"", got)
	}
	if n := h.inode(vol, f.Ino); n.Size != 100_000 {
		t.Fatalf("size %d, want 100000", n.Size)
	}

	h.fails(&WriteInline{Vol: vol, Ino: f.Ino, Off: InlineMax - 1, Data: []byte("ab")}, ErrInvalid)
	h.fails(&WriteInline{Vol: vol, Ino: RootIno, Data: []byte("a")}, ErrIsDir)

	// Removing the file drops its data.
	h.ok(&Remove{Vol: vol, Parent: RootIno, Name: "f"})
	h.freed(vol, f.Ino)
}

func TestInlineSpillToChunks(t *testing.T) {
	h := newHarness(t)
	vol := h.volume("v")
	f := h.create(vol, RootIno, "f", TypeFile)
	h.ok(&WriteInline{Vol: vol, Ino: f.Ino, Data: []byte("small")})
	first := h.inlineGen(vol, f.Ino).Gen
	if first == 0 {
		t.Fatal("inline data without a generation")
	}
	// Another write, a truncate and a fence each move the generation.
	h.ok(&WriteInline{Vol: vol, Ino: f.Ino, Off: 1, Data: []byte("M")})
	h.ok(&SetAttr{Vol: vol, Ino: f.Ino, Size: ptr(uint64(4))})
	before := dumpDB(t, h.fsm)
	h.ok(&WriteInline{Vol: vol, Ino: f.Ino}) // fence
	cur := h.inlineGen(vol, f.Ino)
	if cur.Gen <= first || string(cur.Data) != "sMal" {
		t.Fatalf("after write, truncate and fence: %+v (first generation %d)", cur, first)
	}
	if diff := diffDumps(before, dumpDB(t, h.fsm), ignoreBookkeeping); !strings.Contains(diff, "inline") || strings.Contains(diff, "inodes") {
		t.Fatalf("a fence changed more than the inline generation:\n%s", diff)
	}

	// A chunk write that does not name the inline data would bury it.
	w := ChunkWrite{Index: 0, BaseVersion: 0, Version: 1, Length: 60_000, Replicas: []string{"n1", "n2"}}
	h.fails(&CommitWrite{Vol: vol, Ino: f.Ino, Size: 60_000, Chunks: []ChunkWrite{w}}, ErrConflict)
	// Nor may it name an older generation (the bytes it moved are stale).
	h.fails(&CommitWrite{Vol: vol, Ino: f.Ino, Size: 60_000, Chunks: []ChunkWrite{w}, Spill: &first}, ErrConflict)
	// The spill must bring a new chunk 0.
	w1 := ChunkWrite{Index: 1, BaseVersion: 0, Version: 1, Length: 10, Replicas: []string{"n1", "n2"}}
	h.fails(&CommitWrite{Vol: vol, Ino: f.Ino, Size: cs + 10, Chunks: []ChunkWrite{w1}, Spill: &cur.Gen}, ErrInvalid)
	// A write to another chunk leaves the inline data alone.
	h.ok(&CommitWrite{Vol: vol, Ino: f.Ino, Size: cs + 10, Chunks: []ChunkWrite{w1}})
	if h.inline(vol, f.Ino) == nil {
		t.Fatal("a write to chunk 1 dropped chunk 0's inline data")
	}

	h.ok(&CommitWrite{Vol: vol, Ino: f.Ino, Size: 60_000, Chunks: []ChunkWrite{w}, Spill: &cur.Gen})
	if data := h.inline(vol, f.Ino); data != nil {
		t.Fatalf("inline data %q kept after the spill", data)
	}
	// From now on chunk 0 is a chunk: inline writes are refused.
	h.fails(&WriteInline{Vol: vol, Ino: f.Ino, Data: []byte("x")}, ErrConflict)

	// The entry survives encoding (format 3 carries the spill).
	entry, err := EncodeCommand(&CommitWrite{Vol: vol, Ino: f.Ino, Chunks: []ChunkWrite{w}, Spill: &cur.Gen})
	if err != nil || entry[1] != 3 {
		t.Fatalf("CommitWrite with a spill encodes with format %d (%v), want 3", entry[1], err)
	}
	back, err := DecodeCommand(entry)
	if err != nil || *back.(*CommitWrite).Spill != cur.Gen {
		t.Fatalf("decode: %+v, %v", back, err)
	}
}

func TestInlineQuota(t *testing.T) {
	h := newHarness(t)
	h.ok(&CreateVolume{Name: "q", Replicas: 3, WriteQuorum: 2, ChunkSize: cs, RootMode: 0o755, QuotaBytes: 100})
	vol := h.vol("q").ID
	f := h.create(vol, RootIno, "f", TypeFile)
	h.ok(&WriteInline{Vol: vol, Ino: f.Ino, Data: make([]byte, 100)})
	h.fails(&WriteInline{Vol: vol, Ino: f.Ino, Off: 100, Data: []byte("x")}, ErrQuota)
	h.ok(&WriteInline{Vol: vol, Ino: f.Ino, Off: 50, Data: []byte("inside")}) // no growth
}
