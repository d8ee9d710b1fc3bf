package chunkstore

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate makes the file system allocate the blocks of [off, off+n) of
// f (past its end too) without changing its size, so that writing there
// next cannot fail for lack of space (on file systems that overwrite in
// place: not on copy-on-write ones such as btrfs or ZFS). A file system
// without fallocate(2) is not an error: the write is then on its own.
func preallocate(f *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			ferr = unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, off, n)
			if ferr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if errors.Is(ferr, unix.EOPNOTSUPP) || errors.Is(ferr, unix.ENOSYS) {
		return nil
	}
	if ferr != nil {
		return &os.PathError{Op: "fallocate", Path: f.Name(), Err: ferr}
	}
	return nil
}
