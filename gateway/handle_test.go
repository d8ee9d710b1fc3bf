package gateway

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"
)

var testIDs = []FileID{
	{},
	{Vol: 1, Ino: 1, Gen: 0},
	{Vol: 7, Ino: 123456789, Gen: 3},
	{Vol: math.MaxUint32, Ino: math.MaxUint64, Gen: math.MaxUint32},
}

func TestHandleRoundTrip(t *testing.T) {
	c := NewHandleCodec([]byte("cluster secret"))
	for _, id := range testIDs {
		h := c.Encode(id)
		if len(h) != HandleSize || len(h)%4 != 0 || len(h) > 64 {
			t.Fatalf("handle of %+v has length %d", id, len(h))
		}
		got, err := c.Decode(h)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", id, err)
		}
		if got != id {
			t.Fatalf("Decode(Encode(%+v)) = %+v", id, got)
		}
	}
}

func TestHandleDeterministic(t *testing.T) {
	// Two codecs from the same secret stand for two nodes of one cluster.
	a, b := NewHandleCodec([]byte("s")), NewHandleCodec([]byte("s"))
	for _, id := range testIDs {
		if ha, hb := a.Encode(id), b.Encode(id); !bytes.Equal(ha, hb) || !bytes.Equal(ha, a.Encode(id)) {
			t.Fatalf("handles of %+v differ: %x, %x", id, ha, hb)
		}
	}
	// Distinct ids never share a handle (the body is the id itself).
	seen := map[string]FileID{}
	for _, id := range testIDs {
		h := string(a.Encode(id))
		if prev, ok := seen[h]; ok {
			t.Fatalf("%+v and %+v share a handle", prev, id)
		}
		seen[h] = id
	}
}

