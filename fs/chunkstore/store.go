package chunkstore

import (
	"cmp"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tempSuffix ends the name of every file being written before it is renamed
// into place. Such a file is never a chunk: Open removes any it finds, since
// it can only be left over from a crash.
const tempSuffix = ".tmp"

// Store is the local chunk store. It is safe for concurrent use; operations
// on one chunk serialise, operations on different chunks run in parallel.
// It keeps no file open between operations, so there is nothing to recover
// in memory after a crash: the files are the whole state.
type Store struct {
	cfg     Config
	log     *slog.Logger
	locks   *lockTable
	zeroCRC uint32 // checksum of a hole block of cfg.BlockSize
	closed  atomic.Bool
	handles handles // open chunk files for Read (handles.go)

	dirsMu    sync.Mutex
	dirsReady [fanoutDirs]bool // subdirectory exists and is durable; see makeChunkDir
}

// Open opens (creating if needed) the store in cfg.Dir and removes temporary
// files left by a crash. log may be nil.
func Open(cfg Config, log *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		cfg:     cfg,
		log:     log.With("component", "chunkstore"),
		locks:   newLockTable(),
		zeroCRC: blockCRC(make([]byte, cfg.BlockSize)),
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("chunkstore: open: %w", err)
	}
	if err := s.removeTemps(); err != nil {
		return nil, err
	}
	return s, nil
}

// makeChunkDir creates the fan-out subdirectory of id if needed, and makes
// its entry in the store directory durable before any chunk is renamed into
// it. That is done once per subdirectory per process, under a mutex, so a
// second creator cannot race ahead of the first one's fsync (an existing
// directory from a previous run may never have been synced either).
func (s *Store) makeChunkDir(id ID) error {
	i := fanoutIndex(id)
	s.dirsMu.Lock()
	defer s.dirsMu.Unlock()
	if s.dirsReady[i] {
		return nil
	}
	if err := os.Mkdir(s.dir(id), 0o700); err != nil && !errors.Is(err, iofs.ErrExist) {
		return err
	}
	if err := s.syncDir(s.cfg.Dir); err != nil {
		return err
	}
	s.dirsReady[i] = true
	return nil
}

// readSubdir lists fan-out subdirectory sub; one never created is empty.
func (s *Store) readSubdir(sub string) ([]iofs.DirEntry, error) {
	entries, err := os.ReadDir(filepath.Join(s.cfg.Dir, sub))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	return entries, err
}

// removeTemps deletes temporary files: they belong to Puts and creating
// Writes that never reached their rename, which were never acknowledged.
func (s *Store) removeTemps() error {
	removed := 0
	for i := range fanoutDirs {
		sub := fmt.Sprintf("%02x", i)
		entries, err := s.readSubdir(sub)
		if err != nil {
			return fmt.Errorf("chunkstore: open: %w", err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), tempSuffix) {
				continue
			}
			if err := os.Remove(filepath.Join(s.cfg.Dir, sub, e.Name())); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				return fmt.Errorf("chunkstore: open: remove stale temp file: %w", err)
			}
			removed++
		}
	}
	if removed > 0 {
		s.log.Info("removed stale temporary files", "count", removed, "dir", s.cfg.Dir)
	}
	return nil
}

// Close marks the store closed; later calls fail with io/fs.ErrClosed.
// Operations already running finish normally.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.handles.closeAll()
	return nil
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return fmt.Errorf("chunkstore: %w", iofs.ErrClosed)
	}
	return nil
}

// dir is the fan-out subdirectory holding chunk id.
func (s *Store) dir(id ID) string { return filepath.Join(s.cfg.Dir, fanout(id)) }

// path is the file of chunk id.
func (s *Store) path(id ID) string { return filepath.Join(s.dir(id), id.String()) }

// opErr wraps err with the operation and chunk, the form every error of the
// store takes.
func opErr(op string, id ID, err error) error {
	return fmt.Errorf("chunkstore: %s %s: %w", op, id, err)
}

// openChunk opens chunk id's file and loads its header and checksum table.
func (s *Store) openChunk(id ID, flag int) (*os.File, header, []uint32, error) {
	f, err := os.OpenFile(s.path(id), flag, 0)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, header{}, nil, ErrNotFound
	}
	if err != nil {
		return nil, header{}, nil, err
	}
	h, table, err := loadChunk(f, id)
	if err != nil {
		f.Close()
		return nil, header{}, nil, err
	}
	return f, h, table, nil
}

