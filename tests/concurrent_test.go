package tests

import (
	"bytes"
	"fmt"
	"math/rand"
	"sync"
	"testing"
)

// TestConcurrentWritersThroughTwoNodes has two clients, connected to two
// different gateways, write interleaved disjoint blocks of the same new file
// at the same time. Each gateway serialises only its own writes, so the two
// race on the same chunks and replicas; every acknowledged block must be
// there afterwards, read through the third node.
func TestConcurrentWritersThroughTwoNodes(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	setup, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	f, err := setup.Target.OpenFile("shared.bin", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fh, err := setup.Handle("shared.bin")
	if err != nil {
		t.Fatal(err)
	}

	const block, blocks = 64 << 10, 40 // 2.5 MiB over three 1 MiB chunks
	want := make([][]byte, blocks)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := 0; w < 2; w++ {
		cl, err := Mount(c.NFSAddr(w), "/vol")
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		rng := rand.New(rand.NewSource(int64(10 + w)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < blocks; i += 2 {
				data := make([]byte, block)
				rng.Read(data)
				if err := cl.WriteHandle(fh, uint64(i*block), data); err != nil {
					errs <- fmt.Errorf("writer %d block %d: %w", w, i, err)
					return
				}
				want[i] = data // acknowledged
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	reader, err := Mount(c.NFSAddr(2), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	got, err := reader.ReadHandle(fh)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != block*blocks {
		t.Fatalf("file is %d bytes, want %d", len(got), block*blocks)
	}
	for i := range want {
		if !bytes.Equal(got[i*block:(i+1)*block], want[i]) {
			t.Fatalf("acknowledged block %d (writer %d) is not in the file", i, i%2)
		}
	}
}
