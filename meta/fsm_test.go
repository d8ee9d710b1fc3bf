package meta

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestCreateVolume(t *testing.T) {
	h := newHarness(t)
	r := h.ok(&CreateVolume{Name: "vol-a", Replicas: 3, WriteQuorum: 2, ChunkSize: cs,
		RootMode: 0o40755, RootUID: 7, RootGID: 8})
	v := r.Volume
	if v == nil || v.ID != 1 || v.Name != "vol-a" || v.NextIno != RootIno+1 || v.Files != 1 || v.ChunkSize != cs {
		t.Fatalf("first volume = %+v", v)
	}
	if got := h.vol("vol-a"); !reflect.DeepEqual(got, v) {
		t.Fatalf("Volume(vol-a) = %+v, result said %+v", got, v)
	}
	if got, err := h.fsm.VolumeByID(v.ID); err != nil || got.Name != "vol-a" {
		t.Fatalf("VolumeByID(%d) = %+v, %v", v.ID, got, err)
	}
	root := h.inode(v.ID, RootIno)
	if root.Type != TypeDir || root.Nlink != 2 || root.Mode != 0o755 || root.UID != 7 || root.GID != 8 ||
		root.Parent != RootIno || root.Mtime != v.Created || v.Created == 0 {
		t.Fatalf("root inode = %+v", root)
	}
	if ents, _, err := h.fsm.ReadDir(v.ID, RootIno, 0, 0); err != nil || len(ents) != 0 {
		t.Fatalf("ReadDir(root) = %v, %v; want empty", ents, err)
	}
	if id := h.volume("vol-b"); id != 2 {
		t.Fatalf("second volume has ID %d, want 2", id)
	}

	h.fails(&CreateVolume{Name: "vol-a", Replicas: 1, WriteQuorum: 1, ChunkSize: cs}, ErrVolumeExist, iofs.ErrExist)
	for _, c := range []*CreateVolume{
		{Name: "", Replicas: 1, WriteQuorum: 1, ChunkSize: cs},
		{Name: strings.Repeat("v", 65), Replicas: 1, WriteQuorum: 1, ChunkSize: cs},
		{Name: "a/b", Replicas: 1, WriteQuorum: 1, ChunkSize: cs},
		{Name: ".hidden", Replicas: 1, WriteQuorum: 1, ChunkSize: cs},
		{Name: "-x", Replicas: 1, WriteQuorum: 1, ChunkSize: cs},
		{Name: "ok", Replicas: 0, WriteQuorum: 0, ChunkSize: cs},
		{Name: "ok", Replicas: 2, WriteQuorum: 3, ChunkSize: cs},
		{Name: "ok", Replicas: 2, WriteQuorum: 0, ChunkSize: cs},
		{Name: "ok", Replicas: 1, WriteQuorum: 1, ChunkSize: MinChunkSize - 1},
		{Name: "ok", Replicas: 1, WriteQuorum: 1, ChunkSize: MaxChunkSize + 1},
	} {
		h.fails(c, ErrInvalid, iofs.ErrInvalid)
	}
	if _, err := h.fsm.Volume("ok"); !errors.Is(err, ErrNoVolume) || !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("Volume(ok) after failed creates: %v", err)
	}
	if vols, err := h.fsm.Volumes(); err != nil || len(vols) != 2 {
		t.Fatalf("Volumes() = %+v, %v; want 2", vols, err)
	}
}

func TestDeleteVolume(t *testing.T) {
	h := newHarness(t)
	a, b := h.volume("a"), h.volume("b")
	f := h.create(a, RootIno, "f", TypeFile)
	h.write(a, f.Ino, 0, 0, 1, cs, "n1", "n2")
	h.write(a, f.Ino, 1, 0, 1, 10, "n2", "n3")
	d := h.create(a, RootIno, "d", TypeDir)
	h.create(a, d.Ino, "g", TypeFile)
	bf := h.create(b, RootIno, "f", TypeFile)
	h.write(b, bf.Ino, 0, 0, 1, 5, "n1")
	otherBefore := dumpDB(t, h.fsm)

	h.fails(&DeleteVolume{Name: "nope"}, ErrNoVolume, iofs.ErrNotExist)
	r := h.ok(&DeleteVolume{Name: "a"})
	if r.Volume == nil || r.Volume.ID != a {
		t.Fatalf("DeleteVolume result volume = %+v", r.Volume)
	}
	if _, err := h.fsm.Volume("a"); !errors.Is(err, ErrNoVolume) {
		t.Fatalf("Volume(a) after delete: %v", err)
	}
	if _, err := h.fsm.VolumeByID(a); !errors.Is(err, ErrNoVolume) {
		t.Fatalf("VolumeByID(a) after delete: %v", err)
	}
	// Nothing keyed by the volume is left, and the chunks became garbage.
	after := dumpDB(t, h.fsm)
	prefix := string(volKey(a))
	for _, bucket := range []string{"inodes", "dirents", "chunks"} {
		for k := range after[bucket] {
			if raw := mustHex(t, k); strings.HasPrefix(raw, prefix) {
				t.Errorf("bucket %s still holds key %s of the deleted volume", bucket, k)
			}
		}
	}
	wantGarbage := map[GarbageKey][]string{
		{Vol: a, Ino: f.Ino, Index: 0, Version: 1}: {"n1", "n2"},
		{Vol: a, Ino: f.Ino, Index: 1, Version: 1}: {"n2", "n3"},
	}
	if got := h.garbage(); !mapsEqual(got, wantGarbage) {
		t.Fatalf("garbage = %v, want %v", got, wantGarbage)
	}
	// Volume b is untouched.
	for _, bucket := range []string{"inodes", "dirents", "chunks"} {
		for k, v := range otherBefore[bucket] {
			if strings.HasPrefix(mustHex(t, k), string(volKey(b))) && after[bucket][k] != v {
				t.Errorf("bucket %s key %s of volume b changed", bucket, k)
			}
		}
	}
	if n := h.lookup(b, RootIno, "f"); n.Ino != bf.Ino {
		t.Fatalf("volume b lost its file")
	}
	// The old ID is dead; a new volume of the same name gets a fresh ID.
	h.fails(&Create{Vol: a, Parent: RootIno, Name: "x", Kind: TypeFile}, ErrNoVolume, iofs.ErrNotExist)
	h.fails(&DeleteVolume{Name: "a"}, ErrNoVolume)
	if id := h.volume("a"); id == a || id == b {
		t.Fatalf("recreated volume reused ID %d", id)
	}
}

