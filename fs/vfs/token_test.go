package vfs

import (
	"errors"
	iofs "io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/meta"
)

// tokenTree is a/b/f, a/g, a/b/c, and the root of a fresh volume.
type tokenTree struct {
	root, a, b, c, f, g *meta.Inode
}

func newTokenTree(t *testing.T, e *env) tokenTree {
	t.Helper()
	if err := e.fs.MkdirAll("a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	e.writeFile(t, "a/b/f", "in b")
	e.writeFile(t, "a/g", "in a")
	return tokenTree{
		root: e.ino(t, "/"), a: e.ino(t, "a"), b: e.ino(t, "a/b"), c: e.ino(t, "a/b/c"),
		f: e.ino(t, "a/b/f"), g: e.ino(t, "a/g"),
	}
}

// handle is the path the gateway builds for n's file handle, plus names.
func (e *env) handle(n *meta.Inode, names ...string) string {
	return e.fs.Join(append(HandlePath(n), names...)...)
}

func TestTokenFormat(t *testing.T) {
	for _, ino := range []uint64{1, 2, 0xff, 1<<64 - 1} {
		tok := Token(ino)
		if tok[0] != 0 || strings.ContainsRune(tok, '/') {
			t.Errorf("Token(%d) = %q: want a leading NUL and no '/'", ino, tok)
		}
		if got, ok := parseToken(tok); !ok || got != ino {
			t.Errorf("parseToken(Token(%d)) = %d, %v", ino, got, ok)
		}
	}
	for _, s := range []string{"", "\x00", "\x000", "\x00-1", "\x00+1", "\x00zz", "\x001 ", "1", "x1",
		"\x0010000000000000000"} {
		if v, ok := parseToken(s); ok {
			t.Errorf("parseToken(%q) = %d, ok; want refused", s, v)
		}
	}
}

func TestHandlePathResolves(t *testing.T) {
	e := newEnv(t)
	tr := newTokenTree(t, e)

	// Every object's handle path leads back to it.
	for name, n := range map[string]*meta.Inode{"root": tr.root, "a": tr.a, "b": tr.b, "c": tr.c, "f": tr.f, "g": tr.g} {
		hp := HandlePath(n)
		want := []string{Token(n.Ino)}
		if n.Type == meta.TypeDir {
			want = []string{Token(n.Parent), Token(n.Ino)}
		}
		if !slices.Equal(hp, want) {
			t.Errorf("HandlePath(%s) = %q, want %q", name, hp, want)
		}
		got, err := e.fs.Resolve(e.handle(n))
		if err != nil || got.Ino != n.Ino {
			t.Errorf("Resolve(handle of %s) = %v, %v; want inode %d", name, got, err, n.Ino)
		}
		fi, err := e.fs.Lstat(e.handle(n))
		if err != nil || fi.IsDir() != (n.Type == meta.TypeDir) {
			t.Errorf("Lstat(handle of %s) = %v, %v", name, fi, err)
		}
	}
	if hp := HandlePath(tr.root); !slices.Equal(hp, []string{Token(meta.RootIno), Token(meta.RootIno)}) {
		t.Errorf("HandlePath(root) = %q", hp)
	}

	// Names after a directory's tokens are looked up in it.
	if got, err := e.fs.Resolve(e.handle(tr.b, "f")); err != nil || got.Ino != tr.f.Ino {
		t.Errorf("handle(b)/f = %v, %v; want f", got, err)
	}
	if got, err := e.fs.Resolve(e.handle(tr.a, "b", "c")); err != nil || got.Ino != tr.c.Ino {
		t.Errorf("handle(a)/b/c = %v, %v; want c", got, err)
	}
	if got, err := e.fs.Resolve(e.handle(tr.root, "a", "g")); err != nil || got.Ino != tr.g.Ino {
		t.Errorf("handle(root)/a/g = %v, %v; want g", got, err)
	}
	// A single token of a directory (go-nfs drops the last element for
	// "..") names that directory.
	if got, err := e.fs.Resolve(Token(tr.a.Ino) + "/b"); err != nil || got.Ino != tr.b.Ino {
		t.Errorf("token(a)/b = %v, %v; want b", got, err)
	}

	// ".." after a directory's token pair is its parent.
	for _, tc := range []struct {
		path string
		want *meta.Inode
	}{
		{e.handle(tr.c, ".."), tr.b},
		{e.handle(tr.c, "..", ".."), tr.a},
		{e.handle(tr.c, "..", "..", "..", ".."), tr.root},
		{e.handle(tr.root, ".."), tr.root},
		{e.handle(tr.b, "..", "g"), tr.g},
		{e.handle(tr.b, "c", "..", "f"), tr.f},
	} {
		got, err := e.fs.Resolve(tc.path)
		if err != nil || got.Ino != tc.want.Ino {
			t.Errorf("Resolve(%q) = %v, %v; want inode %d", tc.path, got, err, tc.want.Ino)
		}
	}

	// The handle outlives renames: it names the inode, not the path.
	if err := e.fs.Rename("a/b/f", "a/b/c/moved"); err != nil {
		t.Fatal(err)
	}
	if got := e.readFile(t, e.handle(tr.f)); got != "in b" {
		t.Errorf("read through f's handle after a rename: %q", got)
	}
	// And dies with the inode.
	if err := e.fs.Remove("a/g"); err != nil {
		t.Fatal(err)
	}
	_, err := e.fs.Resolve(e.handle(tr.g))
	wantErr(t, "Resolve of a removed file's handle", err, iofs.ErrNotExist)
}

func TestHandlePathOperations(t *testing.T) {
	e := newEnv(t)
	tr := newTokenTree(t, e)

	// Everything the gateway does goes through such paths.
	e.writeFile(t, e.handle(tr.b, "new"), "via handle")
	if got := e.readFile(t, "a/b/new"); got != "via handle" {
		t.Errorf("a/b/new = %q", got)
	}
	if err := e.fs.MkdirAll(e.handle(tr.c, "x", "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	if y := e.ino(t, "a/b/c/x/y"); y.Type != meta.TypeDir {
		t.Errorf("a/b/c/x/y is a %s", y.Type)
	}
	if err := e.fs.Rename(e.handle(tr.b, "new"), e.handle(tr.root, "top")); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Symlink("top", e.handle(tr.a, "ln")); err != nil {
		t.Fatal(err)
	}
	if got, err := e.fs.Readlink("a/ln"); err != nil || got != "top" {
		t.Errorf("Readlink(a/ln) = %q, %v", got, err)
	}
	if err := e.fs.Chmod(e.handle(tr.f), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := e.fs.Lstat("a/b/f"); fi.Mode() != 0o600 {
		t.Errorf("Chmod through a handle: mode %v", fi.Mode())
	}
	fis, err := e.fs.ReadDir(e.handle(tr.a))
	if err != nil || !slices.Equal(names(fis), []string{"b", "g", "ln"}) {
		t.Errorf("ReadDir(handle of a) = %q, %v", names(fis), err)
	}
	if err := e.fs.Remove(e.handle(tr.a, "ln")); err != nil {
		t.Fatal(err)
	}
	// A file's own handle opens it; the name it reports is its handle.
	f, err := e.fs.OpenFile(e.handle(tr.f), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != e.handle(tr.f) {
		t.Errorf("Name() = %q, want the handle path", f.Name())
	}
	f.Close()

	// A handle is not a name: nothing can be created, removed or renamed
	// as the last element of a handle path.
	if _, err = e.fs.Create(e.handle(tr.f)); err != nil {
		t.Errorf("Create of an existing file's handle: %v", err)
	}
	wantErr(t, "Remove(handle of f)", e.fs.Remove(e.handle(tr.f)), meta.ErrInvalid)
	wantErr(t, "Remove(handle of c)", e.fs.Remove(e.handle(tr.c)), meta.ErrInvalid)
	wantErr(t, "Rename(handle of f, x)", e.fs.Rename(e.handle(tr.f), "x"), meta.ErrInvalid)
	wantErr(t, "Rename(x, token)", e.fs.Rename("top", e.handle(tr.root, Token(99))), meta.ErrInvalid)
	wantErr(t, "MkdirAll(token)", e.fs.MkdirAll(e.handle(tr.b, Token(99)), 0o755), meta.ErrInvalid)
	wantErr(t, "Symlink(token)", e.fs.Symlink("x", e.handle(tr.b, Token(99))), meta.ErrInvalid)
	_, err = e.fs.Create(e.handle(tr.b, Token(99)))
	wantErr(t, "Create(token)", err, meta.ErrInvalid)
	wantErr(t, "Link(token)", e.fs.Link("top", e.handle(tr.b, Token(tr.g.Ino))), meta.ErrInvalid)
}

// TestForgedTokens checks that tokens are honoured only where a handle puts
// them, so a client cannot reach an inode by LOOKUP of a crafted name.
func TestForgedTokens(t *testing.T) {
	e := newEnv(t)
	tr := newTokenTree(t, e)

	for _, tc := range []struct {
		name string
		path string
		want error
	}{
		// Names with NUL never resolve, whatever follows the handle.
		{"NUL name in dir", e.handle(tr.b, "f\x00"), iofs.ErrNotExist},
		{"NUL name in root", e.handle(tr.root, "a\x00b"), iofs.ErrNotExist},
		{"plain NUL name", "a/\x00", iofs.ErrNotExist},
		{"token of a child after a dir handle", e.handle(tr.b, Token(tr.f.Ino)), iofs.ErrNotExist},
		{"token of a child dir after a dir handle", e.handle(tr.b, Token(tr.c.Ino)), iofs.ErrNotExist},
		{"token of root after root handle", e.handle(tr.root, Token(meta.RootIno)), iofs.ErrNotExist},
		{"token after a name", "a/" + Token(tr.b.Ino), iofs.ErrNotExist},
		// After a file's token nothing resolves.
		{"name after a file token", e.handle(tr.f, "x"), meta.ErrNotDir},
		{"NUL name after a file token", e.handle(tr.f, "x\x00y"), meta.ErrNotDir},
		{"token after a file token", e.handle(tr.f, Token(tr.c.Ino)), meta.ErrNotDir},
		{"dir token after a file token", Token(tr.f.Ino) + "/" + Token(tr.b.Ino), meta.ErrNotDir},
		{"dotdot after a file token", e.handle(tr.f, ".."), meta.ErrNotDir},
		// A token at position 1 must name a child directory of position 0.
		{"grandchild at 1", Token(tr.a.Ino) + "/" + Token(tr.c.Ino), iofs.ErrNotExist},
		{"grandchild of root at 1", Token(meta.RootIno) + "/" + Token(tr.b.Ino), iofs.ErrNotExist},
		{"parent at 1", Token(tr.b.Ino) + "/" + Token(tr.a.Ino), iofs.ErrNotExist},
		{"file child at 1", Token(tr.b.Ino) + "/" + Token(tr.f.Ino), iofs.ErrNotExist},
		{"self at 1", Token(tr.a.Ino) + "/" + Token(tr.a.Ino), iofs.ErrNotExist},
		{"missing inode at 1", Token(tr.a.Ino) + "/" + Token(999), iofs.ErrNotExist},
		{"missing inode at 0", Token(999), iofs.ErrNotExist},
		{"missing inode at 0 then name", Token(999) + "/x", iofs.ErrNotExist},
		{"refused pair then name", Token(tr.a.Ino) + "/" + Token(tr.c.Ino) + "/x", iofs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := e.fs.Resolve(tc.path)
			if err == nil {
				t.Fatalf("Resolve(%q) = inode %d; want %v", tc.path, n.Ino, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Resolve(%q): %v; want %v", tc.path, err, tc.want)
			}
			// The billy calls refuse it the same way.
			if _, err := e.fs.Lstat(tc.path); !errors.Is(err, tc.want) {
				t.Errorf("Lstat(%q): %v; want %v", tc.path, err, tc.want)
			}
			if _, err := e.fs.Open(tc.path); !errors.Is(err, tc.want) {
				t.Errorf("Open(%q): %v; want %v", tc.path, err, tc.want)
			}
			if _, err := e.fs.Create(tc.path); err == nil {
				t.Errorf("Create(%q) succeeded", tc.path)
			}
			if err := e.fs.MkdirAll(tc.path+"/sub", 0o755); err == nil {
				t.Errorf("MkdirAll(%q/sub) succeeded", tc.path)
			}
		})
	}

	// None of that created anything.
	for dir, want := range map[string][]string{
		"/": {"a"}, "a": {"b", "g"}, "a/b": {"c", "f"}, "a/b/c": {},
	} {
		fis, err := e.fs.ReadDir(dir)
		if err != nil || !slices.Equal(names(fis), want) {
			t.Errorf("ReadDir(%q) = %q, %v; want %q", dir, names(fis), err, want)
		}
	}
	if got := e.readFile(t, "a/b/f"); got != "in b" {
		t.Errorf("a/b/f changed to %q", got)
	}
}
