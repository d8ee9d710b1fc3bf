package meta

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestInodeCodecRoundTrip(t *testing.T) {
	for _, n := range []Inode{
		{},
		{Ino: 1, Gen: 1, Type: TypeDir, Mode: 0o1777, Nlink: 2, Parent: 1, Atime: -5, Mtime: 1 << 62, Ctime: 7},
		{Ino: 1<<64 - 1, Gen: 1<<32 - 1, Type: TypeSymlink, UID: 1000, GID: 65534, Nlink: 1, Size: 11, Target: "../some/where"},
		{Ino: 42, Type: TypeFile, Mode: 0o644, Size: 1 << 62, Target: string(make([]byte, 5000))},
	} {
		b := encodeInode(&n)
		got, err := decodeInode(b)
		if err != nil || !reflect.DeepEqual(*got, n) {
			t.Fatalf("round trip of %+v: %+v, %v", n, got, err)
		}
	}
}

// Values written by storage version 2 are JSON; they must still read.
func TestInodeCodecReadsJSON(t *testing.T) {
	n := Inode{Ino: 9, Gen: 3, Type: TypeFile, Mode: 0o600, UID: 1, GID: 2, Nlink: 1, Size: 100,
		Atime: 1, Mtime: 2, Ctime: 3}
	b, err := json.Marshal(&n)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeInode(b)
	if err != nil || !reflect.DeepEqual(*got, n) {
		t.Fatalf("decode of v2 JSON: %+v, %v", got, err)
	}
}

func TestInodeCodecRejectsDamage(t *testing.T) {
	good := encodeInode(&Inode{Ino: 5, Type: TypeFile, Target: "x"})
	flipped := append([]byte(nil), good...)
	flipped[20] ^= 1
	for name, b := range map[string][]byte{
		"empty": nil, "short": good[:10], "truncated": good[:len(good)-1], "bit flip": flipped,
		"unknown format": append([]byte{2}, good[1:]...), "bad json": []byte("{\"ino\":"),
	} {
		if _, err := decodeInode(b); !errors.Is(err, errCorruptInode) {
			t.Errorf("%s: err = %v, want errCorruptInode", name, err)
		}
	}
}

func FuzzDecodeInode(f *testing.F) {
	f.Add(encodeInode(&Inode{Ino: 5, Type: TypeSymlink, Target: "abc"}))
	f.Add([]byte(`{"ino":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeInode(b)
		if err != nil {
			return
		}
		if b[0] == inodeFormat {
			again, err := decodeInode(encodeInode(n))
			if err != nil || !reflect.DeepEqual(again, n) {
				t.Fatalf("re-encoding %+v: %+v, %v", n, again, err)
			}
		}
	})
}
