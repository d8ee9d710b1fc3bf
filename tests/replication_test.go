package tests

import (
	"bytes"
	"fmt"
	"math/rand"
	"slices"
	"testing"

	nfsc "github.com/willscott/go-nfs-client/nfs"
)

// TestWriteOnOneNodeReadOnOthers writes a 20 MiB file and a small tree
// through node 1 and reads everything back through nodes 2 and 3 using the
// file handles node 1 minted.
func TestWriteOnOneNodeReadOnOthers(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	cl1, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl1.Close()

	rng := rand.New(rand.NewSource(1))
	big := make([]byte, 20<<20)
	rng.Read(big)
	f, err := cl1.Target.OpenFile("big.bin", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(big); err != nil {
		t.Fatalf("write big file: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	for _, d := range []string{"a", "a/b", "a/b/c"} {
		if _, err := cl1.Target.Mkdir(d, 0o755); err != nil {
			t.Fatalf("mkdir %s: %v", d, err)
		}
	}
	small := map[string][]byte{}
	for i := 0; i < 100; i++ {
		name := fmt.Sprintf("a/b/f%03d", i)
		data := []byte(fmt.Sprintf("small file %d %x", i, rng.Int63()))
		sf, err := cl1.Target.OpenFile(name, 0o644)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		if _, err := sf.Write(data); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
		sf.Close()
		small[name] = data
	}
	if err := cl1.Target.Symlink("b/f001", "a/link"); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	if err := cl1.Target.Rename("a/b/f000", "a/b/c/renamed"); err != nil {
		t.Fatalf("rename: %v", err)
	}
	small["a/b/c/renamed"] = small["a/b/f000"]
	delete(small, "a/b/f000")

	// Handles minted by node 1.
	handles := map[string][]byte{}
	for _, p := range []string{"big.bin", "a", "a/b", "a/b/c", "a/link"} {
		if handles[p], err = cl1.Handle(p); err != nil {
			t.Fatalf("lookup %s on node 1: %v", p, err)
		}
	}
	for name := range small {
		if handles[name], err = cl1.Handle(name); err != nil {
			t.Fatalf("lookup %s on node 1: %v", name, err)
		}
	}

	for i := 1; i < 3; i++ {
		cl, err := Mount(c.NFSAddr(i), "/vol")
		if err != nil {
			t.Fatalf("mount node %d: %v", i+1, err)
		}
		got, err := cl.ReadHandle(handles["big.bin"])
		if err != nil {
			t.Fatalf("node %d: read big file by node 1's handle: %v", i+1, err)
		}
		if !bytes.Equal(got, big) {
			t.Fatalf("node %d: big file differs (%d bytes read, want %d)", i+1, len(got), len(big))
		}
		for name, want := range small {
			got, err := cl.ReadHandle(handles[name])
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("node %d: %s by handle: %q, %v; want %q", i+1, name, got, err, want)
			}
		}
		// Directory handles from node 1 work here: list a/b through them.
		at, err := cl.At(handles["a/b"])
		if err != nil {
			t.Fatalf("node %d: target at a/b: %v", i+1, err)
		}
		ents, err := at.ReadDirPlus(".")
		if err != nil {
			t.Fatalf("node %d: readdir a/b: %v", i+1, err)
		}
		var names []string
		for _, e := range ents {
			if e.Name() != "." && e.Name() != ".." {
				names = append(names, e.Name())
			}
		}
		slices.Sort(names)
		var want []string
		for n := 1; n < 100; n++ {
			want = append(want, fmt.Sprintf("f%03d", n))
		}
		want = append(want, "c")
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Fatalf("node %d: a/b lists %d entries %v..., want %d", i+1, len(names), names[:min(5, len(names))], len(want))
		}
		// The symlink by handle.
		attr, err := cl.GetAttr(handles["a/link"])
		if err != nil {
			t.Fatalf("node %d: getattr symlink: %v", i+1, err)
		}
		if attr.Type != nfsc.NF3Lnk {
			t.Fatalf("node %d: a/link has type %d, not a symlink", i+1, attr.Type)
		}
		lt, err := cl.At(handles["a"])
		if err != nil {
			t.Fatal(err)
		}
		lf, err := lt.Open("link")
		if err != nil {
			t.Fatalf("node %d: open link: %v", i+1, err)
		}
		if target, err := lf.Readlink(); err != nil || target != "b/f001" {
			t.Fatalf("node %d: readlink = %q, %v", i+1, target, err)
		}
		cl.Close()
	}
}
