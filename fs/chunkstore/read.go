package chunkstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"sync"
)

// Read returns length bytes at off of chunk id, which must be at exactly
// version (else ErrVersionMismatch; ErrNotFound if missing). Bytes past the
// stored data length read as zeros: the caller knows the logical length.
// Every block touched is verified against its checksum; a mismatch is
// ErrCorrupt naming the chunk and block. Read logs nothing: the caller
// decides what a corrupt replica means.
func (s *Store) Read(id ID, version uint64, off int64, length int) ([]byte, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if off < 0 || length < 0 {
		return nil, opErr("read", id, fmt.Errorf("offset %d, length %d: %w", off, length, iofs.ErrInvalid))
	}
	defer s.locks.lock(id, true)()
	var b []byte
	err := s.viaHandle(id, func(hd *handle) (err error) {
		b, err = s.readFrom(id, hd, version, off, length)
		return err
	})
	return b, err
}

// ReadInto is Read into dst (len(dst) bytes at off). When off and len(dst)
// are whole blocks of the chunk file, the blocks are read and verified in
// dst itself, with no buffer of their own and no copy.
func (s *Store) ReadInto(id ID, version uint64, off int64, dst []byte) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if off < 0 {
		return opErr("read", id, fmt.Errorf("offset %d: %w", off, iofs.ErrInvalid))
	}
	defer s.locks.lock(id, true)()
	return s.viaHandle(id, func(hd *handle) error {
		bs := int64(hd.h.blockSize)
		if off%bs != 0 || int64(len(dst))%bs != 0 || len(dst) == 0 {
			b, err := s.readFrom(id, hd, version, off, len(dst))
			copy(dst, b)
			return err
		}
		if hd.h.version != version {
			return opErr("read", id, fmt.Errorf("local version %d, expected %d: %w", hd.h.version, version, ErrVersionMismatch))
		}
		if err := readVerifiedInto(hd.f, &hd.h, hd.table, off, dst); err != nil {
			return opErr("read", id, err)
		}
		return nil
	})
}

// viaHandle runs read with chunk id's open handle, kept from an earlier
// read or opened now (and kept if read succeeds). A read that fails
// through a kept handle is tried once more on a fresh open. The caller
// holds id's shared lock.
func (s *Store) viaHandle(id ID, read func(*handle) error) error {
	if hd := s.handles.get(id); hd != nil {
		err := read(hd)
		s.handles.release(hd)
		if err == nil {
			return nil
		}
		s.handles.drop(id) // judge the file afresh
	}
	f, h, table, err := s.openChunk(id, os.O_RDONLY)
	if err != nil {
		return opErr("read", id, err)
	}
	hd := &handle{f: f, h: h, table: table}
	if err := read(hd); err != nil {
		f.Close()
		return err
	}
	s.handles.add(id, hd)
	s.handles.release(hd)
	return nil
}

// readFrom reads through an open chunk file (see Read).
func (s *Store) readFrom(id ID, hd *handle, version uint64, off int64, length int) ([]byte, error) {
	if hd.h.version != version {
		return nil, opErr("read", id, fmt.Errorf("local version %d, expected %d: %w", hd.h.version, version, ErrVersionMismatch))
	}
	// Reads past the data are zeros, but only up to the size a chunk can
	// have, so a bad length cannot make us allocate without bound.
	if limit := max(s.cfg.MaxChunkSize, hd.h.length); off > limit || int64(length) > limit-off {
		return nil, opErr("read", id, fmt.Errorf("read of %d bytes at %d, limit %d: %w", length, off, limit, ErrTooLarge))
	}
	b, err := readVerified(hd.f, &hd.h, hd.table, off, int64(length))
	if err != nil {
		return nil, opErr("read", id, err)
	}
	return b, nil
}

