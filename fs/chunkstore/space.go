package chunkstore

import (
	"fmt"
	"syscall"
)

// Free returns the bytes of Dir's file system available to the store
// (statfs f_bavail, what an unprivileged writer may still use), or what
// Config.FreeSpace says.
func (s *Store) Free() (int64, error) {
	if s.cfg.FreeSpace != nil {
		return s.cfg.FreeSpace()
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.cfg.Dir, &st); err != nil {
		return 0, fmt.Errorf("chunkstore: statfs: %w", err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Full reports whether the free space is below the reserve: the store
// refuses every write now. A store without a reserve, or whose free space
// is unknown, is never full (its writes find out for themselves).
func (s *Store) Full() bool {
	return s.checkSpace(0) != nil
}

// Reserve is the free space below which the store refuses writes.
func (s *Store) Reserve() int64 { return s.cfg.Reserve }

// checkSpace fails with ErrNoSpace when writing need more bytes would take
// the file system below the reserve. It does not hold the space: two
// writes may both pass and together eat into the reserve, by at most one
// chunk each, which the reserve is there to absorb.
func (s *Store) checkSpace(need int64) error {
	if s.cfg.Reserve <= 0 {
		return nil
	}
	free, err := s.Free()
	if err != nil {
		return nil // unknown: the write itself meets ENOSPC if there is none
	}
	if free-need < s.cfg.Reserve {
		return fmt.Errorf("%d bytes free, %d to write and a reserve of %d: %w", free, need, s.cfg.Reserve, ErrNoSpace)
	}
	return nil
}
