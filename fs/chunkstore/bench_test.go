package chunkstore

import (
	"math/rand/v2"
	"testing"
)

const mib = 1 << 20

func benchStore(b *testing.B, noSync bool) *Store {
	cfg := DefaultConfig(b.TempDir())
	cfg.NoSync = noSync
	s, err := Open(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkWrite1MiB rewrites one aligned MiB of a 64 MiB chunk per
// operation, with and without fsync.
func BenchmarkWrite1MiB(b *testing.B) {
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"nosync", true}, {"fsync", false}} {
		b.Run(mode.name, func(b *testing.B) {
			s := benchStore(b, mode.noSync)
			id := ID{1, 1, 0}
			data := make([]byte, mib)
			for i := range data {
				data[i] = byte(rand.Uint32())
			}
			const length = 64 * mib
			if _, err := s.Write(id, 0, 1, length, 0, nil); err != nil {
				b.Fatal(err)
			}
			v := uint64(1)
			b.SetBytes(mib)
			b.ResetTimer()
			for b.Loop() {
				off := int64(v%64) * mib
				if _, err := s.Write(id, v, v+1, length, off, data); err != nil {
					b.Fatal(err)
				}
				v++
			}
		})
	}
}

// BenchmarkRead1MiB reads and verifies one aligned MiB per operation.
func BenchmarkRead1MiB(b *testing.B) {
	s := benchStore(b, true)
	id := ID{1, 1, 0}
	data := make([]byte, 64*mib)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	if err := s.Put(id, 1, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(mib)
	i := 0
	for b.Loop() {
		if _, err := s.Read(id, 1, int64(i%64)*mib, mib); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkVerify64MiB verifies a whole 64 MiB chunk per operation, as the
// scrubber does (page cache dropped first, so on a real disk this measures
// the disk).
func BenchmarkVerify64MiB(b *testing.B) {
	s := benchStore(b, true)
	id := ID{1, 1, 0}
	data := make([]byte, 64*mib)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	if err := s.Put(id, 1, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 * mib)
	for b.Loop() {
		if _, err := s.Verify(id); err != nil {
			b.Fatal(err)
		}
	}
}