func TestHandleLayout(t *testing.T) {
	c := NewHandleCodec([]byte("s"))
	h := c.Encode(FileID{Vol: 0x01020304, Ino: 0x05060708090a0b0c, Gen: 0x0d0e0f10})
	want := []byte{0xF5, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if !bytes.Equal(h[:20], want) {
		t.Fatalf("header and body = % x, want % x (docs/file-handle.md)", h[:20], want)
	}
}

func TestHandleBitFlipsRejected(t *testing.T) {
	c := NewHandleCodec([]byte("cluster secret"))
	valid := c.Encode(FileID{Vol: 3, Ino: 42, Gen: 9})
	for i := range valid {
		for bit := range 8 {
			h := bytes.Clone(valid)
			h[i] ^= 1 << bit
			_, err := c.Decode(h)
			want := ErrForgedHandle
			if i < 4 {
				want = ErrBadHandle // magic, version, reserved are checked before the MAC
			}
			if !errors.Is(err, want) {
				t.Fatalf("byte %d bit %d flipped: err = %v, want %v", i, bit, err, want)
			}
		}
	}
}

func TestHandleLengthRejected(t *testing.T) {
	c := NewHandleCodec([]byte("cluster secret"))
	valid := c.Encode(FileID{Vol: 3, Ino: 42, Gen: 9})
	for n := range HandleSize {
		if _, err := c.Decode(valid[:n]); !errors.Is(err, ErrBadHandle) {
			t.Fatalf("truncated to %d bytes: err = %v, want ErrBadHandle", n, err)
		}
	}
	for _, extra := range [][]byte{{0}, {0, 0, 0, 0}, valid} {
		h := append(bytes.Clone(valid), extra...)
		if _, err := c.Decode(h); !errors.Is(err, ErrBadHandle) {
			t.Fatalf("extended to %d bytes: err = %v, want ErrBadHandle", len(h), err)
		}
	}
	if _, err := c.Decode(nil); !errors.Is(err, ErrBadHandle) {
		t.Fatalf("nil handle: err = %v, want ErrBadHandle", err)
	}
}

func TestHandleOtherClusterRejected(t *testing.T) {
	ours, theirs := NewHandleCodec([]byte("ours")), NewHandleCodec([]byte("theirs"))
	for _, id := range testIDs {
		if _, err := ours.Decode(theirs.Encode(id)); !errors.Is(err, ErrForgedHandle) {
			t.Fatalf("handle of %+v from another secret: err = %v, want ErrForgedHandle", id, err)
		}
	}
}

func TestHandleErrorsAreDistinct(t *testing.T) {
	c := NewHandleCodec([]byte("s"))
	_, bad := c.Decode([]byte{1, 2, 3})
	h := c.Encode(FileID{Ino: 1})
	h[HandleSize-1] ^= 1
	_, forged := c.Decode(h)
	if errors.Is(bad, ErrForgedHandle) || errors.Is(forged, ErrBadHandle) {
		t.Fatalf("errors overlap: bad=%v forged=%v", bad, forged)
	}
}

func BenchmarkDecodeHandle(b *testing.B) {
	c := NewHandleCodec([]byte("cluster secret"))
	h := c.Encode(FileID{Vol: 3, Ino: 42, Gen: 9})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeHandle(b *testing.B) {
	c := NewHandleCodec([]byte("cluster secret"))
	id := FileID{Vol: 3, Ino: 42, Gen: 9}
	b.ReportAllocs()
	for b.Loop() {
		c.Encode(id)
	}
}

// fakeKeys is a key generation under the test's control.
type fakeKeys struct {
	gen   uint64
	until int64
}

func (k *fakeKeys) HandleKeyGen() (uint64, int64, error) { return k.gen, k.until, nil }

// TestHandleKeyRotation: after a rotation, new handles use the new key,
// handles of the previous key stay valid until the grace time ends and
// are then refused as forged (STALE to the client); generation 0 is the
// key of NewHandleCodec, so clusters that never rotated keep their
// handles.
func TestHandleKeyRotation(t *testing.T) {
	secret := []byte("rotation test secret")
	keys := &fakeKeys{}
	now := time.Unix(1000, 0)
	c := NewRotatingHandleCodec(secret, keys, func() time.Time { return now })
	id := FileID{Vol: 1, Ino: 42, Gen: 3}
	old := c.Encode(id)
	if !bytes.Equal(old, NewHandleCodec(secret).Encode(id)) {
		t.Fatal("generation 0 differs from NewHandleCodec's key")
	}

	keys.gen, keys.until = 1, now.Add(time.Hour).UnixNano()
	fresh := c.Encode(id)
	if bytes.Equal(fresh, old) {
		t.Fatal("the handle did not change with the key")
	}
	for name, h := range map[string][]byte{"old": old, "new": fresh} {
		if got, err := c.Decode(h); err != nil || got != id {
			t.Fatalf("%s handle during the grace time: %+v, %v", name, got, err)
		}
	}
	now = now.Add(time.Hour)
	if _, err := c.Decode(old); !errors.Is(err, ErrForgedHandle) {
		t.Fatalf("old handle after the grace time: %v, want ErrForgedHandle", err)
	}
	if got, err := c.Decode(fresh); err != nil || got != id {
		t.Fatalf("new handle after the grace time: %+v, %v", got, err)
	}
	// Two rotations: generation 0 is no longer the previous one.
	keys.gen, keys.until = 2, now.Add(time.Hour).UnixNano()
	if _, err := c.Decode(old); !errors.Is(err, ErrForgedHandle) {
		t.Fatalf("a handle two generations old: %v, want ErrForgedHandle", err)
	}
	if _, err := c.Decode(fresh); err != nil {
		t.Fatalf("the previous generation's handle in the grace time: %v", err)
	}
}

// TestHandleKeyOneAhead: a node that has not applied a rotation yet
// accepts the handles a node that has mints (any node decodes any handle),
// but not those two generations ahead.
func TestHandleKeyOneAhead(t *testing.T) {
	secret := []byte("rotation test secret")
	now := func() time.Time { return time.Unix(1000, 0) }
	ahead := NewRotatingHandleCodec(secret, &fakeKeys{gen: 1}, now)
	behind := NewRotatingHandleCodec(secret, &fakeKeys{gen: 0}, now)
	id := FileID{Vol: 2, Ino: 7, Gen: 1}
	if got, err := behind.Decode(ahead.Encode(id)); err != nil || got != id {
		t.Fatalf("a handle of the next key on a node behind: %+v, %v", got, err)
	}
	further := NewRotatingHandleCodec(secret, &fakeKeys{gen: 2}, now)
	if _, err := behind.Decode(further.Encode(id)); !errors.Is(err, ErrForgedHandle) {
		t.Fatalf("a handle two keys ahead: %v, want ErrForgedHandle", err)
	}
	// Without rotation (NewHandleCodec), only generation 0 is accepted.
	if _, err := NewHandleCodec(secret).Decode(ahead.Encode(id)); !errors.Is(err, ErrForgedHandle) {
		t.Fatalf("a fixed-key codec accepted another generation: %v", err)
	}
}
