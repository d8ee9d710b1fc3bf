package chunkstore

import (
	"fmt"
	"hash/crc32"
	iofs "io/fs"
	"strconv"
	"strings"
)

// ID names a chunk: chunk Index of inode Ino in volume Vol. Inode numbers are
// never reused, so IDs are unique forever.
type ID struct {
	Vol   uint32
	Ino   uint64
	Index uint64
}

// String returns the canonical form, e.g. "v1-i42-c0". It is also the name of
// the chunk's file, so it must stay stable.
func (id ID) String() string {
	return "v" + strconv.FormatUint(uint64(id.Vol), 10) +
		"-i" + strconv.FormatUint(id.Ino, 10) +
		"-c" + strconv.FormatUint(id.Index, 10)
}

// ParseID is the inverse of String. It accepts only the canonical form (no
// signs, no leading zeros), so that ParseID(s).String() == s and a file name
// maps to exactly one chunk.
func ParseID(s string) (ID, error) {
	bad := func(why string) (ID, error) {
		return ID{}, fmt.Errorf("chunkstore: parse chunk id %q: %s: %w", s, why, iofs.ErrInvalid)
	}
	rest, ok := strings.CutPrefix(s, "v")
	if !ok {
		return bad(`missing "v"`)
	}
	vol, rest, ok := strings.Cut(rest, "-i")
	if !ok {
		return bad(`missing "-i"`)
	}
	ino, index, ok := strings.Cut(rest, "-c")
	if !ok {
		return bad(`missing "-c"`)
	}
	v, err := parseCanonical(vol, 32)
	if err != nil {
		return bad("volume: " + err.Error())
	}
	i, err := parseCanonical(ino, 64)
	if err != nil {
		return bad("inode: " + err.Error())
	}
	c, err := parseCanonical(index, 64)
	if err != nil {
		return bad("index: " + err.Error())
	}
	return ID{Vol: uint32(v), Ino: i, Index: c}, nil
}

// parseCanonical parses a decimal number written without a sign or leading
// zeros.
func parseCanonical(s string, bits int) (uint64, error) {
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("leading zero in %q", s)
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, err.(*strconv.NumError).Err
	}
	return n, nil
}

// fanoutDirs is how many subdirectories chunk files are spread over, so that
// no single directory holds millions of entries.
const fanoutDirs = 256

// fanout returns the subdirectory name ("00".."ff") of a chunk: the low byte
// of the CRC32C of its name. Consecutive inode numbers land in different
// directories.
func fanout(id ID) string {
	const hex = "0123456789abcdef"
	b := fanoutIndex(id)
	return string([]byte{hex[b>>4], hex[b&0xf]})
}

func fanoutIndex(id ID) byte { return byte(crc32.Checksum([]byte(id.String()), castagnoli)) }