func TestCreate(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	root0 := h.inode(v, RootIno)

	f := h.create(v, RootIno, "file", TypeFile)
	if f.Ino != 2 || f.Type != TypeFile || f.Nlink != 1 || f.Size != 0 || f.Mode != 0o644 || f.UID != 1000 || f.Gen == 0 {
		t.Fatalf("file = %+v", f)
	}
	root := h.inode(v, RootIno)
	if root.Nlink != 2 || root.Mtime <= root0.Mtime || root.Ctime != root.Mtime {
		t.Fatalf("root after creating a file = %+v (was %+v): nlink stays 2, mtime/ctime move", root, root0)
	}
	d := h.create(v, RootIno, "dir", TypeDir)
	if d.Ino != 3 || d.Type != TypeDir || d.Nlink != 2 || d.Parent != RootIno {
		t.Fatalf("dir = %+v", d)
	}
	if root := h.inode(v, RootIno); root.Nlink != 3 {
		t.Fatalf("root nlink after mkdir = %d, want 3", root.Nlink)
	}
	sub := h.create(v, d.Ino, "sub", TypeDir)
	if sub.Parent != d.Ino || h.inode(v, d.Ino).Nlink != 3 || h.inode(v, RootIno).Nlink != 3 {
		t.Fatalf("nested mkdir: sub=%+v dir=%+v", sub, h.inode(v, d.Ino))
	}
	l := h.ok(&Create{Vol: v, Parent: RootIno, Name: "link", Kind: TypeSymlink, Target: "dir/sub", Mode: 0o777}).Inode
	if l.Type != TypeSymlink || l.Target != "dir/sub" || l.Size != uint64(len("dir/sub")) || l.Nlink != 1 {
		t.Fatalf("symlink = %+v", l)
	}
	long := strings.Repeat("n", MaxNameLen)
	h.create(v, RootIno, long, TypeFile)
	odd := h.create(v, RootIno, "spaces and ünïcode\t", TypeFile)
	if got := h.lookup(v, RootIno, "spaces and ünïcode\t"); got.Ino != odd.Ino {
		t.Fatalf("lookup of an odd name found %d", got.Ino)
	}
	if got := h.lookup(v, RootIno, "dir"); *got != *h.inode(v, d.Ino) {
		t.Fatalf("Lookup(dir) = %+v", got)
	}
	if vol := h.vol("v"); vol.Files != 7 || vol.NextIno != 8 {
		t.Fatalf("volume counters = %+v, want 7 files and next ino 8", vol)
	}
	// Mode keeps permission bits only.
	m := h.ok(&Create{Vol: v, Parent: RootIno, Name: "modes", Kind: TypeFile, Mode: 0o177777}).Inode
	if m.Mode != 0o7777 {
		t.Fatalf("mode = %o, want 7777", m.Mode)
	}

	h.fails(&Create{Vol: v, Parent: RootIno, Name: "file", Kind: TypeFile}, ErrExist, iofs.ErrExist)
	h.fails(&Create{Vol: v, Parent: RootIno, Name: "dir", Kind: TypeDir}, ErrExist, iofs.ErrExist)
	h.fails(&Create{Vol: v, Parent: 999, Name: "x", Kind: TypeFile}, ErrNotExist, iofs.ErrNotExist)
	h.fails(&Create{Vol: v, Parent: f.Ino, Name: "x", Kind: TypeFile}, ErrNotDir)
	h.fails(&Create{Vol: v, Parent: l.Ino, Name: "x", Kind: TypeFile}, ErrNotDir)
	h.fails(&Create{Vol: 99, Parent: RootIno, Name: "x", Kind: TypeFile}, ErrNoVolume, iofs.ErrNotExist)
	for _, name := range []string{"", ".", "..", "a/b", "/", "nul\x00"} {
		h.fails(&Create{Vol: v, Parent: RootIno, Name: name, Kind: TypeFile}, ErrInvalid, iofs.ErrInvalid)
	}
	h.fails(&Create{Vol: v, Parent: RootIno, Name: long + "n", Kind: TypeFile}, ErrNameTooLong)
	h.fails(&Create{Vol: v, Parent: RootIno, Name: "s", Kind: TypeSymlink}, ErrInvalid)
	h.fails(&Create{Vol: v, Parent: RootIno, Name: "s", Kind: TypeSymlink, Target: strings.Repeat("t", MaxSymlinkLen+1)}, ErrInvalid)
	h.fails(&Create{Vol: v, Parent: RootIno, Name: "s", Kind: TypeSymlink, Target: "a\x00b"}, ErrInvalid)
	h.fails(&Create{Vol: v, Parent: RootIno, Name: "k", Kind: 0}, ErrInvalid)
	h.fails(&Create{Vol: v, Parent: RootIno, Name: "k", Kind: 42}, ErrInvalid)
	// Inode numbers are never reused, not even after failures or removals.
	h.ok(&Remove{Vol: v, Parent: RootIno, Name: "file"})
	if n := h.create(v, RootIno, "file", TypeFile); n.Ino != 9 {
		t.Fatalf("new file got ino %d, want 9", n.Ino)
	}
}

func TestRemove(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	d := h.create(v, RootIno, "d", TypeDir)
	f := h.create(v, d.Ino, "f", TypeFile)
	h.write(v, f.Ino, 0, 0, 1, cs, "n1", "n2")
	h.write(v, f.Ino, 1, 0, 3, 100, "n3")
	e := h.create(v, d.Ino, "e", TypeDir)
	s := h.create(v, d.Ino, "s", TypeSymlink)

	h.fails(&Remove{Vol: v, Parent: RootIno, Name: "d", Dir: true}, ErrNotEmpty)
	h.fails(&Remove{Vol: v, Parent: RootIno, Name: "d"}, ErrIsDir)
	h.fails(&Remove{Vol: v, Parent: d.Ino, Name: "f", Dir: true}, ErrNotDir)
	h.fails(&Remove{Vol: v, Parent: d.Ino, Name: "missing"}, ErrNotExist, iofs.ErrNotExist)
	h.fails(&Remove{Vol: v, Parent: 999, Name: "f"}, ErrNotExist)
	h.fails(&Remove{Vol: v, Parent: f.Ino, Name: "f"}, ErrNotDir)
	h.fails(&Remove{Vol: v, Parent: d.Ino, Name: "."}, ErrInvalid)
	h.fails(&Remove{Vol: v, Parent: d.Ino, Name: "..", Dir: true}, ErrInvalid)
	h.fails(&Remove{Vol: 9, Parent: d.Ino, Name: "f"}, ErrNoVolume)

	bytesBefore := h.vol("v").Bytes
	r := h.ok(&Remove{Vol: v, Parent: d.Ino, Name: "f"})
	if r.Inode == nil || r.Inode.Ino != f.Ino || r.Inode.Nlink != 0 {
		t.Fatalf("remove result inode = %+v", r.Inode)
	}
	h.gone(v, d.Ino, "f")
	h.freed(v, f.Ino)
	want := map[GarbageKey][]string{
		{Vol: v, Ino: f.Ino, Index: 0, Version: 1}: {"n1", "n2"},
		{Vol: v, Ino: f.Ino, Index: 1, Version: 3}: {"n3"},
	}
	if got := h.garbage(); !mapsEqual(got, want) {
		t.Fatalf("garbage = %v, want %v", got, want)
	}
	if vol := h.vol("v"); vol.Bytes != bytesBefore-int64(cs+100) {
		t.Fatalf("volume bytes = %d, want %d", vol.Bytes, bytesBefore-int64(cs+100))
	}
	h.ok(&Remove{Vol: v, Parent: d.Ino, Name: "s"})
	h.freed(v, s.Ino)
	if vol := h.vol("v"); vol.Bytes != 0 {
		t.Fatalf("volume bytes after removing a symlink = %d, want 0", vol.Bytes)
	}
	if n := h.inode(v, d.Ino).Nlink; n != 3 {
		t.Fatalf("d nlink = %d, want 3 (it holds e)", n)
	}
	h.ok(&Remove{Vol: v, Parent: d.Ino, Name: "e", Dir: true})
	h.freed(v, e.Ino)
	if n := h.inode(v, d.Ino).Nlink; n != 2 {
		t.Fatalf("d nlink after rmdir e = %d, want 2", n)
	}
	h.ok(&Remove{Vol: v, Parent: RootIno, Name: "d", Dir: true})
	h.freed(v, d.Ino)
	if root := h.inode(v, RootIno); root.Nlink != 2 {
		t.Fatalf("root nlink = %d, want 2", root.Nlink)
	}
	if vol := h.vol("v"); vol.Files != 1 || vol.Bytes != 0 {
		t.Fatalf("volume after removing everything = %+v, want 1 file (root) and 0 bytes", vol)
	}
}

