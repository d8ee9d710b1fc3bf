package chunkstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
)

// On-disk layout of a chunk file (docs/chunk-format.md describes it in
// prose). All integers are little-endian.
//
//	[0, headerSize)                 header
//	[headerSize, +4*nblocks)        CRC32C of each data block
//	[dataOffset, dataOffset+length) chunk data
//
// The file is exactly dataOffset+length bytes long; a file of another size
// was truncated or extended behind our back.
const (
	magic         = "FSRCHNK1"
	formatVersion = 1 // bump when the layout changes; older readers then refuse the file

	headerSize = 128
	dataAlign  = 4096 // data starts on a page boundary so block I/O stays aligned

	// Header field offsets.
	offMagic      = 0   // [8]byte "FSRCHNK1"
	offFormat     = 8   // uint16 format version
	offFlags      = 10  // uint16, zero in version 1
	offBlockSize  = 12  // uint32 checksum block size
	offDataOffset = 16  // uint32 file offset of the data; the table fills the space before it
	offVol        = 20  // uint32 ID.Vol
	offIno        = 24  // uint64 ID.Ino
	offIndex      = 32  // uint64 ID.Index
	offVersion    = 40  // uint64 chunk version
	offLength     = 48  // uint64 data length in bytes
	offNBlocks    = 56  // uint32 blocks in use: ceil(length/blockSize)
	offTableCRC   = 60  // uint32 CRC32C of the nblocks table entries
	offReserved   = 64  // zero in version 1
	offHeaderCRC  = 124 // uint32 CRC32C of header bytes [0, 124)

	minBlockSize = 512
	maxBlockSize = 16 << 20
	// maxBlocks bounds the checksum table (4 MiB) so a hostile header cannot
	// make us allocate much.
	maxBlocks     = 1 << 20
	maxDataOffset = (headerSize + 4*maxBlocks + dataAlign - 1) / dataAlign * dataAlign
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is the decoded fixed header of a chunk file.
type header struct {
	blockSize  uint32
	dataOffset uint32
	id         ID
	version    uint64
	length     int64
	nblocks    uint32
	tableCRC   uint32
}

// tableCap is how many checksum entries fit between the header and the data,
// which bounds how long this file's chunk can grow.
func (h *header) tableCap() int64 { return (int64(h.dataOffset) - headerSize) / 4 }

// maxLength is the longest data this file can hold.
func (h *header) maxLength() int64 { return h.tableCap() * int64(h.blockSize) }

func validBlockSize(n uint64) bool {
	return n >= minBlockSize && n <= maxBlockSize && bits.OnesCount64(n) == 1
}

// encodeHeader returns the on-disk form of h, header checksum included.
func encodeHeader(h *header) [headerSize]byte {
	var b [headerSize]byte
	le := binary.LittleEndian
	copy(b[offMagic:], magic)
	le.PutUint16(b[offFormat:], formatVersion)
	le.PutUint32(b[offBlockSize:], h.blockSize)
	le.PutUint32(b[offDataOffset:], h.dataOffset)
	le.PutUint32(b[offVol:], h.id.Vol)
	le.PutUint64(b[offIno:], h.id.Ino)
	le.PutUint64(b[offIndex:], h.id.Index)
	le.PutUint64(b[offVersion:], h.version)
	le.PutUint64(b[offLength:], uint64(h.length))
	le.PutUint32(b[offNBlocks:], h.nblocks)
	le.PutUint32(b[offTableCRC:], h.tableCRC)
	le.PutUint32(b[offHeaderCRC:], checksum(b[:offHeaderCRC]))
	return b
}

// decodeHeader parses and checks a header. Every inconsistency is ErrCorrupt:
// the bytes come from disk and may be anything. It checks the header alone;
// the caller compares the ID with the file name and the length with the file
// size.
func decodeHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, fmt.Errorf("header: %d bytes, want %d: %w", len(b), headerSize, ErrCorrupt)
	}
	le := binary.LittleEndian
	if string(b[offMagic:offMagic+len(magic)]) != magic {
		return header{}, fmt.Errorf("header: bad magic %q: %w", b[offMagic:offMagic+len(magic)], ErrCorrupt)
	}
	// The format version is checked before the checksum: a newer format may
	// checksum differently, and "unsupported version" is the useful message.
	if v := le.Uint16(b[offFormat:]); v == 0 || v > formatVersion {
		return header{}, fmt.Errorf("header: unsupported format version %d (this build reads up to %d): %w",
			v, formatVersion, ErrCorrupt)
	}
	if got, want := checksum(b[:offHeaderCRC]), le.Uint32(b[offHeaderCRC:]); got != want {
		return header{}, fmt.Errorf("header: checksum mismatch (stored %#08x, computed %#08x): %w", want, got, ErrCorrupt)
	}
	if f := le.Uint16(b[offFlags:]); f != 0 {
		return header{}, fmt.Errorf("header: unknown flags %#04x: %w", f, ErrCorrupt)
	}
	for _, c := range b[offReserved:offHeaderCRC] {
		if c != 0 {
			return header{}, fmt.Errorf("header: reserved bytes are not zero: %w", ErrCorrupt)
		}
	}
	h := header{
		blockSize:  le.Uint32(b[offBlockSize:]),
		dataOffset: le.Uint32(b[offDataOffset:]),
		id: ID{
			Vol:   le.Uint32(b[offVol:]),
			Ino:   le.Uint64(b[offIno:]),
			Index: le.Uint64(b[offIndex:]),
		},
		version:  le.Uint64(b[offVersion:]),
		nblocks:  le.Uint32(b[offNBlocks:]),
		tableCRC: le.Uint32(b[offTableCRC:]),
	}
	if !validBlockSize(uint64(h.blockSize)) {
		return header{}, fmt.Errorf("header: bad block size %d: %w", h.blockSize, ErrCorrupt)
	}
	if h.dataOffset%dataAlign != 0 || h.dataOffset == 0 || h.dataOffset > maxDataOffset {
		return header{}, fmt.Errorf("header: bad data offset %d: %w", h.dataOffset, ErrCorrupt)
	}
	if int64(h.nblocks) > h.tableCap() {
		return header{}, fmt.Errorf("header: %d blocks but room for %d checksums: %w", h.nblocks, h.tableCap(), ErrCorrupt)
	}
	// nblocks*blockSize <= 2^20 * 2^24, so none of this overflows.
	length := le.Uint64(b[offLength:])
	if length > uint64(h.nblocks)*uint64(h.blockSize) ||
		uint64(h.nblocks) != (length+uint64(h.blockSize)-1)/uint64(h.blockSize) {
		return header{}, fmt.Errorf("header: length %d does not fit %d blocks of %d: %w",
			length, h.nblocks, h.blockSize, ErrCorrupt)
	}
	h.length = int64(length)
	return h, nil
}

// encodeTable returns the on-disk form of a checksum table.
func encodeTable(table []uint32) []byte {
	b := make([]byte, 4*len(table))
	for i, c := range table {
		binary.LittleEndian.PutUint32(b[4*i:], c)
	}
	return b
}

// decodeTable parses a checksum table read from disk.
func decodeTable(b []byte) []uint32 {
	table := make([]uint32, len(b)/4)
	for i := range table {
		table[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return table
}

// checksum is the CRC32C used for the header, the table and the blocks.
func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// blockCRC is the checksum of one data block. A block is always checksummed
// at full size, with bytes past the data length counted as zeros: the file
// keeps those bytes absent (so zero), hence appending to a chunk never changes
// the checksum of its old last block, and a hole block has the checksum of
// zeros and verifies like any other.
func blockCRC(block []byte) uint32 { return checksum(block) }
