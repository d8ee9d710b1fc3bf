package replication

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if tests leave goroutines behind: every replica
// call a Replicator starts must have finished when WriteAt or ReadAt
// returns.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		// Poll with a deadline: goroutines that were told to stop may
		// still be on their way out.
		deadline := time.Now().Add(5 * time.Second)
		leaked := leakedGoroutines()
		for len(leaked) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			leaked = leakedGoroutines()
		}
		if len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "leaked %d goroutines:\n\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines returns the stacks of goroutines other than this one and
// the runtime's and testing package's own.
func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 || strings.Contains(g, "os/signal.signal_recv") || strings.Contains(g, "\ntesting.") {
			continue // the first is the caller
		}
		leaked = append(leaked, g)
	}
	return leaked
}
