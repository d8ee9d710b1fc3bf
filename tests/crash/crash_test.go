//go:build crash

package crash

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/fault"
)

var (
	seedFlag     = flag.Int64("seed", 0, "seed of the randomized crash schedule (0: from the clock; the test logs it)")
	durationFlag = flag.Duration("duration", 60*time.Second, "how long the randomized crash schedule runs")
)

// running is the workload in the background.
type running struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func start(w *workload) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		w.run(ctx)
	}()
	return r
}

func (r *running) stop() {
	r.cancel()
	r.wg.Wait()
}

// crash kills node target at the hit-th time it reaches point, under the
// workload, then checks the guarantees: the killed node's files pass the
// offline check, it restarts, every acknowledged file reads back through
// it, and the cluster converges (same applied index everywhere, the
// consistency check clean).
func crash(t *testing.T, c *cluster, w *workload, target int, point string, hit int) {
	t.Helper()
	p := c.procs[target]
	t.Logf("crash %s at %s (hit %d)", p.id, point, hit)
	c.stop(target)
	c.start(target, fmt.Sprintf("%s=kill@%d", point, hit))
	run := start(w)
	killed, err := c.waitExit(target, 2*time.Minute)
	run.stop()
	if err != nil {
		t.Fatalf("%s at %s: %v (the fault point was not reached, or the node failed otherwise)", p.id, point, err)
	}
	if !killed {
		t.Fatalf("%s was not killed", p.id)
	}
	if rep, clean := c.offlineCheck(target); !clean {
		t.Fatalf("offline check of %s after a crash at %s found problems:\n%s", p.id, point, rep)
	}
	c.start(target, "")
	c.waitReady(target, time.Minute)
	checked := w.verify(t, p.nfsAddr, 30)
	c.converged(2 * time.Minute)
	acked, doubts := w.counts()
	t.Logf("%s crashed at %s, restarted: %d files read back, %d acknowledged so far, %d in doubt", p.id, point, checked, acked, doubts)
}

// writePathPoints are the fault points every node reaches under the
// workload: each node applies every command, holds a replica of every
// chunk (3 replicas, 3 nodes) and serves a third of the writes.
var writePathPoints = []string{
	fault.MetaBeforeCommit, fault.MetaAfterCommit,
	fault.ChunkBeforeSync, fault.ChunkBeforeRename, fault.ChunkAfterRename,
	fault.ReplicaAcked, fault.BeforeReply,
}

// TestCrashAtEveryFaultPoint kills a node at each write-path fault point
// in turn, then during a snapshot install.
func TestCrashAtEveryFaultPoint(t *testing.T) {
	c := newCluster(t)
	if _, err := c.admin(0).CreateVolume(context.Background(), volumeRequest()); err != nil {
		t.Fatal(err)
	}
	w := newWorkload(gateways(c), 1)
	w.stuck = func(gw, name string) {
		c.dumpGoroutines(fmt.Sprintf("writing %s through %s got no answer in %v", name, gw, stuckAfter))
	}
	for i, point := range writePathPoints {
		crash(t, c, w, i%3, point, 3)
	}
	crashInstallingSnapshot(t, c, w, 2)
	crashHealing(t, c, w, 0)
	n := w.verify(t, c.procs[0].nfsAddr, -1)
	t.Logf("all %d acknowledged files read back", n)
}

