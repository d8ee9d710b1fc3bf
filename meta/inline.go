package meta

import (
	"bytes"
	"fmt"

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
// CommitWrite that drops them (CommitWrite.Spill, checked against the
// bytes Apply holds, so a concurrent inline write makes it fail with
// ErrConflict and retry). Other chunks are not concerned. Bytes of chunk 0
// past the inline data read as zeros, as holes do.

// writeInline applies c (see WriteInline).
func (s *state) writeInline(c *WriteInline) applied {
	vol, err := s.volumeByID(c.Vol)
	if err != nil {
		return fail(err)
	}
	n, err := s.inode(c.Vol, c.Ino)
	if err != nil {
		return fail(err)
	}
	switch n.Type {
	case TypeFile:
	case TypeDir:
		return fail(ErrIsDir)
	default:
		return fail(fmt.Errorf("%w: cannot write to a %s", ErrInvalid, n.Type))
	}
	end := c.Off + uint64(len(c.Data))
	if c.Off > InlineMax || end > InlineMax {
		return fail(fmt.Errorf("%w: inline write to %d past %d", ErrInvalid, end, InlineMax))
	}
	if _, ok := getJSON[Chunk](s.tx.Bucket(bucketChunks), chunkKey(c.Vol, c.Ino, 0)); ok {
		return fail(fmt.Errorf("%w: file %d has chunk 0", ErrConflict, c.Ino))
	}
	if end > n.Size && !vol.quotaAllowsBytes(int64(end-n.Size)) {
		return fail(quotaBytesErr(vol, int64(end-n.Size)))
	}
	b := s.tx.Bucket(bucketInline)
	key := inodeKey(c.Vol, c.Ino)
	data := bytes.Clone(b.Get(key))
	if uint64(len(data)) < end {
		data = append(data, make([]byte, end-uint64(len(data)))...)
	}
	copy(data[c.Off:], c.Data)
	if len(data) > 0 {
		must(b.Put(key, data))
	}
	if end > n.Size {
		vol.Bytes += int64(end - n.Size)
		s.putVolume(vol)
		n.Size = end
	}
	n.Mtime, n.Ctime = c.Time, c.Time
	s.putInode(c.Vol, n)
	return applied{Result: Result{Inode: n}}
}

// spill checks, for a commit that writes chunk 0, that sum names file
// ino's inline data and drops it (its bytes are in the new chunk 0). With
// sum nil, the file must have no inline data: a writer that did not see
// it would bury it.
func (s *state) spill(vol uint32, ino uint64, sum *InlineSum) error {
	b := s.tx.Bucket(bucketInline)
	key := inodeKey(vol, ino)
	data := b.Get(key)
	switch {
	case sum == nil && data == nil:
		return nil
	case sum == nil:
		return fmt.Errorf("%w: file %d has inline data", ErrConflict, ino)
	case SumInline(data) != *sum:
		return fmt.Errorf("%w: file %d's inline data changed before it moved to chunks", ErrConflict, ino)
	}
	return b.Delete(key)
}

// truncateInline cuts file ino's inline data to size.
func (s *state) truncateInline(vol uint32, ino, size uint64) {
	b := s.tx.Bucket(bucketInline)
	key := inodeKey(vol, ino)
	data := b.Get(key)
	switch {
	case uint64(len(data)) <= size:
	case size == 0:
		must(b.Delete(key))
	default:
		must(b.Put(key, bytes.Clone(data[:size])))
	}
}

// dropInline forgets file ino's inline data.
func (s *state) dropInline(vol uint32, ino uint64) {
	must(s.tx.Bucket(bucketInline).Delete(inodeKey(vol, ino)))
}

// Inline returns the inline data of file ino (ok false: none; the file's
// data, if any, is in chunks).
func (f *FSM) Inline(vol uint32, ino uint64) (data []byte, ok bool, err error) {
	err = f.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketInline).Get(inodeKey(vol, ino)); v != nil {
			data, ok = bytes.Clone(v), true
		}
		return nil
	})
	return data, ok, err
}
