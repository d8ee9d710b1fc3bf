package chunkstore

import (
	"fmt"
	iofs "io/fs"
	"os"

	"github.com/fsrep/fsrep/internal/fault"
)

// Write applies data at byte offset off inside chunk id and makes it durable
// (fsync of the file, and of its directory when the file is new) before
// returning. It returns the new data length.
//
// Version rule: if baseVersion == 0 the chunk is being created and must not
// exist locally (else ErrVersionMismatch: a file there is either another
// writer's new chunk, possibly about to be committed, or left over from a
// write that never committed; the caller decides, see Inspect). Otherwise the local
// chunk must exist (else ErrNotFound) with version == baseVersion (else
// ErrVersionMismatch, and nothing changes).
//
// Before applying, the data is cut (or zero-extended) to baseLength bytes, so
// a gap between baseLength and off reads as zeros. Then data is written at
// off, the version becomes newVersion and the length becomes
// max(baseLength, off+len(data)). A chunk longer than MaxChunkSize is
// ErrTooLarge.
//
// A crash during a Write to an existing chunk can leave data, checksum table
// and header from different writes; the table checksum in the header and the
// block checksums make every such mix read as ErrCorrupt rather than as
// plausible data, so the replica gets replaced.
//
// A full disk is not a crash: a Write that finds less free space than the
// data plus Config.Reserve, or meets ENOSPC (or EDQUOT) from the file
// system, fails with ErrNoSpace and leaves the chunk as it was, readable
// at its old version (a new chunk's temporary file is removed). An update
// in place has the blocks it will write allocated first (fallocate), so
// running out of space cannot stop it halfway; a Write that cuts the chunk
// (baseLength below its length) builds the result in a new file instead.
// On copy-on-write file systems, where even an overwrite allocates, that
// guarantee is only the crash one above.
func (s *Store) Write(id ID, baseVersion, newVersion uint64, baseLength int64, off int64, data []byte) (int64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if newVersion == 0 || baseLength < 0 || off < 0 {
		return 0, opErr("write", id, fmt.Errorf("newVersion %d, baseLength %d, offset %d: %w",
			newVersion, baseLength, off, iofs.ErrInvalid))
	}
	if off > s.cfg.MaxChunkSize || max(baseLength, off+int64(len(data))) > s.cfg.MaxChunkSize {
		return 0, opErr("write", id, fmt.Errorf("length %d, write of %d bytes at %d, limit %d: %w",
			baseLength, len(data), off, s.cfg.MaxChunkSize, ErrTooLarge))
	}
	if err := s.checkSpace(int64(len(data))); err != nil {
		return 0, opErr("write", id, err)
	}
	defer s.lockForChange(id)()
	var n int64
	var err error
	if baseVersion == 0 {
		if _, statErr := os.Stat(s.path(id)); statErr == nil {
			return 0, opErr("write", id, fmt.Errorf("creating a chunk that exists locally: %w", ErrVersionMismatch))
		}
		n, err = s.create(id, newVersion, baseLength, off, data)
	} else {
		n, err = s.update(id, baseVersion, newVersion, baseLength, off, data)
	}
	if err != nil {
		return 0, opErr("write", id, noSpace(err))
	}
	return n, nil
}

