package gateway

import (
	"context"
	"fmt"
	"testing"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
)

// BenchmarkReadDirPlusPage measures one READDIRPLUS page (dircount 32 KiB,
// maxcount 128 KiB, as nfsbench and Linux ask) of a 1,000-entry directory
// as the front serves it: decoding the call, reading the entries and
// their attributes from the FSM, encoding the reply. Every page after the
// first is asked for by its cookie, so each iteration lists the whole
// directory; ns/op is per page.
func BenchmarkReadDirPlusPage(b *testing.B) {
	s, root, _ := newTestServerWith(b, DefaultFrontConfig(), func(m fuzzMeta) vfs.Data { return sizeOnlyData{m} })
	id, err := s.h.codec.Decode(root)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if _, err := s.h.meta.Propose(context.Background(), &meta.Create{Vol: id.Vol, Parent: meta.RootIno,
			Name: fmt.Sprintf("file-%04d", i), Kind: meta.TypeFile, Mode: 0o644}); err != nil {
			b.Fatal(err)
		}
	}
	page := func(cookie uint64) (call, []byte) {
		w := &replyWriter{}
		for _, v := range []uint32{1, rpcCall, 2, nfsProg, 3, nfsProcReadDirPlus, authNone, 0, authNone, 0} {
			w.u32(v)
		}
		w.opaque(root)
		w.u64(cookie)
		w.u64(0) // cookie verifier
		w.u32(32 << 10)
		w.u32(128 << 10)
		c, err := parseCall(w.b)
		if err != nil {
			b.Fatal(err)
		}
		return c, w.b
	}
	b.ReportAllocs()
	pages, entries, cookie := 0, 0, uint64(0)
	for b.Loop() {
		c, rec := page(cookie)
		reply := s.readDir(c, rec, "127.0.0.1:700", true)
		next, n, eof := lastCookie(b, reply)
		pages++
		entries += n
		if cookie = next; eof {
			cookie = 0
		}
	}
	b.ReportMetric(float64(entries)/float64(pages), "entries/page")
}

// lastCookie returns the cookie of the last entry of a READDIRPLUS reply,
// the number of entries and whether it ends the directory.
func lastCookie(b *testing.B, reply []byte) (uint64, int, bool) {
	r := &xdrReader{b: reply}
	r.u32() // xid
	r.u32() // reply
	r.u32() // accepted
	r.u32()
	r.opaque(400) // verifier
	r.u32()       // accept status
	if st := r.u32(); st != nfs3OK {
		b.Fatalf("READDIRPLUS status %d", st)
	}
	skipPostOp(r)
	r.skip(8) // cookie verifier
	var cookie uint64
	n := 0
	for r.u32() == 1 && r.err == nil {
		n++
		r.skip(8) // fileid
		r.opaque(255)
		cookie = (uint64(r.u32())<<32 | uint64(r.u32()))
		skipPostOp(r)
		if r.u32() == 1 {
			r.opaque(maxHandle)
		}
	}
	eof := r.u32() == 1
	if r.err != nil {
		b.Fatalf("decoding READDIRPLUS reply: %v", r.err)
	}
	return cookie, n, eof
}

func skipPostOp(r *xdrReader) {
	if r.u32() == 1 {
		r.skip(84) // fattr3
	}
}
