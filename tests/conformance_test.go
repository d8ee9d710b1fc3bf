package tests

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"

	"github.com/fsrep/fsrep/meta"
)

// confFixture is what every part of TestConformance shares: one cluster,
// and clients of one gateway as three identities. Everything goes through
// the same gateway so that each call reads the effects of the previous ones.
type confFixture struct {
	c     *Cluster
	addr  string
	xids  xidSource
	root  []byte  // the root handle of /vol
	alice *Client // go-nfs-client as 1000:1000
	bob   *Client // go-nfs-client as 1001:1001
	anon  *rawClient
	ra    *rawClient // raw calls as alice
	rb    *rawClient // raw calls as bob
}

// TestConformance drives every NFSv3 procedure (NULL to COMMIT) and every
// MOUNTv3 procedure a gateway serves through real sockets, with
// go-nfs-client where it has the call and raw XDR where it has not, and
// checks results, error statuses and the reply layouts of RFC 1813.
func TestConformance(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	c.CreateVolume("vol2", 3, 1<<20)
	f := &confFixture{c: c, addr: c.NFSAddr(1)}
	var err error
	if f.alice, err = MountAs(f.addr, "/vol", 1000, 1000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.alice.Close)
	if f.bob, err = MountAs(f.addr, "/vol", 1001, 1001); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.bob.Close)
	f.root = mustHandle(t, f.alice, ".")
	f.anon = newRawClient(t, f.addr, 0, 0, &f.xids)
	f.ra = newRawClient(t, f.addr, 1000, 1000, &f.xids)
	f.rb = newRawClient(t, f.addr, 1001, 1001, &f.xids)
	if _, err := f.alice.Target.Mkdir("alice", 0o755); err != nil {
		t.Fatal(err)
	}

	// Each part gets the fixture bound to its own *testing.T.
	run := func(name string, part func(*confFixture, *testing.T)) {
		t.Run(name, func(t *testing.T) { part(f.on(t), t) })
	}
	run("MOUNT", (*confFixture).testMount)
	run("NULL", (*confFixture).testNull)
	run("GETATTR", (*confFixture).testGetattr)
	run("SETATTR", (*confFixture).testSetattr)
	run("LOOKUP", (*confFixture).testLookup)
	run("ACCESS", (*confFixture).testAccess)
	run("READLINK", (*confFixture).testReadlink)
	run("READ", (*confFixture).testRead)
	run("WRITE+COMMIT", (*confFixture).testWriteCommit)
	run("CREATE", (*confFixture).testCreate)
	run("MKDIR", (*confFixture).testMkdir)
	run("SYMLINK", (*confFixture).testSymlink)
	run("MKNOD", (*confFixture).testMknod)
	run("REMOVE", (*confFixture).testRemove)
	run("RMDIR", (*confFixture).testRmdir)
	run("RENAME", (*confFixture).testRename)
	run("LINK", (*confFixture).testLink)
	run("READDIR", (*confFixture).testReaddir)
	run("READDIRPLUS", (*confFixture).testReaddirplus)
	run("FSSTAT+FSINFO+PATHCONF", (*confFixture).testFSQueries)
	run("stale and bad handles", (*confFixture).testHandles)
	// Last: it makes the export read-only.
	run("read-only export", (*confFixture).testReadOnly)
}

// on returns the fixture reporting to t.
func (f *confFixture) on(t *testing.T) *confFixture {
	g := *f
	g.anon, g.ra, g.rb = f.anon.on(t), f.ra.on(t), f.rb.on(t)
	return &g
}

// --- shared steps ---

// mkdir makes a directory as alice and returns its handle.
func (f *confFixture) mkdir(t *testing.T, p string, mode uint32) []byte {
	t.Helper()
	fh, err := f.alice.Target.Mkdir(p, fileMode(mode))
	if err != nil {
		t.Fatalf("mkdir %s: %v", p, err)
	}
	return fh
}

// file creates a file as alice with the given content and returns its handle.
func (f *confFixture) file(t *testing.T, p string, mode uint32, data []byte) []byte {
	t.Helper()
	fh, err := f.alice.Target.Create(p, fileMode(mode))
	if err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	if len(data) > 0 {
		if err := f.alice.WriteHandle(fh, 0, data); err != nil {
			t.Fatalf("write %s: %v", p, err)
		}
	}
	return fh
}

// getattr is a raw GETATTR.
func (f *confFixture) getattr(t *testing.T, r *rawClient, fh []byte) (uint32, fattr3) {
	t.Helper()
	st, d := r.nfs("GETATTR", nfsGetattr, (&xdrBuf{}).opaque(fh).b)
	var a fattr3
	if st == st3OK {
		a = d.fattr()
	}
	d.end()
	return st, a
}

// mustAttr is GETATTR that must succeed.
func (f *confFixture) mustAttr(t *testing.T, fh []byte) fattr3 {
	t.Helper()
	st, a := f.getattr(t, f.ra, fh)
	if st != st3OK {
		t.Fatalf("GETATTR: %s", stName(st))
	}
	return a
}

// lookup is a raw LOOKUP that returns the status and the handle.
func (f *confFixture) lookup(t *testing.T, r *rawClient, dir []byte, name string) (uint32, []byte) {
	t.Helper()
	st, d := r.nfs("LOOKUP "+short(name), nfsLookup, (&xdrBuf{}).dirop(dir, name).b)
	var fh []byte
	if st == st3OK {
		fh = d.opaque()
		d.postOpAttr()
	}
	d.postOpAttr()
	d.end()
	return st, fh
}

// wantStatus checks an NFS status.
func wantStatus(t *testing.T, what string, got, want uint32) {
	t.Helper()
	if got != want {
		t.Errorf("%s: %s, want %s", what, stName(got), stName(want))
	}
}

// dirOp sends a procedure whose result is post_op_fh3, post_op_attr,
// wcc_data on success and wcc_data on failure (CREATE, MKDIR, SYMLINK,
// MKNOD) and returns the status, the new handle and its attributes.
func dirOp(r *rawClient, what string, proc uint32, args []byte) (uint32, []byte, *fattr3) {
	r.t.Helper()
	st, d := r.nfs(what, proc, args)
	var fh []byte
	var a *fattr3
	if st == st3OK {
		fh = d.postOpFH()
		a = d.postOpAttr()
	}
	d.wcc()
	d.end()
	return st, fh, a
}

// wccOp sends a procedure whose result is one wcc_data either way.
func wccOp(r *rawClient, what string, proc uint32, args []byte) uint32 {
	r.t.Helper()
	st, d := r.nfs(what, proc, args)
	d.wcc()
	d.end()
	return st
}

// attrFail sends a call that must fail, whose failure result is one
// post_op_attr, and returns its status.
func attrFail(r *rawClient, what string, proc uint32, args []byte) uint32 {
	r.t.Helper()
	st, d := r.nfs(what, proc, args)
	if st == st3OK {
		r.t.Errorf("%s: NFS3_OK, want a failure", what)
		return st
	}
	d.postOpAttr()
	d.end()
	return st
}

func createArgs(dir []byte, name string, how uint32, mode uint32) []byte {
	b := (&xdrBuf{}).dirop(dir, name).u32(how)
	if mode == noMode {
		return b.noSattr().b
	}
	return b.sattrMode(mode).b
}

const noMode = ^uint32(0)

func exclusiveArgs(dir []byte, name string, verf uint64) []byte {
	return (&xdrBuf{}).dirop(dir, name).u32(2).u64(verf).b
}

func writeArgs(fh []byte, off uint64, stable uint32, data []byte) []byte {
	return (&xdrBuf{}).opaque(fh).u64(off).u32(uint32(len(data))).u32(stable).opaque(data).b
}

func readArgs(fh []byte, off uint64, count uint32) []byte {
	return (&xdrBuf{}).opaque(fh).u64(off).u32(count).b
}

func linkArgs(file, dir []byte, name string) []byte {
	return (&xdrBuf{}).opaque(file).dirop(dir, name).b
}

func renameArgs(fromDir []byte, from string, toDir []byte, to string) []byte {
	return (&xdrBuf{}).dirop(fromDir, from).dirop(toDir, to).b
}