func TestRename(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	d1 := h.create(v, RootIno, "d1", TypeDir)
	d2 := h.create(v, RootIno, "d2", TypeDir)
	f := h.create(v, d1.Ino, "f", TypeFile)

	t.Run("within a directory", func(t *testing.T) {
		h.t = t
		r := h.ok(&Rename{Vol: v, SrcParent: d1.Ino, SrcName: "f", DstParent: d1.Ino, DstName: "g"})
		if r.Inode.Ino != f.Ino {
			t.Fatalf("rename result ino %d, want %d", r.Inode.Ino, f.Ino)
		}
		h.gone(v, d1.Ino, "f")
		if n := h.lookup(v, d1.Ino, "g"); n.Ino != f.Ino || n.Nlink != 1 {
			t.Fatalf("g = %+v", n)
		}
		if n := h.inode(v, d1.Ino).Nlink; n != 2 {
			t.Fatalf("d1 nlink = %d", n)
		}
	})
	t.Run("file across directories", func(t *testing.T) {
		h.t = t
		h.ok(&Rename{Vol: v, SrcParent: d1.Ino, SrcName: "g", DstParent: d2.Ino, DstName: "g"})
		h.gone(v, d1.Ino, "g")
		if n := h.lookup(v, d2.Ino, "g"); n.Ino != f.Ino {
			t.Fatalf("d2/g = %+v", n)
		}
		if h.inode(v, d1.Ino).Nlink != 2 || h.inode(v, d2.Ino).Nlink != 2 {
			t.Fatalf("moving a file changed directory link counts")
		}
	})
	t.Run("directory across directories", func(t *testing.T) {
		h.t = t
		sub := h.create(v, d1.Ino, "sub", TypeDir)
		h.create(v, sub.Ino, "inner", TypeFile)
		h.ok(&Rename{Vol: v, SrcParent: d1.Ino, SrcName: "sub", DstParent: d2.Ino, DstName: "moved"})
		if n := h.inode(v, d1.Ino).Nlink; n != 2 {
			t.Errorf("d1 nlink = %d, want 2", n)
		}
		if n := h.inode(v, d2.Ino).Nlink; n != 3 {
			t.Errorf("d2 nlink = %d, want 3", n)
		}
		if n := h.inode(v, sub.Ino); n.Parent != d2.Ino || n.Nlink != 2 {
			t.Errorf("moved dir = %+v, want parent %d", n, d2.Ino)
		}
		h.lookup(v, sub.Ino, "inner")
	})
	t.Run("over an existing file", func(t *testing.T) {
		h.t = t
		x := h.create(v, d2.Ino, "x", TypeFile)
		h.write(v, x.Ino, 0, 0, 1, cs, "n1", "n2")
		h.write(v, x.Ino, 1, 0, 1, 7, "n2", "n3")
		y := h.create(v, d2.Ino, "y", TypeFile)
		h.write(v, y.Ino, 0, 0, 1, 5, "n1")
		vol0 := h.vol("v")
		h.ok(&Rename{Vol: v, SrcParent: d2.Ino, SrcName: "y", DstParent: d2.Ino, DstName: "x"})
		h.gone(v, d2.Ino, "y")
		if n := h.lookup(v, d2.Ino, "x"); n.Ino != y.Ino || n.Size != 5 {
			t.Fatalf("x after rename = %+v, want inode %d", n, y.Ino)
		}
		h.freed(v, x.Ino)
		g := h.garbage()
		for idx, want := range [][]string{{"n1", "n2"}, {"n2", "n3"}} {
			if got := g[GarbageKey{Vol: v, Ino: x.Ino, Index: uint64(idx), Version: 1}]; !slices.Equal(got, want) {
				t.Errorf("garbage for replaced chunk %d = %v, want %v", idx, got, want)
			}
		}
		if len(h.chunks(v, y.Ino)) != 1 {
			t.Errorf("the renamed file lost its chunk")
		}
		vol := h.vol("v")
		if vol.Files != vol0.Files-1 || vol.Bytes != vol0.Bytes-int64(cs+7) {
			t.Errorf("volume counters %+v, was %+v", vol, vol0)
		}
	})
	t.Run("over a hard-linked file", func(t *testing.T) {
		h.t = t
		a := h.create(v, d2.Ino, "a", TypeFile)
		h.write(v, a.Ino, 0, 0, 1, 3, "n1")
		h.ok(&Link{Vol: v, Ino: a.Ino, Parent: d1.Ino, Name: "a-link"})
		b := h.create(v, d2.Ino, "b", TypeFile)
		gBefore := h.garbage()
		h.ok(&Rename{Vol: v, SrcParent: d2.Ino, SrcName: "b", DstParent: d2.Ino, DstName: "a"})
		if n := h.inode(v, a.Ino); n.Nlink != 1 {
			t.Fatalf("replaced inode with another link: nlink %d, want 1", n.Nlink)
		}
		if n := h.lookup(v, d2.Ino, "a"); n.Ino != b.Ino {
			t.Fatalf("a is %d, want %d", n.Ino, b.Ino)
		}
		if len(h.chunks(v, a.Ino)) != 1 || !mapsEqual(gBefore, h.garbage()) {
			t.Fatalf("a still-linked file lost chunks or gained garbage")
		}
	})
	t.Run("hard links to the same inode", func(t *testing.T) {
		h.t = t
		// POSIX: renaming a name onto another name of the same file does nothing.
		a := h.lookup(v, d1.Ino, "a-link")
		h.ok(&Link{Vol: v, Ino: a.Ino, Parent: d1.Ino, Name: "a-link2"})
		before := dumpDB(t, h.fsm)
		h.ok(&Rename{Vol: v, SrcParent: d1.Ino, SrcName: "a-link", DstParent: d1.Ino, DstName: "a-link2"})
		h.ok(&Rename{Vol: v, SrcParent: d1.Ino, SrcName: "a-link", DstParent: d1.Ino, DstName: "a-link"})
		if diff := diffDumps(before, dumpDB(t, h.fsm), ignoreBookkeeping); diff != "" {
			t.Fatalf("no-op renames changed meta.db:\n%s", diff)
		}
	})
	t.Run("directory over an empty directory", func(t *testing.T) {
		h.t = t
		e1 := h.create(v, d1.Ino, "e1", TypeDir)
		h.create(v, e1.Ino, "content", TypeFile)
		e2 := h.create(v, d2.Ino, "e2", TypeDir)
		n1, n2 := h.inode(v, d1.Ino).Nlink, h.inode(v, d2.Ino).Nlink
		h.ok(&Rename{Vol: v, SrcParent: d1.Ino, SrcName: "e1", DstParent: d2.Ino, DstName: "e2"})
		h.freed(v, e2.Ino)
		if n := h.lookup(v, d2.Ino, "e2"); n.Ino != e1.Ino || n.Parent != d2.Ino {
			t.Fatalf("d2/e2 = %+v, want inode %d with parent %d", n, e1.Ino, d2.Ino)
		}
		if got := h.inode(v, d1.Ino).Nlink; got != n1-1 {
			t.Errorf("d1 nlink %d, want %d", got, n1-1)
		}
		if got := h.inode(v, d2.Ino).Nlink; got != n2 {
			t.Errorf("d2 nlink %d, want %d", got, n2)
		}
		// Same directory.
		h.create(v, d2.Ino, "e3", TypeDir)
		n2 = h.inode(v, d2.Ino).Nlink
		h.ok(&Rename{Vol: v, SrcParent: d2.Ino, SrcName: "e2", DstParent: d2.Ino, DstName: "e3"})
		if got := h.inode(v, d2.Ino).Nlink; got != n2-1 {
			t.Errorf("d2 nlink after same-directory replace %d, want %d", got, n2-1)
		}
		h.lookup(v, e1.Ino, "content")
	})
	t.Run("failures", func(t *testing.T) {
		h.t = t
		a := h.create(v, RootIno, "a", TypeDir)
		b := h.create(v, a.Ino, "b", TypeDir)
		c := h.create(v, b.Ino, "c", TypeDir)
		h.create(v, c.Ino, "file", TypeFile)
		h.create(v, RootIno, "empty", TypeDir)
		h.create(v, RootIno, "plain", TypeFile)
		for _, dst := range []uint64{a.Ino, b.Ino, c.Ino} {
			h.fails(&Rename{Vol: v, SrcParent: RootIno, SrcName: "a", DstParent: dst, DstName: "a"}, ErrLoop, iofs.ErrInvalid)
		}
		h.fails(&Rename{Vol: v, SrcParent: a.Ino, SrcName: "b", DstParent: c.Ino, DstName: "x"}, ErrLoop)
		h.fails(&Rename{Vol: v, SrcParent: RootIno, SrcName: "empty", DstParent: RootIno, DstName: "a"}, ErrNotEmpty)
		h.fails(&Rename{Vol: v, SrcParent: RootIno, SrcName: "plain", DstParent: RootIno, DstName: "empty"}, ErrIsDir)
		h.fails(&Rename{Vol: v, SrcParent: RootIno, SrcName: "empty", DstParent: RootIno, DstName: "plain"}, ErrNotDir)
		h.fails(&Rename{Vol: v, SrcParent: RootIno, SrcName: "missing", DstParent: RootIno, DstName: "x"}, ErrNotExist, iofs.ErrNotExist)
		h.fails(&Rename{Vol: v, SrcParent: 999, SrcName: "a", DstParent: RootIno, DstName: "x"}, ErrNotExist)
		h.fails(&Rename{Vol: v, SrcParent: RootIno, SrcName: "a", DstParent: 999, DstName: "x"}, ErrNotExist)
		plain := h.lookup(v, RootIno, "plain")
		h.fails(&Rename{Vol: v, SrcParent: plain.Ino, SrcName: "a", DstParent: RootIno, DstName: "x"}, ErrNotDir)
		h.fails(&Rename{Vol: v, SrcParent: RootIno, SrcName: "a", DstParent: plain.Ino, DstName: "x"}, ErrNotDir)
		h.fails(&Rename{Vol: v, SrcParent: RootIno, SrcName: "plain", DstParent: RootIno, DstName: "a/b"}, ErrInvalid)
		h.fails(&Rename{Vol: v, SrcParent: RootIno, SrcName: "plain", DstParent: RootIno, DstName: ".."}, ErrInvalid)
		h.fails(&Rename{Vol: v, SrcParent: RootIno, SrcName: ".", DstParent: RootIno, DstName: "x"}, ErrInvalid)
		h.fails(&Rename{Vol: v, SrcParent: RootIno, SrcName: "plain", DstParent: RootIno, DstName: strings.Repeat("x", 256)}, ErrNameTooLong)
		h.fails(&Rename{Vol: 7, SrcParent: RootIno, SrcName: "plain", DstParent: RootIno, DstName: "x"}, ErrNoVolume)
		// Moving a directory sideways and up is fine.
		h.ok(&Rename{Vol: v, SrcParent: b.Ino, SrcName: "c", DstParent: RootIno, DstName: "c"})
		h.ok(&Rename{Vol: v, SrcParent: RootIno, SrcName: "a", DstParent: c.Ino, DstName: "a"})
		if n := h.inode(v, a.Ino); n.Parent != c.Ino {
			t.Fatalf("a's parent = %d, want %d", n.Parent, c.Ino)
		}
	})
}