// ReadAll returns the whole stored data of the chunk and its version,
// verifying every block. It is what copies a replica to another node, so a
// corrupt replica must never get through it.
func (s *Store) ReadAll(id ID) (data []byte, version uint64, err error) {
	if err := s.checkOpen(); err != nil {
		return nil, 0, err
	}
	defer s.locks.lock(id, true)()
	f, h, table, err := s.openChunk(id, os.O_RDONLY)
	if err != nil {
		return nil, 0, opErr("read all", id, err)
	}
	defer f.Close()
	data, err = readVerified(f, &h, table, 0, h.length)
	if err != nil {
		return nil, 0, opErr("read all", id, err)
	}
	return data, h.version, nil
}

// readVerified reads [off, off+length) of the chunk in f, verifying every
// block that holds stored data in that range; the rest reads as zeros.
func readVerified(f *os.File, h *header, table []uint32, off, length int64) ([]byte, error) {
	if length == 0 {
		return []byte{}, nil
	}
	bs := int64(h.blockSize)
	end := min(off+length, h.length) // stored bytes wanted end here
	if off >= end {
		return make([]byte, length), nil
	}
	// Read whole blocks, since a block verifies only as a whole, into a
	// buffer that also covers the zeros asked for past the data.
	first, last := off/bs, (end-1)/bs
	base := first * bs
	span := max((last+1)*bs, off+length) - base
	var buf []byte
	if length*4 <= span && span <= pooledSpan {
		// A small read of a large block: verify in a pooled buffer and
		// copy out what was asked (a 4 KiB random read would otherwise
		// allocate a whole 64 KiB block for the garbage collector).
		pb := spanPool.Get().(*[]byte)
		defer spanPool.Put(pb)
		buf = (*pb)[:span]
		clear(buf[min((last+1)*bs, h.length)-base:])
	} else {
		buf = make([]byte, span)
	}
	stored := buf[:min((last+1)*bs, h.length)-base]
	if _, err := f.ReadAt(stored, int64(h.dataOffset)+base); err != nil {
		if errors.Is(err, io.EOF) {
			// The size was checked when the file was opened, so it shrank
			// under us: someone else is writing our files.
			return nil, fmt.Errorf("file shorter than its header says: %w", ErrCorrupt)
		}
		return nil, err
	}
	for b := first; b <= last; b++ {
		block := buf[(b-first)*bs : (b-first+1)*bs]
		if got := blockCRC(block); got != table[b] {
			return nil, fmt.Errorf("block %d: checksum mismatch (stored %#08x, computed %#08x): %w",
				b, table[b], got, ErrCorrupt)
		}
	}
	if length*4 <= span && span <= pooledSpan {
		return bytes.Clone(buf[off-base : off-base+length]), nil
	}
	return buf[off-base : off-base+length : off-base+length], nil
}

// pooledSpan is the largest read span (whole blocks) verified in a pooled
// buffer: two default-sized blocks.
const pooledSpan = 128 << 10

var spanPool = sync.Pool{New: func() any { b := make([]byte, pooledSpan); return &b }}

// readVerifiedInto reads the whole blocks dst covers from off (a block
// boundary; len(dst) a whole number of blocks) into dst and checks each
// against its checksum; bytes past the chunk's data are zeros.
func readVerifiedInto(f *os.File, h *header, table []uint32, off int64, dst []byte) error {
	bs := int64(h.blockSize)
	end := min(off+int64(len(dst)), h.length)
	if off >= end {
		clear(dst)
		return nil
	}
	if _, err := f.ReadAt(dst[:end-off], int64(h.dataOffset)+off); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("file shorter than its header says: %w", ErrCorrupt)
		}
		return err
	}
	clear(dst[end-off:])
	first, last := off/bs, (end-1)/bs
	for b := first; b <= last; b++ {
		block := dst[(b-first)*bs : (b-first+1)*bs]
		if got := blockCRC(block); got != table[b] {
			return fmt.Errorf("block %d: checksum mismatch (stored %#08x, computed %#08x): %w",
				b, table[b], got, ErrCorrupt)
		}
	}
	return nil
}
