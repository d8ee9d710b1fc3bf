// Package vfs is the go-billy filesystem that turns fsrep's replicated
// metadata and chunks into files, as the NFS gateway (go-nfs) sees them.
//
// go-nfs is path-based; fsrep is inode-based. The two meet in path tokens:
// a path may start with up to two tokens "\x00<ino in hex>" that name an
// inode directly (see Token), followed by ordinary names. The gateway turns
// a file handle into tokens, so a handle keeps working across renames and on
// every node. Tokens are honoured only where a handle put them (first
// position, or second when it names a directory whose parent is the first),
// and names may not contain NUL, so a client cannot forge one with LOOKUP.
//
// The server never follows symlinks: Stat is Lstat, as an NFS server must
// (the client resolves them).
package vfs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5"

	"github.com/fsrep/fsrep/meta"
)

// Metadata is what the filesystem needs from the metadata node.
type Metadata interface {
	Propose(ctx context.Context, cmd meta.Command) (*meta.Result, error)
	CatchUp(ctx context.Context) error
	FSM() *meta.FSM
}

// Data is the replicated data path.
type Data interface {
	WriteAt(ctx context.Context, vol *meta.Volume, ino uint64, off int64, data []byte) (*meta.Inode, error)
	ReadAt(ctx context.Context, vol *meta.Volume, ino uint64, size uint64, off int64, buf []byte) (int, error)
	// Truncate sets the size of a file, ordered with the file's writes.
	Truncate(ctx context.Context, vol *meta.Volume, ino uint64, size uint64) (*meta.Inode, error)
}

// Clock gives proposers their timestamps.
type Clock interface{ Now() time.Time }

// FS is one volume as a billy filesystem. It is safe for concurrent use.
type FS struct {
	onError  func(error) // sees every error an operation returns
	rid      string      // request ID of the NFS call in flight ("" = none)
	seq      int         // proposals made for it so far
	volID    uint32
	meta     Metadata
	data     Data
	clock    Clock
	owner    Owner
	readOnly bool
	remove   RemoveKind // what Remove may remove for the call in flight
	modeHint int64      // the exact mode the call in flight asks for, or -1
	timeout  time.Duration
}

var (
	_ billy.Filesystem = (*FS)(nil)
	_ billy.Change     = (*FS)(nil)
	_ billy.Capable    = (*FS)(nil)
)

// New returns the filesystem of volume volID. opTimeout bounds each
// operation (billy passes no context).
func New(volID uint32, m Metadata, d Data, clock Clock, owner Owner, opTimeout time.Duration) *FS {
	return &FS{volID: volID, meta: m, data: d, clock: clock, owner: owner, timeout: opTimeout, modeHint: -1}
}

// SetErrorHook installs fn to see the cause of every failed operation
// before it reaches go-nfs (which flattens most causes to EIO); the gateway
// uses it to answer the client with the right NFS status.
func (f *FS) SetErrorHook(fn func(error)) { f.onError = fn }

// fail records and returns an operation's error.
func (f *FS) fail(op, p string, err error) error {
	if f.onError != nil {
		f.onError(err)
	}
	return pathErr(op, p, err)
}

// record passes an error the data path returned through the hook.
func (f *FS) record(err error) error {
	if err != nil && f.onError != nil {
		f.onError(err)
	}
	return err
}

// SetRequest names the NFS call the next operations serve: its first
// proposal carries rid as its request ID, later ones rid/2, rid/3..., so a
// retransmission of the call (through any node) finds the recorded result
// instead of applying twice. Like SetOwner, it needs an FS that serves one
// request at a time.
func (f *FS) SetRequest(rid string) { f.rid, f.seq = rid, 0 }

// RemoveKind says what Remove may remove: NFS has REMOVE (not a
// directory) and RMDIR (only a directory), go-nfs calls Remove for both.
type RemoveKind uint8

const (
	RemoveAny  RemoveKind = iota // billy semantics: a file or an empty directory
	RemoveFile                   // NFS REMOVE: a directory is EISDIR
	RemoveDir                    // NFS RMDIR: anything else is ENOTDIR
)

