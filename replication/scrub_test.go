package replication

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
)

// stepClock is a LoopClock that moves only when told; tests see who waits
// on it, so they can advance it exactly when a loop is blocked.
type stepClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []stepWaiter
}

type stepWaiter struct {
	at time.Time
	ch chan time.Time
}

func newStepClock() *stepClock {
	return &stepClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, stepWaiter{c.now.Add(d), ch})
	return ch
}

// Advance moves the clock and wakes the waiters whose time came.
func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waiters = slices.DeleteFunc(c.waiters, func(w stepWaiter) bool {
		if w.at.After(c.now) {
			return false
		}
		w.ch <- c.now
		return true
	})
}

// next is the earliest wake-up anybody waits for (false if none).
func (c *stepClock) next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiters) == 0 {
		return time.Time{}, false
	}
	at := c.waiters[0].at
	for _, w := range c.waiters[1:] {
		if w.at.Before(at) {
			at = w.at
		}
	}
	return at, true
}

// eventually polls cond with a real-time deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 10s", what)
		}
		time.Sleep(time.Millisecond) // poll interval
	}
}

// drive advances clock to each wake-up a loop waits for until cond holds,
// but never past limit (of the clock's time) from now; it returns how much
// clock time passed. The loops under test update their status before they
// register their next wait, so cond is checked again after a waiter is
// found: a waiter registered after the goal was reached is never advanced
// to.
func drive(t *testing.T, clock *stepClock, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := clock.Now()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 10s (clock moved %v)", what, clock.Now().Sub(start))
		}
		if at, ok := clock.next(); ok && at.Sub(start) <= limit {
			if cond() {
				break
			}
			clock.Advance(at.Sub(clock.Now()))
			continue
		}
		time.Sleep(time.Millisecond) // poll interval
	}
	return clock.Now().Sub(start)
}

// countingStore counts the chunks the scrubber verifies.
type countingStore struct {
	*chunkstore.Store
	verified atomic.Int64
}

func (s *countingStore) Verify(id chunkstore.ID) (chunkstore.Info, error) {
	s.verified.Add(1)
	return s.Store.Verify(id)
}

// scrubFixture is the harness with a 4-chunk file written through n1 and
// n1's scrubber, not yet running.
type scrubFixture struct {
	c     *cluster
	r1    *Replicator
	ino   uint64
	data  []byte
	clock *stepClock
	store *countingStore
	s     *Scrubber
}

func newScrubFixture(t *testing.T, tweak func(*ScrubConfig)) *scrubFixture {
	t.Helper()
	c := newCluster(t)
	r1, _ := c.replicator("n1", "az1", nil)
	f := &scrubFixture{c: c, r1: r1, ino: c.create("f"), data: pattern(21, 4*testChunkSize), clock: newStepClock()}
	c.write(r1, f.ino, 0, f.data)
	f.store = &countingStore{Store: c.stores["n1"]}
	cfg := DefaultScrubConfig("n1")
	cfg.Rate = testChunkSize // one chunk a second
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := NewScrubber(cfg, f.store, r1, f.clock, c.log.With("node", "n1"))
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	return f
}

// run starts the scrubber until the test ends (or the returned stop).
func (f *scrubFixture) run(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.s.Run(ctx)
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(stop)
	return stop
}

// chunkPath is the file of chunk id in dir.
func chunkPath(t *testing.T, dir string, id chunkstore.ID) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*", id.String()))
	if err != nil || len(m) != 1 {
		t.Fatalf("chunk file %s under %s: %v, %v", id, dir, m, err)
	}
	return m[0]
}

// flipData inverts a data byte of a chunk file (its last byte: always data).
func flipData(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, fi.Size()-1); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, fi.Size()-1); err != nil {
		t.Fatal(err)
	}
}

