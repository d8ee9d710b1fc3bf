package gateway

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzDecodeHandle(f *testing.F) {
	c := NewHandleCodec([]byte("fuzz secret"))
	valid := c.Encode(FileID{Vol: 3, Ino: 42, Gen: 9})
	f.Add(valid)
	f.Add(c.Encode(FileID{}))
	f.Add([]byte{})
	f.Add([]byte{0xF5, 1, 0, 0})
	f.Add(bytes.Repeat([]byte{0xFF}, HandleSize))
	f.Add(bytes.Repeat([]byte{0}, 64))
	f.Add(append(bytes.Clone(valid), 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, h []byte) {
		in := bytes.Clone(h)
		id, err := c.Decode(h)
		if !bytes.Equal(in, h) {
			t.Fatalf("Decode modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrBadHandle) && !errors.Is(err, ErrForgedHandle) {
				t.Fatalf("Decode(%x) = %v, want ErrBadHandle or ErrForgedHandle", h, err)
			}
			return
		}
		if again := c.Encode(id); !bytes.Equal(again, h) {
			t.Fatalf("accepted %x as %+v, which encodes to %x", h, id, again)
		}
	})
}
