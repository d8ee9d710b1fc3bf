package meta

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"
)

// TestMain fails the run if the tests leave goroutines behind (a Raft node,
// a snapshot, a loop that was never cancelled). It polls instead of
// sleeping a fixed time: goroutines that are exiting get a few seconds.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 && !fuzzing() {
		if err := waitGoroutines(before, 5*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			code = 1
		}
	}
	os.Exit(code)
}

// fuzzing reports whether this process runs (or serves) a fuzzing session,
// whose coordination goroutines outlive m.Run.
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

func waitGoroutines(want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("goroutine leak: %d goroutines after the tests, %d before", n, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
