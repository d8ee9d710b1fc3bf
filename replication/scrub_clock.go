package replication

import (
	"context"
	"sync"
	"time"
)

// LoopClock is the clock the background loops of the integrity side
// (scrubber, garbage collector, orphan sweep) run on: the time, and a
// wake-up after a duration of that time. Injected so that tests drive the
// pacing and the schedules by hand instead of sleeping.
type LoopClock interface {
	Clock
	// After returns a channel that receives once d of this clock's time
	// has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemLoopClock is the wall clock.
type SystemLoopClock struct{}

// Now returns time.Now.
func (SystemLoopClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemLoopClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sleepOn waits d on clock, or until ctx ends (then it returns ctx.Err()).
func sleepOn(ctx context.Context, clock LoopClock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clock.After(d):
		return nil
	}
}

// bytePacer spaces reads so that they average at most rate bytes per
// second of the clock: a read of n bytes may start once the reads before
// it have had their share of time, and pushes the next start n/rate
// later. Idle time is not saved up, so there is no burst beyond one read
// (one chunk, at most the store's MaxChunkSize). Safe for concurrent use.
type bytePacer struct {
	clock LoopClock

	mu   sync.Mutex
	rate int64     // bytes per second, > 0
	next time.Time // earliest start of the next read
}

func newBytePacer(clock LoopClock, rate int64) *bytePacer {
	return &bytePacer{clock: clock, rate: rate}
}

// wait blocks until a read of n bytes may start, or ctx ends.
func (p *bytePacer) wait(ctx context.Context, n int64) error {
	p.mu.Lock()
	now := p.clock.Now()
	if p.next.Before(now) {
		p.next = now
	}
	start := p.next
	p.next = p.next.Add(time.Duration(float64(n) / float64(p.rate) * float64(time.Second)))
	p.mu.Unlock()
	return sleepOn(ctx, p.clock, start.Sub(now))
}

// setRate changes the rate for the reads that start after this one.
func (p *bytePacer) setRate(rate int64) {
	p.mu.Lock()
	p.rate = rate
	p.mu.Unlock()
}

func (p *bytePacer) currentRate() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}
