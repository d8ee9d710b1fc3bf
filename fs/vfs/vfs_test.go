package vfs

import (
	"errors"
	iofs "io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsrep/fsrep/meta"
)

func TestMkdirAll(t *testing.T) {
	e := newEnv(t)
	if err := e.fs.MkdirAll("a/b/c", 0o750); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "a/b", "/a/b/c", "a/./b//c/"} {
		fi, err := e.fs.Stat(p)
		if err != nil || !fi.IsDir() || fi.Mode() != os.ModeDir|0o750 {
			t.Errorf("Stat(%q) = %v, %v; want a 0750 directory", p, fi, err)
		}
	}
	c := e.ino(t, "a/b/c")
	if b := e.ino(t, "a/b"); c.Parent != b.Ino || b.Nlink != 3 {
		t.Errorf("a/b/c has parent %d, a/b is %d with %d links", c.Parent, b.Ino, b.Nlink)
	}
	// Existing directories are fine, and a partly existing path is completed.
	if err := e.fs.MkdirAll("a/b", 0o700); err != nil {
		t.Errorf("MkdirAll of an existing path: %v", err)
	}
	if err := e.fs.MkdirAll("a/b/x/y", 0o755); err != nil {
		t.Fatal(err)
	}
	if e.ino(t, "a/b/c").Ino != c.Ino {
		t.Error("MkdirAll replaced an existing directory")
	}
	if err := e.fs.MkdirAll("/", 0o755); err != nil {
		t.Errorf("MkdirAll(/): %v", err)
	}
	// A file in the way.
	e.writeFile(t, "a/file", "x")
	wantErr(t, "MkdirAll through a file", e.fs.MkdirAll("a/file/sub", 0o755), meta.ErrNotDir)
	wantErr(t, "MkdirAll of a file", e.fs.MkdirAll("a/file", 0o755), meta.ErrNotDir)
	// ".." is walked, not created.
	if err := e.fs.MkdirAll("a/../top", 0o755); err != nil {
		t.Fatal(err)
	}
	if n := e.ino(t, "top"); n.Parent != meta.RootIno {
		t.Errorf("a/../top has parent %d, want the root", n.Parent)
	}
	// Setuid/setgid/sticky bits survive on directories.
	if err := e.fs.MkdirAll("tmp", 0o777|os.ModeSticky|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if fi, _ := e.fs.Stat("tmp"); fi.Mode() != os.ModeDir|os.ModeSticky|os.ModeSetgid|0o777 {
		t.Errorf("tmp mode %v", fi.Mode())
	}
}