// TestScrubPacing proves the rate: at one chunk per second of the clock,
// the scrubber checks the first chunk at once and each further one only
// when its second has passed; a pass of four chunks takes three seconds.
func TestScrubPacing(t *testing.T) {
	f := newScrubFixture(t, nil)
	f.run(t)
	eventually(t, "first chunk checked", func() bool { return f.s.Status().Scanned == 1 })
	eventually(t, "scrubber waiting for the second", func() bool { _, ok := f.clock.next(); return ok })
	if at, _ := f.clock.next(); at.Sub(f.clock.Now()) != time.Second {
		t.Fatalf("second chunk due in %v, want 1s", at.Sub(f.clock.Now()))
	}
	f.clock.Advance(999 * time.Millisecond)
	if st := f.s.Status(); st.Scanned != 1 || f.store.verified.Load() != 1 {
		t.Fatalf("after 999ms: %d scanned, %d verified; want 1 (the pacer let a read through early)", st.Scanned, f.store.verified.Load())
	}
	took := 999*time.Millisecond + drive(t, f.clock, time.Hour, "pass done", func() bool { return f.s.Status().Passes == 1 })
	st := f.s.Status()
	if st.Scanned != 4 || st.PassChunks != 4 || st.ScannedBytes != 4*testChunkSize || st.Corrupt != 0 {
		t.Fatalf("status after the pass: %+v", st)
	}
	if took != 3*time.Second {
		t.Errorf("a pass of 4 MiB at 1 MiB/s took %v of the clock, want 3s", took)
	}
	t.Logf("4 chunks of 1 MiB at %d B/s: the last read started %v of the clock after the first", st.RateLimit, took)
	if want := st.PassStarted.Add(24 * time.Hour); !st.NextPass.Equal(want) {
		t.Errorf("next pass due %v, want a day after the last started (%v)", st.NextPass, want)
	}

	// Start runs a pass now; a new rate applies to it, once the last read
	// of the previous pass has had its second.
	if err := f.s.SetRate(4 * testChunkSize); err != nil {
		t.Fatal(err)
	}
	f.s.Start()
	took = drive(t, f.clock, time.Hour, "second pass", func() bool { return f.s.Status().Passes == 2 })
	if took != time.Second+750*time.Millisecond {
		t.Errorf("a pass at 4 MiB/s took %v, want 1s (the last read at 1 MiB/s) + 3 × 250ms", took)
	}
	if f.store.verified.Load() != 8 {
		t.Errorf("%d chunks verified in two passes, want 8", f.store.verified.Load())
	}
	// And the day after, the next one by itself.
	took = drive(t, f.clock, 48*time.Hour, "third pass", func() bool { return f.s.Status().Passes == 3 })
	if took < 23*time.Hour || took > 25*time.Hour {
		t.Errorf("the scheduled pass came %v after the last, want about a day", took)
	}
}

// TestScrubFindsFlippedByte: a data byte of one of n1's chunk files is
// flipped on disk; the scrubber finds it, n1 is left out of that chunk's
// replica set (for the healer), the damaged file is removed, and the file
// still reads correctly.
func TestScrubFindsFlippedByte(t *testing.T) {
	f := newScrubFixture(t, func(c *ScrubConfig) { c.Rate = 1 << 30 })
	c := f.c
	id := ChunkID(c.vol.ID, f.ino, 2)
	before := c.chunk(f.ino, 2)
	flipData(t, chunkPath(t, c.dirs["n1"], id))
	f.run(t)
	took := drive(t, f.clock, time.Hour, "pass done", func() bool { return f.s.Status().Passes == 1 })
	st := f.s.Status()
	if st.Corrupt != 1 || st.Repaired != 1 || st.Kept != 0 || st.Errors != 0 {
		t.Fatalf("status: %+v; want 1 corrupt, repaired", st)
	}
	t.Logf("4 MiB at 1 GiB/s of the clock: found in a pass of %v", took)
	after := c.chunk(f.ino, 2)
	if slices.Contains(after.Replicas, "n1") || after.Version != before.Version || len(after.Replicas) != 2 {
		t.Fatalf("chunk 2 after the scrub: %+v (before %+v); want n1 left out at the same version", after, before)
	}
	if _, _, err := c.stores["n1"].Stat(id); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("the damaged file is still on n1: %v", err)
	}
	garbage, err := c.b.FSM().Garbage(0)
	if err != nil || len(garbage) != 1 || !slices.Equal(garbage[0].Replicas, []string{"n1"}) {
		t.Errorf("garbage after the drop: %+v, %v; want n1's version recorded", garbage, err)
	}
	for i := range uint64(4) {
		if i != 2 && !slices.Contains(c.chunk(f.ino, i).Replicas, "n1") {
			t.Errorf("sound chunk %d lost n1", i)
		}
	}
	c.wantFile(f.ino, f.data, f.r1)
	c.wantReplicaFiles(f.ino, 2, f.data[2*testChunkSize:3*testChunkSize])
}

// TestScrubKeepsLastCopy: with the other replicas unreachable, a damaged
// replica is counted but stays listed.
func TestScrubKeepsLastCopy(t *testing.T) {
	f := newScrubFixture(t, func(c *ScrubConfig) { c.Rate = 1 << 30 })
	c := f.c
	id := ChunkID(c.vol.ID, f.ino, 0)
	flipData(t, chunkPath(t, c.dirs["n1"], id))
	c.peers.setFault("n2", fault{down: true})
	c.peers.setFault("n3", fault{down: true})
	f.run(t)
	drive(t, f.clock, time.Hour, "pass done", func() bool { return f.s.Status().Passes == 1 })
	if st := f.s.Status(); st.Corrupt != 1 || st.Kept != 1 || st.Repaired != 0 {
		t.Fatalf("status: %+v; want 1 corrupt, kept", st)
	}
	if got := c.chunk(f.ino, 0).Replicas; !slices.Contains(got, "n1") {
		t.Fatalf("the last reachable copy was dropped: %v", got)
	}
	if _, _, err := c.stores["n1"].Stat(id); err != nil {
		t.Fatalf("the kept copy's file is gone: %v", err)
	}
	if n := f.r1.CorruptCounts().Kept; n != 1 {
		t.Errorf("replicator counted %d kept, want 1", n)
	}
}

