package meta

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

var (
	modelSeed = flag.Uint64("model.seed", 1, "seed of TestModel's random operations")
	modelOps  = flag.Int("model.ops", 4000, "operations TestModel runs")
)

// mInode is the model of one inode.
type mInode struct {
	typ    FileType
	nlink  uint32
	size   uint64
	parent uint64            // directories only
	ents   map[string]uint64 // directories only
	chunks map[uint64]*mChunk
}

type mChunk struct {
	version  uint64
	length   int64
	replicas []string
}

// nsModel is a tiny in-memory model of one volume's namespace with the
// semantics the FSM promises, written independently of apply.go. Every
// operation returns the error code the FSM must return.
type nsModel struct {
	inodes  map[uint64]*mInode
	next    uint64
	garbage map[GarbageKey][]string
}

func newModel() *nsModel {
	return &nsModel{
		inodes:  map[uint64]*mInode{RootIno: {typ: TypeDir, nlink: 2, parent: RootIno, ents: map[string]uint64{}}},
		next:    RootIno + 1,
		garbage: map[GarbageKey][]string{},
	}
}

// dir returns the directory ino, or the code for why it is not one.
func (m *nsModel) dir(ino uint64) (*mInode, Code) {
	d := m.inodes[ino]
	if d == nil {
		return nil, CodeNotExist
	}
	if d.typ != TypeDir {
		return nil, CodeNotDir
	}
	return d, CodeOK
}

func (m *nsModel) create(parent uint64, name string, typ FileType, target string) Code {
	p, code := m.dir(parent)
	if code != CodeOK {
		return code
	}
	if _, ok := p.ents[name]; ok {
		return CodeExist
	}
	n := &mInode{typ: typ, nlink: 1}
	switch typ {
	case TypeDir:
		n.nlink, n.parent, n.ents = 2, parent, map[string]uint64{}
		p.nlink++
	case TypeSymlink:
		n.size = uint64(len(target))
	case TypeFile:
		n.chunks = map[uint64]*mChunk{}
	}
	m.inodes[m.next] = n
	p.ents[name] = m.next
	m.next++
	return CodeOK
}

func (m *nsModel) addGarbage(ino, index uint64, c *mChunk, replicas []string) {
	if len(replicas) == 0 {
		return
	}
	k := GarbageKey{Vol: 1, Ino: ino, Index: index, Version: c.version}
	set := slices.Clone(m.garbage[k])
	for _, r := range replicas {
		if !slices.Contains(set, r) {
			set = append(set, r)
		}
	}
	slices.Sort(set)
	m.garbage[k] = set
}

// unlink drops one link to ino, freeing it (and its chunks) at zero.
func (m *nsModel) unlink(ino uint64) {
	n := m.inodes[ino]
	if n.typ == TypeDir {
		n.nlink = 0
	} else {
		n.nlink--
	}
	if n.nlink > 0 {
		return
	}
	for idx, c := range n.chunks {
		m.addGarbage(ino, idx, c, c.replicas)
	}
	delete(m.inodes, ino)
}

func (m *nsModel) remove(parent uint64, name string, dir bool) Code {
	p, code := m.dir(parent)
	if code != CodeOK {
		return code
	}
	ino, ok := p.ents[name]
	if !ok {
		return CodeNotExist
	}
	c := m.inodes[ino]
	if dir {
		if c.typ != TypeDir {
			return CodeNotDir
		}
		if len(c.ents) > 0 {
			return CodeNotEmpty
		}
	} else if c.typ == TypeDir {
		return CodeIsDir
	}
	delete(p.ents, name)
	if c.typ == TypeDir {
		p.nlink--
	}
	m.unlink(ino)
	return CodeOK
}

