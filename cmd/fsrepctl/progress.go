package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
)

// countdown draws the progress of a count that falls to zero (a draining
// node's chunks, a repair queue) as one line with a bar, the rate and an
// ETA:
//
//	n2: [#########---------------]  38%  380/1000 chunks  12.5/s  ETA 50s
//
// On a terminal the line is redrawn in place; elsewhere (a log, a CI job)
// a new line is printed only when the count changes, so that the output
// stays readable. The rate is the average since the first sample: the
// healer is throttled to a steady bandwidth, so a long average is a
// better guide than the last second.
type countdown struct {
	w     io.Writer
	tty   bool
	label string
	unit  string

	start     time.Time
	first     int // the count at start
	total     int // the largest count seen: new writes can add work
	last      int
	drawn     bool
	lastWidth int
}

const barWidth = 24

func newCountdown(w io.Writer, tty bool, label, unit string) *countdown {
	return &countdown{w: w, tty: tty, label: label, unit: unit, last: -1}
}

// update records the count at now and redraws.
func (p *countdown) update(now time.Time, remaining int) {
	if p.last < 0 {
		p.start, p.first = now, remaining
	}
	p.total = max(p.total, remaining)
	changed := remaining != p.last
	p.last = remaining
	if !p.tty && !changed {
		return
	}
	line := p.line(now, remaining)
	if p.tty {
		// \r and padding rather than a terminal control sequence: the
		// shorter line must cover the longer one it replaces.
		pad := max(p.lastWidth-len(line), 0)
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		p.lastWidth = len(line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.drawn = true
}

// finish ends the redrawn line so that what follows starts on its own.
func (p *countdown) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

func (p *countdown) line(now time.Time, remaining int) string {
	done := p.total - remaining
	frac := 1.0
	if p.total > 0 {
		frac = float64(done) / float64(p.total)
	}
	filled := int(frac * barWidth)
	bar := strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled)
	s := fmt.Sprintf("%s: [%s] %3d%%  %d/%d %s", p.label, bar, int(frac*100), done, p.total, p.unit)
	rate, eta := p.estimate(now, remaining)
	return s + "  " + rate + "  ETA " + eta
}

// estimate is the rate since the first sample and the time left at it.
func (p *countdown) estimate(now time.Time, remaining int) (rate, eta string) {
	elapsed := now.Sub(p.start)
	moved := p.first - remaining
	if remaining == 0 {
		return formatRate(moved, elapsed), "0s"
	}
	if elapsed <= 0 || moved <= 0 {
		return "-/s", "?"
	}
	perSec := float64(moved) / elapsed.Seconds()
	left := time.Duration(float64(remaining) / perSec * float64(time.Second))
	return formatRate(moved, elapsed), formatETA(left)
}

func formatRate(n int, d time.Duration) string {
	if d <= 0 || n <= 0 {
		return "-/s"
	}
	r := float64(n) / d.Seconds()
	if r >= 10 {
		return fmt.Sprintf("%.0f/s", r)
	}
	return fmt.Sprintf("%.1f/s", r)
}

// formatETA rounds to what a reader can use: whole seconds under an hour
// (1m40s), whole minutes above (2h5m).
func formatETA(d time.Duration) string {
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

// poll calls step now and then every interval until it reports done, fails,
// or ctx ends (then poll returns ctx's error). A transient failure (the
// node or the leader unreachable, an election under way) is reported on
// stderr and polled again: a watch should outlive a leader change.
func (c *cli) poll(ctx context.Context, interval time.Duration, step func() (done bool, err error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := step()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !transient(err):
			return err
		case err != nil:
			fmt.Fprintf(c.stderr, "fsrepctl: %v (retrying)\n", err)
		case done:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// transient errors are worth another try after a moment.
func transient(err error) bool {
	return errors.Is(err, admin.ErrUnreachable) || admin.IsCode(err, admin.CodeNoLeader) || admin.IsCode(err, admin.CodeUnreachable)
}

// errInterrupted is a wait the user cut short; what it waited for goes on
// in the cluster.
var errInterrupted = errors.New("interrupted")

// interrupted turns the end of ctx into errInterrupted with what was
// being waited for; other errors pass through.
func interrupted(err error, what string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w before %s", errInterrupted, what)
	}
	return err
}
