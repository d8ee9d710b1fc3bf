package chunkstore

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"time"
)

// verifySegment is how much chunk data Verify holds in memory at a time
// (rounded up to whole blocks): a scrub of a 64 MiB chunk must not cost
// 64 MiB of memory.
const verifySegment = 1 << 20

// Verify reads chunk id whole from disk and checks it: header, checksum
// table, file size and every data block. It returns the chunk's header
// facts; a damaged chunk is ErrCorrupt naming the first bad block. It is
// the scrubber's read: unlike ReadAll it returns no data and holds at most
// one segment of it in memory, and it first asks the kernel to drop the
// file's cached pages so that the bytes checked are the ones on the disk,
// where bit rot happens, not a copy in the page cache (best effort; see
// dropCache).
//
// Verify holds the chunk's shared lock while it reads, like Read, so it
// never sees half of a Write. The caller paces it (Stat gives the length
// first): Verify itself reads at disk speed.
func (s *Store) Verify(id ID) (Info, error) {
	if err := s.checkOpen(); err != nil {
		return Info{}, err
	}
	defer s.locks.lock(id, true)()
	f, h, table, err := s.openChunk(id, os.O_RDONLY)
	if err != nil {
		return Info{}, opErr("verify", id, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, opErr("verify", id, err)
	}
	dropCache(f)
	if err := verifyBlocks(f, &h, table); err != nil {
		return Info{}, opErr("verify", id, err)
	}
	return Info{Version: h.version, Length: h.length, Age: time.Since(st.ModTime())}, nil
}

// verifyBlocks checks every stored block of the chunk in f, one segment of
// whole blocks at a time through one reused buffer.
func verifyBlocks(f *os.File, h *header, table []uint32) error {
	bs := int64(h.blockSize)
	seg := max(bs, verifySegment/bs*bs)
	buf := make([]byte, min(seg, roundUp(max(h.length, 1), bs)))
	for start := int64(0); start < h.length; start += seg {
		n := min(seg, h.length-start)
		stored := buf[:n]
		if _, err := f.ReadAt(stored, int64(h.dataOffset)+start); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("file shorter than its header says: %w", ErrCorrupt)
			}
			return err
		}
		// The last block is checksummed at full size with zeros past the
		// data (see blockCRC).
		padded := buf[:roundUp(n, bs)]
		clear(padded[n:])
		for off := int64(0); off < int64(len(padded)); off += bs {
			b := (start + off) / bs
			if got := blockCRC(padded[off : off+bs]); got != table[b] {
				return fmt.Errorf("block %d: checksum mismatch (stored %#08x, computed %#08x): %w",
					b, table[b], got, ErrCorrupt)
			}
		}
	}
	return nil
}

// DeleteVersion removes chunk id durably, but only if its file holds
// exactly version (else ErrVersionMismatch) and has not changed for at
// least minAge (else ErrTooRecent); a missing chunk is not an error, so a
// retried delete succeeds. A file whose header cannot be read (ErrCorrupt)
// matches any version, and version 0 (which no chunk has) matches only
// such a file: a damaged file is no version of anything and can only be
// garbage once the caller has checked that no replica set lists it.
//
// Why exactly the version and not "at most it": versions order the writes
// of one incarnation of a chunk, but a chunk index truncated away and
// written again starts over from a low version (see replication), so a
// lower version on disk may be a newer file than the garbage named; and a
// higher one is a write the metadata has not committed yet, which the
// writer's reconcile owns. Only the exact version is what the caller found
// unreferenced.
//
// Why the age: the caller decides from the metadata that this node holds
// no live replica, then asks to delete. Between the two, a re-replication
// can have put a fresh copy at the same version here and committed it, or
// a new write can have created the chunk again. Both make a file younger
// than their commit; refusing young files closes that window as long as
// minAge exceeds the time from a copy or write reaching a replica to its
// commit. The age is taken from the file's modification time against this
// node's wall clock (the kernel sets mtime from it; no injected clock can
// stand in for it), so no clock skew between nodes enters.
func (s *Store) DeleteVersion(id ID, version uint64, minAge time.Duration) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if minAge < 0 {
		return opErr("delete", id, fmt.Errorf("minimum age %v: %w", minAge, iofs.ErrInvalid))
	}
	defer s.lockForChange(id)()
	fi, err := os.Stat(s.path(id))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return opErr("delete", id, err)
	}
	// A zero minAge skips the check: a file's mtime may read slightly in
	// the future when the file system's clock is coarser than ours.
	if age := time.Since(fi.ModTime()); minAge > 0 && age < minAge {
		return opErr("delete", id, fmt.Errorf("changed %v ago, less than %v: %w",
			age.Round(time.Millisecond), minAge, ErrTooRecent))
	}
	f, h, _, err := s.openChunk(id, os.O_RDONLY)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case errors.Is(err, ErrCorrupt):
		// Damaged: delete whatever version was asked.
	case err != nil:
		return opErr("delete", id, err)
	default:
		f.Close()
		if h.version != version {
			return opErr("delete", id, fmt.Errorf("local version %d, asked to delete %d: %w", h.version, version, ErrVersionMismatch))
		}
	}
	return s.remove(id)
}

// DeleteCorrupt removes chunk id if, checked again under the chunk's
// exclusive lock, it is still damaged; it reports whether it removed it.
// The check under the lock is the point: between the scrub or read that
// found the damage and this call, a re-replication may have replaced the
// file with a good copy, which must stay.
func (s *Store) DeleteCorrupt(id ID) (bool, error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	defer s.lockForChange(id)()
	f, h, table, err := s.openChunk(id, os.O_RDONLY)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err == nil {
		err = verifyBlocks(f, &h, table)
		f.Close()
	}
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, ErrCorrupt) {
		return false, opErr("delete corrupt", id, err)
	}
	if err := s.remove(id); err != nil {
		return false, err
	}
	s.log.Warn("removed corrupt chunk file", "chunk", id.String(), "damage", err)
	return true, nil
}

// remove deletes chunk id's file and syncs its directory; the caller holds
// the chunk's exclusive lock.
func (s *Store) remove(id ID) error {
	err := os.Remove(s.path(id))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return opErr("delete", id, err)
	}
	// Without this a crash could bring the chunk back; harmless for
	// correctness (it is unreferenced) but it would leak space until the
	// next sweep.
	if err := s.syncDir(s.dir(id)); err != nil {
		return opErr("delete", id, err)
	}
	return nil
}
