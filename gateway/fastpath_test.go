package gateway

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
)

// patternData is sizeOnlyData whose reads return byte(offset) at every
// offset below the size given, so a test can tell which bytes came back.
type patternData struct{ sizeOnlyData }

func (patternData) ReadAt(_ context.Context, _ *meta.Volume, _ uint64, size uint64, off int64, buf []byte) (int, error) {
	if off < 0 {
		return 0, meta.ErrInvalid
	}
	if uint64(off) >= size {
		return 0, nil
	}
	n := min(uint64(len(buf)), size-uint64(off))
	for i := range n {
		buf[i] = byte(uint64(off) + i)
	}
	return int(n), nil
}

// nfsCall sends one NFSv3 call with AUTH_NONE (uid nobody) on c and
// returns the reply body after the accept status.
func nfsCall(t *testing.T, c net.Conn, xid, proc uint32, args []byte) *xdrReader {
	t.Helper()
	w := &replyWriter{}
	for _, v := range []uint32{xid, rpcCall, 2, nfsProg, 3, proc, authNone, 0, authNone, 0} {
		w.u32(v)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(frame(append(w.b, args...))); err != nil {
		t.Fatal(err)
	}
	reply, err := readRecord(c, maxReply)
	if err != nil {
		t.Fatal(err)
	}
	r := &xdrReader{b: reply}
	if got := r.u32(); got != xid {
		t.Fatalf("reply xid %d, want %d", got, xid)
	}
	r.u32() // reply
	if st := r.u32(); st != 0 {
		t.Fatalf("call denied (%d)", st)
	}
	r.u32()
	r.opaque(400)
	if st := r.u32(); st != acceptSuccess {
		t.Fatalf("accept status %d", st)
	}
	return r
}

// TestReadInFront checks the front's READ against RFC 1813: data from the
// offset asked, capped at rtmax, eof exactly when the data reaches the
// end, the file's attributes with every reply, ISDIR for a directory,
// INVAL for a symlink and ACCES for a caller without read permission.
func TestReadInFront(t *testing.T) {
	s, root, _ := newTestServerWith(t, DefaultFrontConfig(), func(m fuzzMeta) vfs.Data { return patternData{sizeOnlyData{m}} })
	rootID, err := s.h.codec.Decode(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	size := uint64(3<<20 + 100)
	mk := func(name string, kind meta.FileType, mode uint32) []byte {
		res, err := s.h.meta.Propose(ctx, &meta.Create{Vol: rootID.Vol, Parent: meta.RootIno, Name: name, Kind: kind, Mode: mode, Target: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if kind == meta.TypeFile {
			if _, err := s.h.meta.Propose(ctx, &meta.SetAttr{Vol: rootID.Vol, Ino: res.Inode.Ino, Size: &size}); err != nil {
				t.Fatal(err)
			}
		}
		return s.h.codec.Encode(FileID{Vol: rootID.Vol, Ino: res.Inode.Ino, Gen: res.Inode.Gen})
	}
	readable, secret, link := mk("r", meta.TypeFile, 0o644), mk("secret", meta.TypeFile, 0o600), mk("l", meta.TypeSymlink, 0o777)

	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	read := func(xid uint32, fh []byte, off uint64, count uint32) (st uint32, attrSize uint64, data []byte, eof bool) {
		a := &replyWriter{}
		a.opaque(fh)
		a.u64(off)
		a.u32(count)
		r := nfsCall(t, c, xid, nfsProcRead, a.b)
		st = r.u32()
		if r.u32() == 1 { // post_op_attr
			r.skip(20) // type mode nlink uid gid
			attrSize = uint64(r.u32())<<32 | uint64(r.u32())
			r.skip(84 - 28)
		}
		if st == nfs3OK {
			n := r.u32()
			eof = r.u32() == 1
			data = r.opaque(maxIO)
			if uint32(len(data)) != n {
				t.Fatalf("READ count %d, data %d bytes", n, len(data))
			}
		}
		if r.err != nil {
			t.Fatalf("decoding READ reply: %v", r.err)
		}
		return
	}
	want := func(off, n uint64) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(off + uint64(i))
		}
		return b
	}
	for _, tc := range []struct {
		off     uint64
		count   uint32
		wantN   uint64
		wantEOF bool
	}{
		{0, 4096, 4096, false},
		{12345, 2 << 20, maxIO, false}, // capped at rtmax
		{size - 100, 100, 100, true},   // up to the end exactly
		{size - 10, 4096, 10, true},
		{size, 4096, 0, true},
		{size + 5000, 4096, 0, true},
	} {
		st, attr, data, eof := read(1, readable, tc.off, tc.count)
		if st != nfs3OK || attr != size || uint64(len(data)) != tc.wantN || eof != tc.wantEOF {
			t.Errorf("READ %d+%d: status %d, attr size %d, %d bytes, eof %v; want OK, %d, %d bytes, eof %v",
				tc.off, tc.count, st, attr, len(data), eof, size, tc.wantN, tc.wantEOF)
			continue
		}
		if !bytes.Equal(data, want(tc.off, tc.wantN)) {
			t.Errorf("READ %d+%d: wrong bytes", tc.off, tc.count)
		}
	}
	for name, tc := range map[string]struct {
		fh   []byte
		want uint32
	}{
		"directory":     {root, nfs3ErrIsDir},
		"symlink":       {link, nfs3ErrInval},
		"no permission": {secret, nfs3ErrAcces},
		"bad handle":    {[]byte("not a handle"), nfs3ErrBadHndl},
	} {
		if st, _, _, _ := read(2, tc.fh, 0, 10); st != tc.want {
			t.Errorf("READ of a %s: status %d, want %d", name, st, tc.want)
		}
	}
	// The connection still serves after the errors.
	if err := nullOn(c); err != nil {
		t.Fatal(err)
	}
}

// TestWriteInFront checks the front's WRITE: the data reaches the data
// path at the offset asked, the reply is FILE_SYNC with the server's write
// verifier and wcc_data before and after (the size grows), and the
// refusals a local open for writing would give: ISDIR, INVAL (symlink, or
// a count larger than the data), ACCES, ROFS on a read-only export.
func TestWriteInFront(t *testing.T) {
	s, root, file := newTestServerWith(t, DefaultFrontConfig(), func(m fuzzMeta) vfs.Data { return sizeOnlyData{m} })
	rootID, err := s.h.codec.Decode(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	mk := func(name string, kind meta.FileType, mode uint32) []byte {
		res, err := s.h.meta.Propose(ctx, &meta.Create{Vol: rootID.Vol, Parent: meta.RootIno, Name: name, Kind: kind, Mode: mode, Target: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return s.h.codec.Encode(FileID{Vol: rootID.Vol, Ino: res.Inode.Ino, Gen: res.Inode.Gen})
	}
	secret, link := mk("secret", meta.TypeFile, 0o600), mk("l", meta.TypeSymlink, 0o777)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write := func(fh []byte, off uint64, count uint32, data []byte) (st uint32, before, after uint64, n uint32, committed uint32, verf []byte) {
		a := &replyWriter{}
		a.opaque(fh)
		a.u64(off)
		a.u32(count)
		a.u32(stableFileSync)
		a.opaque(data)
		r := nfsCall(t, c, 3, nfsProcWrite, a.b)
		st = r.u32()
		if r.u32() == 1 {
			before = uint64(r.u32())<<32 | uint64(r.u32())
			r.skip(16)
		}
		if r.u32() == 1 {
			r.skip(20)
			after = uint64(r.u32())<<32 | uint64(r.u32())
			r.skip(84 - 28)
		}
		if st == nfs3OK {
			n, committed = r.u32(), r.u32()
			verf = make([]byte, 8)
			copy(verf, r.b[r.off:])
			r.skip(8)
		}
		if r.err != nil {
			t.Fatalf("decoding WRITE reply: %v", r.err)
		}
		return
	}
	st, before, after, n, committed, verf := write(file, 1000, 5, []byte("hello"))
	if st != nfs3OK || before != 0 || after != 1005 || n != 5 || committed != stableFileSync || !bytes.Equal(verf, []byte{1, 0, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("WRITE: status %d, size %d -> %d, count %d, committed %d, verifier %x", st, before, after, n, committed, verf)
	}
	id, _ := s.h.codec.Decode(file)
	if ino, err := s.h.meta.FSM().Inode(id.Vol, id.Ino); err != nil || ino.Size != 1005 {
		t.Fatalf("size after WRITE: %+v, %v", ino, err)
	}
	if st, before, after, n, _, _ := write(file, 0, 0, nil); st != nfs3OK || before != 1005 || after != 1005 || n != 0 {
		t.Errorf("empty WRITE: status %d, size %d -> %d, count %d", st, before, after, n)
	}
	for name, tc := range map[string]struct {
		fh    []byte
		count uint32
		want  uint32
	}{
		"directory":       {root, 5, nfs3ErrIsDir},
		"symlink":         {link, 5, nfs3ErrInval},
		"no permission":   {secret, 5, nfs3ErrAcces},
		"count past data": {file, 6, nfs3ErrInval},
		"forged handle":   {append(append([]byte{}, file[:len(file)-1]...), file[len(file)-1]^1), 5, nfs3ErrStale},
	} {
		if st, _, _, _, _, _ := write(tc.fh, 0, tc.count, []byte("hello")); st != tc.want {
			t.Errorf("WRITE to a %s: status %d, want %d", name, st, tc.want)
		}
	}
	v, err := s.h.meta.FSM().VolumeByID(id.Vol)
	if err != nil {
		t.Fatal(err)
	}
	ex := v.Export
	ex.ReadOnly = true
	if _, err := s.h.meta.Propose(ctx, &meta.SetExport{Name: v.Name, Export: ex}); err != nil {
		t.Fatal(err)
	}
	if st, _, _, _, _, _ := write(file, 0, 5, []byte("hello")); st != nfs3ErrROFS {
		t.Errorf("WRITE on a read-only export: status %d, want ROFS", st)
	}
	if ino, _ := s.h.meta.FSM().Inode(id.Vol, id.Ino); ino.Size != 1005 {
		t.Errorf("a refused WRITE changed the size to %d", ino.Size)
	}
}
