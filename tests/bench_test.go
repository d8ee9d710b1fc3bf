package tests

import (
	"fmt"
	"math/rand"
	"testing"
)

// BenchmarkNFSWrite1MiB measures sequential 1 MiB FILE_SYNC WRITEs through
// one gateway of a 3-node cluster (3 replicas, quorum 2), go-nfs-client,
// one request in flight.
func BenchmarkNFSWrite1MiB(b *testing.B) {
	c := NewCluster(b, ClusterOptions{})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	f, err := cl.Target.OpenFile("bench.bin", 0o644)
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	fh, err := cl.Handle("bench.bin")
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 1<<20)
	rand.New(rand.NewSource(4)).Read(block)
	b.SetBytes(int64(len(block)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := cl.WriteHandle(fh, uint64(i)*uint64(len(block)), block); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNFSRead1MiB measures sequential 1 MiB READs of a 64 MiB file
// through a gateway that holds a replica of every chunk.
func BenchmarkNFSRead1MiB(b *testing.B) {
	c := NewCluster(b, ClusterOptions{})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	f, err := cl.Target.OpenFile("bench.bin", 0o644)
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 1<<20)
	rand.New(rand.NewSource(5)).Read(block)
	const blocks = 64
	for i := 0; i < blocks; i++ {
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	rf, err := cl.Target.Open("bench.bin")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, len(block))
	b.SetBytes(int64(len(block)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := int64(i%blocks) << 20
		for got := 0; got < len(buf); {
			n, err := rf.ReadAt(buf[got:], off+int64(got))
			if n == 0 && err != nil {
				b.Fatalf("read at %d: %v", off+int64(got), err)
			}
			got += n
		}
	}
}

// BenchmarkNFSCreateSmall measures create + one 4 KiB write per file.
func BenchmarkNFSCreateSmall(b *testing.B) {
	c := NewCluster(b, ClusterOptions{})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	data := make([]byte, 4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := cl.Target.OpenFile(fmt.Sprintf("small-%d", i), 0o644)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