// SetModeHint gives the exact mode (07777 bits) the call in flight asks
// for, or -1. go-nfs passes modes through os.FileMode masked to 0777, which
// loses setuid, setgid and sticky; the gateway reads them from the call.
func (f *FS) SetModeHint(m int64) { f.modeHint = m }

// mode returns perm as stored, or the call's exact mode when it has one.
func (f *FS) mode(perm os.FileMode) uint32 {
	if f.modeHint >= 0 {
		return uint32(f.modeHint) & 0o7777
	}
	return ToMode(perm)
}

// SetRemoveKind sets what Remove may remove for the call in flight.
func (f *FS) SetRemoveKind(k RemoveKind) { f.remove = k }

// SetOwner sets the caller: the owner of the files this FS creates from
// now on, against whom permissions are checked. An FS whose owner changes
// must serve one request at a time (the gateway gives each of its lanes its
// own FS).
func (f *FS) SetOwner(o Owner) { f.owner = o }

// SetReadOnly makes every change fail with EROFS (a read-only export).
func (f *FS) SetReadOnly(ro bool) { f.readOnly = ro }

// VolumeID is the volume this filesystem serves.
func (f *FS) VolumeID() uint32 { return f.volID }

func (f *FS) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), f.timeout)
}

func (f *FS) volume() (*meta.Volume, error) { return f.meta.FSM().VolumeByID(f.volID) }

// Token returns the path element that names inode ino directly.
func Token(ino uint64) string { return "\x00" + strconv.FormatUint(ino, 16) }

func parseToken(s string) (uint64, bool) {
	if len(s) < 2 || s[0] != 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(s[1:], 16, 64)
	return v, err == nil && v != 0
}

// Capabilities implements billy.Capable.
func (f *FS) Capabilities() billy.Capability {
	if f.readOnly {
		return billy.ReadCapability | billy.SeekCapability
	}
	return billy.WriteCapability | billy.ReadCapability | billy.ReadAndWriteCapability |
		billy.SeekCapability | billy.TruncateCapability
}

// Join joins elements without cleaning, so tokens and ".." reach resolve.
func (f *FS) Join(elem ...string) string {
	parts := elem[:0:0]
	for _, e := range elem {
		if e != "" {
			parts = append(parts, e)
		}
	}
	return strings.Join(parts, "/")
}

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" && s != "." {
			out = append(out, s)
		}
	}
	return out
}

func (f *FS) inode(ino uint64) (*meta.Inode, error) { return f.meta.FSM().Inode(f.volID, ino) }

