package meta

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkApplyBatch applies batches of 64 CommitWrite commands, the shape
// of a busy writer's load, each batch in one bbolt transaction.
func BenchmarkApplyBatch(b *testing.B) {
	const perBatch = 64
	h := newHarness(b)
	v := h.volume("bench")
	var files []uint64
	for i := range perBatch {
		files = append(files, h.create(v, RootIno, fmt.Sprintf("f%d", i), TypeFile).Ino)
	}
	replicas := []string{"n1", "n2", "n3"}
	batch := make([]*raft.Log, perBatch)
	b.ReportAllocs()
	b.ResetTimer()
	for round := uint64(0); round < uint64(b.N); round++ {
		for i, ino := range files {
			batch[i] = h.entryNoRecord(&CommitWrite{Header: Header{Time: testTime + int64(round)}, Vol: v, Ino: ino,
				Size: (round + 1) * cs, Chunks: []ChunkWrite{
					{Index: round, BaseVersion: 0, Version: 1, Length: cs, Replicas: replicas}}})
		}
		for i, r := range h.fsm.ApplyBatch(batch) {
			if err := r.(*Result).Err(); err != nil {
				b.Fatalf("command %d: %v", i, err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBatch), "ns/command")
}

// entryNoRecord is entry without keeping the log (benchmarks make millions).
func (h *harness) entryNoRecord(cmd Command) *raft.Log {
	l := encode(h.t, h.next, cmd)
	h.next++
	return l
}
