package vfs

import (
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"time"

	"github.com/go-git/go-billy/v5"
	nfsfile "github.com/willscott/go-nfs/file"

	"github.com/fsrep/fsrep/meta"
)

// file is an open regular file: an inode and a position. Every Write is
// replicated and committed before it returns (go-nfs answers every WRITE
// FILE_SYNC), so Close has nothing to flush.
type file struct {
	fs   *FS
	ino  uint64
	name string
	flag int
	pos  int64
}

var _ billy.File = (*file)(nil)

func (f *file) Name() string { return f.name }

func (f *file) Write(p []byte) (_ int, err error) {
	defer f.fs.guard(&err)
	if f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return 0, fmt.Errorf("vfs: file opened read-only: %w", iofs.ErrPermission)
	}
	if len(p) == 0 {
		// Nothing to write changes nothing: the data path would commit
		// the position as the new size (go-nfs seeks, then writes a
		// WRITE's data, which may be empty).
		return 0, nil
	}
	vol, err := f.fs.volume()
	if err != nil {
		return 0, err
	}
	off := f.pos
	if f.flag&os.O_APPEND != 0 || vol.QuotaBytes > 0 {
		n, err := f.fs.inode(f.ino)
		if err != nil {
			return 0, err
		}
		if f.flag&os.O_APPEND != 0 {
			off = int64(n.Size)
		}
		// The commit would refuse a write that grows the volume past its
		// quota (meta.ErrQuota); refusing it here, from the local copy of
		// the metadata, saves sending the data to the replicas for nothing
		// and leaving it there uncommitted. The commit stays the judge: this
		// copy may lag, and concurrent writers race for the last bytes.
		if growth := off + int64(len(p)) - int64(n.Size); vol.QuotaExceeded(growth) {
			return 0, f.fs.record(fmt.Errorf("vfs: write of %d bytes at %d grows volume %s past its quota of %d bytes (%d used): %w",
				len(p), off, vol.Name, vol.QuotaBytes, vol.Bytes, meta.ErrQuota))
		}
	}
	ctx, cancel := f.fs.ctx()
	defer cancel()
	if _, err := f.fs.data.WriteAt(ctx, vol, f.ino, off, p); err != nil {
		return 0, f.fs.record(err)
	}
	f.pos = off + int64(len(p))
	return len(p), nil
}

func (f *file) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.pos)
	f.pos += int64(n)
	return n, err
}

func (f *file) ReadAt(p []byte, off int64) (_ int, err error) {
	defer f.fs.guard(&err)
	vol, err := f.fs.volume()
	if err != nil {
		return 0, err
	}
	n, err := f.fs.inode(f.ino)
	if err != nil {
		return 0, err
	}
	if n.Type != meta.TypeFile {
		return 0, f.fs.record(meta.ErrIsDir)
	}
	ctx, cancel := f.fs.ctx()
	defer cancel()
	got, err := f.fs.data.ReadAt(ctx, vol, f.ino, n.Size, off, p)
	if err != nil {
		return got, f.fs.record(err)
	}
	if got < len(p) {
		return got, io.EOF
	}
	return got, nil
}

func (f *file) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		n, err := f.fs.inode(f.ino)
		if err != nil {
			return 0, err
		}
		offset += int64(n.Size)
	default:
		return 0, fmt.Errorf("vfs: bad whence %d: %w", whence, iofs.ErrInvalid)
	}
	if offset < 0 {
		return 0, fmt.Errorf("vfs: negative offset: %w", iofs.ErrInvalid)
	}
	f.pos = offset
	return offset, nil
}

func (f *file) Close() error  { return nil }
func (f *file) Lock() error   { return nil }
func (f *file) Unlock() error { return nil }

func (f *file) Truncate(size int64) (err error) {
	defer f.fs.guard(&err)
	if size < 0 {
		return fmt.Errorf("vfs: negative size: %w", iofs.ErrInvalid)
	}
	_, err = f.fs.truncate(f.ino, uint64(size))
	return f.fs.record(err)
}

// fileInfo is an inode as os.FileInfo; Sys carries what go-nfs puts in fattr3.
type fileInfo struct {
	name string
	n    meta.Inode
}

func newFileInfo(name string, n *meta.Inode) *fileInfo { return &fileInfo{name: name, n: *n} }

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return int64(i.n.Size) }
func (i *fileInfo) Mode() os.FileMode  { return fromMode(&i.n) }
func (i *fileInfo) ModTime() time.Time { return time.Unix(0, i.n.Mtime) }
func (i *fileInfo) IsDir() bool        { return i.n.Type == meta.TypeDir }
func (i *fileInfo) Sys() any {
	return nfsfile.FileInfo{Nlink: i.n.Nlink, UID: i.n.UID, GID: i.n.GID, Fileid: i.n.Ino}
}

// Inode returns the inode behind a FileInfo produced by this package.
func Inode(fi os.FileInfo) (*meta.Inode, bool) {
	if i, ok := fi.(*fileInfo); ok {
		n := i.n
		return &n, true
	}
	return nil, false
}