// TestScrubUnreferencedCorrupt: a damaged file no replica set lists here is
// removed without any Raft command.
func TestScrubUnreferencedCorrupt(t *testing.T) {
	f := newScrubFixture(t, func(c *ScrubConfig) { c.Rate = 1 << 30 })
	c := f.c
	orphan := ChunkID(c.vol.ID, 999, 0)
	if err := c.stores["n1"].Put(orphan, 5, pattern(3, 5000)); err != nil {
		t.Fatal(err)
	}
	flipData(t, chunkPath(t, c.dirs["n1"], orphan))
	f.run(t)
	drive(t, f.clock, time.Hour, "pass done", func() bool { return f.s.Status().Passes == 1 })
	if st := f.s.Status(); st.Corrupt != 1 || st.Repaired != 1 || st.Scanned != 5 {
		t.Fatalf("status: %+v", st)
	}
	if _, _, err := c.stores["n1"].Stat(orphan); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("the damaged orphan is still there: %v", err)
	}
	if g, _ := c.b.FSM().Garbage(0); len(g) != 0 {
		t.Errorf("an orphan made garbage records: %+v", g)
	}
}

// TestScrubPauseAndResumeAcrossRestart: a paused scrubber checks nothing;
// one stopped mid-pass resumes after the last chunk it checked.
func TestScrubPauseAndResumeAcrossRestart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "scrub.state")
	f := newScrubFixture(t, func(c *ScrubConfig) { c.StateFile, c.SaveEvery = state, time.Nanosecond })
	f.s.Pause(true)
	stop := f.run(t)
	eventually(t, "pass started", func() bool { return f.s.Status().PassChunks == 4 })
	if st := f.s.Status(); !st.Paused || st.Scanned != 0 || f.store.verified.Load() != 0 {
		t.Fatalf("paused scrubber: %+v, %d verified", st, f.store.verified.Load())
	}
	f.s.Pause(false)
	drive(t, f.clock, time.Hour, "two chunks checked", func() bool { return f.s.Status().Scanned == 2 })
	eventually(t, "waiting for the third", func() bool { _, ok := f.clock.next(); return ok })
	stop()

	// A new scrubber on the same state: it goes on with chunks 3 and 4.
	store := &countingStore{Store: f.c.stores["n1"]}
	cfg := DefaultScrubConfig("n1")
	cfg.Rate, cfg.StateFile = 1<<30, state
	s2, err := NewScrubber(cfg, store, f.r1, f.clock, f.c.log)
	if err != nil {
		t.Fatal(err)
	}
	f.s, f.store = s2, store
	stop = f.run(t)
	drive(t, f.clock, time.Hour, "resumed pass done", func() bool { return s2.Status().Passes == 1 })
	stop()
	if st := s2.Status(); st.Scanned != 4 || store.verified.Load() != 2 {
		t.Fatalf("resumed pass: %+v, %d verified; want 4 scanned, the last 2 verified now", st, store.verified.Load())
	}
	// And the finished pass is remembered: a third scrubber waits a day.
	s3, err := NewScrubber(cfg, store, f.r1, f.clock, f.c.log)
	if err != nil {
		t.Fatal(err)
	}
	f.s = s3
	f.run(t)
	eventually(t, "third scrubber waiting", func() bool { return !s3.Status().NextPass.IsZero() })
	if st := s3.Status(); st.NextPass.Sub(f.clock.Now()) < 23*time.Hour || store.verified.Load() != 2 {
		t.Fatalf("after a restart with a finished pass: next %v (now %v), %d verified", st.NextPass, f.clock.Now(), store.verified.Load())
	}
}

func TestScrubConfigValidate(t *testing.T) {
	if err := DefaultScrubConfig("n1").Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*ScrubConfig){
		func(c *ScrubConfig) { c.NodeID = "" },
		func(c *ScrubConfig) { c.Rate = 0 },
		func(c *ScrubConfig) { c.Interval = 0 },
		func(c *ScrubConfig) { c.SaveEvery = -1 },
	} {
		c := DefaultScrubConfig("n1")
		bad(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
