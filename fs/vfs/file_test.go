package vfs

import (
	"bytes"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-billy/v5"
	nfsfile "github.com/willscott/go-nfs/file"

	"github.com/fsrep/fsrep/meta"
)

func TestCreateWriteRead(t *testing.T) {
	e := newEnv(t)
	f, err := e.fs.Create("hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.Write([]byte("hello, ")); err != nil || n != 7 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n, err := f.Write([]byte("world")); err != nil || n != 5 {
		t.Fatalf("second Write = %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	fi, err := e.fs.Stat("hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Name() != "hello.txt" || fi.Size() != 12 || fi.IsDir() || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o666 {
		t.Errorf("Stat = name %q size %d dir %v mode %v", fi.Name(), fi.Size(), fi.IsDir(), fi.Mode())
	}
	n, ok := Inode(fi)
	if !ok {
		t.Fatal("Inode(Stat) not ok")
	}
	sys, ok := fi.Sys().(nfsfile.FileInfo)
	if !ok || sys.Fileid != n.Ino || sys.Nlink != 1 || sys.UID != testOwner.UID || sys.GID != testOwner.GID {
		t.Errorf("Sys = %+v (ok %v); want inode %d, 1 link, owner %+v", sys, ok, n.Ino, testOwner)
	}
	if got := e.readFile(t, "hello.txt"); got != "hello, world" {
		t.Errorf("read back %q", got)
	}

	// Read and ReadAt report EOF at the end of the file.
	r, err := e.fs.Open("/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if n, err := r.ReadAt(buf, 7); n != 5 || err != nil || string(buf) != "world" {
		t.Errorf("ReadAt(7) = %d, %v, %q", n, err, buf)
	}
	if n, err := r.ReadAt(buf, 10); n != 2 || err != io.EOF || string(buf[:n]) != "ld" {
		t.Errorf("ReadAt(10) = %d, %v, %q; want 2, EOF, \"ld\"", n, err, buf[:n])
	}
	if n, err := r.ReadAt(buf, 100); n != 0 || err != io.EOF {
		t.Errorf("ReadAt past the end = %d, %v; want 0, EOF", n, err)
	}
	// A read-only file refuses writes.
	if _, err := r.Write([]byte("x")); !errors.Is(err, iofs.ErrPermission) {
		t.Errorf("Write to a file opened read-only: %v; want ErrPermission", err)
	}
	r.Close()

	// Create of an existing file opens it as it is (go-nfs calls Create for
	// UNCHECKED creates, as for `>>`); O_TRUNC empties it.
	c, err := e.fs.Create("hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := e.readFile(t, "hello.txt"); got != "hello, world" {
		t.Errorf("Create over an existing file changed it to %q", got)
	}
	c, err = e.fs.OpenFile("hello.txt", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if fi, err := e.fs.Stat("hello.txt"); err != nil || fi.Size() != 0 {
		t.Fatalf("after O_TRUNC: %v, %v", fi, err)
	}
	if got := e.readFile(t, "hello.txt"); got != "" {
		t.Errorf("truncated file reads %q", got)
	}
	// O_TRUNC on a read-only open does nothing.
	e.writeFile(t, "hello.txt", "again")
	c, err = e.fs.OpenFile("hello.txt", os.O_RDONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := e.readFile(t, "hello.txt"); got != "again" {
		t.Errorf("O_RDONLY|O_TRUNC changed the file to %q", got)
	}
}

func TestOpenFileFlags(t *testing.T) {
	e := newEnv(t)
	e.writeFile(t, "f", "abc")
	if err := e.fs.MkdirAll("d", 0o755); err != nil {
		t.Fatal(err)
	}

	// Without O_CREATE a missing file is not created.
	_, err := e.fs.OpenFile("missing", os.O_RDWR, 0o644)
	wantErr(t, "OpenFile(missing)", err, iofs.ErrNotExist, meta.ErrNotExist)
	if _, err := e.fs.Lstat("missing"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("OpenFile without O_CREATE created the file: %v", err)
	}
	// O_CREATE in a missing directory.
	_, err = e.fs.OpenFile("nodir/f", os.O_RDWR|os.O_CREATE, 0o644)
	wantErr(t, "OpenFile(nodir/f, O_CREATE)", err, iofs.ErrNotExist)
	// O_CREATE under a file.
	_, err = e.fs.OpenFile("f/g", os.O_RDWR|os.O_CREATE, 0o644)
	wantErr(t, "OpenFile(f/g, O_CREATE)", err, meta.ErrNotDir)

	// O_EXCL: a new file is fine, an existing one fails and is untouched.
	g, err := e.fs.OpenFile("g", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("O_EXCL on a new file: %v", err)
	}
	g.Close()
	if fi, err := e.fs.Stat("g"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("O_EXCL file: %v, %v; want mode 0600", fi, err)
	}
	for _, p := range []string{"f", "g", "d"} {
		_, err = e.fs.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_TRUNC, 0o644)
		wantErr(t, "O_EXCL on existing "+p, err, iofs.ErrExist, meta.ErrExist)
	}
	if got := e.readFile(t, "f"); got != "abc" {
		t.Errorf("a failed O_EXCL|O_TRUNC changed the file to %q", got)
	}
	// O_EXCL without O_CREATE is ignored (go-nfs opens so to truncate).
	x, err := e.fs.OpenFile("f", os.O_WRONLY|os.O_EXCL, 0)
	if err != nil {
		t.Fatalf("O_WRONLY|O_EXCL on an existing file: %v", err)
	}
	if err := x.Truncate(1); err != nil {
		t.Fatal(err)
	}
	x.Close()
	if got := e.readFile(t, "f"); got != "a" {
		t.Errorf("after Truncate(1): %q", got)
	}

	// A directory opens for reading but not for writing.
	for _, flag := range []int{os.O_WRONLY, os.O_RDWR, os.O_RDWR | os.O_CREATE, os.O_WRONLY | os.O_TRUNC} {
		_, err := e.fs.OpenFile("d", flag, 0o644)
		wantErr(t, "OpenFile(dir, writable)", err, meta.ErrIsDir)
	}
	_, err = e.fs.Create("d")
	wantErr(t, "Create(dir)", err, meta.ErrIsDir)
	_, err = e.fs.Create("/")
	wantErr(t, "Create(/)", err, meta.ErrIsDir)
	dh, err := e.fs.Open("d")
	if err != nil {
		t.Fatalf("Open(dir) read-only: %v", err)
	}
	if _, err := dh.Read(make([]byte, 4)); !errors.Is(err, meta.ErrIsDir) {
		t.Errorf("Read of a directory: %v; want ErrIsDir", err)
	}
	dh.Close()

	// O_APPEND writes at the end, wherever the position is.
	a, err := e.fs.OpenFile("g", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"one", "two"} {
		if _, err := a.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	if got := e.readFile(t, "g"); got != "onetwo" {
		t.Errorf("appended file reads %q, want onetwo", got)
	}
}

func TestSeekAndPositionedWrites(t *testing.T) {
	e := newEnv(t)
	f, err := e.fs.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		off    int64
		whence int
		want   int64
	}{
		{2, io.SeekStart, 2},
		{3, io.SeekCurrent, 5},
		{-1, io.SeekCurrent, 4},
		{-3, io.SeekEnd, 7},
		{5, io.SeekEnd, 15},
		{0, io.SeekStart, 0},
	} {
		if got, err := f.Seek(tc.off, tc.whence); err != nil || got != tc.want {
			t.Errorf("Seek(%d, %d) = %d, %v; want %d", tc.off, tc.whence, got, err, tc.want)
		}
	}
	if _, err := f.Seek(-1, io.SeekStart); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Seek to -1: %v; want ErrInvalid", err)
	}
	if _, err := f.Seek(-11, io.SeekEnd); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Seek before the start: %v; want ErrInvalid", err)
	}
	if _, err := f.Seek(0, 42); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Seek with a bad whence: %v; want ErrInvalid", err)
	}
	// A failed seek leaves the position alone.
	if pos, err := f.Seek(0, io.SeekCurrent); err != nil || pos != 0 {
		t.Errorf("position after failed seeks = %d, %v; want 0", pos, err)
	}

	// Overwrite in the middle, then write past the end (a hole of zeros).
	if _, err := f.Seek(3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(12, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("Z")); err != nil {
		t.Fatal(err)
	}
	want := "012abc6789\x00\x00Z"
	if got := e.readFile(t, "f"); got != want {
		t.Errorf("file = %q, want %q", got, want)
	}

	// Read follows the position and advances it.
	if _, err := f.Seek(4, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if n, err := f.Read(buf); n != 3 || err != nil || string(buf) != "bc6" {
		t.Errorf("Read at 4 = %d, %v, %q", n, err, buf)
	}
	if n, err := f.Read(buf); n != 3 || err != nil || string(buf) != "789" {
		t.Errorf("next Read = %d, %v, %q", n, err, buf)
	}
}

func TestTruncate(t *testing.T) {
	e := newEnv(t)
	e.writeFile(t, "f", "hello world")
	f, err := e.fs.OpenFile("f", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if got := e.readFile(t, "f"); got != "hello" {
		t.Errorf("after Truncate(5): %q", got)
	}
	// Growing adds zeros.
	if err := f.Truncate(8); err != nil {
		t.Fatal(err)
	}
	if fi, err := e.fs.Stat("f"); err != nil || fi.Size() != 8 {
		t.Fatalf("after Truncate(8): %v, %v", fi, err)
	}
	if got := e.readFile(t, "f"); got != "hello\x00\x00\x00" {
		t.Errorf("after Truncate(8): %q", got)
	}
	if err := f.Truncate(-1); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Truncate(-1): %v; want ErrInvalid", err)
	}
	// The size is the inode's, whatever the handle: a write after a
	// truncate sees the new size.
	if err := f.Truncate(2); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(4, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("X")); err != nil {
		t.Fatal(err)
	}
	if got := e.readFile(t, "f"); got != "he\x00\x00X" {
		t.Errorf("after Truncate(2) and a write at 4: %q", got)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if got := e.readFile(t, "f"); got != "" {
		t.Errorf("after Truncate(0): %q", got)
	}
}

func TestLargeFile(t *testing.T) {
	e := newEnv(t)
	data := bytes.Repeat([]byte("fsrep!"), 3*meta.MinChunkSize/6+1000)
	f, err := e.fs.Create("big")
	if err != nil {
		t.Fatal(err)
	}
	// Write in uneven pieces.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 40000)
		if _, err := f.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	f.Close()
	if got := e.readFile(t, "big"); got != string(data) {
		t.Fatalf("read back %d bytes, want %d equal ones", len(got), len(data))
	}
}

// TestConcurrentFiles works on many files at once; run with -race.
func TestConcurrentFiles(t *testing.T) {
	e := newEnv(t)
	if err := e.fs.MkdirAll("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			name := e.fs.Join("dir", "f"+strings.Repeat("x", w))
			f, err := e.fs.Create(name)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			for i := range 20 {
				if _, err := f.Write([]byte{byte('a' + w), byte('0' + i%10)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	fis, err := e.fs.ReadDir("dir")
	if err != nil || len(fis) != workers {
		t.Fatalf("ReadDir = %d entries, %v; want %d", len(fis), err, workers)
	}
	for _, fi := range fis {
		if fi.Size() != 40 {
			t.Errorf("%s: size %d, want 40", fi.Name(), fi.Size())
		}
	}
}

func TestCapabilitiesAndUnsupported(t *testing.T) {
	e := newEnv(t)
	caps := e.fs.Capabilities()
	for _, c := range []billy.Capability{billy.WriteCapability, billy.ReadCapability, billy.SeekCapability, billy.TruncateCapability} {
		if caps&c == 0 {
			t.Errorf("capability %v missing", c)
		}
	}
	if _, err := e.fs.TempFile("", "x"); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("TempFile: %v", err)
	}
	if _, err := e.fs.Chroot("x"); !errors.Is(err, iofs.ErrInvalid) {
		t.Errorf("Chroot: %v", err)
	}
	if e.fs.Root() != "/" || e.fs.VolumeID() != e.vol.ID {
		t.Errorf("Root = %q, VolumeID = %d", e.fs.Root(), e.fs.VolumeID())
	}
}

// TestEmptyWrite: a write of nothing changes nothing, wherever the position
// is. go-nfs seeks to the WRITE offset and calls Write with the data, which
// may be empty (count 0); the data path commits the size it is given, so an
// empty write past the end would grow the file.
func TestEmptyWrite(t *testing.T) {
	e := newEnv(t)
	before := e.writeFile(t, "f", "abc")
	f, err := e.fs.OpenFile("f", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(1<<20, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := f.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v", n, err)
	}
	if n, err := f.Write([]byte{}); n != 0 || err != nil {
		t.Fatalf("Write(empty) = %d, %v", n, err)
	}
	after := e.ino(t, "f")
	if after.Size != 3 || after.Mtime != before.Mtime {
		t.Errorf("after empty writes at 1 MiB: size %d (want 3), mtime %d (want %d)", after.Size, after.Mtime, before.Mtime)
	}
	if got := e.readFile(t, "f"); got != "abc" {
		t.Errorf("file reads %d bytes, want \"abc\"", len(got))
	}
	// A read-only handle still refuses even an empty write.
	r, err := e.fs.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Write(nil); !errors.Is(err, iofs.ErrPermission) {
		t.Errorf("empty Write to a read-only file: %v; want ErrPermission", err)
	}
}
