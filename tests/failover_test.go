package tests

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// writer appends fixed-size blocks to one file by handle through whichever
// gateway it is connected to, and remembers what was acknowledged.
type writer struct {
	t     *testing.T
	fh    []byte
	acked []byte
	rng   *rand.Rand
}

func (w *writer) writeBlock(cl *Client) error {
	block := make([]byte, 64<<10)
	w.rng.Read(block)
	if err := cl.WriteHandle(w.fh, uint64(len(w.acked)), block); err != nil {
		return err
	}
	w.acked = append(w.acked, block...)
	return nil
}

// TestLeaderLoss stops the Raft leader (which holds a replica of every chunk)
// while a client writes through it. The client moves to a surviving node,
// as an application server remounts, and goes on with the same file handle.
// Writes resume within 10 s, nothing acknowledged is lost, and the stopped
// node rejoins and catches up when it starts again.
func TestLeaderLoss(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	leader := c.WaitLeader()
	cl, err := Mount(c.NFSAddr(leader), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	f, err := cl.Target.OpenFile("log.bin", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fh, err := cl.Handle("log.bin")
	if err != nil {
		t.Fatal(err)
	}
	dirFH, err := cl.Handle(".")
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{t: t, fh: fh, rng: rand.New(rand.NewSource(2))}
	for i := 0; i < 20; i++ { // 1.25 MiB: crosses a 1 MiB chunk boundary
		if err := w.writeBlock(cl); err != nil {
			t.Fatalf("write before failover: %v", err)
		}
	}

	stopped := time.Now()
	c.Stop(leader)
	cl.Close()
	survivor := (leader + 1) % 3

	// The client retries against the survivor until a write is acknowledged.
	var cl2 *Client
	c.Eventually(10*time.Second, "a write through a surviving node", func() error {
		if cl2 == nil {
			m, err := Mount(c.NFSAddr(survivor), "/vol")
			if err != nil {
				return err
			}
			cl2 = m
		}
		return w.writeBlock(cl2)
	})
	defer cl2.Close()
	t.Logf("failover: first acknowledged write %v after stopping the leader", time.Since(stopped).Round(time.Millisecond))
	for i := 0; i < 20; i++ {
		if err := w.writeBlock(cl2); err != nil {
			t.Fatalf("write after failover: %v", err)
		}
	}
	got, err := cl2.ReadHandle(fh)
	if err != nil {
		t.Fatalf("read after failover: %v", err)
	}
	if !bytes.Equal(got, w.acked) {
		t.Fatalf("after failover the file has %d bytes, %d acknowledged, content equal=%v", len(got), len(w.acked), bytes.Equal(got[:min(len(got), len(w.acked))], w.acked[:min(len(got), len(w.acked))]))
	}
	// Old directory handle still works on the survivor.
	if _, err := cl2.GetAttr(dirFH); err != nil {
		t.Fatalf("directory handle from the old leader: %v", err)
	}

	// The old leader comes back, rejoins and catches up.
	c.Start(leader)
	c.WaitReady(leader)
	want := c.Node(survivor).Meta().FSM().AppliedIndex()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Node(leader).Meta().WaitApplied(ctx, want); err != nil {
		t.Fatalf("restarted node did not catch up: %v", err)
	}
	cl3, err := Mount(c.NFSAddr(leader), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl3.Close()
	got, err = cl3.ReadHandle(fh)
	if err != nil || !bytes.Equal(got, w.acked) {
		t.Fatalf("restarted node serves %d bytes (err %v), want the %d acknowledged", len(got), err, len(w.acked))
	}
	// And it takes writes again.
	if err := w.writeBlock(cl3); err != nil {
		t.Fatalf("write through the restarted node: %v", err)
	}
}

// TestMajorityLoss stops two of three nodes: the survivor must refuse writes
// (an error, never a silent success); with one node back writes resume.
func TestMajorityLoss(t *testing.T) {
	c := NewCluster(t, ClusterOptions{OpTimeout: 3 * time.Second})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f, err := cl.Target.OpenFile("data.bin", 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	fh, err := cl.Handle("data.bin")
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{t: t, fh: fh, rng: rand.New(rand.NewSource(3))}
	if err := w.writeBlock(cl); err != nil {
		t.Fatal(err)
	}

	c.Stop(1)
	c.Stop(2)
	// Every attempt through the survivor fails: data and metadata.
	for i := 0; i < 2; i++ {
		if err := w.writeBlock(cl); err == nil {
			t.Fatalf("write %d succeeded on a node without a majority", i)
		}
	}
	if _, err := cl.Target.Mkdir(fmt.Sprintf("dir-%d", time.Now().UnixNano()), 0o755); err == nil {
		t.Fatal("mkdir succeeded on a node without a majority")
	}

	c.Start(1)
	c.WaitReady(1)
	c.Eventually(15*time.Second, "a write with the majority back", func() error {
		if err := w.writeBlock(cl); err != nil {
			// The client connection may have timed out meanwhile.
			cl.Close()
			if cl, err = Mount(c.NFSAddr(0), "/vol"); err != nil {
				return err
			}
			return w.writeBlock(cl)
		}
		return nil
	})
	got, err := cl.ReadHandle(fh)
	if err != nil || !bytes.Equal(got, w.acked) {
		t.Fatalf("file has %d bytes (err %v), want the %d acknowledged", len(got), err, len(w.acked))
	}
}