func TestLink(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	d := h.create(v, RootIno, "d", TypeDir)
	f := h.create(v, RootIno, "f", TypeFile)
	h.write(v, f.Ino, 0, 0, 1, 10, "n1", "n2")
	s := h.create(v, RootIno, "s", TypeSymlink)

	r := h.ok(&Link{Vol: v, Ino: f.Ino, Parent: d.Ino, Name: "g"})
	if r.Inode.Nlink != 2 {
		t.Fatalf("link result nlink = %d, want 2", r.Inode.Nlink)
	}
	if a, b := h.lookup(v, RootIno, "f"), h.lookup(v, d.Ino, "g"); a.Ino != b.Ino || a.Nlink != 2 {
		t.Fatalf("f = %+v, d/g = %+v", a, b)
	}
	if n := h.inode(v, d.Ino).Nlink; n != 2 {
		t.Fatalf("linking a file changed the directory's nlink to %d", n)
	}
	h.ok(&Link{Vol: v, Ino: s.Ino, Parent: d.Ino, Name: "s2"}) // symlinks may be linked too
	files := h.vol("v").Files

	h.fails(&Link{Vol: v, Ino: d.Ino, Parent: RootIno, Name: "d2"}, ErrIsDir)
	h.fails(&Link{Vol: v, Ino: f.Ino, Parent: d.Ino, Name: "g"}, ErrExist, iofs.ErrExist)
	h.fails(&Link{Vol: v, Ino: 999, Parent: d.Ino, Name: "h"}, ErrNotExist, iofs.ErrNotExist)
	h.fails(&Link{Vol: v, Ino: f.Ino, Parent: 999, Name: "h"}, ErrNotExist)
	h.fails(&Link{Vol: v, Ino: f.Ino, Parent: f.Ino, Name: "h"}, ErrNotDir)
	h.fails(&Link{Vol: v, Ino: f.Ino, Parent: d.Ino, Name: ""}, ErrInvalid)
	h.fails(&Link{Vol: v, Ino: f.Ino, Parent: d.Ino, Name: strings.Repeat("h", 300)}, ErrNameTooLong)
	h.fails(&Link{Vol: 5, Ino: f.Ino, Parent: d.Ino, Name: "h"}, ErrNoVolume)

	h.ok(&Remove{Vol: v, Parent: RootIno, Name: "f"})
	h.gone(v, RootIno, "f")
	if n := h.lookup(v, d.Ino, "g"); n.Ino != f.Ino || n.Nlink != 1 || n.Size != 10 {
		t.Fatalf("remaining link = %+v", n)
	}
	if len(h.chunks(v, f.Ino)) != 1 || len(h.garbage()) != 0 || h.vol("v").Files != files {
		t.Fatalf("removing one of two links freed data")
	}
	h.ok(&Remove{Vol: v, Parent: d.Ino, Name: "g"})
	h.freed(v, f.Ino)
	if len(h.garbage()) != 1 || h.vol("v").Files != files-1 {
		t.Fatalf("removing the last link did not free the inode: garbage %v", h.garbage())
	}
}

