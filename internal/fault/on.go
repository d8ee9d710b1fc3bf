//go:build faultpoints

package fault

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Enabled reports whether this is a test build with fault points.
const Enabled = true

type action struct {
	kill bool
	at   int64 // fire on this hit (1: the first)
	hits int64
}

var (
	once     sync.Once
	mu       sync.Mutex
	schedule map[string]*action
)

// Parse reads a schedule ("name=kill@3,other=error@1"; "@N" defaults to 1).
func Parse(s string) (map[string]*action, error) {
	out := map[string]*action{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, spec, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("fault: %q is not name=action[@N]", item)
		}
		what, n, _ := strings.Cut(spec, "@")
		a := &action{at: 1}
		switch what {
		case "kill":
			a.kill = true
		case "error":
		default:
			return nil, fmt.Errorf("fault: %q: action %q is not kill or error", item, what)
		}
		if n != "" {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v < 1 {
				return nil, fmt.Errorf("fault: %q: hit %q is not a positive number", item, n)
			}
			a.at = v
		}
		known := false
		for _, p := range Points() {
			known = known || p == name
		}
		if !known {
			return nil, fmt.Errorf("fault: no fault point %q", name)
		}
		out[name] = a
	}
	return out, nil
}

// Point fires the fault scheduled at name, if any: it kills the process,
// or returns ErrInjected.
func Point(name string) error {
	once.Do(func() {
		s, err := Parse(os.Getenv(EnvVar))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		schedule = s
	})
	if len(schedule) == 0 {
		return nil
	}
	mu.Lock()
	a := schedule[name]
	fire := false
	if a != nil {
		a.hits++
		fire = a.hits == a.at
	}
	mu.Unlock()
	if !fire {
		return nil
	}
	if a.kill {
		fmt.Fprintf(os.Stderr, "fault: %s: killing the process (hit %d)\n", name, a.at)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not caught: nothing runs after it
	}
	return fmt.Errorf("%w at %s", ErrInjected, name)
}