func symlinkArgs(dir []byte, name, target string) []byte {
	return (&xdrBuf{}).dirop(dir, name).noSattr().opaque([]byte(target)).b
}

// mknodArgs builds MKNOD3args for a type, with the arm RFC 1813 gives it.
func mknodArgs(dir []byte, name string, ftype uint32) []byte {
	b := (&xdrBuf{}).dirop(dir, name).u32(ftype)
	switch ftype {
	case 3, 4: // NF3BLK, NF3CHR: sattr3 and specdata3
		b.sattrMode(0o644).u32(1).u32(3)
	case 6, 7: // NF3SOCK, NF3FIFO: sattr3
		b.sattrMode(0o644)
	}
	return b.b
}

func short(name string) string {
	if len(name) > 16 {
		return fmt.Sprintf("%q... (%d bytes)", name[:8], len(name))
	}
	return strconv.Quote(name)
}

var longName = strings.Repeat("n", 256)

// --- MOUNT ---

func (f *confFixture) testMount(t *testing.T) {
	r := f.anon
	r.mount("MOUNT NULL", mountNull, nil).end()

	d := r.mount("MNT /vol", mountMnt, (&xdrBuf{}).opaque([]byte("/vol")).b)
	if st := d.u32(); st != 0 {
		t.Fatalf("MNT /vol: mountstat %d", st)
	}
	fh := d.opaque()
	var flavors []uint32
	if n := d.u32(); n > 16 {
		t.Errorf("MNT /vol: %d auth flavors", n)
	} else {
		for ; n > 0; n-- {
			flavors = append(flavors, d.u32())
		}
	}
	d.end()
	if !bytes.Equal(fh, f.root) {
		t.Errorf("MNT /vol: handle %x, want the root handle %x", fh, f.root)
	}
	if !slices.Contains(flavors, 1) {
		t.Errorf("MNT /vol: auth flavors %v lack AUTH_UNIX (1)", flavors)
	}

	d = r.mount("MNT of an unknown export", mountMnt, (&xdrBuf{}).opaque([]byte("/no-such-volume")).b)
	if st := d.u32(); st != 2 {
		t.Errorf("MNT /no-such-volume: mountstat %d, want 2 (MNT3ERR_NOENT)", st)
	}
	d.end()

	// go-nfs-client's own MNT and UMNT.
	host, port, _ := net.SplitHostPort(f.addr)
	p, _ := strconv.Atoi(port)
	rc, err := nfsc.DialServiceAtPort(host, p)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	m := &nfsc.Mount{Client: rc}
	tg, err := m.Mount("/vol2", rpc.NewAuthUnix("conformance", 1000, 1000).Auth())
	if err != nil {
		t.Fatalf("mount /vol2: %v", err)
	}
	if _, err := tg.FSInfo(); err != nil {
		t.Errorf("FSINFO on /vol2: %v", err)
	}
	if err := m.Unmount(); err != nil {
		t.Errorf("UMNT /vol2: %v", err)
	}
	r.mount("UMNT /vol", mountUmnt, (&xdrBuf{}).opaque([]byte("/vol")).b).end()

	// DUMP and UMNTALL are answered and leave the connection serving.
	// Their replies are not checked: today they are not RFC 1813's.
	r.call(mountProgram, 3, mountDump, nil)
	r.call(mountProgram, 3, mountUmntall, nil)
	r.mount("MOUNT NULL after DUMP and UMNTALL", mountNull, nil).end()

	// EXPORT: every volume, open to every client (no groups).
	d = r.mount("EXPORT", mountExport, nil)
	var exports []string
	for d.bool() {
		dir := string(d.opaque())
		exports = append(exports, dir)
		for d.bool() {
			t.Errorf("EXPORT %s: group %q, want none", dir, d.opaque())
		}
	}
	d.end()
	sort.Strings(exports)
	if !slices.Equal(exports, []string{"/vol", "/vol2"}) {
		t.Errorf("EXPORT: %q, want [/vol /vol2]", exports)
	}

	// MOUNT version 1 is not served: PROG_MISMATCH naming 3..3.
	acc, body := r.call(mountProgram, 1, mountNull, nil)
	if acc != 2 || !bytes.Equal(body, []byte{0, 0, 0, 3, 0, 0, 0, 3}) {
		t.Errorf("MOUNT v1 NULL: accept %d body %x, want 2 (PROG_MISMATCH) 3..3", acc, body)
	}
}

// --- NFS procedures ---

func (f *confFixture) testNull(t *testing.T) {
	acc, body := f.anon.call(nfsProgram, 3, nfsNull, nil)
	if acc != 0 || len(body) != 0 {
		t.Errorf("NULL: accept %d, %d bytes of result; want 0 and void", acc, len(body))
	}
}

func (f *confFixture) testGetattr(t *testing.T) {
	fh := f.file(t, "alice/ga", 0o640, []byte("12345"))
	_, lfh := f.lookup(t, f.ra, mustHandle(t, f.alice, "alice"), "ga")
	if !bytes.Equal(lfh, fh) {
		t.Errorf("LOOKUP handle %x differs from CREATE's %x", lfh, fh)
	}
	st, a := f.getattr(t, f.ra, fh)
	wantStatus(t, "GETATTR of a file", st, st3OK)
	if a.Type != 1 || a.Mode != 0o640 || a.Nlink != 1 || a.UID != 1000 || a.GID != 1000 || a.Size != 5 {
		t.Errorf("GETATTR of a 5-byte 0640 file alice made: %+v", a)
	}
	// Through go-nfs-client too.
	ga, err := f.alice.GetAttr(fh)
	if err != nil || ga.Filesize != 5 || ga.Fileid != a.FileID || ga.Type != nfsc.NF3Reg {
		t.Errorf("go-nfs-client GETATTR: %+v, %v; want a 5-byte file with fileid %d", ga, err, a.FileID)
	}
	st, ra := f.getattr(t, f.anon, f.root)
	wantStatus(t, "GETATTR of the root", st, st3OK)
	if ra.Type != 2 || ra.FileID == a.FileID || ra.Nlink < 2 {
		t.Errorf("GETATTR of the root: %+v", ra)
	}
}

func (f *confFixture) testSetattr(t *testing.T) {
	fh := f.file(t, "alice/sa", 0o644, []byte("abcde"))
	// go-nfs-client SETATTR (no guard).
	if _, err := f.alice.Target.SetAttr(fh, nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: 0o600}}); err != nil {
		t.Fatalf("SETATTR mode 0600: %v", err)
	}
	if a := f.mustAttr(t, fh); a.Mode != 0o600 {
		t.Errorf("mode after SETATTR 0600: %o", a.Mode)
	}
	// A guard with the object's ctime passes; another ctime fails NOT_SYNC.
	ctime := f.mustAttr(t, fh).Ctime
	st, d := f.ra.nfs("SETATTR guarded", nfsSetattr, (&xdrBuf{}).opaque(fh).sattrMode(0o640).u32(1).u32(ctime.Sec).u32(ctime.Nsec).b)
	wantStatus(t, "SETATTR with the right ctime guard", st, st3OK)
	if post := d.wcc(); post == nil || post.Mode != 0o640 {
		t.Errorf("SETATTR guarded: post-op attributes %+v, want mode 0640", post)
	}
	d.end()
	st = wccOp(f.ra, "SETATTR with a wrong guard", nfsSetattr,
		(&xdrBuf{}).opaque(fh).sattrMode(0o604).u32(1).u32(ctime.Sec+1000).u32(ctime.Nsec).b)
	wantStatus(t, "SETATTR with a wrong ctime guard", st, st3NotSync)
	if a := f.mustAttr(t, fh); a.Mode != 0o640 {
		t.Errorf("a SETATTR refused NOT_SYNC changed the mode to %o", a.Mode)
	}
	// Size.
	st = wccOp(f.ra, "SETATTR size", nfsSetattr, (&xdrBuf{}).opaque(fh).sattrSize(2).u32(0).b)
	wantStatus(t, "SETATTR size 2", st, st3OK)
	if got, err := f.alice.ReadHandle(fh); err != nil || string(got) != "ab" {
		t.Errorf("after truncating to 2: %q, %v", got, err)
	}
	// Permissions: bob may not chmod alice's file (EPERM), nor truncate it (EACCES).
	st = wccOp(f.rb, "SETATTR mode by another user", nfsSetattr, (&xdrBuf{}).opaque(fh).sattrMode(0o777).u32(0).b)
	wantStatus(t, "SETATTR mode by another user", st, st3Perm)
	st = wccOp(f.rb, "SETATTR size by another user", nfsSetattr, (&xdrBuf{}).opaque(fh).sattrSize(0).u32(0).b)
	wantStatus(t, "SETATTR size of a 0640 file by another user", st, st3Acces)
	// Owner changes: only root may give a file away.
	st = wccOp(f.ra, "SETATTR uid by the owner", nfsSetattr,
		(&xdrBuf{}).opaque(fh).u32(0).u32(1).u32(1001).u32(0).u32(0).u32(0).u32(0).u32(0).b)
	wantStatus(t, "SETATTR uid by a non-root owner", st, st3Perm)
	// Times set to the client's clock (FSINFO promises CANSETTIME).
	st = wccOp(f.ra, "SETATTR mtime", nfsSetattr,
		(&xdrBuf{}).opaque(fh).u32(0).u32(0).u32(0).u32(0).u32(0).u32(2).u32(1200000000).u32(7).u32(0).b)
	wantStatus(t, "SETATTR mtime", st, st3OK)
	if a := f.mustAttr(t, fh); a.Mtime != (nfstime{1200000000, 7}) {
		t.Errorf("mtime after SETATTR to 1200000000.000000007: %+v", a.Mtime)
	}
}

