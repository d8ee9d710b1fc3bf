package meta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	bolt "go.etcd.io/bbolt"
)

// Small files inline in the metadata.
//
// Chunk 0 of a file may live in the metadata instead of in a chunk: while
// the file has no chunk 0, writes that end within InlineMax go into the
// inline bucket through WriteInline, one Raft entry each, replicated and
// fsynced with the log on a majority like every other command, instead of
// a new chunk file fsynced on R replicas plus a Raft commit. So a small
// file costs one Raft commit per write. Chunk 0 is inline or a chunk,
// never both: the first write to chunk 0 that does not fit (past
// InlineMax) carries the inline bytes into the new chunk 0 in the same
// CommitWrite that drops them. That commit names the generation of the
// bytes it moved (CommitWrite.Spill): the log index of the command that
// last changed them, so a write or truncate that came between makes it
// fail with ErrConflict and retry, and an index is never reused, not even
// after the file was emptied and written again. Other chunks are not
// concerned. Bytes of chunk 0 past the inline data read as zeros, as
// holes do.
//
// A value of the inline bucket: generation (8 bytes, big-endian), then
// the bytes.

// InlineMax is the largest file end a WriteInline may reach: smaller files
// live in the metadata (replicated by Raft to every node, one log entry
// per write) instead of in chunks (a new chunk file, fsynced on each of R
// replicas, and then a Raft commit).
const InlineMax = 16 << 10

// Inline is a file's inline chunk 0.
type Inline struct {
	Gen  uint64 // log index of the last change
	Data []byte
}

func encodeInline(gen uint64, data []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(data)), gen), data...)
}

// inline returns file ino's inline data, nil if none.
func (s *state) inline(vol uint32, ino uint64) *Inline {
	v := s.tx.Bucket(bucketInline).Get(inodeKey(vol, ino))
	if v == nil {
		return nil
	}
	if len(v) < 8 {
		panic(fmt.Sprintf("meta: inline data of %d/%d: %d bytes", vol, ino, len(v)))
	}
	return &Inline{Gen: binary.BigEndian.Uint64(v), Data: bytes.Clone(v[8:])}
}

func (s *state) putInline(vol uint32, ino uint64, data []byte) {
	must(s.tx.Bucket(bucketInline).Put(inodeKey(vol, ino), encodeInline(s.index, data)))
}

// writeInline applies c (see WriteInline).
func (s *state) writeInline(c *WriteInline) applied {
	vol, n, err := s.regularFile(c.Vol, c.Ino)
	if err != nil {
		return fail(err)
	}
	end := c.Off + uint64(len(c.Data))
	if c.Off > InlineMax || end > InlineMax {
		return fail(fmt.Errorf("%w: inline write to %d past %d", ErrInvalid, end, InlineMax))
	}
	if _, ok := getJSON[Chunk](s.tx.Bucket(bucketChunks), chunkKey(c.Vol, c.Ino, 0)); ok {
		return fail(fmt.Errorf("%w: file %d has chunk 0", ErrConflict, c.Ino))
	}
	cur := s.inline(c.Vol, c.Ino)
	if len(c.Data) == 0 {
		// A fence: the generation moves, nothing else does.
		if cur != nil {
			s.putInline(c.Vol, c.Ino, cur.Data)
		}
		return applied{Result: Result{Inode: n}}
	}
	if end > n.Size && !vol.quotaAllowsBytes(int64(end-n.Size)) {
		return fail(quotaBytesErr(vol, int64(end-n.Size)))
	}
	var data []byte
	if cur != nil {
		data = cur.Data
	}
	if uint64(len(data)) < end {
		data = append(data, make([]byte, end-uint64(len(data)))...)
	}
	copy(data[c.Off:], c.Data)
	s.putInline(c.Vol, c.Ino, data)
	if end > n.Size {
		vol.Bytes += int64(end - n.Size)
		s.putVolume(vol)
		n.Size = end
	}
	n.Mtime, n.Ctime = c.Time, c.Time
	s.putInode(c.Vol, n)
	return applied{Result: Result{Inode: n}}
}

// spill checks, for a commit that writes chunk 0, that gen is the
// generation of file ino's inline data and drops it (its bytes are in the
// new chunk 0). With gen nil, the file must have no inline data: a writer
// that did not see it would bury it.
func (s *state) spill(vol uint32, ino uint64, gen *uint64) error {
	cur := s.inline(vol, ino)
	switch {
	case gen == nil && cur == nil:
		return nil
	case gen == nil:
		return fmt.Errorf("%w: file %d has inline data", ErrConflict, ino)
	case cur == nil || cur.Gen != *gen:
		return fmt.Errorf("%w: file %d's inline data changed before it moved to chunks", ErrConflict, ino)
	}
	return s.tx.Bucket(bucketInline).Delete(inodeKey(vol, ino))
}

// truncateInline cuts file ino's inline data to size (a new generation).
func (s *state) truncateInline(vol uint32, ino, size uint64) {
	cur := s.inline(vol, ino)
	switch {
	case cur == nil || uint64(len(cur.Data)) <= size:
	case size == 0:
		s.dropInline(vol, ino)
	default:
		s.putInline(vol, ino, cur.Data[:size])
	}
}

// dropInline forgets file ino's inline data.
func (s *state) dropInline(vol uint32, ino uint64) {
	must(s.tx.Bucket(bucketInline).Delete(inodeKey(vol, ino)))
}

// Inline returns the inline chunk 0 of file ino, nil if it has none (its
// data, if any, is in chunks).
func (f *FSM) Inline(vol uint32, ino uint64) (out *Inline, err error) {
	err = f.view(func(tx *bolt.Tx) error {
		out = (&state{tx: tx}).inline(vol, ino)
		return nil
	})
	return out, err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)