func TestSetAttr(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	f := h.create(v, RootIno, "f", TypeFile)
	d := h.create(v, RootIno, "d", TypeDir)
	s := h.create(v, RootIno, "s", TypeSymlink)

	r := h.ok(&SetAttr{Vol: v, Ino: f.Ino, Mode: ptr[uint32](0o104750), UID: ptr[uint32](5), GID: ptr[uint32](6),
		Atime: ptr[int64](11), Mtime: ptr[int64](12)})
	n := h.inode(v, f.Ino)
	if n.Mode != 0o4750 || n.UID != 5 || n.GID != 6 || n.Atime != 11 || n.Mtime != 12 || n.Ctime <= f.Ctime || *r.Inode != *n {
		t.Fatalf("after setattr: %+v (result %+v)", n, r.Inode)
	}
	h.ok(&SetAttr{Vol: v, Ino: d.Ino, Mode: ptr[uint32](0o700)})
	if n := h.inode(v, d.Ino); n.Mode != 0o700 || n.Type != TypeDir {
		t.Fatalf("dir after chmod = %+v", n)
	}

	// Three chunks: full, full, 100 bytes.
	h.write(v, f.Ino, 0, 0, 1, cs, "n1", "n2")
	h.write(v, f.Ino, 1, 0, 1, cs, "n2", "n3")
	h.write(v, f.Ino, 2, 0, 4, 100, "n3", "n1")
	if n := h.inode(v, f.Ino); n.Size != 2*cs+100 || h.vol("v").Bytes != 2*cs+100 {
		t.Fatalf("size after writes = %d, bytes %d", n.Size, h.vol("v").Bytes)
	}

	// Truncate in the middle of chunk 1: chunk 2 becomes garbage, chunk 1 shrinks.
	h.ok(&SetAttr{Vol: v, Ino: f.Ino, Size: ptr[uint64](cs + cs/2)})
	chunks := h.chunks(v, f.Ino)
	if len(chunks) != 2 || chunks[0].Length != cs || chunks[0].Version != 1 ||
		chunks[1].Length != cs/2 || chunks[1].Version != 1 || !slices.Equal(chunks[1].Replicas, []string{"n2", "n3"}) {
		t.Fatalf("chunks after truncate = %+v", chunks)
	}
	want := map[GarbageKey][]string{{Vol: v, Ino: f.Ino, Index: 2, Version: 4}: {"n1", "n3"}}
	if got := h.garbage(); !mapsEqual(got, want) {
		t.Fatalf("garbage = %v, want %v", got, want)
	}
	if n := h.inode(v, f.Ino); n.Size != cs+cs/2 || h.vol("v").Bytes != cs+cs/2 {
		t.Fatalf("size %d bytes %d after truncate", n.Size, h.vol("v").Bytes)
	}
	// On a chunk boundary nothing is shortened.
	h.ok(&SetAttr{Vol: v, Ino: f.Ino, Size: ptr[uint64](cs)})
	if chunks := h.chunks(v, f.Ino); len(chunks) != 1 || chunks[0].Length != cs {
		t.Fatalf("chunks after truncate to one chunk = %+v", chunks)
	}
	// Growing adds no chunks (a hole).
	h.ok(&SetAttr{Vol: v, Ino: f.Ino, Size: ptr[uint64](10 * cs)})
	if n := h.inode(v, f.Ino); n.Size != 10*cs || len(h.chunks(v, f.Ino)) != 1 || h.vol("v").Bytes != 10*cs {
		t.Fatalf("after growing: %+v chunks %+v", n, h.chunks(v, f.Ino))
	}
	if _, ok, err := h.fsm.Chunk(v, f.Ino, 5); ok || err != nil {
		t.Fatalf("a hole has a chunk (%v)", err)
	}
	// Same size: nothing is dropped.
	h.ok(&SetAttr{Vol: v, Ino: f.Ino, Size: ptr[uint64](10 * cs)})
	if len(h.chunks(v, f.Ino)) != 1 {
		t.Fatalf("setattr to the same size dropped chunks")
	}
	h.ok(&SetAttr{Vol: v, Ino: f.Ino, Size: ptr[uint64](1)})
	if chunks := h.chunks(v, f.Ino); len(chunks) != 1 || chunks[0].Length != 1 {
		t.Fatalf("chunks after truncate to 1 = %+v", chunks)
	}
	h.ok(&SetAttr{Vol: v, Ino: f.Ino, Size: ptr[uint64](0)})
	if chunks := h.chunks(v, f.Ino); len(chunks) != 0 {
		t.Fatalf("chunks after truncate to 0 = %+v", chunks)
	}
	if g := h.garbage(); len(g) != 3 {
		t.Fatalf("garbage after truncating to 0 = %v, want 3 chunk versions", g)
	}
	if h.vol("v").Bytes != 0 {
		t.Fatalf("volume bytes %d, want 0", h.vol("v").Bytes)
	}

	h.fails(&SetAttr{Vol: v, Ino: d.Ino, Size: ptr[uint64](0)}, ErrIsDir)
	h.fails(&SetAttr{Vol: v, Ino: s.Ino, Size: ptr[uint64](0)}, ErrInvalid)
	h.fails(&SetAttr{Vol: v, Ino: f.Ino, Size: ptr[uint64](1<<62 + 1), Mode: ptr[uint32](0)}, ErrInvalid)
	h.fails(&SetAttr{Vol: v, Ino: 999, Mode: ptr[uint32](0)}, ErrNotExist, iofs.ErrNotExist)
	h.fails(&SetAttr{Vol: 3, Ino: f.Ino, Mode: ptr[uint32](0)}, ErrNoVolume)
}

func TestCommitWrite(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	f := h.create(v, RootIno, "f", TypeFile)
	d := h.create(v, RootIno, "d", TypeDir)
	s := h.create(v, RootIno, "s", TypeSymlink)

	n := h.write(v, f.Ino, 0, 0, 1, 100, "n1", "n2", "n3")
	if n.Size != 100 || n.Mtime == f.Mtime {
		t.Fatalf("after first write: %+v", n)
	}
	ch, ok, err := h.fsm.Chunk(v, f.Ino, 0)
	if err != nil || !ok || ch.Version != 1 || ch.Length != 100 || !slices.Equal(ch.Replicas, []string{"n1", "n2", "n3"}) {
		t.Fatalf("chunk 0 = %+v, %v, %v", ch, ok, err)
	}
	// n3 failed during the second write: version 1 on n3 is garbage.
	h.write(v, f.Ino, 0, 1, 2, 200, "n1", "n2")
	want := map[GarbageKey][]string{{Vol: v, Ino: f.Ino, Index: 0, Version: 1}: {"n3"}}
	if got := h.garbage(); !mapsEqual(got, want) {
		t.Fatalf("garbage = %v, want %v", got, want)
	}
	// Two chunks at once, one new, one overwritten with the same replicas.
	r := h.ok(&CommitWrite{Vol: v, Ino: f.Ino, Size: cs + 50, Chunks: []ChunkWrite{
		{Index: 0, BaseVersion: 2, Version: 3, Length: cs, Replicas: []string{"n1", "n2"}},
		{Index: 1, BaseVersion: 0, Version: 1, Length: 50, Replicas: []string{"n2", "n3"}},
	}})
	if r.Inode.Size != cs+50 || h.vol("v").Bytes != cs+50 {
		t.Fatalf("size %d bytes %d", r.Inode.Size, h.vol("v").Bytes)
	}
	if got := h.garbage(); !mapsEqual(got, want) {
		t.Fatalf("garbage after overwrite with the same replicas = %v, want %v", got, want)
	}
	// A write inside the file does not shrink it.
	h.write(v, f.Ino, 0, 3, 4, 10, "n1", "n2")
	if n := h.inode(v, f.Ino); n.Size != cs+50 {
		t.Fatalf("size after inner write = %d", n.Size)
	}

	h.fails(&CommitWrite{Vol: v, Ino: f.Ino, Size: 1, Chunks: []ChunkWrite{
		{Index: 0, BaseVersion: 3, Version: 5, Length: 1, Replicas: []string{"n1"}}}}, ErrConflict)
	h.fails(&CommitWrite{Vol: v, Ino: f.Ino, Size: 3 * cs, Chunks: []ChunkWrite{
		{Index: 2, BaseVersion: 0, Version: 1, Length: cs, Replicas: []string{"n1"}},
		{Index: 1, BaseVersion: 7, Version: 8, Length: cs, Replicas: []string{"n1"}}}}, ErrConflict)
	h.fails(&CommitWrite{Vol: v, Ino: f.Ino, Size: 1, Chunks: []ChunkWrite{
		{Index: 5, BaseVersion: 1, Version: 2, Length: 1, Replicas: []string{"n1"}}}}, ErrConflict)
	for _, w := range []ChunkWrite{
		{Index: 0, BaseVersion: 4, Version: 5, Length: 1},
		{Index: 0, BaseVersion: 4, Version: 4, Length: 1, Replicas: []string{"n1"}},
		{Index: 0, BaseVersion: 4, Version: 3, Length: 1, Replicas: []string{"n1"}},
		{Index: 0, BaseVersion: 4, Version: 5, Length: -1, Replicas: []string{"n1"}},
		{Index: 0, BaseVersion: 4, Version: 5, Length: cs + 1, Replicas: []string{"n1"}},
	} {
		h.fails(&CommitWrite{Vol: v, Ino: f.Ino, Size: 1, Chunks: []ChunkWrite{w}}, ErrInvalid)
	}
	// The same chunk twice in one command would leave the first version's
	// replicas unreferenced and never collected.
	h.fails(&CommitWrite{Vol: v, Ino: f.Ino, Size: 1, Chunks: []ChunkWrite{
		{Index: 3, BaseVersion: 0, Version: 1, Length: 1, Replicas: []string{"n1"}},
		{Index: 3, BaseVersion: 0, Version: 2, Length: 1, Replicas: []string{"n2"}}}}, ErrInvalid)
	h.fails(&CommitWrite{Vol: v, Ino: d.Ino, Size: 1, Chunks: []ChunkWrite{
		{Index: 0, Version: 1, Length: 1, Replicas: []string{"n1"}}}}, ErrIsDir)
	h.fails(&CommitWrite{Vol: v, Ino: s.Ino, Size: 1, Chunks: []ChunkWrite{
		{Index: 0, Version: 1, Length: 1, Replicas: []string{"n1"}}}}, ErrInvalid)
	h.fails(&CommitWrite{Vol: v, Ino: 999, Size: 1, Chunks: []ChunkWrite{
		{Index: 0, Version: 1, Length: 1, Replicas: []string{"n1"}}}}, ErrNotExist)
	h.fails(&CommitWrite{Vol: 4, Ino: f.Ino, Size: 1}, ErrNoVolume)
}

