package gateway

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func sampleCall() []byte {
	w := &replyWriter{}
	w.u32(7)      // xid
	w.u32(0)      // call
	w.u32(2)      // rpcvers
	w.u32(100003) // NFS
	w.u32(3)
	w.u32(1) // GETATTR
	cred := &replyWriter{}
	cred.u32(0)
	cred.opaque([]byte("host"))
	cred.u32(1000)
	cred.u32(1000)
	cred.u32(1)
	cred.u32(27)
	w.u32(authSys)
	w.opaque(cred.b)
	w.u32(0)
	w.u32(0)
	w.opaque(make([]byte, 36))
	return w.b
}

// FuzzReadRecord: the record reader never panics, never returns more than
// its limit, and reassembles fragments.
func FuzzReadRecord(f *testing.F) {
	f.Add(frame(sampleCall()))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2})
	f.Add([]byte{0, 0, 0, 2, 'a', 'b', 0x80, 0, 0, 1, 'c'})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := readRecord(bytes.NewReader(b), 1024)
		if err == nil && len(rec) > 1024 {
			t.Fatalf("record of %d bytes over the limit", len(rec))
		}
	})
}

// FuzzParseCall: the call-header decoder never panics and never points
// past the record.
func FuzzParseCall(f *testing.F) {
	f.Add(sampleCall())
	f.Add([]byte{})
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCall(b)
		if err == nil && (c.args > len(b) || c.args < 0) {
			t.Fatalf("arguments at %d of %d bytes", c.args, len(b))
		}
		if err == nil && c.cred.Flavor == authSys && len(c.cred.GIDs) > 16 {
			t.Fatalf("%d groups", len(c.cred.GIDs))
		}
	})
}

// FuzzReplyRewrites: the reply rewriters (LINK layout, status mapping)
// never panic on any reply go-nfs could produce, or any bytes at all.
func FuzzReplyRewrites(f *testing.F) {
	ok := accepted(9, acceptSuccess)
	ok.u32(0)
	ok.u32(1)
	ok.opaque(make([]byte, 36))
	ok.u32(0)
	ok.u32(0)
	ok.u32(0)
	f.Add(ok.b)
	fail := accepted(9, acceptSuccess)
	fail.u32(5)
	fail.u32(0)
	fail.u32(0)
	f.Add(fail.b)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = fixLinkReply(b)
		c := append([]byte(nil), b...)
		rewriteStatus(c, ErrStale)
		if at := replyStatusOffset(b); at >= 0 && at+4 > len(b) {
			t.Fatalf("status offset %d past %d bytes", at, len(b))
		}
	})
}

func TestFixLinkReply(t *testing.T) {
	ok := accepted(9, acceptSuccess)
	ok.u32(0)
	ok.u32(1)
	ok.opaque(make([]byte, 36))
	ok.u32(0) // post_op_attr
	ok.u32(0) // wcc before
	ok.u32(0) // wcc after
	got := fixLinkReply(ok.b)
	want := accepted(9, acceptSuccess)
	want.u32(0)
	want.u32(0)
	want.u32(0)
	want.u32(0)
	if !bytes.Equal(got, want.b) {
		t.Fatalf("LINK success reply:\n got %x\nwant %x", got, want.b)
	}
	fail := accepted(9, acceptSuccess)
	fail.u32(17)
	fail.u32(0)
	fail.u32(0)
	got = fixLinkReply(fail.b)
	if len(got) != len(fail.b)+4 || binary.BigEndian.Uint32(got[len(got)-12:]) != 0 {
		t.Fatalf("LINK error reply lacks the file's post_op_attr: %x", got)
	}
}