// update applies a Write in place to an existing chunk.
func (s *Store) update(id ID, baseVersion, newVersion uint64, baseLength, off int64, data []byte) (int64, error) {
	f, h, table, err := s.openChunk(id, os.O_RDWR)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if h.version != baseVersion {
		return 0, fmt.Errorf("local version %d, expected %d: %w", h.version, baseVersion, ErrVersionMismatch)
	}
	// Leftovers of a write a crash interrupted, past the header's length:
	// dropped first, or a write that leaves a hole over them would
	// checksum zeros where they lie.
	if fi, err := f.Stat(); err != nil {
		return 0, err
	} else if want := int64(h.dataOffset) + h.length; fi.Size() > want {
		if err := f.Truncate(want); err != nil {
			return 0, err
		}
	}
	// The file's own table capacity also limits it: it may have been
	// created under a smaller MaxChunkSize.
	newLen := max(baseLength, off+int64(len(data)))
	if newLen > h.maxLength() {
		return 0, fmt.Errorf("length %d exceeds this file's capacity %d: %w", newLen, h.maxLength(), ErrTooLarge)
	}
	if baseLength < h.length {
		// A cut (the file was truncated since this replica was written)
		// frees blocks that the write may need again: in place, running out
		// of space between the two would leave a file that is neither the
		// old chunk nor the new one. Build the new chunk in a new file (the
		// first write after a truncate only), from the verified old bytes.
		old, err := readVerified(f, &h, table, 0, baseLength)
		if err != nil {
			return 0, err
		}
		buf := make([]byte, newLen)
		copy(buf, old)
		copy(buf[off:], data)
		return s.create(id, newVersion, 0, 0, buf)
	}
	// Allocate what the write will fill before changing anything: the
	// checksum table's entries and the data (both may be holes, or past the
	// end), so that ENOSPC comes now, with the chunk untouched.
	if err := preallocate(f, 0, headerSize+4*ceilDiv(newLen, int64(h.blockSize))); err != nil {
		return 0, err
	}
	if err := preallocate(f, int64(h.dataOffset)+off, int64(len(data))); err != nil {
		return 0, err
	}
	n, err := s.apply(f, &h, table, baseLength, off, data, newVersion)
	if err != nil {
		return 0, err
	}
	if err := fault.Point(fault.ChunkBeforeSync); err != nil {
		return 0, err
	}
	if err := s.syncFile(f); err != nil {
		return 0, err
	}
	return n, f.Close()
}

// create builds a fresh chunk in a temporary file and renames it over
// whatever is there, so a crash leaves either the old file or the complete
// new one.
func (s *Store) create(id ID, version uint64, baseLength, off int64, data []byte) (int64, error) {
	if err := s.makeChunkDir(id); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(s.dir(id), id.String()+".*"+tempSuffix)
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	n, err := s.fillNew(f, id, version, baseLength, off, data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fault.Point(fault.ChunkBeforeRename)
	}
	if err == nil {
		err = os.Rename(tmp, s.path(id))
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	if err := fault.Point(fault.ChunkAfterRename); err != nil {
		return 0, err
	}
	if err := s.syncDir(s.dir(id)); err != nil {
		return 0, err
	}
	return n, nil
}

// fillNew writes a new chunk into the empty file f and syncs it.
func (s *Store) fillNew(f *os.File, id ID, version uint64, baseLength, off int64, data []byte) (int64, error) {
	h := header{
		blockSize:  uint32(s.cfg.BlockSize),
		dataOffset: s.cfg.dataOffset(),
		id:         id,
	}
	// An empty chunk file is dataOffset bytes long; apply relies on the
	// file size matching the header.
	if err := f.Truncate(int64(h.dataOffset)); err != nil {
		return 0, err
	}
	n, err := s.apply(f, &h, nil, baseLength, off, data, version)
	if err != nil {
		return 0, err
	}
	if err := fault.Point(fault.ChunkBeforeSync); err != nil {
		return 0, err
	}
	return n, s.syncFile(f)
}

// Put stores a complete chunk (data at offset 0) at version, replacing
// whatever is local, durably: it writes a temporary file, syncs it, renames
// it into place and syncs the directory.
func (s *Store) Put(id ID, version uint64, data []byte) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if version == 0 {
		return opErr("put", id, fmt.Errorf("version 0: %w", iofs.ErrInvalid))
	}
	if int64(len(data)) > s.cfg.MaxChunkSize {
		return opErr("put", id, fmt.Errorf("%d bytes, limit %d: %w", len(data), s.cfg.MaxChunkSize, ErrTooLarge))
	}
	if err := s.checkSpace(int64(len(data))); err != nil {
		return opErr("put", id, err)
	}
	defer s.lockForChange(id)()
	if _, err := s.create(id, version, 0, 0, data); err != nil {
		return opErr("put", id, noSpace(err))
	}
	return nil
}

