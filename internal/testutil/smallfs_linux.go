package testutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// SmallFS mounts a tmpfs of size bytes on a new directory and returns it;
// t.Cleanup unmounts it, after the cleanups registered later (a store or
// cluster opened on it closes first). ok is false when this process may
// not mount (not root, or a container without CAP_SYS_ADMIN): the caller
// then skips, or plays the full disk another way.
//
// A real file system is what a full-disk test wants: ENOSPC then comes
// from wherever the kernel finds no room (a data block, the page of a
// header, a new temporary file), not from the one point a fake would pick.
func SmallFS(t testing.TB, size int64) (dir string, ok bool) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "smallfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size))
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOSYS) {
		t.Logf("cannot mount a tmpfs here: %v", err)
		return "", false
	}
	if err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Something still holds a file open there: detach it, the
			// kernel frees it once that is closed.
			if derr := syscall.Unmount(dir, syscall.MNT_DETACH); derr != nil {
				t.Errorf("unmount %s: %v (detach: %v)", dir, err, derr)
			}
		}
	})
	return dir, true
}

// Fill writes a file at path until its file system answers ENOSPC, and
// returns how many bytes it took. Removing the file frees them again.
func Fill(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return n
		}
		if err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
		if w == 0 {
			t.Fatalf("fill %s: no progress and no ENOSPC", path)
		}
	}
}
