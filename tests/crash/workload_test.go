//go:build crash

package crash

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	nfs "github.com/fsrep/fsrep/internal/workload"
)

// workload writes new files through every gateway in turn, each with
// content derived from its name, and records which were acknowledged (the
// write and the close returned success). A failed file is in doubt and
// never checked; an acknowledged one must read back byte for byte through
// any node, whatever crashed since.
type workload struct {
	gateways []string
	rng      *rand.Rand
	// stuck hears a file write that has not returned after stuckAfter
	// (the gateway owes an answer long before: its operation timeout).
	stuck func(gateway, name string)

	mu     sync.Mutex
	next   int
	acked  map[string][32]byte
	fresh  []string // acknowledged since the last verify
	doubts int
}

func newWorkload(gateways []string, seed int64) *workload {
	return &workload{gateways: gateways, rng: rand.New(rand.NewSource(seed)), acked: map[string][32]byte{}}
}

// content is file name's bytes: small files (in the metadata, through
// Raft) and chunked files of up to three chunks of 1 MiB.
func content(name string, size int) []byte {
	b := make([]byte, size)
	sum := sha256.Sum256([]byte(name))
	rand.New(rand.NewSource(int64(sum[0])<<24 | int64(sum[1])<<16 | int64(sum[2])<<8 | int64(sum[3]))).Read(b)
	copy(b, name) // the name at the start, so two files never match
	return b
}

// run writes files until ctx ends. Each gateway has its own client, made
// again after any failure (the node may have died).
func (w *workload) run(ctx context.Context) {
	clients := map[string]*nfs.Client{}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for ctx.Err() == nil {
		w.mu.Lock()
		n := w.next
		w.next++
		size := 200 + w.rng.Intn(12<<10)
		if w.rng.Intn(10) < 4 {
			size = 64<<10 + w.rng.Intn(2300<<10)
		}
		w.mu.Unlock()
		gw := w.gateways[n%len(w.gateways)]
		name := fmt.Sprintf("f%06d", n)
		data := content(name, size)
		cl := clients[gw]
		var err error
		if cl == nil {
			if cl, err = nfs.Dial(gw, "/vol", callTimeout); err != nil {
				w.doubt()
				continue
			}
			clients[gw] = cl
		}
		timer := time.AfterFunc(stuckAfter, func() {
			if w.stuck != nil {
				w.stuck(gw, name)
			}
		})
		err = cl.WriteFile(name, data)
		timer.Stop()
		if err != nil {
			cl.Close()
			delete(clients, gw)
			w.doubt()
			continue
		}
		w.mu.Lock()
		w.acked[name] = sha256.Sum256(data)
		w.fresh = append(w.fresh, name)
		w.mu.Unlock()
	}
}

// callTimeout bounds each NFS call: well above the gateways' 5 s operation
// timeout, so that a call that fails does so by the gateway's answer.
const callTimeout = 15 * time.Second

// stuckAfter is how long a file write may take before the test reports
// it stuck: every call of it is bounded by callTimeout, so only a client
// that does not keep its deadlines gets there.
const stuckAfter = 2 * time.Minute

func (w *workload) doubt() {
	w.mu.Lock()
	w.doubts++
	w.mu.Unlock()
}

// verify reads through gateway the files acknowledged since the last
// verify and sample older ones (all of them when sample < 0), and fails
// the test on any that is missing or differs.
func (w *workload) verify(t *testing.T, gateway string, sample int) int {
	t.Helper()
	w.mu.Lock()
	names := w.fresh
	w.fresh = nil
	old := make([]string, 0, len(w.acked))
	for name := range w.acked {
		old = append(old, name)
	}
	w.mu.Unlock()
	if sample < 0 {
		names = old
	} else {
		w.rng.Shuffle(len(old), func(i, j int) { old[i], old[j] = old[j], old[i] })
		names = append(names, old[:min(sample, len(old))]...)
	}
	cl, err := nfs.Dial(gateway, "/vol", callTimeout)
	if err != nil {
		t.Fatalf("mount %s to verify: %v", gateway, err)
	}
	defer cl.Close()
	for _, name := range names {
		got, err := cl.ReadFile(name)
		if err != nil {
			t.Fatalf("acknowledged file %s lost or unreadable through %s: %v", name, gateway, err)
		}
		w.mu.Lock()
		want := w.acked[name]
		w.mu.Unlock()
		if sha256.Sum256(got) != want {
			t.Fatalf("acknowledged file %s differs through %s (%d bytes read, starts %q)", name, gateway, len(got), got[:min(16, len(got))])
		}
	}
	return len(names)
}

func (w *workload) counts() (acked, doubts int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked), w.doubts
}