func TestReadDir(t *testing.T) {
	e := newEnv(t)
	if err := e.fs.MkdirAll("d", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"b", "a", "C", "a0", "é", "A b"} {
		e.writeFile(t, "d/"+p, "")
	}
	if err := e.fs.MkdirAll("d/sub", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Symlink("a", "d/ln"); err != nil {
		t.Fatal(err)
	}
	e.writeFile(t, "d/a", "12345")

	fis, err := e.fs.ReadDir("d")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A b", "C", "a", "a0", "b", "ln", "sub", "é"} // byte order
	if got := names(fis); !slices.Equal(got, want) {
		t.Fatalf("ReadDir = %q, want %q", got, want)
	}
	for _, fi := range fis {
		n, ok := Inode(fi)
		if !ok {
			t.Fatalf("%s: no inode", fi.Name())
		}
		if l := e.ino(t, "d/"+fi.Name()); l.Ino != n.Ino {
			t.Errorf("%s: ReadDir inode %d, lookup %d", fi.Name(), n.Ino, l.Ino)
		}
		switch fi.Name() {
		case "a":
			if fi.Size() != 5 || !fi.Mode().IsRegular() {
				t.Errorf("a: size %d mode %v", fi.Size(), fi.Mode())
			}
		case "sub":
			if !fi.IsDir() || fi.Mode() != os.ModeDir|0o700 {
				t.Errorf("sub: dir %v mode %v", fi.IsDir(), fi.Mode())
			}
		case "ln":
			if fi.Mode()&os.ModeSymlink == 0 || fi.Size() != 1 {
				t.Errorf("ln: mode %v size %d", fi.Mode(), fi.Size())
			}
		}
	}
	if fis, err := e.fs.ReadDir("d/sub"); err != nil || len(fis) != 0 {
		t.Errorf("ReadDir of an empty directory = %v, %v", fis, err)
	}
	if fis, err := e.fs.ReadDir("/"); err != nil || !slices.Equal(names(fis), []string{"d"}) {
		t.Errorf("ReadDir(/) = %v, %v", fis, err)
	}
	_, err = e.fs.ReadDir("d/a")
	wantErr(t, "ReadDir of a file", err, meta.ErrNotDir)
	_, err = e.fs.ReadDir("d/ln")
	wantErr(t, "ReadDir of a symlink", err, meta.ErrNotDir)
	_, err = e.fs.ReadDir("nope")
	wantErr(t, "ReadDir of a missing directory", err, iofs.ErrNotExist)
}

func TestRename(t *testing.T) {
	e := newEnv(t)
	src := e.writeFile(t, "a", "AAA")
	old := e.writeFile(t, "b", "BB")
	if err := e.fs.MkdirAll("d1/x", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.MkdirAll("d2", 0o755); err != nil {
		t.Fatal(err)
	}

	// Over an existing file: the target's inode goes away.
	if err := e.fs.Rename("a", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fs.Lstat("a"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("a still there after rename: %v", err)
	}
	if n := e.ino(t, "b"); n.Ino != src.Ino {
		t.Errorf("b is inode %d, want the renamed %d", n.Ino, src.Ino)
	}
	if got := e.readFile(t, "b"); got != "AAA" {
		t.Errorf("b reads %q", got)
	}
	if _, err := e.meta.FSM().Inode(e.vol.ID, old.Ino); !errors.Is(err, meta.ErrNotExist) {
		t.Errorf("replaced inode %d still exists: %v", old.Ino, err)
	}

	// Across directories, and a directory with its contents.
	if err := e.fs.Rename("b", "d1/x/b"); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Rename("d1/x", "d2/y"); err != nil {
		t.Fatal(err)
	}
	if got := e.readFile(t, "d2/y/b"); got != "AAA" {
		t.Errorf("d2/y/b reads %q", got)
	}
	if y, d2 := e.ino(t, "d2/y"), e.ino(t, "d2"); y.Parent != d2.Ino {
		t.Errorf("moved directory has parent %d, want %d", y.Parent, d2.Ino)
	}
	// Back and forth in one directory.
	if err := e.fs.Rename("d2/y/b", "d2/y/c"); err != nil {
		t.Fatal(err)
	}

	// POSIX refusals.
	if err := e.fs.MkdirAll("full/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	e.writeFile(t, "f", "f")
	wantErr(t, "Rename of a missing file", e.fs.Rename("nope", "x"), iofs.ErrNotExist)
	wantErr(t, "Rename a directory into itself", e.fs.Rename("d2", "d2/y/d2"), meta.ErrLoop)
	wantErr(t, "Rename a directory over a non-empty one", e.fs.Rename("d2", "full"), meta.ErrNotEmpty)
	wantErr(t, "Rename a directory over a file", e.fs.Rename("d2", "f"), meta.ErrNotDir)
	wantErr(t, "Rename a file over a directory", e.fs.Rename("f", "d1"), meta.ErrIsDir)
	wantErr(t, "Rename the root", e.fs.Rename("/", "x"), meta.ErrInvalid)
	wantErr(t, "Rename to ..", e.fs.Rename("f", "d1/.."), meta.ErrInvalid)
	// A directory over an empty one is fine.
	if err := e.fs.Rename("d2", "d1"); err != nil {
		t.Fatalf("Rename a directory over an empty one: %v", err)
	}
	if got := e.readFile(t, "d1/y/c"); got != "AAA" {
		t.Errorf("d1/y/c reads %q", got)
	}
}

func TestRemove(t *testing.T) {
	e := newEnv(t)
	if err := e.fs.MkdirAll("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	f := e.writeFile(t, "dir/f", "data")
	if err := e.fs.MkdirAll("empty", 0o755); err != nil {
		t.Fatal(err)
	}

	wantErr(t, "Remove of a non-empty directory", e.fs.Remove("dir"), meta.ErrNotEmpty)
	if err := e.fs.Remove("dir/f"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fs.Lstat("dir/f"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Lstat after Remove: %v", err)
	}
	if _, err := e.meta.FSM().Inode(e.vol.ID, f.Ino); !errors.Is(err, meta.ErrNotExist) {
		t.Errorf("removed file's inode still exists: %v", err)
	}
	if err := e.fs.Remove("dir"); err != nil {
		t.Fatalf("Remove of a now empty directory: %v", err)
	}
	if err := e.fs.Remove("empty"); err != nil {
		t.Fatal(err)
	}
	if fis, err := e.fs.ReadDir("/"); err != nil || len(fis) != 0 {
		t.Errorf("root after removals: %q, %v", names(fis), err)
	}
	if root := e.ino(t, "/"); root.Nlink != 2 {
		t.Errorf("root has %d links after removing its subdirectories, want 2", root.Nlink)
	}

	wantErr(t, "Remove of a missing file", e.fs.Remove("dir/f"), iofs.ErrNotExist, meta.ErrNotExist)
	wantErr(t, "Remove of a missing name", e.fs.Remove("nope"), iofs.ErrNotExist)
	wantErr(t, "Remove of the root", e.fs.Remove("/"), meta.ErrInvalid)
	e.writeFile(t, "g", "")
	wantErr(t, "Remove under a file", e.fs.Remove("g/x"), meta.ErrNotDir)

	// A symlink is removed, not its target.
	e.writeFile(t, "target", "t")
	if err := e.fs.Symlink("target", "ln"); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Remove("ln"); err != nil {
		t.Fatal(err)
	}
	if got := e.readFile(t, "target"); got != "t" {
		t.Errorf("target after removing its symlink: %q", got)
	}
}

func TestSymlinkAndLstat(t *testing.T) {
	e := newEnv(t)
	if err := e.fs.MkdirAll("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	e.writeFile(t, "dir/file", "content")
	for link, target := range map[string]string{
		"rel":      "dir/file",
		"abs":      "/etc/passwd",
		"dangling": "no/such/thing",
		"dirlink":  "dir",
		"dir/up":   "../rel",
	} {
		if err := e.fs.Symlink(target, link); err != nil {
			t.Fatalf("Symlink(%q, %q): %v", target, link, err)
		}
		got, err := e.fs.Readlink(link)
		if err != nil || got != target {
			t.Errorf("Readlink(%q) = %q, %v; want %q", link, got, err, target)
		}
		// Stat is Lstat: neither follows the link.
		for _, stat := range []func(string) (os.FileInfo, error){e.fs.Lstat, e.fs.Stat} {
			fi, err := stat(link)
			if err != nil {
				t.Fatalf("stat(%q): %v", link, err)
			}
			if fi.Mode()&os.ModeSymlink == 0 || fi.IsDir() || fi.Size() != int64(len(target)) {
				t.Errorf("stat(%q) = mode %v dir %v size %d; want the link itself", link, fi.Mode(), fi.IsDir(), fi.Size())
			}
		}
	}
	// A path through a symlink is not resolved either.
	_, err := e.fs.Lstat("dirlink/file")
	wantErr(t, "Lstat through a symlink", err, meta.ErrNotDir)
	_, err = e.fs.Open("dirlink/file")
	wantErr(t, "Open through a symlink", err, meta.ErrNotDir)
	_, err = e.fs.ReadDir("dirlink")
	wantErr(t, "ReadDir of a symlink", err, meta.ErrNotDir)

	wantErr(t, "Symlink over an existing name", e.fs.Symlink("x", "rel"), iofs.ErrExist)
	wantErr(t, "Symlink with an empty target", e.fs.Symlink("", "empty"), meta.ErrInvalid)
	wantErr(t, "Symlink with a target of NUL", e.fs.Symlink("a\x00b", "nul"), meta.ErrInvalid)
	wantErr(t, "Symlink with a target over PATH_MAX", e.fs.Symlink(strings.Repeat("x", meta.MaxSymlinkLen+1), "long"), meta.ErrInvalid)
	if err := e.fs.Symlink(strings.Repeat("x", meta.MaxSymlinkLen), "max"); err != nil {
		t.Errorf("Symlink with a target of PATH_MAX: %v", err)
	}
	_, err = e.fs.Readlink("dir/file")
	wantErr(t, "Readlink of a file", err, meta.ErrInvalid)
	_, err = e.fs.Readlink("missing")
	wantErr(t, "Readlink of a missing name", err, iofs.ErrNotExist)
}

func TestLink(t *testing.T) {
	e := newEnv(t)
	f := e.writeFile(t, "f", "shared")
	if err := e.fs.MkdirAll("d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Link("f", "d/g"); err != nil {
		t.Fatal(err)
	}
	if g := e.ino(t, "d/g"); g.Ino != f.Ino || g.Nlink != 2 {
		t.Errorf("d/g is inode %d with %d links; want %d with 2", g.Ino, g.Nlink, f.Ino)
	}
	if err := e.fs.Remove("f"); err != nil {
		t.Fatal(err)
	}
	if got := e.readFile(t, "d/g"); got != "shared" {
		t.Errorf("d/g after removing f: %q", got)
	}
	wantErr(t, "Link of a directory", e.fs.Link("d", "d2"), meta.ErrIsDir)
	wantErr(t, "Link over an existing name", e.fs.Link("d/g", "d/g"), iofs.ErrExist)
	wantErr(t, "Link of a missing file", e.fs.Link("nope", "x"), iofs.ErrNotExist)
}

func TestModeRoundTrip(t *testing.T) {
	// Every POSIX mode survives ToMode(fromMode(.)) for each file type.
	for _, typ := range []meta.FileType{meta.TypeFile, meta.TypeDir, meta.TypeSymlink} {
		for m := uint32(0); m <= 0o7777; m++ {
			n := &meta.Inode{Type: typ, Mode: m}
			gm := fromMode(n)
			if got := ToMode(gm); got != m {
				t.Fatalf("%s mode %04o -> %v -> %04o", typ, m, gm, got)
			}
			if gm.IsDir() != (typ == meta.TypeDir) || (gm&os.ModeSymlink != 0) != (typ == meta.TypeSymlink) {
				t.Fatalf("%s mode %04o -> %v: wrong type bits", typ, m, gm)
			}
		}
	}
	// And Go modes with the special bits survive toMode then fromMode.
	for _, gm := range []os.FileMode{0, 0o644, 0o755 | os.ModeSetuid, 0o750 | os.ModeSetgid,
		0o777 | os.ModeSticky, 0o777 | os.ModeSetuid | os.ModeSetgid | os.ModeSticky} {
		if got := fromMode(&meta.Inode{Type: meta.TypeFile, Mode: ToMode(gm)}); got != gm {
			t.Errorf("%v -> %04o -> %v", gm, ToMode(gm), got)
		}
	}
	// Type bits passed in are not stored as permissions.
	if got := ToMode(os.ModeDir | os.ModeSymlink | 0o700); got != 0o700 {
		t.Errorf("toMode with type bits = %04o, want 0700", got)
	}
}

func TestChmodChownChtimes(t *testing.T) {
	e := newEnv(t)
	e.writeFile(t, "f", "x")
	if err := e.fs.Symlink("f", "ln"); err != nil {
		t.Fatal(err)
	}

	for _, mode := range []os.FileMode{
		0o755 | os.ModeSetuid,
		0o755 | os.ModeSetgid,
		0o777 | os.ModeSticky,
		0o777 | os.ModeSetuid | os.ModeSetgid | os.ModeSticky,
		0o640,
	} {
		if err := e.fs.Chmod("f", mode); err != nil {
			t.Fatal(err)
		}
		fi, err := e.fs.Lstat("f")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("Chmod(%v): Lstat mode %v", mode, fi.Mode())
		}
		if n, _ := Inode(fi); n.Mode != ToMode(mode) {
			t.Errorf("Chmod(%v): stored %04o, want %04o", mode, n.Mode, ToMode(mode))
		}
	}

	// Only root may give a file away.
	if err := e.fs.Lchown("ln", 42, -1); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Lchown to another uid by a non-root caller: %v, want ErrNotOwner", err)
	}
	e.fs.SetOwner(Owner{})
	defer e.fs.SetOwner(testOwner)
	// Lchown changes the link, not its target; -1 leaves an id alone.
	if err := e.fs.Lchown("ln", 42, -1); err != nil {
		t.Fatal(err)
	}
	if ln, f := e.ino(t, "ln"), e.ino(t, "f"); ln.UID != 42 || ln.GID != testOwner.GID || f.UID != testOwner.UID {
		t.Errorf("after Lchown(ln, 42, -1): link %d:%d, target %d:%d", ln.UID, ln.GID, f.UID, f.GID)
	}
	if err := e.fs.Chown("f", -1, 7); err != nil {
		t.Fatal(err)
	}
	if f := e.ino(t, "f"); f.UID != testOwner.UID || f.GID != 7 {
		t.Errorf("after Chown(f, -1, 7): %d:%d", f.UID, f.GID)
	}
	if err := e.fs.Lchown("f", 0, 0); err != nil {
		t.Fatal(err)
	}
	if f := e.ino(t, "f"); f.UID != 0 || f.GID != 0 {
		t.Errorf("after Lchown(f, 0, 0): %d:%d", f.UID, f.GID)
	}

	atime := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	mtime := time.Date(2010, 1, 1, 0, 0, 0, 123456789, time.UTC)
	if err := e.fs.Chtimes("f", atime, mtime); err != nil {
		t.Fatal(err)
	}
	fi, err := e.fs.Lstat("f")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := Inode(fi)
	if !fi.ModTime().Equal(mtime) || n.Atime != atime.UnixNano() {
		t.Errorf("after Chtimes: mtime %v atime %v; want %v and %v", fi.ModTime(), time.Unix(0, n.Atime), mtime, atime)
	}
	// Times before 1970 too.
	old := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := e.fs.Chtimes("f", old, old); err != nil {
		t.Fatal(err)
	}
	if fi, _ := e.fs.Lstat("f"); !fi.ModTime().Equal(old) {
		t.Errorf("mtime %v, want %v", fi.ModTime(), old)
	}

	for name, err := range map[string]error{
		"Chmod":   e.fs.Chmod("missing", 0o644),
		"Lchown":  e.fs.Lchown("missing", 1, 1),
		"Chtimes": e.fs.Chtimes("missing", atime, mtime),
	} {
		wantErr(t, name+" of a missing file", err, iofs.ErrNotExist)
	}
}

func TestNameTooLong(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("n", meta.MaxNameLen+1)
	max := strings.Repeat("m", meta.MaxNameLen)
	e.writeFile(t, "f", "")

	_, err := e.fs.Create(long)
	wantErr(t, "Create", err, meta.ErrNameTooLong)
	_, err = e.fs.OpenFile("dir/"+long, os.O_CREATE|os.O_RDWR, 0o644)
	wantErr(t, "OpenFile in a missing directory", err, iofs.ErrNotExist)
	wantErr(t, "MkdirAll", e.fs.MkdirAll("a/"+long+"/b", 0o755), meta.ErrNameTooLong)
	wantErr(t, "Symlink", e.fs.Symlink("f", long), meta.ErrNameTooLong)
	wantErr(t, "Rename", e.fs.Rename("f", long), meta.ErrNameTooLong)
	wantErr(t, "Link", e.fs.Link("f", long), meta.ErrNameTooLong)
	if fis, _ := e.fs.ReadDir("/"); !slices.Equal(names(fis), []string{"a", "f"}) {
		t.Errorf("root after refused long names: %q", names(fis))
	}

	// 255 bytes is fine, in bytes not runes.
	e.writeFile(t, max, "ok")
	if got := e.readFile(t, max); got != "ok" {
		t.Errorf("255-byte name reads %q", got)
	}
	multi := strings.Repeat("é", 128) // 256 bytes
	_, err = e.fs.Create(multi)
	wantErr(t, "Create of 128 two-byte runes", err, meta.ErrNameTooLong)
}

func TestBadNames(t *testing.T) {
	e := newEnv(t)
	e.writeFile(t, "f", "")
	for _, name := range []string{"a\x00b", "\x00", "\x00zz"} {
		_, err := e.fs.Create(name)
		wantErr(t, "Create("+strings.ReplaceAll(name, "\x00", "#")+")", err, meta.ErrInvalid)
		wantErr(t, "MkdirAll", e.fs.MkdirAll(name, 0o755), meta.ErrInvalid)
		wantErr(t, "Rename", e.fs.Rename("f", name), meta.ErrInvalid)
	}
	_, err := e.fs.Create("d/..")
	wantErr(t, "Create(d/..)", err, meta.ErrInvalid)
	_, err = e.fs.Create("..")
	wantErr(t, "Create(..)", err, meta.ErrIsDir) // the root's parent is the root
	if fis, _ := e.fs.ReadDir("/"); !slices.Equal(names(fis), []string{"f"}) {
		t.Errorf("root after refused names: %q", names(fis))
	}
	// Errors name the path without raw NULs (they end up in logs).
	_, err = e.fs.Lstat("x\x00y")
	var pe *iofs.PathError
	if !errors.As(err, &pe) || strings.ContainsRune(pe.Path, 0) {
		t.Errorf("Lstat error %#v should be a PathError without NUL", err)
	}
}

// TestMkdirAllRace: another client creates the name between MkdirAll's
// lookup and its create. A directory there is fine; a file is not, and must
// not be reported as a directory made.
func TestMkdirAllRace(t *testing.T) {
	for _, kind := range []meta.FileType{meta.TypeFile, meta.TypeSymlink, meta.TypeDir} {
		t.Run(kind.String(), func(t *testing.T) {
			e := newEnv(t)
			if err := e.fs.MkdirAll("p", 0o755); err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			e.meta.setBefore(func(cmd meta.Command) {
				c, ok := cmd.(*meta.Create)
				if !ok || c.Name != "race" {
					return
				}
				once.Do(func() {
					other := &meta.Create{Vol: c.Vol, Parent: c.Parent, Name: "race", Kind: kind, Mode: 0o755, Target: "t",
						UID: testOwner.UID, GID: testOwner.GID}
					if _, err := e.meta.b.Propose(t.Context(), other); err != nil {
						t.Errorf("the other client's create: %v", err)
					}
				})
			})
			err := e.fs.MkdirAll("p/race/sub", 0o755)
			e.meta.setBefore(nil)
			if kind == meta.TypeDir {
				if err != nil {
					t.Fatalf("MkdirAll into a directory made meanwhile: %v", err)
				}
				if n := e.ino(t, "p/race/sub"); n.Type != meta.TypeDir {
					t.Errorf("p/race/sub is a %s", n.Type)
				}
				return
			}
			wantErr(t, "MkdirAll through a "+kind.String()+" made meanwhile", err, meta.ErrNotDir)

			// The last element too: MkdirAll must not report success.
			e.meta.setBefore(func(cmd meta.Command) {
				c, ok := cmd.(*meta.Create)
				if !ok || c.Name != "last" || c.Kind != meta.TypeDir {
					return
				}
				other := &meta.Create{Vol: c.Vol, Parent: c.Parent, Name: "last", Kind: kind, Mode: 0o644, Target: "t"}
				if _, err := e.meta.b.Propose(t.Context(), other); err != nil {
					t.Errorf("the other client's create: %v", err)
				}
			})
			err = e.fs.MkdirAll("p/last", 0o755)
			e.meta.setBefore(nil)
			wantErr(t, "MkdirAll of a name made a "+kind.String()+" meanwhile", err, meta.ErrNotDir)
		})
	}
}