func (f *confFixture) testLookup(t *testing.T) {
	dir := f.mkdir(t, "alice/lk", 0o700)
	fh := f.file(t, "alice/lk/f", 0o644, nil)
	parent := mustHandle(t, f.alice, "alice")

	st, d := f.ra.nfs("LOOKUP", nfsLookup, (&xdrBuf{}).dirop(dir, "f").b)
	wantStatus(t, "LOOKUP f", st, st3OK)
	got := d.opaque()
	obj, dattr := d.postOpAttr(), d.postOpAttr()
	d.end()
	if !bytes.Equal(got, fh) {
		t.Errorf("LOOKUP f: handle %x, want %x", got, fh)
	}
	if obj == nil || obj.Type != 1 || dattr == nil || dattr.Type != 2 {
		t.Errorf("LOOKUP f: object attributes %+v, directory attributes %+v", obj, dattr)
	}
	if st, h := f.lookup(t, f.ra, dir, "."); st != st3OK || !bytes.Equal(h, dir) {
		t.Errorf("LOOKUP .: %s, %x; want the directory's own handle", stName(st), h)
	}
	if st, h := f.lookup(t, f.ra, dir, ".."); st != st3OK || !bytes.Equal(h, parent) {
		t.Errorf("LOOKUP ..: %s, %x; want the parent's handle %x", stName(st), h, parent)
	}
	// go-nfs-client walks a path with LOOKUP.
	if _, h, err := f.alice.Target.Lookup("alice/lk/f"); err != nil || !bytes.Equal(h, fh) {
		t.Errorf("go-nfs-client lookup alice/lk/f: %x, %v", h, err)
	}

	st, _ = f.lookup(t, f.ra, dir, "missing")
	wantStatus(t, "LOOKUP of a missing name", st, st3NoEnt)
	st, _ = f.lookup(t, f.ra, fh, "x")
	wantStatus(t, "LOOKUP in a regular file", st, st3NotDir)
	st, _ = f.lookup(t, f.rb, dir, "f")
	wantStatus(t, "LOOKUP in another user's 0700 directory", st, st3Acces)
	if st, h := f.lookup(t, f.ra, f.root, ".."); st != st3OK || !bytes.Equal(h, f.root) {
		t.Errorf("LOOKUP .. at the export's root: %s, %x; want the root itself", stName(st), h)
	}
}

func (f *confFixture) testAccess(t *testing.T) {
	file := f.file(t, "alice/ac", 0o644, nil)
	dir := f.mkdir(t, "alice/acd", 0o755)
	const all = 0x3f
	access := func(r *rawClient, fh []byte, want uint32) uint32 {
		t.Helper()
		st, d := r.nfs("ACCESS", nfsAccess, (&xdrBuf{}).opaque(fh).u32(want).b)
		wantStatus(t, "ACCESS", st, st3OK)
		d.postOpAttr()
		got := d.u32()
		d.end()
		return got
	}
	for _, tc := range []struct {
		who       string
		r         *rawClient
		fh        []byte
		ask, want uint32
	}{
		{"owner on a 0644 file", f.ra, file, all, 0x01 | 0x04 | 0x08},
		{"other on a 0644 file", f.rb, file, all, 0x01},
		{"owner on a 0755 directory", f.ra, dir, all, 0x01 | 0x02 | 0x04 | 0x08 | 0x10},
		{"other on a 0755 directory", f.rb, dir, all, 0x01 | 0x02},
		{"owner asking READ only", f.ra, file, 0x01, 0x01},
	} {
		if got := access(tc.r, tc.fh, tc.ask); got != tc.want {
			t.Errorf("ACCESS %#x for the %s: %#x, want %#x", tc.ask, tc.who, got, tc.want)
		}
	}
	if got, err := f.bob.Target.Access("alice/ac", all); err != nil || got != 0x01 {
		t.Errorf("go-nfs-client ACCESS for bob: %#x, %v; want READ only", got, err)
	}
}

func (f *confFixture) testReadlink(t *testing.T) {
	if err := f.alice.Target.Symlink("some/target", "alice/rl"); err != nil {
		t.Fatal(err)
	}
	lf, err := f.alice.Target.Open("alice/rl")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := lf.Readlink(); err != nil || got != "some/target" {
		t.Errorf("go-nfs-client READLINK: %q, %v", got, err)
	}
	fh := mustHandle(t, f.alice, "alice/rl")
	st, d := f.ra.nfs("READLINK", nfsReadlink, (&xdrBuf{}).opaque(fh).b)
	wantStatus(t, "READLINK", st, st3OK)
	a := d.postOpAttr()
	target := string(d.opaque())
	d.end()
	if target != "some/target" || (a != nil && a.Type != 5) {
		t.Errorf("READLINK: %q, attributes %+v", target, a)
	}
	file := f.file(t, "alice/rl-file", 0o644, nil)
	st = attrFail(f.ra, "READLINK of a regular file", nfsReadlink, (&xdrBuf{}).opaque(file).b)
	wantStatus(t, "READLINK of a regular file", st, st3Inval)
}

func (f *confFixture) testRead(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789"), 300)
	fh := f.file(t, "alice/read", 0o600, content)
	read := func(off uint64, count uint32) ([]byte, bool) {
		t.Helper()
		st, d := f.ra.nfs("READ", nfsRead, readArgs(fh, off, count))
		wantStatus(t, fmt.Sprintf("READ %d@%d", count, off), st, st3OK)
		a := d.postOpAttr()
		n := d.u32()
		eof := d.bool()
		data := d.opaque()
		d.end()
		if int(n) != len(data) || (a != nil && a.Size != uint64(len(content))) {
			t.Errorf("READ %d@%d: count %d with %d bytes, attributes %+v", count, off, n, len(data), a)
		}
		return data, eof
	}
	if data, eof := read(0, 1000); !bytes.Equal(data, content[:1000]) || eof {
		t.Errorf("READ 1000@0: %d bytes, eof %v; want the first 1000, not eof", len(data), eof)
	}
	if data, eof := read(2500, 1000); !bytes.Equal(data, content[2500:]) || !eof {
		t.Errorf("READ 1000@2500: %d bytes, eof %v; want the last 500 and eof", len(data), eof)
	}
	if data, eof := read(5000, 10); len(data) != 0 || !eof {
		t.Errorf("READ past the end: %d bytes, eof %v; want none and eof", len(data), eof)
	}
	if got, err := f.alice.ReadHandle(fh); err != nil || !bytes.Equal(got, content) {
		t.Errorf("whole file: %d bytes, %v", len(got), err)
	}
	st := attrFail(f.rb, "READ by another user", nfsRead, readArgs(fh, 0, 10))
	wantStatus(t, "READ of a 0600 file by another user", st, st3Acces)
}