func (m *nsModel) rename(sp uint64, sn string, dp uint64, dn string) Code {
	s, code := m.dir(sp)
	if code != CodeOK {
		return code
	}
	d, code := m.dir(dp)
	if code != CodeOK {
		return code
	}
	ino, ok := s.ents[sn]
	if !ok {
		return CodeNotExist
	}
	src := m.inodes[ino]
	if src.typ == TypeDir && sp != dp {
		for at := dp; ; at = m.inodes[at].parent {
			if at == ino {
				return CodeLoop
			}
			if at == RootIno {
				break
			}
		}
	}
	if dino, ok := d.ents[dn]; ok {
		if dino == ino {
			return CodeOK
		}
		dst := m.inodes[dino]
		switch {
		case src.typ == TypeDir && dst.typ != TypeDir:
			return CodeNotDir
		case src.typ != TypeDir && dst.typ == TypeDir:
			return CodeIsDir
		case dst.typ == TypeDir && len(dst.ents) > 0:
			return CodeNotEmpty
		}
		if dst.typ == TypeDir {
			d.nlink--
		}
		m.unlink(dino)
	}
	delete(s.ents, sn)
	d.ents[dn] = ino
	if src.typ == TypeDir && sp != dp {
		s.nlink--
		d.nlink++
		src.parent = dp
	}
	return CodeOK
}

func (m *nsModel) link(ino, parent uint64, name string) Code {
	n := m.inodes[ino]
	if n == nil {
		return CodeNotExist
	}
	if n.typ == TypeDir {
		return CodeIsDir
	}
	p, code := m.dir(parent)
	if code != CodeOK {
		return code
	}
	if _, ok := p.ents[name]; ok {
		return CodeExist
	}
	n.nlink++
	p.ents[name] = ino
	return CodeOK
}

func (m *nsModel) setSize(ino, size uint64) Code {
	n := m.inodes[ino]
	switch {
	case n == nil:
		return CodeNotExist
	case n.typ == TypeDir:
		return CodeIsDir
	case n.typ != TypeFile:
		return CodeInvalid
	}
	if size < n.size {
		for idx, c := range n.chunks {
			start := idx * cs
			switch {
			case start >= size:
				m.addGarbage(ino, idx, c, c.replicas)
				delete(n.chunks, idx)
			case int64(size-start) < c.length:
				c.length = int64(size - start)
			}
		}
	}
	n.size = size
	return CodeOK
}

func (m *nsModel) write(ino, index, base, version uint64, length int64, replicas []string) Code {
	n := m.inodes[ino]
	switch {
	case n == nil:
		return CodeNotExist
	case n.typ == TypeDir:
		return CodeIsDir
	case n.typ != TypeFile:
		return CodeInvalid
	}
	old := n.chunks[index]
	cur := uint64(0)
	if old != nil {
		cur = old.version
	}
	if cur != base {
		return CodeConflict
	}
	if old != nil {
		// Only replicas the chunk still lists are kept (the FSM's volume
		// has write quorum 2).
		keep := slices.DeleteFunc(slices.Clone(replicas), func(r string) bool { return !slices.Contains(old.replicas, r) })
		if len(keep) < len(replicas) && len(keep) < 2 {
			return CodeConflict
		}
		if len(keep) < len(replicas) {
			left := slices.DeleteFunc(slices.Clone(replicas), func(r string) bool { return slices.Contains(keep, r) })
			m.addGarbage(ino, index, &mChunk{version: version}, left)
		}
		replicas = keep
		var dropped []string
		for _, r := range old.replicas {
			if !slices.Contains(replicas, r) {
				dropped = append(dropped, r)
			}
		}
		m.addGarbage(ino, index, old, dropped)
	}
	n.chunks[index] = &mChunk{version: version, length: length, replicas: slices.Clone(replicas)}
	n.size = max(n.size, index*cs+uint64(length))
	return CodeOK
}

// modelOp is one generated operation: its command and what the model said.
type modelOp struct {
	desc string
	cmd  Command
	want Code
	ino  uint64 // for a successful create: the inode it must get
}

// gen draws random operations against the model's current state.
type gen struct {
	rng *rand.Rand
	m   *nsModel
	vol uint32
}

var modelNames = []string{"a", "b", "c", "d", "e", "f"}

func (g *gen) name() string { return modelNames[g.rng.IntN(len(modelNames))] }

func (g *gen) sortedInos(keep func(*mInode) bool) []uint64 {
	var out []uint64
	for ino, n := range g.m.inodes {
		if keep(n) {
			out = append(out, ino)
		}
	}
	slices.Sort(out)
	return out
}

