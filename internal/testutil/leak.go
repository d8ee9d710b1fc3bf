// Package testutil holds helpers shared by the tests of several packages.
// It is imported only from _test.go files.
package testutil

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// RunWithLeakCheck runs the tests and then fails the run if they left
// goroutines behind (a server never closed, a loop never cancelled, a
// replica call never waited for). It polls with a deadline: goroutines on
// their way out get a few seconds. Fuzzing runs are not checked: the
// fuzzing engine's own goroutines outlive m.Run. Use from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testutil.RunWithLeakCheck(m)) }
func RunWithLeakCheck(m *testing.M) int {
	code := m.Run()
	if code != 0 || fuzzing() {
		return code
	}
	deadline := time.Now().Add(5 * time.Second)
	leaked := leakedGoroutines()
	for len(leaked) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // poll interval
		leaked = leakedGoroutines()
	}
	if len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "tests leaked %d goroutines:\n\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
		return 1
	}
	return 0
}

func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// leakedGoroutines returns the stacks of goroutines other than the caller
// and those of the runtime, the signal handler and the testing package.
func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaked []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 || strings.Contains(g, "os/signal.signal_recv") || strings.Contains(g, "\ntesting.") {
			continue
		}
		leaked = append(leaked, g)
	}
	return leaked
}
