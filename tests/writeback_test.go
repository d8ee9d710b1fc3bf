package tests

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// TestUnstableWritesAcrossGatewayLoss proves that the write-behind loses
// nothing a client was told is safe. A client writes UNSTABLE through node
// 0 (the replies promise nothing durable: committed = UNSTABLE), node 0
// dies before the client's COMMIT (Stop: like a kill, nothing buffered is
// flushed), and the client moves to node 1 with the same handle, as a
// remount does. Node 1's COMMIT answers another write verifier, so the
// client sends its writes again (as a Linux client does on a mismatch)
// until a COMMIT answers the verifier its writes were acknowledged under;
// then every byte reads back, through node 1 and node 2.
func TestUnstableWritesAcrossGatewayLoss(t *testing.T) {
	c := NewCluster(t, ClusterOptions{OpTimeout: 3 * time.Second})
	cl0, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl0.Close()
	f, err := cl0.Target.OpenFile("wb.bin", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fh, err := cl0.Handle("wb.bin")
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]byte
	var want []byte
	for i := range 6 {
		b := bytes.Repeat([]byte(fmt.Sprintf("block %d of the unstable writes|", i)), 8<<10)
		blocks = append(blocks, b)
		want = append(want, b...)
	}
	offsets := make([]uint64, len(blocks))
	for i := 1; i < len(blocks); i++ {
		offsets[i] = offsets[i-1] + uint64(len(blocks[i-1]))
	}
	var v0 uint64
	for i, b := range blocks {
		how, v, err := cl0.WriteUnstable(fh, offsets[i], b)
		if err != nil {
			t.Fatalf("UNSTABLE write %d through node 0: %v", i, err)
		}
		if how != 0 {
			t.Fatalf("UNSTABLE write %d answered committed=%d: the write-behind is off", i, how)
		}
		if i > 0 && v != v0 {
			t.Fatalf("verifier changed between writes to a healthy gateway: %x, %x", v0, v)
		}
		v0 = v
	}
	c.Stop(0)

	cl1, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl1.Close()
	first := true
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err := cl1.Commit(fh)
		switch {
		case err != nil:
			t.Logf("COMMIT through node 1: %v (retrying)", err)
		case first && v == v0:
			t.Fatalf("node 1's COMMIT answered node 0's verifier %x: the client would drop data node 0 never stored", v)
		default:
			// Send everything again, as the client does on a mismatch;
			// done once the verifier of all writes is the COMMIT's.
			same := true
			for i, b := range blocks {
				_, wv, werr := cl1.WriteUnstable(fh, offsets[i], b)
				if werr != nil || wv != v {
					same = false
				}
			}
			if cv, cerr := cl1.Commit(fh); same && cerr == nil && cv == v {
				got, err := cl1.ReadHandle(fh)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("after the resend and COMMIT, node 1 reads %d bytes (%v), want the %d written", len(got), err, len(want))
				}
				cl2, err := Mount(c.NFSAddr(2), "/vol")
				if err != nil {
					t.Fatal(err)
				}
				defer cl2.Close()
				got, err = cl2.ReadHandle(fh)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("node 2 reads %d bytes (%v), want the %d written and committed through node 1", len(got), err, len(want))
				}
				return
			}
		}
		first = false
		if time.Now().After(deadline) {
			t.Fatal("no COMMIT through node 1 confirmed the resent writes within 60 s")
		}
		time.Sleep(200 * time.Millisecond) // retry interval, as a client's
	}
}