// dir mostly returns an existing directory, sometimes a file or a missing inode.
func (g *gen) dir() uint64 {
	switch r := g.rng.IntN(100); {
	case r < 88:
		dirs := g.sortedInos(func(n *mInode) bool { return n.typ == TypeDir })
		return dirs[g.rng.IntN(len(dirs))]
	case r < 96:
		return g.ino()
	default:
		return g.m.next + uint64(g.rng.IntN(3))
	}
}

func (g *gen) ino() uint64 {
	if g.rng.IntN(100) < 4 {
		return g.m.next + 7
	}
	all := g.sortedInos(func(*mInode) bool { return true })
	return all[g.rng.IntN(len(all))]
}

func (g *gen) file() uint64 {
	files := g.sortedInos(func(n *mInode) bool { return n.typ == TypeFile })
	if len(files) == 0 || g.rng.IntN(100) < 5 {
		return g.ino()
	}
	return files[g.rng.IntN(len(files))]
}

func (g *gen) size() uint64 {
	switch g.rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return uint64(g.rng.IntN(4)) * cs
	case 2:
		return uint64(g.rng.IntN(4))*cs + 1
	default:
		return uint64(g.rng.IntN(4 * cs))
	}
}

var modelNodes = []string{"n1", "n2", "n3"}

func (g *gen) replicas() []string {
	var out []string
	for _, n := range modelNodes {
		if g.rng.IntN(3) > 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = []string{modelNodes[g.rng.IntN(len(modelNodes))]}
	}
	return out
}

// create applies c to the model; a successful create must get the next
// inode number.
func (g *gen) create(desc string, c *Create) modelOp {
	ino := g.m.next
	return modelOp{desc: desc, cmd: c, want: g.m.create(c.Parent, c.Name, c.Kind, c.Target), ino: ino}
}

func (g *gen) next() modelOp {
	m, v := g.m, g.vol
	switch r := g.rng.IntN(100); {
	case r < 20:
		p, n := g.dir(), g.name()
		return g.create(fmt.Sprintf("create %d/%s", p, n), &Create{Vol: v, Parent: p, Name: n, Kind: TypeFile, Mode: 0o644})
	case r < 30:
		p, n := g.dir(), g.name()
		return g.create(fmt.Sprintf("mkdir %d/%s", p, n), &Create{Vol: v, Parent: p, Name: n, Kind: TypeDir, Mode: 0o755})
	case r < 33:
		p, n := g.dir(), g.name()
		target := strings.Repeat("t", 1+g.rng.IntN(20))
		return g.create(fmt.Sprintf("symlink %d/%s", p, n), &Create{Vol: v, Parent: p, Name: n, Kind: TypeSymlink, Target: target})
	case r < 45:
		p, n := g.dir(), g.name()
		return modelOp{fmt.Sprintf("remove %d/%s", p, n), &Remove{Vol: v, Parent: p, Name: n}, m.remove(p, n, false), 0}
	case r < 53:
		p, n := g.dir(), g.name()
		return modelOp{fmt.Sprintf("rmdir %d/%s", p, n), &Remove{Vol: v, Parent: p, Name: n, Dir: true}, m.remove(p, n, true), 0}
	case r < 68:
		sp, sn, dp, dn := g.dir(), g.name(), g.dir(), g.name()
		return modelOp{fmt.Sprintf("rename %d/%s %d/%s", sp, sn, dp, dn),
			&Rename{Vol: v, SrcParent: sp, SrcName: sn, DstParent: dp, DstName: dn}, m.rename(sp, sn, dp, dn), 0}
	case r < 75:
		ino, p, n := g.ino(), g.dir(), g.name()
		return modelOp{fmt.Sprintf("link %d %d/%s", ino, p, n), &Link{Vol: v, Ino: ino, Parent: p, Name: n}, m.link(ino, p, n), 0}
	case r < 85:
		ino, size := g.file(), g.size()
		return modelOp{fmt.Sprintf("truncate %d %d", ino, size), &SetAttr{Vol: v, Ino: ino, Size: &size}, m.setSize(ino, size), 0}
	default:
		ino, index := g.file(), uint64(g.rng.IntN(4))
		base := uint64(0)
		if n := m.inodes[ino]; n != nil && n.chunks[index] != nil {
			base = n.chunks[index].version
		}
		if g.rng.IntN(10) == 0 {
			base += 1 + uint64(g.rng.IntN(2)) // a writer that lost a race
		}
		length := int64(1 + g.rng.IntN(cs))
		reps := g.replicas()
		version := base + 1
		return modelOp{fmt.Sprintf("write %d[%d] v%d->v%d len %d %v", ino, index, base, version, length, reps),
			&CommitWrite{Vol: v, Ino: ino, Size: index*cs + uint64(length), Chunks: []ChunkWrite{
				{Index: index, BaseVersion: base, Version: version, Length: length, Replicas: reps}}},
			m.write(ino, index, base, version, length, reps), 0}
	}
}

