package workload

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Block layout (every block of every file the workload writes carries its
// own identity, so a read can tell a lost, misplaced or damaged block from a
// good one without any other state):
//
//	0   4  magic "FSRW"
//	4   4  block index in the file (big endian)
//	8   8  sequence number of the write (unique per run)
//	16  2  length of the file name
//	18  64 file name, zero padded
//	82  .. filler derived from the sequence number
//	-4  4  CRC32C of everything before it
const (
	blockMagic   = "FSRW"
	nameField    = 64
	blockHeader  = 18 + nameField
	MinBlockSize = blockHeader + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of verifyBlock.
var (
	errCorrupt  = errors.New("corrupt block")
	errMisplace = errors.New("block of another file or offset")
)

// encodeBlock builds the block idx of file name written with sequence seq.
func encodeBlock(name string, idx uint32, seq uint64, size int) []byte {
	b := make([]byte, size)
	copy(b, blockMagic)
	binary.BigEndian.PutUint32(b[4:], idx)
	binary.BigEndian.PutUint64(b[8:], seq)
	binary.BigEndian.PutUint16(b[16:], uint16(len(name)))
	copy(b[18:18+nameField], name)
	x := seq*0x9E3779B97F4A7C15 | 1
	for i := blockHeader; i < size-4; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	binary.BigEndian.PutUint32(b[size-4:], crc32.Checksum(b[:size-4], castagnoli))
	return b
}

// verifyBlock checks b as block idx of file name and returns the sequence
// number it carries.
func verifyBlock(b []byte, name string, idx uint32) (uint64, error) {
	if len(b) < MinBlockSize || string(b[:4]) != blockMagic {
		return 0, fmt.Errorf("%w: no block header", errCorrupt)
	}
	n := len(b)
	if crc32.Checksum(b[:n-4], castagnoli) != binary.BigEndian.Uint32(b[n-4:]) {
		return 0, fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	nl := int(binary.BigEndian.Uint16(b[16:]))
	if nl > nameField || string(b[18:18+nl]) != name || binary.BigEndian.Uint32(b[4:]) != idx {
		return 0, fmt.Errorf("%w: holds %q block %d", errMisplace, b[18:18+min(nl, nameField)], binary.BigEndian.Uint32(b[4:]))
	}
	return binary.BigEndian.Uint64(b[8:]), nil
}