// resolve walks parts from the root (or from the inodes its leading tokens
// name) without following symlinks.
func (f *FS) resolve(parts []string) (*meta.Inode, error) {
	cur, err := f.inode(meta.RootIno)
	if err != nil {
		return nil, err
	}
	i := 0
	if len(parts) > 0 {
		if ino, ok := parseToken(parts[0]); ok {
			if cur, err = f.inode(ino); err != nil {
				return nil, err
			}
			i = 1
			if len(parts) > 1 && cur.Type == meta.TypeDir {
				if ino2, ok := parseToken(parts[1]); ok {
					d, err := f.inode(ino2)
					if err != nil {
						return nil, err
					}
					if d.Type != meta.TypeDir || d.Parent != cur.Ino {
						return nil, meta.ErrNotExist
					}
					cur, i = d, 2
				}
			}
		}
	}
	for _, name := range parts[i:] {
		if cur.Type != meta.TypeDir {
			return nil, meta.ErrNotDir
		}
		if name == ".." {
			if cur, err = f.inode(cur.Parent); err != nil {
				return nil, err
			}
			continue
		}
		if strings.ContainsRune(name, 0) {
			return nil, meta.ErrNotExist
		}
		if err := f.need(cur, MayExec); err != nil {
			return nil, err
		}
		if cur, err = f.meta.FSM().Lookup(f.volID, cur.Ino, name); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

// resolveParent returns the directory holding the last element and its name.
func (f *FS) resolveParent(p string) (*meta.Inode, string, error) {
	parts := splitPath(p)
	if len(parts) == 0 {
		return nil, "", fmt.Errorf("%w: the root has no parent", meta.ErrInvalid)
	}
	name := parts[len(parts)-1]
	if _, tok := parseToken(name); tok || name == ".." {
		return nil, "", fmt.Errorf("%w: %q is not a name", meta.ErrInvalid, name)
	}
	dir, err := f.resolve(parts[:len(parts)-1])
	if err != nil {
		return nil, "", err
	}
	if dir.Type != meta.TypeDir {
		return nil, "", meta.ErrNotDir
	}
	if err := meta.ValidName(name); err != nil {
		return nil, "", err
	}
	return dir, name, nil
}

// Resolve returns the inode a path names (used by the gateway's ToHandle).
func (f *FS) Resolve(p string) (*meta.Inode, error) { return f.resolve(splitPath(p)) }

// HandlePath returns the path tokens for an inode: a directory becomes
// [parent, self] so that go-nfs can take ".." by dropping the last element;
// anything else becomes [self].
func HandlePath(n *meta.Inode) []string {
	if n.Type == meta.TypeDir {
		return []string{Token(n.Parent), Token(n.Ino)}
	}
	return []string{Token(n.Ino)}
}

func (f *FS) propose(cmd meta.Command) (*meta.Result, error) {
	if f.rid != "" {
		f.seq++
		if f.seq == 1 {
			meta.HeaderOf(cmd).RequestID = f.rid
		} else {
			meta.HeaderOf(cmd).RequestID = fmt.Sprintf("%s/%d", f.rid, f.seq)
		}
	}
	ctx, cancel := f.ctx()
	defer cancel()
	return f.meta.Propose(ctx, cmd)
}

// truncate sets a file's size through the data path, so that it is
// ordered with the writes to the file this node is making.
func (f *FS) truncate(ino, size uint64) (*meta.Inode, error) {
	vol, err := f.volume()
	if err != nil {
		return nil, err
	}
	ctx, cancel := f.ctx()
	defer cancel()
	return f.data.Truncate(ctx, vol, ino, size)
}

func (f *FS) now() int64 { return f.clock.Now().UnixNano() }

// Stat returns the attributes of p without following a final symlink.
func (f *FS) Stat(p string) (os.FileInfo, error) { return f.Lstat(p) }

// Lstat returns the attributes of p.
func (f *FS) Lstat(p string) (_ os.FileInfo, err error) {
	defer f.guard(&err)
	n, err := f.resolve(splitPath(p))
	if err != nil {
		// Only a refusal is recorded as a failure cause: go-nfs probes
		// existence with Lstat before a create, and answers a missing name
		// itself.
		if IsPermission(err) {
			return nil, f.fail("lstat", p, err)
		}
		return nil, pathErr("lstat", p, err)
	}
	return newFileInfo(baseName(p), n), nil
}

func baseName(p string) string {
	parts := splitPath(p)
	if len(parts) == 0 {
		return "/"
	}
	return parts[len(parts)-1]
}

func pathErr(op, p string, err error) error {
	return &iofs.PathError{Op: op, Path: strings.ReplaceAll(p, "\x00", "#"), Err: err}
}

// Create creates a regular file, or opens an existing one WITHOUT
// truncating it. go-nfs calls Create for every NFS CREATE, including
// UNCHECKED creates of an existing file (open(O_CREAT) without O_TRUNC, as
// for `>>`); a client that wants the file emptied sends size 0 in the
// create's attributes, which go-nfs applies after Create.
func (f *FS) Create(p string) (billy.File, error) {
	return f.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o666)
}

// Open opens a file for reading.
func (f *FS) Open(p string) (billy.File, error) { return f.OpenFile(p, os.O_RDONLY, 0) }

// OpenFile opens (and with O_CREATE creates) a regular file.
func (f *FS) OpenFile(p string, flag int, perm os.FileMode) (_ billy.File, err error) {
	defer f.guard(&err)
	n, err := f.resolve(splitPath(p))
	switch {
	case err == nil:
		if flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL {
			return nil, f.fail("open", p, meta.ErrExist)
		}
	case errors.Is(err, meta.ErrNotExist) && flag&os.O_CREATE != 0:
		dir, name, perr := f.resolveParent(p)
		if perr == nil {
			perr = f.mayChangeEntry(dir)
		}
		if perr != nil {
			return nil, f.fail("open", p, perr)
		}
		res, cerr := f.propose(&meta.Create{Vol: f.volID, Parent: dir.Ino, Name: name, Kind: meta.TypeFile,
			Mode: f.mode(perm), UID: f.owner.UID, GID: f.newGID(dir)})
		switch {
		case cerr == nil:
			n = res.Inode
		case errors.Is(cerr, meta.ErrExist) && flag&os.O_EXCL == 0:
			if n, err = f.resolve(splitPath(p)); err != nil {
				return nil, f.fail("open", p, err)
			}
		default:
			return nil, f.fail("open", p, cerr)
		}
	default:
		return nil, f.fail("open", p, err)
	}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if n.Type == meta.TypeDir && writable {
		return nil, f.fail("open", p, meta.ErrIsDir)
	}
	if writable {
		if err := f.writable(); err != nil {
			return nil, f.fail("open", p, err)
		}
	}
	if n.Type == meta.TypeFile {
		want := uint32(MayRead)
		if flag&os.O_WRONLY != 0 {
			want = MayWrite
		} else if flag&os.O_RDWR != 0 {
			want = MayWrite // go-nfs opens O_RDWR for every WRITE
		}
		if !f.owner.MayData(n, want) {
			return nil, f.fail("open", p, ErrAccess)
		}
	}
	if n.Type == meta.TypeFile && flag&os.O_TRUNC != 0 && writable && n.Size > 0 {
		if n, err = f.truncate(n.Ino, 0); err != nil {
			return nil, f.fail("truncate", p, err)
		}
	}
	return &file{fs: f, ino: n.Ino, name: f.Join(HandlePath(n)...), flag: flag}, nil
}

// Rename moves oldpath to newpath (POSIX semantics, in one Raft command).
func (f *FS) Rename(oldpath, newpath string) (err error) {
	defer f.guard(&err)
	sd, sname, err := f.resolveParent(oldpath)
	if err != nil {
		return f.fail("rename", oldpath, err)
	}
	dd, dname, err := f.resolveParent(newpath)
	if err != nil {
		return f.fail("rename", newpath, err)
	}
	victim, err := f.meta.FSM().Lookup(f.volID, sd.Ino, sname)
	if err != nil {
		return f.fail("rename", oldpath, err)
	}
	if err := f.mayRemove(sd, victim); err != nil {
		return f.fail("rename", oldpath, err)
	}
	if existing, err := f.meta.FSM().Lookup(f.volID, dd.Ino, dname); err == nil {
		if err := f.mayRemove(dd, existing); err != nil {
			return f.fail("rename", newpath, err)
		}
	} else if err := f.mayChangeEntry(dd); err != nil {
		return f.fail("rename", newpath, err)
	}
	_, err = f.propose(&meta.Rename{Vol: f.volID, SrcParent: sd.Ino, SrcName: sname, DstParent: dd.Ino, DstName: dname})
	if err != nil {
		return f.fail("rename", oldpath, err)
	}
	return nil
}

// Remove unlinks a file or removes an empty directory.
func (f *FS) Remove(p string) (err error) {
	defer f.guard(&err)
	dir, name, err := f.resolveParent(p)
	if err != nil {
		return f.fail("remove", p, err)
	}
	child, err := f.meta.FSM().Lookup(f.volID, dir.Ino, name)
	if err != nil {
		return f.fail("remove", p, err)
	}
	switch {
	case f.remove == RemoveFile && child.Type == meta.TypeDir:
		return f.fail("remove", p, meta.ErrIsDir)
	case f.remove == RemoveDir && child.Type != meta.TypeDir:
		return f.fail("rmdir", p, meta.ErrNotDir)
	}
	if err := f.mayRemove(dir, child); err != nil {
		return f.fail("remove", p, err)
	}
	_, err = f.propose(&meta.Remove{Vol: f.volID, Parent: dir.Ino, Name: name, Dir: child.Type == meta.TypeDir})
	if err != nil {
		return f.fail("remove", p, err)
	}
	return nil
}

// TempFile is not offered: NFS never asks for it.
func (f *FS) TempFile(dir, prefix string) (billy.File, error) {
	return nil, fmt.Errorf("vfs: temporary files are not supported: %w", iofs.ErrInvalid)
}

// ReadDir lists a directory in name order.
func (f *FS) ReadDir(p string) (_ []os.FileInfo, err error) {
	defer f.guard(&err)
	d, err := f.resolve(splitPath(p))
	if err != nil {
		return nil, f.fail("readdir", p, err)
	}
	if d.Type != meta.TypeDir {
		return nil, f.fail("readdir", p, meta.ErrNotDir)
	}
	if err := f.need(d, MayRead); err != nil {
		return nil, f.fail("readdir", p, err)
	}
	ents, inodes, err := f.meta.FSM().ReadDir(f.volID, d.Ino, 0, 0)
	if err != nil {
		return nil, f.fail("readdir", p, err)
	}
	out := make([]os.FileInfo, len(ents))
	for i := range ents {
		out[i] = newFileInfo(ents[i].Name, &inodes[i])
	}
	// Like os.ReadDir, sorted by name (the store keeps cookie order).
	slices.SortFunc(out, func(a, b os.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

// MkdirAll creates p and any missing parents.
func (f *FS) MkdirAll(p string, perm os.FileMode) (err error) {
	defer f.guard(&err)
	parts := splitPath(p)
	for i := 1; i <= len(parts); i++ {
		n, err := f.resolve(parts[:i])
		if err == nil {
			if n.Type != meta.TypeDir {
				return f.fail("mkdir", p, meta.ErrNotDir)
			}
			continue
		}
		if !errors.Is(err, meta.ErrNotExist) {
			return f.fail("mkdir", p, err)
		}
		dir, name, err := f.resolveParent(strings.Join(parts[:i], "/"))
		if err == nil {
			err = f.mayChangeEntry(dir)
		}
		if err != nil {
			return f.fail("mkdir", p, err)
		}
		mode := f.mode(perm)
		if dir.Mode&0o2000 != 0 {
			mode |= 0o2000 // a directory in a setgid directory inherits the bit
		}
		_, err = f.propose(&meta.Create{Vol: f.volID, Parent: dir.Ino, Name: name, Kind: meta.TypeDir,
			Mode: mode, UID: f.owner.UID, GID: f.newGID(dir)})
		if errors.Is(err, meta.ErrExist) {
			// Another client made the name since we looked: fine if it
			// is a directory, but a file there is no directory made.
			var n *meta.Inode
			if n, err = f.meta.FSM().Lookup(f.volID, dir.Ino, name); err == nil && n.Type != meta.TypeDir {
				err = meta.ErrNotDir
			}
		}
		if err != nil {
			return f.fail("mkdir", p, err)
		}
	}
	return nil
}

// Symlink creates link pointing at target.
func (f *FS) Symlink(target, link string) (err error) {
	defer f.guard(&err)
	dir, name, err := f.resolveParent(link)
	if err == nil {
		err = f.mayChangeEntry(dir)
	}
	if err != nil {
		return f.fail("symlink", link, err)
	}
	_, err = f.propose(&meta.Create{Vol: f.volID, Parent: dir.Ino, Name: name, Kind: meta.TypeSymlink,
		Mode: 0o777, UID: f.owner.UID, GID: f.newGID(dir), Target: target})
	if err != nil {
		return f.fail("symlink", link, err)
	}
	return nil
}

// Readlink returns a symlink's target.
func (f *FS) Readlink(p string) (_ string, err error) {
	defer f.guard(&err)
	n, err := f.resolve(splitPath(p))
	if err != nil {
		return "", f.fail("readlink", p, err)
	}
	if n.Type != meta.TypeSymlink {
		return "", f.fail("readlink", p, meta.ErrInvalid)
	}
	return n.Target, nil
}

// Link makes a hard link newpath to the file at oldpath.
func (f *FS) Link(oldpath, newpath string) (err error) {
	defer f.guard(&err)
	n, err := f.resolve(splitPath(oldpath))
	if err != nil {
		return f.fail("link", oldpath, err)
	}
	dir, name, err := f.resolveParent(newpath)
	if err == nil {
		err = f.mayChangeEntry(dir)
	}
	if err != nil {
		return f.fail("link", newpath, err)
	}
	if _, err := f.propose(&meta.Link{Vol: f.volID, Ino: n.Ino, Parent: dir.Ino, Name: name}); err != nil {
		return f.fail("link", newpath, err)
	}
	return nil
}

// Chroot is not offered: each volume is its own filesystem.
func (f *FS) Chroot(string) (billy.Filesystem, error) {
	return nil, fmt.Errorf("vfs: chroot is not supported: %w", iofs.ErrInvalid)
}

// Root is the volume root.
func (f *FS) Root() string { return "/" }

func (f *FS) setAttr(op, p string, c *meta.SetAttr) error {
	n, err := f.resolve(splitPath(p))
	if err != nil {
		return pathErr(op, p, err)
	}
	if err := f.mayChangeAttr(n, c); err != nil {
		return f.fail(op, p, err)
	}
	c.Vol, c.Ino = f.volID, n.Ino
	if _, err := f.propose(c); err != nil {
		return pathErr(op, p, err)
	}
	return nil
}

// Chmod sets permission and setuid/setgid/sticky bits.
func (f *FS) Chmod(p string, mode os.FileMode) (err error) {
	defer f.guard(&err)
	m := f.mode(mode)
	return f.setAttr("chmod", p, &meta.SetAttr{Mode: &m})
}

// Lchown sets the owner without following symlinks; a negative id is left alone.
func (f *FS) Lchown(p string, uid, gid int) (err error) {
	defer f.guard(&err)
	c := &meta.SetAttr{}
	if uid >= 0 {
		u := uint32(uid)
		c.UID = &u
	}
	if gid >= 0 {
		g := uint32(gid)
		c.GID = &g
	}
	return f.setAttr("chown", p, c)
}

// Chown is Lchown: the server never follows symlinks.
func (f *FS) Chown(p string, uid, gid int) error { return f.Lchown(p, uid, gid) }

// Chtimes sets access and modification times.
func (f *FS) Chtimes(p string, atime, mtime time.Time) (err error) {
	defer f.guard(&err)
	a, m := atime.UnixNano(), mtime.UnixNano()
	return f.setAttr("chtimes", p, &meta.SetAttr{Atime: &a, Mtime: &m})
}

// ToMode converts Go's mode bits to the POSIX 07777 stored in inodes.
func ToMode(m os.FileMode) uint32 {
	out := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

// fromMode converts stored bits and type to Go's mode bits.
func fromMode(n *meta.Inode) os.FileMode {
	m := os.FileMode(n.Mode & 0o777)
	if n.Mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if n.Mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if n.Mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	switch n.Type {
	case meta.TypeDir:
		m |= os.ModeDir
	case meta.TypeSymlink:
		m |= os.ModeSymlink
	}
	return m
}

// ErrPanic is the cause of an operation that panicked. The gateway answers
// the call with an I/O error and keeps serving: one bad request must not
// take down the node and its Raft voter.
var ErrPanic = errors.New("vfs: operation panicked")

// guard turns a panic in the operation it is deferred in into an error
// wrapping ErrPanic, with the stack for the log, and shows it to the error
// hook.
func (f *FS) guard(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("%w: %v\n%s", ErrPanic, p, debug.Stack())
		if f.onError != nil {
			f.onError(*err)
		}
	}
}