// apply performs the cut-then-write of a Write on the open chunk file f,
// whose header and checksum table are h and table, and writes the new table
// and header. It does not sync. The caller has checked the version and the
// size limits.
//
// Invariant kept: the file is exactly dataOffset+length bytes, and bytes of
// the last block past length are absent, hence zero. That is what lets a
// block be checksummed at full size with zero padding.
func (s *Store) apply(f *os.File, h *header, table []uint32, baseLength, off int64, data []byte, version uint64) (int64, error) {
	var (
		bs      = int64(h.blockSize)
		dataOff = int64(h.dataOffset)
		oldLen  = h.length
		end     = off + int64(len(data))
		newLen  = max(baseLength, end)
		keep    = min(oldLen, baseLength) // old bytes that survive the cut
		size    = dataOff + oldLen        // current file size
	)

	// Blocks whose checksum must be recomputed from their new content: the
	// block the cut went through (its tail became zero), and every block the
	// write touches.
	var dirty []int64
	if keep < oldLen && keep%bs != 0 {
		dirty = append(dirty, keep/bs)
	}
	if len(data) > 0 {
		for b := off / bs; b <= (end-1)/bs; b++ {
			if len(dirty) == 0 || dirty[0] != b {
				dirty = append(dirty, b)
			}
		}
	}
	// The old bytes of every block rewritten only in part, read before the
	// cut and checked against their stored checksum: recomputing a checksum
	// over rotted bytes would turn the rot into valid data that no read or
	// scrub could ever detect. Such a replica fails the write instead (and
	// the writer leaves it out of the replica set). At most three blocks.
	old := map[int64][]byte{}
	for _, b := range dirty {
		start, stop := b*bs, (b+1)*bs
		if start >= off && stop <= end {
			continue // wholly rewritten
		}
		buf := make([]byte, bs)
		if start < oldLen {
			if _, err := f.ReadAt(buf[:min(bs, oldLen-start)], dataOff+start); err != nil {
				return 0, err
			}
			if b < int64(len(table)) && blockCRC(buf) != table[b] {
				return 0, fmt.Errorf("block %d fails its checksum before a partial rewrite: %w", b, ErrCorrupt)
			}
		}
		if keep < stop {
			clear(buf[max(keep-start, 0):]) // past the cut: zeros
		}
		old[b] = buf
	}

	// Cut: dropping the bytes past baseLength by truncation leaves zeros if
	// the chunk grows back over them.
	if baseLength < oldLen {
		if err := f.Truncate(dataOff + baseLength); err != nil {
			return 0, err
		}
		size = dataOff + baseLength
	}

	// Blocks that hold surviving bytes keep their checksum; blocks wholly
	// past them are holes until the write below touches them. A block that
	// held old bytes, and merely gets zeros appended, keeps its checksum
	// because its tail was already zero.
	nblocks := ceilDiv(newLen, bs)
	kept := ceilDiv(keep, bs)
	newTable := make([]uint32, nblocks)
	copy(newTable, table[:kept])
	zero := s.zeroCRC
	if bs != int64(s.cfg.BlockSize) {
		zero = blockCRC(make([]byte, bs))
	}
	for i := kept; i < nblocks; i++ {
		newTable[i] = zero
	}

	for _, b := range dirty {
		start, stop := b*bs, (b+1)*bs
		if start >= off && stop <= end {
			newTable[b] = blockCRC(data[start-off : stop-off])
			continue
		}
		// Read-modify-write: the old bytes of the block (zeros past the
		// surviving data) with the new ones laid over them.
		buf := old[b]
		if lo, hi := max(start, off), min(stop, end); lo < hi {
			copy(buf[lo-start:hi-start], data[lo-off:hi-off])
		}
		newTable[b] = blockCRC(buf)
	}

	if len(data) > 0 {
		if _, err := f.WriteAt(data, dataOff+off); err != nil {
			return 0, err
		}
		size = max(size, dataOff+end)
	}
	if size != dataOff+newLen {
		if err := f.Truncate(dataOff + newLen); err != nil {
			return 0, err
		}
	}

	// Header and table go out in one write: together they are at most a few
	// KiB at the start of the file.
	tb := encodeTable(newTable)
	h.version = version
	h.length = newLen
	h.nblocks = uint32(nblocks)
	h.tableCRC = checksum(tb)
	hb := encodeHeader(h)
	if _, err := f.WriteAt(append(hb[:], tb...), 0); err != nil {
		return 0, err
	}
	return newLen, nil
}