func TestGCDoneAndRegisterNode(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	f := h.create(v, RootIno, "f", TypeFile)
	h.write(v, f.Ino, 0, 0, 1, 1, "n1")
	h.write(v, f.Ino, 1, 0, 1, 1, "n1")
	h.ok(&Remove{Vol: v, Parent: RootIno, Name: "f"})
	if len(h.garbage()) != 2 {
		t.Fatalf("garbage = %v", h.garbage())
	}
	h.ok(&GCDone{Keys: []GarbageKey{{Vol: v, Ino: f.Ino, Index: 0, Version: 1}, {Vol: 9, Ino: 9}}})
	want := map[GarbageKey][]string{{Vol: v, Ino: f.Ino, Index: 1, Version: 1}: {"n1"}}
	if got := h.garbage(); !mapsEqual(got, want) {
		t.Fatalf("garbage after GCDone = %v, want %v", got, want)
	}

	h.ok(&RegisterNode{Header: Header{Time: 100}, Node: NodeInfo{ID: "n1", AZ: "az1", RaftAddr: "a:1"}})
	h.ok(&RegisterNode{Header: Header{Time: 200}, Node: NodeInfo{ID: "n1", AZ: "az2", RaftAddr: "a:2"}})
	nodes, err := h.fsm.Nodes()
	if err != nil || len(nodes) != 1 || nodes[0].Joined != 100 || nodes[0].AZ != "az2" || nodes[0].RaftAddr != "a:2" {
		t.Fatalf("nodes = %+v, %v; want n1 joined at 100 with the new address", nodes, err)
	}
	h.fails(&RegisterNode{Node: NodeInfo{AZ: "az1"}}, ErrInvalid)
}