// crashInstallingSnapshot stops node target while the others take enough
// writes that the leader's log no longer holds what target misses (the
// cluster runs with small snapshots and 64 trailing entries), so that at
// its restart it is sent a snapshot; it is killed while installing it.
func crashInstallingSnapshot(t *testing.T, c *cluster, w *workload, target int) {
	t.Helper()
	p := c.procs[target]
	c.stop(target)
	before, _ := w.counts()
	run := start(w)
	eventually(t, 2*time.Minute, "400 files written while "+p.id+" is away", func() error {
		if n, _ := w.counts(); n < before+400 {
			return fmt.Errorf("%d written", n-before)
		}
		return nil
	})
	run.stop()
	c.start(target, fault.SnapshotInstall+"=kill@1")
	killed, err := c.waitExit(target, 2*time.Minute)
	if err != nil || !killed {
		t.Fatalf("%s installing a snapshot: killed %v, %v", p.id, killed, err)
	}
	if rep, clean := c.offlineCheck(target); !clean {
		t.Fatalf("offline check of %s after a crash installing a snapshot found problems:\n%s", p.id, rep)
	}
	c.start(target, "")
	c.waitReady(target, time.Minute)
	w.verify(t, p.nfsAddr, 30)
	c.converged(2 * time.Minute)
	t.Logf("%s crashed installing a snapshot, restarted and caught up", p.id)
}

// crashHealing kills the leader while it re-replicates: node back is
// stopped while files are written (their replica sets drop it), the two
// other nodes restart with the fault armed, and when back returns, the
// leader's healer copies chunks to it and is killed after the first copy,
// before the new replica set is committed.
func crashHealing(t *testing.T, c *cluster, w *workload, back int) {
	t.Helper()
	c.stop(back)
	var others []int
	for i := range c.procs {
		if i != back {
			others = append(others, i)
			c.stop(i)
			c.start(i, fault.HealCopied+"=kill@1")
			c.waitReady(i, time.Minute)
		}
	}
	before, _ := w.counts()
	run := start(w)
	eventually(t, 2*time.Minute, "40 files written while "+c.procs[back].id+" is away", func() error {
		if n, _ := w.counts(); n < before+40 {
			return fmt.Errorf("%d written", n-before)
		}
		return nil
	})
	run.stop()
	c.start(back, "")
	died := c.waitAnyExit(others, 2*time.Minute)
	if died < 0 {
		t.Fatal("no node was killed re-replicating to the returning node: the healer never copied a chunk")
	}
	if killed, err := c.waitExit(died, time.Second); err != nil || !killed {
		t.Fatalf("%s: killed %v, %v", c.procs[died].id, killed, err)
	}
	if rep, clean := c.offlineCheck(died); !clean {
		t.Fatalf("offline check of %s after a crash while healing found problems:\n%s", c.procs[died].id, rep)
	}
	for _, i := range others {
		if i != died {
			c.stop(i)
		}
		c.start(i, "")
	}
	for i := range c.procs {
		c.waitReady(i, time.Minute)
	}
	w.verify(t, c.procs[back].nfsAddr, 30)
	c.converged(2 * time.Minute)
	t.Logf("%s crashed re-replicating to %s, restarted; the cluster converged", c.procs[died].id, c.procs[back].id)
}

// TestRandomCrashSchedule kills random nodes at random write-path fault
// points and hits for -duration, from a seed it logs: FSREP_CRASH_SEED or
// -seed replays a schedule.
func TestRandomCrashSchedule(t *testing.T) {
	seed := *seedFlag
	if s, err := strconv.ParseInt(os.Getenv("FSREP_CRASH_SEED"), 10, 64); err == nil {
		seed = s
	}
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	t.Logf("crash schedule seed %d (replay: make test-crash CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewSource(seed))
	c := newCluster(t)
	if _, err := c.admin(0).CreateVolume(context.Background(), volumeRequest()); err != nil {
		t.Fatal(err)
	}
	w := newWorkload(gateways(c), seed)
	w.stuck = func(gw, name string) {
		c.dumpGoroutines(fmt.Sprintf("writing %s through %s got no answer in %v", name, gw, stuckAfter))
	}
	end := time.Now().Add(*durationFlag)
	rounds := 0
	for rounds == 0 || time.Now().Before(end) {
		point := writePathPoints[rng.Intn(len(writePathPoints))]
		crash(t, c, w, rng.Intn(3), point, 1+rng.Intn(20))
		rounds++
	}
	n := w.verify(t, c.procs[rng.Intn(3)].nfsAddr, -1)
	t.Logf("%d crashes; all %d acknowledged files read back", rounds, n)
}
