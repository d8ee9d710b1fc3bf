package vfs

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"slices"
	"syscall"

	"github.com/fsrep/fsrep/meta"
)

// Access bits, as in a mode's rwx.
const (
	MayRead  = 4
	MayWrite = 2
	MayExec  = 1
)

// ErrNotOwner is EPERM: the operation needs the file's owner or root
// (chmod, chown, utimes, deleting another's file in a sticky directory).
var ErrNotOwner = fmt.Errorf("vfs: operation not permitted: %w", syscall.EPERM)

// ErrReadOnly is EROFS: the export is read-only.
var ErrReadOnly = fmt.Errorf("vfs: read-only export: %w", syscall.EROFS)

// ErrAccess is EACCES: the mode bits do not grant the access.
var ErrAccess = fmt.Errorf("vfs: permission denied: %w", iofs.ErrPermission)

// Owner is the caller of the request in flight, after the export's
// squashing: new files get its uid and gid, and mode bits are checked
// against it as a POSIX server does (uid 0 passes every check but exec
// without any x bit).
type Owner struct {
	UID, GID uint32
	Groups   []uint32
}

func (o Owner) inGroup(gid uint32) bool { return o.GID == gid || slices.Contains(o.Groups, gid) }

// May reports whether the caller has the access bits want (MayRead, ...)
// on n, from n's mode alone.
func (o Owner) May(n *meta.Inode, want uint32) bool {
	if o.UID == 0 {
		return want&MayExec == 0 || n.Type == meta.TypeDir || n.Mode&0o111 != 0
	}
	var bits uint32
	switch {
	case o.UID == n.UID:
		bits = n.Mode >> 6
	case o.inGroup(n.GID):
		bits = n.Mode >> 3
	default:
		bits = n.Mode
	}
	return bits&want&7 == want
}

// MayData is May for reading and writing file data, with knfsd's owner
// override: the owner may read and write its file whatever the mode (a
// local process checks at open time; NFS checks on every READ and WRITE,
// and `cp` or `tar` create read-only files they then write).
func (o Owner) MayData(n *meta.Inode, want uint32) bool {
	return o.UID == n.UID || o.May(n, want)
}

func (f *FS) need(n *meta.Inode, want uint32) error {
	if !f.owner.May(n, want) {
		return ErrAccess
	}
	return nil
}

// writable refuses changes on a read-only export.
func (f *FS) writable() error {
	if f.readOnly {
		return ErrReadOnly
	}
	return nil
}

// mayChangeEntry checks that the caller may add or remove names in dir.
func (f *FS) mayChangeEntry(dir *meta.Inode) error {
	if err := f.writable(); err != nil {
		return err
	}
	return f.need(dir, MayWrite|MayExec)
}

// mayRemove checks the sticky-bit rule for removing or renaming victim
// out of dir: in a sticky directory only root, the directory's owner and
// the victim's owner may.
func (f *FS) mayRemove(dir, victim *meta.Inode) error {
	if err := f.mayChangeEntry(dir); err != nil {
		return err
	}
	if dir.Mode&0o1000 != 0 && f.owner.UID != 0 && f.owner.UID != dir.UID && f.owner.UID != victim.UID {
		return ErrNotOwner
	}
	return nil
}

// newGID is the group of a new file in dir: the caller's, or the
// directory's when it has the setgid bit (BSD semantics, as Linux).
func (f *FS) newGID(dir *meta.Inode) uint32 {
	if dir.Mode&0o2000 != 0 {
		return dir.GID
	}
	return f.owner.GID
}

// mayChangeAttr checks a SETATTR against POSIX rules.
func (f *FS) mayChangeAttr(n *meta.Inode, c *meta.SetAttr) error {
	if err := f.writable(); err != nil {
		return err
	}
	root, owner := f.owner.UID == 0, f.owner.UID == n.UID
	if c.Mode != nil && !root && !owner {
		return ErrNotOwner
	}
	if c.UID != nil && *c.UID != n.UID && !root {
		return ErrNotOwner
	}
	if c.GID != nil && *c.GID != n.GID && !root && !(owner && f.owner.inGroup(*c.GID)) {
		return ErrNotOwner
	}
	if (c.Atime != nil || c.Mtime != nil) && !root && !owner && !f.owner.May(n, MayWrite) {
		return ErrNotOwner
	}
	if c.Size != nil && !f.owner.MayData(n, MayWrite) {
		return ErrAccess
	}
	// A non-root owner changing the mode of a file whose group it is not
	// in loses the setgid bit, as on Linux.
	if c.Mode != nil && !root && n.Type != meta.TypeDir && !f.owner.inGroup(n.GID) {
		m := *c.Mode &^ 0o2000
		c.Mode = &m
	}
	return nil
}

// IsPermission reports whether err is a permission refusal of this package.
func IsPermission(err error) bool {
	return errors.Is(err, ErrAccess) || errors.Is(err, ErrNotOwner) || errors.Is(err, ErrReadOnly)
}