func (f *confFixture) testWriteCommit(t *testing.T) {
	fh := f.file(t, "alice/wr", 0o644, nil)
	write := func(off uint64, stable uint32, data string) (uint32, []byte) {
		t.Helper()
		st, d := f.ra.nfs("WRITE", nfsWrite, writeArgs(fh, off, stable, []byte(data)))
		wantStatus(t, fmt.Sprintf("WRITE stable=%d", stable), st, st3OK)
		post := d.wcc()
		n := d.u32()
		committed := d.u32()
		verf := d.fixed(8)
		d.end()
		if int(n) != len(data) {
			t.Errorf("WRITE stable=%d of %d bytes: count %d", stable, len(data), n)
		}
		if committed < stable || committed > 2 {
			t.Errorf("WRITE stable=%d: committed %d", stable, committed)
		}
		if post != nil && post.Size < off+uint64(len(data)) {
			t.Errorf("WRITE: post-op size %d", post.Size)
		}
		return committed, verf
	}
	_, verf := write(0, 0, "unstable ")
	if _, v := write(9, 1, "datasync "); !bytes.Equal(v, verf) {
		t.Errorf("WRITE verifiers differ on one gateway: %x, %x", verf, v)
	}
	if c, v := write(18, 2, "filesync"); c != 2 || !bytes.Equal(v, verf) {
		t.Errorf("FILE_SYNC WRITE: committed %d, verifier %x (first %x)", c, v, verf)
	}
	st, d := f.ra.nfs("COMMIT", nfsCommit, (&xdrBuf{}).opaque(fh).u64(0).u32(0).b)
	wantStatus(t, "COMMIT", st, st3OK)
	d.wcc()
	cv := d.fixed(8)
	d.end()
	if !bytes.Equal(cv, verf) {
		t.Errorf("COMMIT verifier %x differs from WRITE's %x", cv, verf)
	}
	if got, err := f.alice.ReadHandle(fh); err != nil || string(got) != "unstable datasync filesync" {
		t.Errorf("after three WRITEs: %q, %v", got, err)
	}
	// go-nfs-client WRITE (FILE_SYNC) and COMMIT (its Close).
	wf, err := f.alice.Target.OpenFile("alice/wr", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := wf.Write([]byte("UNSTABLE")); err != nil || n != 8 {
		t.Errorf("go-nfs-client write: %d, %v", n, err)
	}
	if err := wf.Close(); err != nil {
		t.Errorf("go-nfs-client commit: %v", err)
	}
	if got, err := f.alice.ReadHandle(fh); err != nil || string(got) != "UNSTABLE datasync filesync" {
		t.Errorf("after go-nfs-client's write: %q, %v", got, err)
	}

	st = wccOp(f.rb, "WRITE by another user", nfsWrite, writeArgs(fh, 0, 2, []byte("x")))
	wantStatus(t, "WRITE of a 0644 file by another user", st, st3Acces)
	dir := mustHandle(t, f.alice, "alice")
	st = wccOp(f.ra, "WRITE to a directory", nfsWrite, writeArgs(dir, 0, 2, []byte("x")))
	if st != st3Inval && st != st3IsDir {
		t.Errorf("WRITE to a directory: %s, want NFS3ERR_INVAL or NFS3ERR_ISDIR", stName(st))
	}
}

func (f *confFixture) testCreate(t *testing.T) {
	dir := f.mkdir(t, "alice/cr", 0o755)
	// go-nfs-client CREATE (UNCHECKED, mode).
	fh, err := f.alice.Target.Create("alice/cr/client", 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if a := f.mustAttr(t, fh); a.Type != 1 || a.Mode != 0o640 || a.UID != 1000 || a.Size != 0 {
		t.Errorf("a file go-nfs-client created 0640: %+v", a)
	}
	// UNCHECKED, raw: handle and attributes in the reply.
	st, rfh, a := dirOp(f.ra, "CREATE UNCHECKED", nfsCreate, createArgs(dir, "raw", 0, 0o600))
	wantStatus(t, "CREATE UNCHECKED", st, st3OK)
	if _, lfh := f.lookup(t, f.ra, dir, "raw"); rfh == nil || !bytes.Equal(rfh, lfh) {
		t.Errorf("CREATE's handle %x, LOOKUP's %x", rfh, lfh)
	}
	if a == nil || a.Type != 1 || a.Mode != 0o600 || a.UID != 1000 {
		t.Errorf("CREATE's attributes: %+v", a)
	}
	// UNCHECKED of an existing file opens it: same file, data kept.
	if err := f.alice.WriteHandle(rfh, 0, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	st, again, _ := dirOp(f.ra, "CREATE UNCHECKED again", nfsCreate, createArgs(dir, "raw", 0, noMode))
	wantStatus(t, "CREATE UNCHECKED of an existing file", st, st3OK)
	if !bytes.Equal(again, rfh) {
		t.Errorf("CREATE UNCHECKED of an existing file: handle %x, want %x", again, rfh)
	}
	if got, _ := f.alice.ReadHandle(rfh); string(got) != "kept" {
		t.Errorf("CREATE UNCHECKED without a size changed the data: %q", got)
	}
	// GUARDED.
	st, _, _ = dirOp(f.ra, "CREATE GUARDED new", nfsCreate, createArgs(dir, "guarded", 1, 0o644))
	wantStatus(t, "CREATE GUARDED of a new name", st, st3OK)
	st, _, _ = dirOp(f.ra, "CREATE GUARDED existing", nfsCreate, createArgs(dir, "guarded", 1, 0o644))
	wantStatus(t, "CREATE GUARDED of an existing name", st, st3Exist)
	// EXCLUSIVE.
	st, efh, _ := dirOp(f.ra, "CREATE EXCLUSIVE", nfsCreate, exclusiveArgs(dir, "excl", 0x1122334455667788))
	wantStatus(t, "CREATE EXCLUSIVE of a new name", st, st3OK)
	if _, lfh := f.lookup(t, f.ra, dir, "excl"); efh == nil || !bytes.Equal(efh, lfh) {
		t.Errorf("CREATE EXCLUSIVE's handle %x, LOOKUP's %x", efh, lfh)
	}
	st, _, _ = dirOp(f.ra, "CREATE EXCLUSIVE other verifier", nfsCreate, exclusiveArgs(dir, "excl", 0x99))
	wantStatus(t, "CREATE EXCLUSIVE of an existing name with another verifier", st, st3Exist)
	// Errors.
	f.mkdir(t, "alice/cr/subdir", 0o755)
	st, _, _ = dirOp(f.ra, "CREATE over a directory", nfsCreate, createArgs(dir, "subdir", 0, 0o644))
	wantStatus(t, "CREATE UNCHECKED over a directory", st, st3Exist)
	st, _, _ = dirOp(f.ra, "CREATE 255-byte name", nfsCreate, createArgs(dir, longName[:255], 1, 0o644))
	wantStatus(t, "CREATE of a 255-byte name", st, st3OK)
	st, _, _ = dirOp(f.ra, "CREATE 256-byte name", nfsCreate, createArgs(dir, longName, 1, 0o644))
	wantStatus(t, "CREATE of a 256-byte name", st, st3NameTooLong)
	st, _, _ = dirOp(f.ra, "CREATE in a file", nfsCreate, createArgs(fh, "x", 1, 0o644))
	wantStatus(t, "CREATE in a regular file", st, st3NotDir)
	st, _, _ = dirOp(f.rb, "CREATE by another user", nfsCreate, createArgs(dir, "bob", 1, 0o644))
	wantStatus(t, "CREATE in another user's 0755 directory", st, st3Acces)
}

func (f *confFixture) testMkdir(t *testing.T) {
	dir := f.mkdir(t, "alice/mk", 0o755)
	sub, err := f.alice.Target.Mkdir("alice/mk/client", 0o750)
	if err != nil {
		t.Fatal(err)
	}
	if a := f.mustAttr(t, sub); a.Type != 2 || a.Mode&0o7777 != 0o750 || a.UID != 1000 {
		t.Errorf("a directory go-nfs-client made 0750: %+v", a)
	}
	st, rfh, a := dirOp(f.ra, "MKDIR", nfsMkdir, (&xdrBuf{}).dirop(dir, "raw").sattrMode(0o700).b)
	wantStatus(t, "MKDIR", st, st3OK)
	if _, lfh := f.lookup(t, f.ra, dir, "raw"); rfh == nil || !bytes.Equal(rfh, lfh) {
		t.Errorf("MKDIR's handle %x, LOOKUP's %x", rfh, lfh)
	}
	if a == nil || a.Type != 2 || a.Mode&0o7777 != 0o700 {
		t.Errorf("MKDIR's attributes: %+v", a)
	}
	file := f.file(t, "alice/mk/file", 0o644, nil)
	for _, tc := range []struct {
		what string
		r    *rawClient
		dir  []byte
		name string
		want uint32
	}{
		{"MKDIR of an existing directory", f.ra, dir, "raw", st3Exist},
		{"MKDIR of a 256-byte name", f.ra, dir, longName, st3NameTooLong},
		{"MKDIR in a regular file", f.ra, file, "x", st3NotDir},
		{"MKDIR in another user's 0755 directory", f.rb, dir, "bob", st3Acces},
	} {
		st, _, _ := dirOp(tc.r, tc.what, nfsMkdir, (&xdrBuf{}).dirop(tc.dir, tc.name).sattrMode(0o755).b)
		wantStatus(t, tc.what, st, tc.want)
	}
}

func (f *confFixture) testSymlink(t *testing.T) {
	dir := f.mkdir(t, "alice/sy", 0o755)
	st, fh, a := dirOp(f.ra, "SYMLINK", nfsSymlink, symlinkArgs(dir, "l", "../elsewhere"))
	wantStatus(t, "SYMLINK", st, st3OK)
	if _, lfh := f.lookup(t, f.ra, dir, "l"); fh == nil || !bytes.Equal(fh, lfh) {
		t.Errorf("SYMLINK's handle %x, LOOKUP's %x", fh, lfh)
	}
	if a == nil || a.Type != 5 || a.UID != 1000 {
		t.Errorf("SYMLINK's attributes: %+v", a)
	}
	st, d := f.ra.nfs("READLINK", nfsReadlink, (&xdrBuf{}).opaque(fh).b)
	d.postOpAttr()
	if target := string(d.opaque()); st != st3OK || target != "../elsewhere" {
		t.Errorf("READLINK of the new symlink: %s, %q", stName(st), target)
	}
	d.end()
	for _, tc := range []struct {
		what string
		r    *rawClient
		name string
		want uint32
	}{
		{"SYMLINK of an existing name", f.ra, "l", st3Exist},
		{"SYMLINK of a 256-byte name", f.ra, longName, st3NameTooLong},
		{"SYMLINK in another user's 0755 directory", f.rb, "bob", st3Acces},
	} {
		st, _, _ := dirOp(tc.r, tc.what, nfsSymlink, symlinkArgs(dir, tc.name, "t"))
		wantStatus(t, tc.what, st, tc.want)
	}
}

func (f *confFixture) testMknod(t *testing.T) {
	dir := f.mkdir(t, "alice/mn", 0o755)
	// Regular files, directories and symlinks are not MKNOD's to make.
	for _, ft := range []uint32{1, 2, 5} {
		st, _, _ := dirOp(f.ra, "MKNOD", nfsMknod, mknodArgs(dir, "bad"+strconv.Itoa(int(ft)), ft))
		wantStatus(t, fmt.Sprintf("MKNOD of type %d", ft), st, st3BadType)
	}
	// fsrep stores no devices, FIFOs or sockets: whatever MKNOD answers,
	// none may appear.
	for _, ft := range []uint32{3, 4, 6, 7} {
		name := "dev" + strconv.Itoa(int(ft))
		if acc, _ := f.ra.call(nfsProgram, 3, nfsMknod, mknodArgs(dir, name, ft)); acc != 0 {
			t.Errorf("MKNOD of type %d: accept status %d", ft, acc)
		}
		if st, _ := f.lookup(t, f.ra, dir, name); st != st3NoEnt {
			t.Errorf("LOOKUP after MKNOD of type %d: %s, want NFS3ERR_NOENT", ft, stName(st))
		}
	}
}

func (f *confFixture) testRemove(t *testing.T) {
	dir := f.mkdir(t, "alice/rm", 0o755)
	fh := f.file(t, "alice/rm/f", 0o644, []byte("x"))
	if err := f.alice.Target.Remove("alice/rm/f"); err != nil {
		t.Fatalf("REMOVE: %v", err)
	}
	st, _ := f.lookup(t, f.ra, dir, "f")
	wantStatus(t, "LOOKUP after REMOVE", st, st3NoEnt)
	st, _ = f.getattr(t, f.ra, fh)
	wantStatus(t, "GETATTR of a removed file's handle", st, st3Stale)

	f.file(t, "alice/rm/g", 0o644, nil)
	raw := func(r *rawClient, dir []byte, name string) uint32 {
		t.Helper()
		return wccOp(r, "REMOVE "+short(name), nfsRemove, (&xdrBuf{}).dirop(dir, name).b)
	}
	wantStatus(t, "REMOVE", raw(f.ra, dir, "g"), st3OK)
	wantStatus(t, "REMOVE of a missing name", raw(f.ra, dir, "g"), st3NoEnt)
	wantStatus(t, "REMOVE of a 256-byte name", raw(f.ra, dir, longName), st3NameTooLong)
	file := f.file(t, "alice/rm/h", 0o644, nil)
	wantStatus(t, "REMOVE in a regular file", raw(f.ra, file, "x"), st3NotDir)
	wantStatus(t, "REMOVE from another user's 0755 directory", raw(f.rb, dir, "h"), st3Acces)
	// The sticky root: bob may not remove alice's file, alice may.
	f.file(t, "conf-sticky", 0o666, nil)
	wantStatus(t, "REMOVE of another user's file from a sticky directory", raw(f.rb, f.root, "conf-sticky"), st3Perm)
	wantStatus(t, "REMOVE of one's own file from a sticky directory", raw(f.ra, f.root, "conf-sticky"), st3OK)
}

func (f *confFixture) testRmdir(t *testing.T) {
	dir := f.mkdir(t, "alice/rmd", 0o755)
	f.mkdir(t, "alice/rmd/empty", 0o755)
	f.mkdir(t, "alice/rmd/full", 0o755)
	f.file(t, "alice/rmd/full/x", 0o644, nil)
	if err := f.alice.Target.RmDir("alice/rmd/empty"); err != nil {
		t.Fatalf("RMDIR: %v", err)
	}
	st, _ := f.lookup(t, f.ra, dir, "empty")
	wantStatus(t, "LOOKUP after RMDIR", st, st3NoEnt)
	raw := func(r *rawClient, name string) uint32 {
		t.Helper()
		return wccOp(r, "RMDIR "+short(name), nfsRmdir, (&xdrBuf{}).dirop(dir, name).b)
	}
	wantStatus(t, "RMDIR of a non-empty directory", raw(f.ra, "full"), st3NotEmpty)
	wantStatus(t, "RMDIR of a missing name", raw(f.ra, "empty"), st3NoEnt)
	wantStatus(t, "RMDIR of a 256-byte name", raw(f.ra, longName), st3NameTooLong)
	f.mkdir(t, "alice/rmd/bobs-target", 0o755)
	wantStatus(t, "RMDIR in another user's 0755 directory", raw(f.rb, "bobs-target"), st3Acces)
	wantStatus(t, "RMDIR of .", raw(f.ra, "."), st3Inval)
}

func (f *confFixture) testRename(t *testing.T) {
	dir := f.mkdir(t, "alice/rn", 0o755)
	sub := f.mkdir(t, "alice/rn/sub", 0o755)
	a := f.file(t, "alice/rn/a", 0o644, []byte("a"))
	// go-nfs-client RENAME across directories: the handle follows the file.
	if err := f.alice.Target.Rename("alice/rn/a", "alice/rn/sub/a2"); err != nil {
		t.Fatalf("RENAME: %v", err)
	}
	if st, _ := f.lookup(t, f.ra, dir, "a"); st != st3NoEnt {
		t.Errorf("LOOKUP of the old name after RENAME: %s", stName(st))
	}
	if st, h := f.lookup(t, f.ra, sub, "a2"); st != st3OK || !bytes.Equal(h, a) {
		t.Errorf("LOOKUP of the new name after RENAME: %s, handle %x, want %x", stName(st), h, a)
	}
	raw := func(r *rawClient, what string, fromDir []byte, from string, toDir []byte, to string) uint32 {
		t.Helper()
		st, d := r.nfs(what, nfsRename, renameArgs(fromDir, from, toDir, to))
		d.wcc()
		d.wcc()
		d.end()
		return st
	}
	// Replacing a file: the victim's handle goes stale.
	b := f.file(t, "alice/rn/b", 0o644, []byte("b"))
	victim := f.file(t, "alice/rn/victim", 0o644, []byte("v"))
	wantStatus(t, "RENAME over a file", raw(f.ra, "RENAME", dir, "b", dir, "victim"), st3OK)
	if st, h := f.lookup(t, f.ra, dir, "victim"); st != st3OK || !bytes.Equal(h, b) {
		t.Errorf("after RENAME b over victim: %s, %x; want b's handle", stName(st), h)
	}
	if st, _ := f.getattr(t, f.ra, victim); st != st3Stale {
		t.Errorf("GETATTR of the replaced file's handle: %s, want NFS3ERR_STALE", stName(st))
	}
	f.mkdir(t, "alice/rn/d1", 0o755)
	f.mkdir(t, "alice/rn/d2", 0o755)
	f.file(t, "alice/rn/d2/x", 0o644, nil)
	f.file(t, "alice/rn/plain", 0o644, nil)
	d1 := mustHandle(t, f.alice, "alice/rn/d1")
	for _, tc := range []struct {
		what    string
		r       *rawClient
		fromDir []byte
		from    string
		toDir   []byte
		to      string
		want    uint32
	}{
		{what: "RENAME of a missing name", r: f.ra, fromDir: dir, from: "missing", toDir: dir, to: "m2", want: st3NoEnt},
		{what: "RENAME of a directory into itself", r: f.ra, fromDir: dir, from: "d1", toDir: d1, to: "in", want: st3Inval},
		{what: "RENAME to a 256-byte name", r: f.ra, fromDir: dir, from: "plain", toDir: dir, to: longName, want: st3NameTooLong},
		{what: "RENAME out of another user's 0755 directory", r: f.rb, fromDir: dir, from: "plain", toDir: f.root, to: "stolen", want: st3Acces},
		{what: "RENAME of a file over a directory", r: f.ra, fromDir: dir, from: "plain", toDir: dir, to: "d1", want: st3IsDir},
		{what: "RENAME of a directory over a file", r: f.ra, fromDir: dir, from: "d1", toDir: dir, to: "plain", want: st3NotDir},
	} {
		wantStatus(t, tc.what, raw(tc.r, tc.what, tc.fromDir, tc.from, tc.toDir, tc.to), tc.want)
	}
	// RFC 1813 allows either status here.
	if st := raw(f.ra, "RENAME over a non-empty directory", dir, "d1", dir, "d2"); st != st3NotEmpty && st != st3Exist {
		t.Errorf("RENAME of a directory over a non-empty directory: %s, want NFS3ERR_NOTEMPTY or NFS3ERR_EXIST", stName(st))
	}
	if st, _ := f.lookup(t, f.ra, dir, "d1"); st != st3OK {
		t.Errorf("LOOKUP of a directory whose RENAMEs all failed: %s", stName(st))
	}
}

func (f *confFixture) testLink(t *testing.T) {
	dir := f.mkdir(t, "alice/ln", 0o755)
	other := f.mkdir(t, "alice/ln/other", 0o755)
	fh := f.file(t, "alice/ln/f", 0o644, []byte("linked"))
	link := func(r *rawClient, what string, file, dir []byte, name string) (uint32, *fattr3) {
		t.Helper()
		st, d := r.nfs(what, nfsLink, linkArgs(file, dir, name))
		a := d.postOpAttr()
		d.wcc()
		d.end()
		return st, a
	}
	st, a := link(f.ra, "LINK", fh, other, "hard")
	wantStatus(t, "LINK", st, st3OK)
	if a != nil && (a.Nlink != 2 || a.Type != 1) {
		t.Errorf("LINK's file attributes: %+v, want a file with 2 links", a)
	}
	if got := f.mustAttr(t, fh); got.Nlink != 2 {
		t.Errorf("nlink after LINK: %d, want 2", got.Nlink)
	}
	if st, h := f.lookup(t, f.ra, other, "hard"); st != st3OK || !bytes.Equal(h, fh) {
		t.Errorf("LOOKUP of the new link: %s, %x; want the file's handle", stName(st), h)
	} else if data, err := f.alice.ReadHandle(h); err != nil || string(data) != "linked" {
		t.Errorf("READ through the new link: %q, %v", data, err)
	}
	// Removing one name leaves the other.
	if err := f.alice.Target.Remove("alice/ln/f"); err != nil {
		t.Fatal(err)
	}
	if got := f.mustAttr(t, fh); got.Nlink != 1 {
		t.Errorf("nlink after removing one of two names: %d", got.Nlink)
	}

	st, _ = link(f.ra, "LINK to an existing name", fh, other, "hard")
	wantStatus(t, "LINK to an existing name", st, st3Exist)
	st, _ = link(f.ra, "LINK with a 256-byte name", fh, other, longName)
	wantStatus(t, "LINK with a 256-byte name", st, st3NameTooLong)
	st, _ = link(f.rb, "LINK into another user's directory", fh, other, "bob")
	wantStatus(t, "LINK into another user's 0755 directory", st, st3Acces)
	st, _ = link(f.ra, "LINK into a regular file", fh, fh, "x")
	wantStatus(t, "LINK into a regular file", st, st3NotDir)

	// Directories take no hard links (Linux answers PERM, go-nfs ISDIR).
	if st, _ := link(f.ra, "LINK of a directory", dir, other, "dirlink"); st != st3IsDir && st != st3Perm {
		t.Errorf("LINK of a directory: %s, want NFS3ERR_ISDIR or NFS3ERR_PERM", stName(st))
	}
	if st, _ := f.lookup(t, f.ra, other, "dirlink"); st != st3NoEnt {
		t.Errorf("LOOKUP after a refused LINK of a directory: %s", stName(st))
	}
}

// dirent is one entry of a READDIR or READDIRPLUS reply.
type dirent struct {
	fileid uint64
	name   string
	cookie uint64
	attr   *fattr3
	fh     []byte
}

func (f *confFixture) readdir(t *testing.T, r *rawClient, dir []byte, cookie uint64, verf []byte, count uint32) (uint32, []dirent, []byte, bool) {
	t.Helper()
	st, d := r.nfs("READDIR", nfsReaddir, (&xdrBuf{}).opaque(dir).u64(cookie).fixed(verf).u32(count).b)
	d.postOpAttr()
	if st != st3OK {
		d.end()
		return st, nil, nil, false
	}
	nv := d.fixed(8)
	var ents []dirent
	for d.bool() {
		ents = append(ents, dirent{fileid: d.u64(), name: string(d.opaque()), cookie: d.u64()})
	}
	eof := d.bool()
	d.end()
	return st, ents, nv, eof
}

func (f *confFixture) readdirplus(t *testing.T, r *rawClient, dir []byte, cookie uint64, verf []byte, dircount, maxcount uint32) (uint32, []dirent, []byte, bool) {
	t.Helper()
	st, d := r.nfs("READDIRPLUS", nfsReaddirplus, (&xdrBuf{}).opaque(dir).u64(cookie).fixed(verf).u32(dircount).u32(maxcount).b)
	d.postOpAttr()
	if st != st3OK {
		d.end()
		return st, nil, nil, false
	}
	nv := d.fixed(8)
	var ents []dirent
	for d.bool() {
		e := dirent{fileid: d.u64(), name: string(d.opaque()), cookie: d.u64()}
		e.attr = d.postOpAttr()
		e.fh = d.postOpFH()
		ents = append(ents, e)
	}
	eof := d.bool()
	d.end()
	return st, ents, nv, eof
}

// listing is a directory's content for READDIR checks: the names the
// server must list (with "." and "..") and their file IDs.
func (f *confFixture) listing(t *testing.T, p string, n int) ([]byte, map[string]uint64) {
	t.Helper()
	dir := f.mkdir(t, p, 0o700)
	want := map[string]uint64{".": f.mustAttr(t, dir).FileID, "..": f.mustAttr(t, mustHandle(t, f.alice, "alice")).FileID}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("entry-%02d", i)
		want[name] = f.mustAttr(t, f.file(t, p+"/"+name, 0o644, nil)).FileID
	}
	return dir, want
}

// checkListing checks the entries a listing of pages returned against want.
func checkListing(t *testing.T, what string, pages int, got []dirent, want map[string]uint64) {
	t.Helper()
	if pages < 2 {
		t.Errorf("%s: %d page(s); a small count must split the listing", what, pages)
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.name] {
			t.Errorf("%s: %q listed twice", what, e.name)
		}
		seen[e.name] = true
		id, ok := want[e.name]
		switch {
		case !ok:
			t.Errorf("%s: unexpected entry %q", what, e.name)
		case e.fileid != id:
			t.Errorf("%s: %q has fileid %d, GETATTR says %d", what, e.name, e.fileid, id)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: %q missing", what, name)
		}
	}
}

func (f *confFixture) testReaddir(t *testing.T) {
	dir, want := f.listing(t, "alice/ls", 6)
	verf := make([]byte, 8)
	var cookie uint64
	var all []dirent
	pages := 0
	for {
		st, ents, nv, eof := f.readdir(t, f.ra, dir, cookie, verf, 200)
		if st != st3OK {
			t.Fatalf("READDIR page %d: %s", pages+1, stName(st))
		}
		pages++
		all = append(all, ents...)
		if eof {
			break
		}
		if len(ents) == 0 || pages > 50 {
			t.Fatalf("READDIR page %d: %d entries and not eof", pages, len(ents))
		}
		cookie, verf = ents[len(ents)-1].cookie, nv
	}
	checkListing(t, "READDIR", pages, all, want)

	file := mustHandle(t, f.alice, "alice/ls/entry-00")
	st, _, _, _ := f.readdir(t, f.ra, file, 0, make([]byte, 8), 4096)
	wantStatus(t, "READDIR of a regular file", st, st3NotDir)
	st, _, _, _ = f.readdir(t, f.rb, dir, 0, make([]byte, 8), 4096)
	wantStatus(t, "READDIR of another user's 0700 directory", st, st3Acces)
}

func (f *confFixture) testReaddirplus(t *testing.T) {
	dir, want := f.listing(t, "alice/lsp", 10)
	verf := make([]byte, 8)
	var cookie uint64
	var all []dirent
	pages := 0
	for {
		st, ents, nv, eof := f.readdirplus(t, f.ra, dir, cookie, verf, 512, 1024)
		if st != st3OK {
			t.Fatalf("READDIRPLUS page %d: %s", pages+1, stName(st))
		}
		pages++
		all = append(all, ents...)
		if eof {
			break
		}
		if len(ents) == 0 || pages > 50 {
			t.Fatalf("READDIRPLUS page %d: %d entries and not eof", pages, len(ents))
		}
		cookie, verf = ents[len(ents)-1].cookie, nv
	}
	checkListing(t, "READDIRPLUS", pages, all, want)
	for _, e := range all {
		if !strings.HasPrefix(e.name, "entry-") {
			continue
		}
		_, lfh := f.lookup(t, f.ra, dir, e.name)
		if e.fh == nil || !bytes.Equal(e.fh, lfh) || e.attr == nil || e.attr.FileID != e.fileid || e.attr.Type != 1 {
			t.Errorf("READDIRPLUS %s: handle %x (LOOKUP %x), attributes %+v", e.name, e.fh, lfh, e.attr)
		}
	}
	// go-nfs-client's listing (it drops . and ..).
	ents, err := f.alice.Target.ReadDirPlus("alice/lsp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var wantNames []string
	for n := range want {
		if n != "." && n != ".." {
			wantNames = append(wantNames, n)
		}
	}
	sort.Strings(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("go-nfs-client READDIRPLUS: %v, want %v", names, wantNames)
	}
	st, _, _, _ := f.readdirplus(t, f.rb, dir, 0, make([]byte, 8), 512, 4096)
	wantStatus(t, "READDIRPLUS of another user's 0700 directory", st, st3Acces)
}

func (f *confFixture) testFSQueries(t *testing.T) {
	st, d := f.ra.nfs("FSSTAT", nfsFsstat, (&xdrBuf{}).opaque(f.root).b)
	wantStatus(t, "FSSTAT", st, st3OK)
	d.postOpAttr()
	tbytes, fbytes, abytes := d.u64(), d.u64(), d.u64()
	tfiles, ffiles, afiles := d.u64(), d.u64(), d.u64()
	d.u32() // invarsec
	// No d.end(): go-nfs sends invarsec as 8 bytes today.
	if tbytes == 0 || fbytes == 0 || fbytes > tbytes || abytes > fbytes || tfiles == 0 || ffiles > tfiles || afiles > ffiles {
		t.Errorf("FSSTAT: bytes %d/%d/%d, files %d/%d/%d", tbytes, fbytes, abytes, tfiles, ffiles, afiles)
	}

	info, err := f.alice.Target.FSInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.RTMax != 1<<20 || info.WTMax != 1<<20 || info.RTPref == 0 || info.RTPref > info.RTMax ||
		info.WTPref == 0 || info.WTPref > info.WTMax || info.DTPref == 0 || info.Size == 0 {
		t.Errorf("FSINFO: %+v", info)
	}
	const props = 0x1 | 0x2 | 0x8 | 0x10 // LINK SYMLINK HOMOGENEOUS CANSETTIME
	if info.Properties&props != props {
		t.Errorf("FSINFO properties %#x, want at least %#x", info.Properties, props)
	}
	st, d = f.ra.nfs("FSINFO", nfsFsinfo, (&xdrBuf{}).opaque(f.root).b)
	wantStatus(t, "FSINFO", st, st3OK)
	d.postOpAttr()
	for i := 0; i < 7; i++ {
		d.u32()
	}
	d.u64()
	d.time()
	d.u32()
	d.end()

	st, d = f.ra.nfs("PATHCONF", nfsPathconf, (&xdrBuf{}).opaque(f.root).b)
	wantStatus(t, "PATHCONF", st, st3OK)
	d.postOpAttr()
	linkmax, nameMax := d.u32(), d.u32()
	noTrunc, chownRestricted, caseInsensitive, casePreserving := d.bool(), d.bool(), d.bool(), d.bool()
	d.end()
	if nameMax != 255 || !noTrunc || caseInsensitive || !casePreserving {
		t.Errorf("PATHCONF: name_max %d, no_trunc %v, case_insensitive %v, case_preserving %v", nameMax, noTrunc, caseInsensitive, casePreserving)
	}
	// Not checked, wrong today: linkmax is 1 though LINK makes a second
	// name, and chown_restricted is false though only root may chown.
	_, _ = linkmax, chownRestricted
}

// testHandles sends every procedure that takes a handle (but LINK, whose
// file handle is not checked today) four bad ones: the handle of a deleted
// object (STALE), a well-formed handle whose MAC fails (STALE: this
// cluster did not mint it), and malformed ones (BADHANDLE), and checks
// each failure's layout.
func (f *confFixture) testHandles(t *testing.T) {
	f.mkdir(t, "alice/hd", 0o755)
	live := f.mkdir(t, "alice/hd/live", 0o755)
	deadFile := f.file(t, "alice/hd/f", 0o644, []byte("x"))
	deadDir := f.mkdir(t, "alice/hd/d", 0o755)
	if err := f.alice.Target.Remove("alice/hd/f"); err != nil {
		t.Fatal(err)
	}
	if err := f.alice.Target.RmDir("alice/hd/d"); err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), live...)
	forged[len(forged)-1] ^= 0xff
	badMagic := append([]byte(nil), live...)
	badMagic[0] ^= 0xff
	tiny := []byte("12345678")

	type layout int
	const (
		none layout = iota
		attr
		wcc
		wcc2
		unchecked // go-nfs omits these failures' post_op_attr today
	)
	procs := []struct {
		name string
		proc uint32
		lay  layout
		dir  bool // the handle is a directory's
		args func(fh []byte) []byte
	}{
		{"GETATTR", nfsGetattr, none, false, func(fh []byte) []byte { return (&xdrBuf{}).opaque(fh).b }},
		{"SETATTR", nfsSetattr, wcc, false, func(fh []byte) []byte { return (&xdrBuf{}).opaque(fh).sattrMode(0o600).u32(0).b }},
		{"LOOKUP", nfsLookup, attr, true, func(fh []byte) []byte { return (&xdrBuf{}).dirop(fh, "x").b }},
		{"ACCESS", nfsAccess, attr, false, func(fh []byte) []byte { return (&xdrBuf{}).opaque(fh).u32(0x3f).b }},
		{"READLINK", nfsReadlink, attr, false, func(fh []byte) []byte { return (&xdrBuf{}).opaque(fh).b }},
		{"READ", nfsRead, attr, false, func(fh []byte) []byte { return readArgs(fh, 0, 10) }},
		{"WRITE", nfsWrite, wcc, false, func(fh []byte) []byte { return writeArgs(fh, 0, 2, []byte("x")) }},
		{"CREATE", nfsCreate, wcc, true, func(fh []byte) []byte { return createArgs(fh, "x", 1, 0o644) }},
		{"MKDIR", nfsMkdir, wcc, true, func(fh []byte) []byte { return (&xdrBuf{}).dirop(fh, "x").sattrMode(0o755).b }},
		{"SYMLINK", nfsSymlink, wcc, true, func(fh []byte) []byte { return symlinkArgs(fh, "x", "t") }},
		{"MKNOD", nfsMknod, wcc, true, func(fh []byte) []byte { return mknodArgs(fh, "x", 7) }},
		{"REMOVE", nfsRemove, wcc, true, func(fh []byte) []byte { return (&xdrBuf{}).dirop(fh, "x").b }},
		{"RMDIR", nfsRmdir, wcc, true, func(fh []byte) []byte { return (&xdrBuf{}).dirop(fh, "x").b }},
		{"RENAME", nfsRename, wcc2, true, func(fh []byte) []byte { return renameArgs(fh, "x", live, "y") }},
		{"READDIR", nfsReaddir, attr, true, func(fh []byte) []byte { return (&xdrBuf{}).opaque(fh).u64(0).u64(0).u32(4096).b }},
		{"READDIRPLUS", nfsReaddirplus, attr, true, func(fh []byte) []byte {
			return (&xdrBuf{}).opaque(fh).u64(0).u64(0).u32(512).u32(4096).b
		}},
		{"FSSTAT", nfsFsstat, unchecked, true, func(fh []byte) []byte { return (&xdrBuf{}).opaque(fh).b }},
		{"FSINFO", nfsFsinfo, unchecked, true, func(fh []byte) []byte { return (&xdrBuf{}).opaque(fh).b }},
		{"PATHCONF", nfsPathconf, unchecked, true, func(fh []byte) []byte { return (&xdrBuf{}).opaque(fh).b }},
		{"COMMIT", nfsCommit, wcc, false, func(fh []byte) []byte { return (&xdrBuf{}).opaque(fh).u64(0).u32(0).b }},
	}
	for _, p := range procs {
		dead := deadFile
		if p.dir {
			dead = deadDir
		}
		for _, h := range []struct {
			what string
			fh   []byte
			want uint32
		}{
			{"a deleted object's handle", dead, st3Stale},
			{"a handle with a forged MAC", forged, st3Stale},
			{"a handle with a bad magic", badMagic, st3BadHandle},
			{"an 8-byte handle", tiny, st3BadHandle},
		} {
			what := p.name + " with " + h.what
			st, d := f.ra.nfs(what, p.proc, p.args(h.fh))
			switch p.lay {
			case attr:
				d.postOpAttr()
			case wcc:
				d.wcc()
			case wcc2:
				d.wcc()
				d.wcc()
			}
			if p.lay != unchecked {
				d.end()
			}
			wantStatus(t, what, st, h.want)
		}
	}
}