// TestModel runs random namespace operations on the FSM and on nsModel and
// compares every result, and periodically the whole volume.
func TestModel(t *testing.T) {
	seed := *modelSeed
	t.Logf("seed %d (rerun with -model.seed=%d), %d operations", seed, seed, *modelOps)
	h := newHarness(t)
	v := h.volume("model")
	if v != 1 {
		t.Fatalf("model volume has ID %d, the model assumes 1", v)
	}
	m := newModel()
	g := &gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), m: m, vol: v}
	codes := map[Code]int{}
	for done := 0; done < *modelOps; {
		// Batches of 1-8 commands, generated against the model in order.
		n := min(1+g.rng.IntN(8), *modelOps-done)
		ops := make([]modelOp, n)
		logs := make([]*raft.Log, n)
		for i := range ops {
			ops[i] = g.next()
			logs[i] = h.entry(ops[i].cmd)
		}
		results := h.fsm.ApplyBatch(logs)
		for i, op := range ops {
			r := results[i].(*Result)
			codes[r.Code]++
			if r.Code != op.want {
				t.Fatalf("op %d (%s): FSM returned code %d (%s), model says %d", done+i, op.desc, r.Code, r.Msg, op.want)
			}
			if op.ino != 0 && r.Code == CodeOK && (r.Inode == nil || r.Inode.Ino != op.ino) {
				t.Fatalf("op %d (%s): created inode %+v, model says %d", done+i, op.desc, r.Inode, op.ino)
			}
		}
		done += n
		if done%500 < n {
			compareModel(t, h, m, fmt.Sprintf("after op %d", done))
		}
	}
	compareModel(t, h, m, "at the end")
	t.Logf("result codes: %v; %d inodes, %d garbage records", codes, len(m.inodes), len(m.garbage))
	for _, c := range []Code{CodeOK, CodeNotExist, CodeExist, CodeNotEmpty, CodeNotDir, CodeIsDir, CodeLoop, CodeConflict} {
		if codes[c] == 0 && *modelOps >= 2000 {
			t.Errorf("no operation returned code %d: the generator does not cover it", c)
		}
	}

	// The state survives a snapshot/restore and a reopen unchanged.
	want := dumpDB(t, h.fsm)
	r := newHarness(t)
	if err := r.fsm.Restore(io.NopCloser(bytes.NewReader(snapshot(t, h.fsm)))); err != nil {
		t.Fatal(err)
	}
	compareModel(t, r, m, "after restore")
	h.reopen()
	if diff := diffDumps(want, dumpDB(t, h.fsm), nil); diff != "" {
		t.Fatalf("reopen changed state:\n%.2000s", diff)
	}
}

