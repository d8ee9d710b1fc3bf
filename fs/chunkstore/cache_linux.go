package chunkstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropCache asks the kernel to evict f's clean cached pages, so that the
// next reads come from the disk. Best effort: an error only means the
// verification may check a cached copy, which is still a valid check of
// what reads would serve.
func dropCache(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
