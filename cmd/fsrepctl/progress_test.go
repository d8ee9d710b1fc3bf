package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
)

func TestCountdownLines(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	p := newCountdown(&buf, false, "draining n2", "chunks moved")
	p.update(t0, 1000)
	p.update(t0.Add(time.Second), 1000) // unchanged: no new line off a terminal
	p.update(t0.Add(10*time.Second), 900)
	p.update(t0.Add(20*time.Second), 1100) // new writes: the total grows
	p.update(t0.Add(100*time.Second), 0)
	p.finish()
	want := []string{
		"draining n2: [------------------------]   0%  0/1000 chunks moved  -/s  ETA ?",
		"draining n2: [##----------------------]  10%  100/1000 chunks moved  10/s  ETA 1m30s",
		"draining n2: [------------------------]   0%  0/1100 chunks moved  -/s  ETA ?",
		"draining n2: [########################] 100%  1100/1100 chunks moved  10/s  ETA 0s",
	}
	if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCountdownTerminal(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	p := newCountdown(&buf, true, "q", "chunks")
	p.update(t0, 4)
	p.update(t0.Add(2*time.Second), 4) // redrawn in place even when unchanged
	p.update(t0.Add(4*time.Second), 2)
	p.update(t0.Add(8*time.Second), 0)
	p.finish()
	out := buf.String()
	if strings.Count(out, "\r") != 4 || strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("terminal output %q", out)
	}
	frames := strings.Split(strings.TrimSuffix(out, "\n"), "\r")[1:]
	if frames[2] != "q: [############------------]  50%  2/4 chunks  0.5/s  ETA 4s" {
		t.Errorf("frame 2 %q", frames[2])
	}
	// A shorter line covers the longer one it replaces.
	for i := 1; i < len(frames); i++ {
		if len(frames[i]) < len(strings.TrimRight(frames[i-1], " ")) {
			t.Errorf("frame %d %q does not cover %q", i, frames[i], frames[i-1])
		}
	}

	// Nothing drawn, nothing to finish.
	buf.Reset()
	newCountdown(&buf, true, "q", "chunks").finish()
	if buf.Len() != 0 {
		t.Errorf("finish without a line wrote %q", buf.String())
	}
}

func TestFormatETA(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 1400 * time.Millisecond: "1s", 100 * time.Second: "1m40s",
		2*time.Hour + 5*time.Minute + 20*time.Second: "2h5m", 3 * time.Hour: "3h0m",
	} {
		if got := formatETA(d); got != want {
			t.Errorf("formatETA(%s) = %q, want %q", d, got, want)
		}
	}
	for _, tc := range []struct {
		n    int
		d    time.Duration
		want string
	}{{0, time.Second, "-/s"}, {5, 0, "-/s"}, {5, 2 * time.Second, "2.5/s"}, {300, 10 * time.Second, "30/s"}} {
		if got := formatRate(tc.n, tc.d); got != tc.want {
			t.Errorf("formatRate(%d, %s) = %q, want %q", tc.n, tc.d, got, tc.want)
		}
	}
}

func TestPoll(t *testing.T) {
	var stderr bytes.Buffer
	c := &cli{stderr: &stderr}
	// Transient errors are retried; done ends the poll.
	calls := 0
	err := c.poll(t.Context(), time.Millisecond, func() (bool, error) {
		calls++
		switch calls {
		case 1:
			return false, fmt.Errorf("%w: connection refused", admin.ErrUnreachable)
		case 2:
			return false, &admin.APIError{Status: 503, Code: admin.CodeNoLeader, Message: "no leader"}
		}
		return calls == 4, nil
	})
	if err != nil || calls != 4 || strings.Count(stderr.String(), "(retrying)") != 2 {
		t.Fatalf("poll: %v after %d calls; stderr %q", err, calls, stderr.String())
	}
	// Other errors end it.
	boom := &admin.APIError{Status: 401, Code: admin.CodeUnauthorized}
	if err := c.poll(t.Context(), time.Millisecond, func() (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Fatalf("poll with a hard error: %v", err)
	}
	// So does the context.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = c.poll(ctx, time.Hour, func() (bool, error) { return false, nil })
	if !errors.Is(err, context.Canceled) || !errors.Is(interrupted(err, "x"), errInterrupted) {
		t.Fatalf("poll after cancel: %v", err)
	}
	if err := interrupted(boom, "x"); !errors.Is(err, boom) {
		t.Fatalf("interrupted changed a hard error: %v", err)
	}
}