// compareModel checks the FSM's volume against the model: the tree walked
// from the root (names, inode numbers, types, nlink, sizes, parents), no
// orphan inodes or dirents, chunks, garbage and the volume counters.
func compareModel(t *testing.T, h *harness, m *nsModel, when string) {
	t.Helper()
	const v = 1
	seen := map[uint64]bool{}
	var walk func(dir uint64, path string)
	walk = func(dir uint64, path string) {
		ents, inodes, err := h.fsm.ReadDir(v, dir, 0, 0)
		if err != nil {
			t.Fatalf("%s: ReadDir(%s): %v", when, path, err)
		}
		md := m.inodes[dir]
		got := map[string]uint64{}
		for i, e := range ents {
			got[e.Name] = e.Ino
			if md.ents[e.Name] != e.Ino {
				continue // reported below
			}
			want := m.inodes[e.Ino]
			n := inodes[i]
			p := path + "/" + e.Name
			if n.Type != want.typ || n.Nlink != want.nlink || n.Size != want.size {
				t.Fatalf("%s: %s (ino %d) is %s nlink %d size %d; model: %s nlink %d size %d",
					when, p, e.Ino, n.Type, n.Nlink, n.Size, want.typ, want.nlink, want.size)
			}
			if n.Type == TypeDir {
				if n.Parent != dir {
					t.Fatalf("%s: %s has parent %d, want %d", when, p, n.Parent, dir)
				}
				if !seen[e.Ino] {
					seen[e.Ino] = true
					walk(e.Ino, p)
				}
			}
			seen[e.Ino] = true
		}
		if !maps.Equal(got, md.ents) {
			t.Fatalf("%s: directory %s (ino %d) holds %v; model: %v", when, path, dir, got, md.ents)
		}
	}
	root := h.inode(v, RootIno)
	if root.Nlink != m.inodes[RootIno].nlink {
		t.Fatalf("%s: root nlink %d, model %d", when, root.Nlink, m.inodes[RootIno].nlink)
	}
	seen[RootIno] = true
	walk(RootIno, "")

	// Every stored inode is reachable and every model inode stored.
	var stored []uint64
	var dirents int
	if err := h.fsm.view(func(tx *bolt.Tx) error {
		prefix := volKey(v)
		c := tx.Bucket(bucketInodes).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			stored = append(stored, binary.BigEndian.Uint64(k[4:]))
		}
		c = tx.Bucket(bucketDirents).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			dirents++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantInos := slices.Sorted(maps.Keys(m.inodes))
	if !slices.Equal(stored, wantInos) {
		t.Fatalf("%s: stored inodes %v; model %v", when, stored, wantInos)
	}
	for _, ino := range wantInos {
		if !seen[ino] {
			t.Fatalf("%s: inode %d is stored but unreachable", when, ino)
		}
	}
	wantDirents := 0
	var files, bytesUsed int64
	for _, n := range m.inodes {
		wantDirents += len(n.ents)
		files++
		if n.typ == TypeFile {
			bytesUsed += int64(n.size)
		}
	}
	if dirents != wantDirents {
		t.Fatalf("%s: %d dirents stored, model has %d", when, dirents, wantDirents)
	}

	// Chunks: exactly the model's, inside the file.
	if err := h.fsm.view(func(tx *bolt.Tx) error {
		prefix := volKey(v)
		c := tx.Bucket(bucketChunks).Cursor()
		count := 0
		for k, val := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = c.Next() {
			count++
			ino, idx := binary.BigEndian.Uint64(k[4:]), binary.BigEndian.Uint64(k[12:])
			n := m.inodes[ino]
			if n == nil || n.chunks[idx] == nil {
				return fmt.Errorf("chunk %d[%d] is stored; the model has none", ino, idx)
			}
			ch, ok := getJSON[Chunk](tx.Bucket(bucketChunks), k)
			want := n.chunks[idx]
			if !ok || ch.Version != want.version || ch.Length != want.length || !slices.Equal(ch.Replicas, want.replicas) {
				return fmt.Errorf("chunk %d[%d] = %+v (%s); model: %+v", ino, idx, ch, val, want)
			}
			if idx*cs+uint64(ch.Length) > n.size {
				return fmt.Errorf("chunk %d[%d] of length %d ends past the file size %d", ino, idx, ch.Length, n.size)
			}
		}
		want := 0
		for _, n := range m.inodes {
			want += len(n.chunks)
		}
		if count != want {
			return fmt.Errorf("%d chunks stored, model has %d", count, want)
		}
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	if got := h.garbage(); !mapsEqual(got, m.garbage) {
		t.Fatalf("%s: garbage has %d records, model %d:\n got %v\nwant %v", when, len(got), len(m.garbage), got, m.garbage)
	}
	vol := h.vol("model")
	if vol.Files != files || vol.Bytes != bytesUsed || vol.NextIno != m.next {
		t.Fatalf("%s: volume counters files %d bytes %d next ino %d; model %d %d %d",
			when, vol.Files, vol.Bytes, vol.NextIno, files, bytesUsed, m.next)
	}
}