// loadChunk reads and checks the header and checksum table of an open chunk
// file. Anything inconsistent, including a file shorter than its header
// says, is ErrCorrupt. A file longer than that holds the leftovers of a
// write a crash interrupted (an update writes the data, then the header):
// they are past the length every read and checksum stops at, and the next
// write drops them (update).
func loadChunk(f *os.File, id ID) (header, []uint32, error) {
	fi, err := f.Stat()
	if err != nil {
		return header{}, nil, err
	}
	size := fi.Size()
	if size < headerSize {
		return header{}, nil, fmt.Errorf("file is %d bytes, shorter than the header: %w", size, ErrCorrupt)
	}
	var hb [headerSize]byte
	if _, err := f.ReadAt(hb[:], 0); err != nil {
		return header{}, nil, err
	}
	h, err := decodeHeader(hb[:])
	if err != nil {
		return header{}, nil, err
	}
	if h.id != id {
		return header{}, nil, fmt.Errorf("header names chunk %s: %w", h.id, ErrCorrupt)
	}
	if want := int64(h.dataOffset) + h.length; size < want {
		return header{}, nil, fmt.Errorf("file is %d bytes, header says %d: %w", size, want, ErrCorrupt)
	}
	tb := make([]byte, 4*int(h.nblocks))
	if _, err := f.ReadAt(tb, headerSize); err != nil {
		return header{}, nil, err
	}
	if got := checksum(tb); got != h.tableCRC {
		return header{}, nil, fmt.Errorf("checksum table: checksum mismatch (stored %#08x, computed %#08x): %w",
			h.tableCRC, got, ErrCorrupt)
	}
	return h, decodeTable(tb), nil
}

// Stat returns the header facts of a local chunk.
func (s *Store) Stat(id ID) (version uint64, length int64, err error) {
	if err := s.checkOpen(); err != nil {
		return 0, 0, err
	}
	defer s.locks.lock(id, true)()
	f, h, _, err := s.openChunk(id, os.O_RDONLY)
	if err != nil {
		return 0, 0, opErr("stat", id, err)
	}
	f.Close()
	return h.version, h.length, nil
}

// Info is what Inspect reports about a local chunk.
type Info struct {
	Version uint64
	Length  int64
	// Age is the time since the chunk file last changed, by this node's
	// clock (so no clock skew between nodes enters a decision based on it).
	Age time.Duration
}

// Inspect returns the header facts of a local chunk and the age of its last
// change.
func (s *Store) Inspect(id ID) (Info, error) {
	if err := s.checkOpen(); err != nil {
		return Info{}, err
	}
	defer s.locks.lock(id, true)()
	f, h, _, err := s.openChunk(id, os.O_RDONLY)
	if err != nil {
		return Info{}, opErr("inspect", id, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, opErr("inspect", id, err)
	}
	return Info{Version: h.version, Length: h.length, Age: time.Since(st.ModTime())}, nil
}

// Delete removes a chunk durably, whatever its version. Deleting a missing
// chunk is not an error, so a retried delete succeeds. Garbage collection
// uses DeleteVersion instead, which cannot remove a file that became live
// again.
func (s *Store) Delete(id ID) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	defer s.lockForChange(id)()
	return s.remove(id)
}

// List returns every chunk file present, sorted by ID. It reads directories
// only, so it does not check the files; files whose names are not chunk IDs
// are ignored.
func (s *Store) List() ([]ID, error) {
	var ids []ID
	err := s.walk(func(id ID, _ iofs.DirEntry) error {
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ids, func(a, b ID) int {
		return cmp.Or(cmp.Compare(a.Vol, b.Vol), cmp.Compare(a.Ino, b.Ino), cmp.Compare(a.Index, b.Index))
	})
	return ids, nil
}

// Usage returns the number of chunk files and their total size in bytes,
// headers included (what the chunks cost on disk, before sparse holes).
func (s *Store) Usage() (files int, bytes int64, err error) {
	err = s.walk(func(_ ID, e iofs.DirEntry) error {
		fi, err := e.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			return nil // deleted while we walked
		}
		if err != nil {
			return err
		}
		files++
		bytes += fi.Size()
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return files, bytes, nil
}

// walk calls fn for every chunk file, in no particular order.
func (s *Store) walk(fn func(ID, iofs.DirEntry) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	for i := range fanoutDirs {
		sub := fmt.Sprintf("%02x", i)
		entries, err := s.readSubdir(sub)
		if err != nil {
			return fmt.Errorf("chunkstore: list: %w", err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			id, err := ParseID(e.Name())
			// A chunk in the wrong subdirectory is unreachable by ID, so
			// listing it would promise a chunk Stat cannot find.
			if err != nil || fanout(id) != sub {
				continue
			}
			if err := fn(id, e); err != nil {
				return fmt.Errorf("chunkstore: list: %w", err)
			}
		}
	}
	return nil
}

// syncDir makes the entries of dir (creations, renames, removals) durable.
func (s *Store) syncDir(dir string) error {
	if s.cfg.NoSync {
		return nil
	}
	return SyncDir(dir)
}

// SyncDir makes the entries of dir (creations, renames, removals) durable:
// an fsync of the directory itself.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// syncFile makes f's data and metadata durable.
func (s *Store) syncFile(f *os.File) error {
	if s.cfg.NoSync {
		return nil
	}
	return f.Sync()
}