// testReadOnly makes /vol read-only: every change fails EROFS with its
// failure layout, reads go on, and ACCESS grants no change.
func (f *confFixture) testReadOnly(t *testing.T) {
	dir := f.mkdir(t, "alice/ro", 0o755)
	fh := f.file(t, "alice/ro/f", 0o644, []byte("read-only"))
	f.mkdir(t, "alice/ro/d", 0o755)
	setExport(t, f.c, "vol", meta.Export{ReadOnly: true, Squash: meta.SquashRoot, AnonUID: 65534, AnonGID: 65534})

	for _, tc := range []struct {
		what string
		proc uint32
		args []byte
		two  bool // RENAME's two wcc_data
		attr bool // LINK's post_op_attr first
	}{
		{what: "SETATTR", proc: nfsSetattr, args: (&xdrBuf{}).opaque(fh).sattrMode(0o600).u32(0).b},
		{what: "WRITE", proc: nfsWrite, args: writeArgs(fh, 0, 2, []byte("x"))},
		{what: "CREATE", proc: nfsCreate, args: createArgs(dir, "new", 1, 0o644)},
		{what: "CREATE EXCLUSIVE", proc: nfsCreate, args: exclusiveArgs(dir, "newx", 42)},
		{what: "MKDIR", proc: nfsMkdir, args: (&xdrBuf{}).dirop(dir, "new").sattrMode(0o755).b},
		{what: "SYMLINK", proc: nfsSymlink, args: symlinkArgs(dir, "new", "t")},
		{what: "MKNOD", proc: nfsMknod, args: mknodArgs(dir, "new", 7)},
		{what: "REMOVE", proc: nfsRemove, args: (&xdrBuf{}).dirop(dir, "f").b},
		{what: "RMDIR", proc: nfsRmdir, args: (&xdrBuf{}).dirop(dir, "d").b},
		{what: "RENAME", proc: nfsRename, args: renameArgs(dir, "f", dir, "g"), two: true},
		{what: "LINK", proc: nfsLink, args: linkArgs(fh, dir, "h"), attr: true},
	} {
		st, d := f.ra.nfs(tc.what+" on a read-only export", tc.proc, tc.args)
		if tc.attr {
			d.postOpAttr()
		}
		d.wcc()
		if tc.two {
			d.wcc()
		}
		d.end()
		wantStatus(t, tc.what+" on a read-only export", st, st3ROFS)
	}
	if _, err := f.alice.Target.Mkdir("alice/ro/client", 0o755); nfsErr(err) != "NFS3ERR_ROFS" {
		t.Errorf("go-nfs-client MKDIR on a read-only export: %v, want NFS3ERR_ROFS", err)
	}
	if got, err := f.alice.ReadHandle(fh); err != nil || string(got) != "read-only" {
		t.Errorf("READ on a read-only export: %q, %v", got, err)
	}
	if st, h := f.lookup(t, f.ra, dir, "f"); st != st3OK || !bytes.Equal(h, fh) {
		t.Errorf("LOOKUP on a read-only export: %s", stName(st))
	}
	st, d := f.ra.nfs("ACCESS on a read-only export", nfsAccess, (&xdrBuf{}).opaque(fh).u32(0x3f).b)
	d.postOpAttr()
	if got := d.u32(); st != st3OK || got != 0x01 {
		t.Errorf("ACCESS for the owner of a 0644 file on a read-only export: %s, %#x; want READ only", stName(st), got)
	}
	d.end()
}

// fileMode turns permission bits into the os.FileMode go-nfs-client takes.
func fileMode(m uint32) os.FileMode { return os.FileMode(m & 0o777) }