func TestReadDirPagination(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	want := map[string]bool{}
	for i := 0; i < 50; i++ {
		name := fmt.Sprintf("entry-%02d", i)
		h.create(v, RootIno, name, TypeFile)
		want[name] = true
	}
	// Pages of 7 resume from the last cookie and see every entry once, in
	// cookie order; an entry removed between pages does not shift the rest.
	seen := map[string]bool{}
	var cookie, last uint64
	for page := 0; ; page++ {
		ents, inodes, err := h.fsm.ReadDir(v, RootIno, cookie, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 0 {
			break
		}
		for i, e := range ents {
			if inodes[i].Ino != e.Ino || e.Cookie != DirCookie(e.Name) || e.Cookie <= last {
				t.Fatalf("entry %+v (inode %d) out of order after cookie %d", e, inodes[i].Ino, last)
			}
			if seen[e.Name] {
				t.Fatalf("%s listed twice", e.Name)
			}
			seen[e.Name], last = true, e.Cookie
		}
		cookie = ents[len(ents)-1].Cookie
		if page == 2 {
			// Remove an entry already listed: the listing goes on unchanged.
			h.ok(&Remove{Vol: v, Parent: RootIno, Name: ents[0].Name})
			delete(want, ents[0].Name)
			seen[ents[0].Name] = false
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s never listed", name)
		}
	}
	if ents, _, _ := h.fsm.ReadDir(v, RootIno, 1<<64-1, 0); len(ents) != 0 {
		t.Fatalf("a listing past the last cookie returned %d entries", len(ents))
	}
}

// TestDuplicateRequest: a request ID applied again at a later index returns
// the first result and changes nothing.
func TestDuplicateRequest(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	create := func() *Create {
		return &Create{Header: Header{RequestID: "req-1"}, Vol: v, Parent: RootIno, Name: "f", Kind: TypeFile}
	}
	first := h.ok(create())
	files := h.vol("v").Files
	before := dumpDB(t, h.fsm)
	second := h.ok(create())
	if second.Inode == nil || *second.Inode != *first.Inode || second.Index != first.Index {
		t.Fatalf("retry result = %+v (inode %+v), want the first %+v (inode %+v)", second, second.Inode, first, first.Inode)
	}
	if diff := diffDumps(before, dumpDB(t, h.fsm), ignoreBookkeeping); diff != "" {
		t.Fatalf("retry changed meta.db:\n%s", diff)
	}
	if h.vol("v").Files != files {
		t.Fatalf("retry created another file")
	}
	// A new request ID for the same operation is a new operation.
	h.fails(&Create{Header: Header{RequestID: "req-2"}, Vol: v, Parent: RootIno, Name: "f", Kind: TypeFile}, ErrExist)

	// A failure is remembered too: the retry answers the same even though it
	// would now succeed.
	rm := func() *Remove { return &Remove{Header: Header{RequestID: "req-3"}, Vol: v, Parent: RootIno, Name: "g"} }
	h.fails(rm(), ErrNotExist)
	h.create(v, RootIno, "g", TypeFile)
	h.fails(rm(), ErrNotExist)
	h.lookup(v, RootIno, "g")

	// Non-idempotent operations: a retried rename and a retried write.
	ren := func() *Rename {
		return &Rename{Header: Header{RequestID: "req-4"}, Vol: v, SrcParent: RootIno, SrcName: "f", DstParent: RootIno, DstName: "f2"}
	}
	h.ok(ren())
	if err := h.apply(ren()).Err(); err != nil {
		t.Fatalf("retried rename: %v", err)
	}
	wr := func() *CommitWrite {
		return &CommitWrite{Header: Header{RequestID: "req-5"}, Vol: v, Ino: first.Inode.Ino, Size: 10, Chunks: []ChunkWrite{
			{Index: 0, BaseVersion: 0, Version: 1, Length: 10, Replicas: []string{"n1"}}}}
	}
	h.ok(wr())
	if err := h.apply(wr()).Err(); err != nil {
		t.Fatalf("retried write: %v", err)
	}

	// Records expire after requestTTL of proposer time, deterministically.
	h.now += int64(requestTTL) + 1
	h.ok(&RegisterNode{Header: Header{RequestID: "tick"}, Node: NodeInfo{ID: "n1"}})
	if d := dumpDB(t, h.fsm); len(d["requests"]) != 1 || len(d["reqtimes"]) != 1 {
		t.Fatalf("after the TTL the request table holds %d records (%d times), want only the newest",
			len(d["requests"]), len(d["reqtimes"]))
	}
	again := h.ok(create()) // applied again: "f" was renamed away, so a new file
	if again.Index == first.Index || again.Inode.Ino == first.Inode.Ino {
		t.Fatalf("expired request returned the old result %+v", again)
	}
}

// TestDuplicateRequestSmallClock: the duplicate table must work whatever the
// proposer clock reads (a test clock starting at zero, a node whose clock is
// off); pruning must never forget a record younger than requestTTL.
func TestDuplicateRequestSmallClock(t *testing.T) {
	h := newHarness(t)
	h.now = 0
	v := h.volume("v")
	c := &Create{Header: Header{RequestID: "r", Time: 5}, Vol: v, Parent: RootIno, Name: "f", Kind: TypeFile}
	first := h.ok(c)
	c2 := &Create{Header: Header{RequestID: "r", Time: 6}, Vol: v, Parent: RootIno, Name: "f", Kind: TypeFile}
	second := h.apply(c2)
	if err := second.Err(); err != nil || second.Inode == nil || second.Inode.Ino != first.Inode.Ino {
		t.Fatalf("retry with a small clock = %+v, %v; want the first result", second, err)
	}
}

// TestReplay applies a log, then replays it as raft does after a restart
// (from the last snapshot, which may be older than meta.db), reopens the file,
// and replays again with the rest of the log on top.
func TestReplay(t *testing.T) {
	ref := newHarness(t)
	workload(ref)
	logs := ref.logs
	want := dumpDB(t, ref.fsm)
	k := len(logs) * 2 / 3

	h := newHarness(t)
	for _, l := range logs[:k] {
		h.fsm.Apply(l)
	}
	mid := dumpDB(t, h.fsm)
	idx := h.fsm.AppliedIndex()
	if idx != logs[k-1].Index {
		t.Fatalf("AppliedIndex = %d, want %d", idx, logs[k-1].Index)
	}

	// Replay everything applied so far, one by one and as a batch.
	for _, l := range logs[:k] {
		r, ok := h.fsm.Apply(l).(*Result)
		if !ok || r.Err() != nil || r.Index != l.Index {
			t.Fatalf("replayed entry %d returned %+v", l.Index, r)
		}
	}
	h.fsm.ApplyBatch(logs[k/2 : k])
	if diff := diffDumps(mid, dumpDB(t, h.fsm), nil); diff != "" {
		t.Fatalf("replay changed meta.db:\n%s", diff)
	}
	if got := h.fsm.AppliedIndex(); got != idx {
		t.Fatalf("AppliedIndex after replay = %d, want %d", got, idx)
	}

	h.reopen()
	if got := h.fsm.AppliedIndex(); got != idx {
		t.Fatalf("AppliedIndex after reopen = %d, want %d", got, idx)
	}
	if diff := diffDumps(mid, dumpDB(t, h.fsm), nil); diff != "" {
		t.Fatalf("reopen changed meta.db:\n%s", diff)
	}

	// raft replays from its snapshot (say index 3) to the end of the log in
	// batches that straddle the applied index.
	rest := logs[2:]
	for len(rest) > 0 {
		n := min(len(rest), 7)
		out := h.fsm.ApplyBatch(rest[:n])
		if len(out) != n {
			t.Fatalf("ApplyBatch returned %d results for %d entries", len(out), n)
		}
		rest = rest[n:]
	}
	if diff := diffDumps(want, dumpDB(t, h.fsm), nil); diff != "" {
		t.Fatalf("replaying the log on top of the existing state diverged from applying it once:\n%s", diff)
	}
	if got := h.fsm.AppliedIndex(); got != logs[len(logs)-1].Index {
		t.Fatalf("final AppliedIndex = %d", got)
	}
}

// TestApplyBatchMatchesApply: applying a log in batches gives the same
// results and state as applying it entry by entry, including entries that
// are not commands.
func TestApplyBatchMatchesApply(t *testing.T) {
	ref := newHarness(t)
	workload(ref)
	logs := slices.Clone(ref.logs)
	// A configuration entry in the middle takes an index and nothing else.
	cfg := &raft.Log{Index: uint64(len(logs) + 1), Term: 1, Type: raft.LogConfiguration, Data: []byte("cfg")}
	logs = append(logs, cfg)

	one := newHarness(t)
	var want []any
	for _, l := range logs {
		want = append(want, one.fsm.Apply(l))
	}
	batch := newHarness(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var got []any
	for rest := logs; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(16))
		got = append(got, batch.fsm.ApplyBatch(rest[:n])...)
		rest = rest[n:]
	}
	for i := range logs {
		w, _ := want[i].(*Result)
		g, _ := got[i].(*Result)
		if (w == nil) != (g == nil) || w != nil && (w.Code != g.Code || w.Index != g.Index) {
			t.Errorf("entry %d: Apply gave %+v, ApplyBatch %+v", logs[i].Index, w, g)
		}
	}
	if diff := diffDumps(dumpDB(t, one.fsm), dumpDB(t, batch.fsm), nil); diff != "" {
		t.Fatalf("batched state differs:\n%s", diff)
	}
	if one.fsm.AppliedIndex() != cfg.Index || batch.fsm.AppliedIndex() != cfg.Index {
		t.Fatalf("applied index %d / %d, want %d", one.fsm.AppliedIndex(), batch.fsm.AppliedIndex(), cfg.Index)
	}
}

// workload applies a mix of successful and failing commands, some with
// request IDs and retries, that touches every command type.
func workload(h *harness) {
	v := h.volume("w")
	h.ok(&RegisterNode{Node: NodeInfo{ID: "n1", AZ: "az1"}})
	d := h.create(v, RootIno, "d", TypeDir)
	f := h.create(v, d.Ino, "f", TypeFile)
	h.write(v, f.Ino, 0, 0, 1, cs, "n1", "n2")
	h.write(v, f.Ino, 1, 0, 1, 9, "n1", "n2")
	h.apply(&Create{Vol: v, Parent: d.Ino, Name: "f", Kind: TypeFile}) // ErrExist
	c := &Create{Header: Header{RequestID: "w1"}, Vol: v, Parent: RootIno, Name: "g", Kind: TypeFile}
	g := h.ok(c).Inode
	h.apply(&Create{Header: Header{RequestID: "w1"}, Vol: v, Parent: RootIno, Name: "g", Kind: TypeFile})
	h.ok(&Link{Vol: v, Ino: f.Ino, Parent: RootIno, Name: "f-link"})
	h.ok(&Rename{Vol: v, SrcParent: RootIno, SrcName: "g", DstParent: d.Ino, DstName: "f"})
	h.write(v, g.Ino, 0, 0, 1, 5, "n3")
	h.ok(&SetAttr{Vol: v, Ino: f.Ino, Size: ptr[uint64](10)})
	h.write(v, f.Ino, 0, 1, 2, 10, "n1")
	h.apply(&CommitWrite{Vol: v, Ino: f.Ino, Size: 1, Chunks: []ChunkWrite{
		{Index: 0, BaseVersion: 1, Version: 2, Length: 1, Replicas: []string{"n1"}}}}) // ErrConflict
	e := h.create(v, RootIno, "e", TypeDir)
	h.create(v, e.Ino, "x", TypeSymlink)
	h.apply(&Remove{Vol: v, Parent: RootIno, Name: "e", Dir: true}) // ErrNotEmpty
	h.ok(&Remove{Vol: v, Parent: e.Ino, Name: "x"})
	h.ok(&Rename{Vol: v, SrcParent: RootIno, SrcName: "e", DstParent: d.Ino, DstName: "e"})
	h.ok(&Remove{Vol: v, Parent: RootIno, Name: "f-link"})
	v2 := h.volume("w2")
	h.create(v2, RootIno, "tmp", TypeFile)
	h.ok(&DeleteVolume{Name: "w2"})
	gs, _ := h.fsm.Garbage(1)
	h.ok(&GCDone{Keys: []GarbageKey{gs[0].Key}})
	h.create(v, d.Ino, "last", TypeFile)
}

