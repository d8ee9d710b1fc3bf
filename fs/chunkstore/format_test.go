package chunkstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

func sampleHeader() header {
	return header{
		blockSize:  64 << 10,
		dataOffset: 8192,
		id:         ID{Vol: 1, Ino: 42, Index: 7},
		version:    9,
		length:     100000,
		nblocks:    2,
		tableCRC:   0xdeadbeef,
	}
}

// TestHeaderLayout pins the byte layout that docs/chunk-format.md describes,
// so the document and the code cannot drift apart silently.
func TestHeaderLayout(t *testing.T) {
	h := sampleHeader()
	b := encodeHeader(&h)
	le := binary.LittleEndian
	for _, f := range []struct {
		name      string
		got, want uint64
	}{
		{"format", uint64(le.Uint16(b[8:])), 1},
		{"flags", uint64(le.Uint16(b[10:])), 0},
		{"block size", uint64(le.Uint32(b[12:])), 64 << 10},
		{"data offset", uint64(le.Uint32(b[16:])), 8192},
		{"vol", uint64(le.Uint32(b[20:])), 1},
		{"ino", le.Uint64(b[24:]), 42},
		{"index", le.Uint64(b[32:]), 7},
		{"version", le.Uint64(b[40:]), 9},
		{"length", le.Uint64(b[48:]), 100000},
		{"nblocks", uint64(le.Uint32(b[56:])), 2},
		{"table crc", uint64(le.Uint32(b[60:])), 0xdeadbeef},
		{"header crc", uint64(le.Uint32(b[124:])), uint64(crc32.Checksum(b[:124], crc32.MakeTable(crc32.Castagnoli)))},
	} {
		if f.got != f.want {
			t.Errorf("%s = %d, want %d", f.name, f.got, f.want)
		}
	}
	if string(b[:8]) != "FSRCHNK1" {
		t.Errorf("magic = %q", b[:8])
	}
	if !bytes.Equal(b[64:124], make([]byte, 60)) {
		t.Errorf("reserved bytes not zero")
	}
	got, err := decodeHeader(b[:])
	if err != nil || got != h {
		t.Fatalf("decode(encode(h)) = %+v, %v; want %+v", got, err, h)
	}
}

func TestDecodeHeaderRejects(t *testing.T) {
	for name, mod := range map[string]func(h *header){
		"block size not power of two": func(h *header) { h.blockSize = 3000 },
		"block size too small":        func(h *header) { h.blockSize = 256 },
		"data offset unaligned":       func(h *header) { h.dataOffset = 5000 },
		"data offset zero":            func(h *header) { h.dataOffset = 0 },
		"data offset huge":            func(h *header) { h.dataOffset = 1 << 31 },
		"too many blocks for table":   func(h *header) { h.dataOffset = 4096; h.nblocks = 1000; h.length = 1000 * 65536 },
		"length past blocks":          func(h *header) { h.length = 3 * 65536 },
		"too many blocks for length":  func(h *header) { h.length = 10 },
		"length negative":             func(h *header) { h.length = -1 },
	} {
		h := sampleHeader()
		mod(&h)
		b := encodeHeader(&h)
		if _, err := decodeHeader(b[:]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decode error %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzDecodeHeader feeds arbitrary bytes to the header decoder: it must
// never panic, and whatever it accepts must be a header it would write
// byte for byte and that satisfies the invariants the store relies on.
func FuzzDecodeHeader(f *testing.F) {
	h := sampleHeader()
	good := encodeHeader(&h)
	f.Add(good[:])
	empty := header{blockSize: 512, dataOffset: 4096}
	e := encodeHeader(&empty)
	f.Add(e[:])
	f.Add(good[:headerSize-1])
	f.Add([]byte{})
	f.Add([]byte("FSRCHNK1"))
	f.Add(append(good[:], 1, 2, 3))
	bad := good
	bad[offVersion] ^= 1
	f.Add(bad[:])

	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v is not ErrCorrupt", err)
			}
			return
		}
		if re := encodeHeader(&h); !bytes.Equal(re[:], b[:headerSize]) {
			t.Fatalf("re-encoding an accepted header changed it")
		}
		bs := int64(h.blockSize)
		if h.length < 0 || h.length > int64(h.nblocks)*bs || int64(h.nblocks) != ceilDiv(h.length, bs) ||
			int64(h.nblocks) > h.tableCap() || h.length > h.maxLength() ||
			h.dataOffset%dataAlign != 0 || h.dataOffset > maxDataOffset {
			t.Fatalf("accepted header breaks an invariant: %+v", h)
		}
	})
}