// TestSnapshotRestore: a snapshot restored into another FSM reproduces the
// state and applied index, and both continue identically.
func TestSnapshotRestore(t *testing.T) {
	a := newHarness(t)
	workload(a)
	snap := snapshot(t, a.fsm)

	b := newHarness(t)
	b.volume("other") // state the restore must replace
	b.create(1, RootIno, "junk", TypeFile)
	if err := b.fsm.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if diff := diffDumps(dumpDB(t, a.fsm), dumpDB(t, b.fsm), nil); diff != "" {
		t.Fatalf("restored state differs:\n%s", diff)
	}
	if a.fsm.AppliedIndex() != b.fsm.AppliedIndex() {
		t.Fatalf("applied index %d after restore, want %d", b.fsm.AppliedIndex(), a.fsm.AppliedIndex())
	}
	// Both continue with the same entries.
	v := a.vol("w").ID
	a.create(v, RootIno, "after-snapshot", TypeFile)
	for _, l := range a.logs[len(a.logs)-1:] {
		b.fsm.Apply(l)
	}
	if diff := diffDumps(dumpDB(t, a.fsm), dumpDB(t, b.fsm), nil); diff != "" {
		t.Fatalf("state after applying past the snapshot differs:\n%s", diff)
	}
	// The restored file is the FSM's file: it survives a reopen.
	b.reopen()
	if diff := diffDumps(dumpDB(t, a.fsm), dumpDB(t, b.fsm), nil); diff != "" {
		t.Fatalf("restored state lost on reopen:\n%s", diff)
	}

	// A snapshot taken before later writes does not see them.
	old := a.fsm
	s1, err := old.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	a.create(v, RootIno, "not-in-snapshot", TypeFile)
	var sk sink
	if err := s1.Persist(&sk); err != nil {
		t.Fatal(err)
	}
	s1.Release()
	c := newHarness(t)
	if err := c.fsm.Restore(io.NopCloser(&sk.Buffer)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	c.gone(v, RootIno, "not-in-snapshot")
	c.lookup(v, RootIno, "after-snapshot")
}

// TestApplyDuringSnapshot: raft persists a snapshot in its own goroutine
// while Apply goes on; Apply must not wait for the snapshot (bbolt remapping
// a growing file waits for every open read transaction), and the snapshot
// must hold exactly the state at the time it was taken.
func TestApplyDuringSnapshot(t *testing.T) {
	h := newHarness(t)
	v := h.volume("v")
	h.create(v, RootIno, "before", TypeFile)
	want := dumpDB(t, h.fsm)
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			snap.Release()
		}
	}
	defer release()

	// Enough long names to grow meta.db well past bbolt's first mmap.
	var logs []*raft.Log
	for i := range 2000 {
		name := fmt.Sprintf("%04d-%s", i, strings.Repeat("x", 200))
		logs = append(logs, h.entry(&Create{Vol: v, Parent: RootIno, Name: name, Kind: TypeFile}))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(logs); i += 50 {
			h.fsm.ApplyBatch(logs[i:min(i+50, len(logs))])
		}
	}()
	persisted := make(chan error, 1)
	var s sink
	go func() { persisted <- snap.Persist(&s) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		release() // let the stuck Apply finish before the test ends
		<-done
		t.Fatal("Apply waited for an open snapshot")
	}
	if err := <-persisted; err != nil {
		t.Fatalf("Persist: %v", err)
	}
	release()
	if got := h.fsm.AppliedIndex(); got != logs[len(logs)-1].Index {
		t.Fatalf("AppliedIndex %d", got)
	}
	r := newHarness(t)
	if err := r.fsm.Restore(io.NopCloser(&s.Buffer)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if diff := diffDumps(want, dumpDB(t, r.fsm), nil); diff != "" {
		t.Fatalf("snapshot does not hold the state it was taken at:\n%.2000s", diff)
	}
}

func TestRestoreRejectsGarbage(t *testing.T) {
	h := newHarness(t)
	workload(h)
	valid := snapshot(t, h.fsm)
	newer := newerVersionFile(t)
	rng := rand.New(rand.NewPCG(7, 7))
	noise := make([]byte, 64<<10)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	for name, data := range map[string][]byte{
		"empty":          nil,
		"text":           []byte("this is not a bbolt file"),
		"noise":          noise,
		"first page":     valid[:4096],
		"newer storage":  newer,
		"one meta page":  valid[:len(valid)/4],
		"truncated":      valid[:len(valid)-4096],
		"half":           valid[:len(valid)/2],
		"corrupted meta": corruptMeta(valid),
		"corrupted page": corruptPages(valid),
	} {
		t.Run(name, func(t *testing.T) {
			before := dumpDB(t, h.fsm)
			idx := h.fsm.AppliedIndex()
			if err := h.fsm.Restore(io.NopCloser(bytes.NewReader(data))); err == nil {
				t.Fatalf("Restore accepted %s", name)
			} else {
				t.Logf("Restore(%s): %v", name, err)
			}
			if diff := diffDumps(before, dumpDB(t, h.fsm), nil); diff != "" || h.fsm.AppliedIndex() != idx {
				t.Fatalf("failed restore changed the FSM:\n%s", diff)
			}
			h.t = t
			h.create(h.vol("w").ID, RootIno, "usable-"+strings.ReplaceAll(name, " ", "-"), TypeFile)
		})
	}
}

// corruptMeta flips bytes in both bbolt meta pages (checksummed).
func corruptMeta(db []byte) []byte {
	out := slices.Clone(db)
	for _, off := range []int{16 + 32, 4096 + 16 + 32} {
		out[off] ^= 0xff
	}
	return out
}

// corruptPages scrambles the header (id and flags) of every data page.
func corruptPages(db []byte) []byte {
	out := slices.Clone(db)
	for off := 2 * 4096; off+16 <= len(out); off += 4096 {
		for i := range 10 {
			out[off+i] ^= 0x5a
		}
	}
	return out
}

type erroringReader struct{ n int }

func (r *erroringReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestRestoreReadError(t *testing.T) {
	h := newHarness(t)
	workload(h)
	before := dumpDB(t, h.fsm)
	if err := h.fsm.Restore(io.NopCloser(&erroringReader{n: 10000})); err == nil {
		t.Fatal("Restore of a broken stream succeeded")
	}
	if diff := diffDumps(before, dumpDB(t, h.fsm), nil); diff != "" {
		t.Fatalf("failed restore changed the FSM:\n%s", diff)
	}
}

func mustHex(t testing.TB, s string) string {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return string(b)
}

func mapsEqual(a, b map[GarbageKey][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

func TestSetExport(t *testing.T) {
	h := newHarness(t)
	v := h.ok(&CreateVolume{Name: "ex", Replicas: 3, WriteQuorum: 2, ChunkSize: 1 << 20, RootMode: 0o755}).Volume
	if !reflect.DeepEqual(v.Export, DefaultExport()) {
		t.Fatalf("new volume export = %+v, want the default %+v", v.Export, DefaultExport())
	}
	want := Export{ReadOnly: true, Clients: []string{"10.1.0.0/16", "192.168.7.7/32"}, Squash: SquashAll, AnonUID: 500, AnonGID: 501}
	h.ok(&SetExport{Name: "ex", Export: want})
	if got := h.vol("ex").Export; !reflect.DeepEqual(got, want) {
		t.Fatalf("export = %+v, want %+v", got, want)
	}
	h.fails(&SetExport{Name: "ex", Export: Export{Squash: "sometimes"}}, ErrInvalid)
	h.fails(&SetExport{Name: "ex", Export: Export{Squash: SquashRoot, Clients: []string{"10.0.0.1"}}}, ErrInvalid)
	h.fails(&SetExport{Name: "nope", Export: DefaultExport()}, ErrNoVolume)
	if !want.Allows(net.ParseIP("10.1.2.3")) || want.Allows(net.ParseIP("10.2.0.1")) || !DefaultExport().Allows(net.ParseIP("8.8.8.8")) {
		t.Fatal("Allows does not follow the client networks")
	}
}
