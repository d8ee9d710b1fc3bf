//go:build compose

package compose

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/workload"
)

// Failure detection of docker-compose.yml and the workload's op timeout:
// a frozen node may stall writes for at most about this long.
const (
	downAfter  = 5 * time.Second
	opTimeout  = 2 * time.Second
	stallBound = downAfter + opTimeout + 3*time.Second // slack: container start-up of the RPC, scheduling on 2 cores
)

// result is one scenario's figures, as written to results/.
type result struct {
	Scenario        string           `json:"scenario"`
	Fault           string           `json:"fault"`
	FaultToWrite    float64          `json:"fault_to_first_write_s"`
	GapAfterFault   float64          `json:"longest_gap_after_fault_s"`
	FullReplication float64          `json:"full_replication_s"` // from the fault; -1 not reached
	ReturnFull      *float64         `json:"full_replication_after_return_s,omitempty"`
	PerNode         []nodeFigure     `json:"per_node,omitempty"`
	CheckClean      bool             `json:"check_clean"`
	Workload        *workload.Report `json:"workload"`
	Problems        []string         `json:"problems"`
	Pass            bool             `json:"pass"`
}

type nodeFigure struct {
	Node         string  `json:"node"`
	FaultToWrite float64 `json:"fault_to_first_write_s"`
	Gap          float64 `json:"longest_gap_s"`
}

var (
	resultsMu sync.Mutex
	results   []*result
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "compose report:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// finishScenario checks the common promises, logs and records r.
func finishScenario(t *testing.T, c *cluster, r *result, via string) {
	rep := c.finish()
	r.Workload = rep
	var ok bool
	var out string
	ok, out = c.checkClean(via)
	r.CheckClean = ok
	if !ok {
		r.Problems = append(r.Problems, "fsrepctl check: "+out)
	}
	if rep.LostWrites != 0 || !rep.Verified {
		r.Problems = append(r.Problems, fmt.Sprintf("%d acknowledged writes lost, %d unverified", rep.LostWrites, rep.Unverified))
	}
	if rep.CorruptReads != 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d corrupt reads", rep.CorruptReads))
	}
	if rep.Stale != 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d ESTALE", rep.Stale))
	}
	if r.FullReplication < 0 && (r.ReturnFull == nil || *r.ReturnFull < 0) {
		r.Problems = append(r.Problems, "replication never returned to full")
	}
	r.Pass = len(r.Problems) == 0
	resultsMu.Lock()
	results = append(results, r)
	resultsMu.Unlock()
	b, _ := json.MarshalIndent(r, "", "  ")
	t.Logf("%s: %s", r.Scenario, b)
	for _, p := range r.Problems {
		t.Error(p)
	}
}

func (c *cluster) idsOf(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, c.ids[n])
	}
	return out
}

func others(not []string) []string {
	var out []string
	for _, n := range nodes {
		skip := false
		for _, x := range not {
			skip = skip || x == n
		}
		if !skip {
			out = append(out, n)
		}
	}
	return out
}

// TestAZLoss (scenarios 1 and 5): kill both nodes of the AZ holding the
// Raft leader while the workload writes; measure the failover; then start
// the AZ again and measure until replication is full.
func TestAZLoss(t *testing.T) {
	c := up(t, "az")
	c.waitAcks(40, time.Time{}, 3*time.Minute)
	leader := c.leader("n1a", "n2a", "n3a")
	victims := nodesOf(azOf(leader))
	survivors := others(victims)
	r := &result{Scenario: "az-loss", Fault: fmt.Sprintf("docker kill %s (%s, holding the leader %s)", strings.Join(victims, " "), azOf(leader), leader)}
	t.Log(r.Fault)

	c.run(time.Minute, "docker", append([]string{"kill"}, c.idsOf(victims)...)...)
	fault := time.Now() // the kill has returned: the AZ is gone
	c.markFault()
	c.waitAcks(40, fault, 2*time.Minute)
	t.Logf("new leader: %s", c.leader(survivors...))
	r.FullReplication = c.waitFull(survivors[0], fault, 90*time.Second, victims...)
	t.Logf("replication full with %s down: %.1fs", azOf(leader), r.FullReplication)

	back := time.Now()
	c.run(time.Minute, "docker", append([]string{"start"}, c.idsOf(victims)...)...)
	c.waitHealthy(3*time.Minute, victims...)
	full := c.waitFull(survivors[0], back, 3*time.Minute)
	r.ReturnFull = &full
	c.waitAcks(20, time.Now(), time.Minute)
	acks, _ := c.events()
	r.FaultToWrite, r.GapAfterFault = recovery(acks, fault)
	finishScenario(t, c, r, survivors[0])
}

// TestFrozenNode (scenario 3): docker pause a node that holds a replica of
// the file being written (not the leader, not the client's gateway when
// there is a choice); writes must not stall longer than failure detection.
func TestFrozenNode(t *testing.T) {
	c := up(t, "frozen")
	acks := c.waitAcks(40, time.Time{}, 3*time.Minute)
	leader := c.leader("n1a", "n2a", "n3a")
	gwHost, _, _ := net.SplitHostPort(acks[len(acks)-1].GW)
	file := lastFile(acks)
	out, err := c.ctl(leader, "-o", "json", "file", "locate", "data", "/"+file)
	if err != nil {
		t.Fatalf("file locate %s: %v", file, err)
	}
	var loc struct {
		Chunks []struct {
			Replicas []struct {
				Node string `json:"node"`
			} `json:"replicas"`
		} `json:"chunks"`
	}
	if err := json.Unmarshal([]byte(out), &loc); err != nil || len(loc.Chunks) == 0 {
		t.Fatalf("file locate %s: %v: %s", file, err, out)
	}
	victim := ""
	for _, pass := range []func(string) bool{
		func(n string) bool { return n != leader && n != gwHost },
		func(n string) bool { return n != leader },
		func(string) bool { return true },
	} {
		for _, rp := range loc.Chunks[0].Replicas {
			if victim == "" && pass(rp.Node) {
				victim = rp.Node
			}
		}
	}
	r := &result{Scenario: "frozen-node", Fault: fmt.Sprintf("docker pause %s (replica of %s; leader %s, client on %s)", victim, file, leader, gwHost)}
	t.Log(r.Fault)
	via := others([]string{victim})[0]

	c.run(time.Minute, "docker", "pause", c.ids[victim])
	fault := time.Now()
	paused := true
	defer func() {
		if paused {
			_, _ = c.try(time.Minute, "docker", "unpause", c.ids[victim])
		}
	}()
	c.markFault()
	// Hold the node frozen past down-after and the repair grace.
	r.FullReplication = c.waitFull(via, fault, 90*time.Second, victim)
	for time.Since(fault) < 20*time.Second {
		c.waitAcks(1, time.Now(), 2*time.Minute)
	}
	c.run(time.Minute, "docker", "unpause", c.ids[victim])
	paused = false
	back := time.Now()
	full := c.waitFull(via, back, 2*time.Minute)
	r.ReturnFull = &full
	acks, _ = c.events()
	r.FaultToWrite, r.GapAfterFault = recovery(acks, fault)
	if r.GapAfterFault > stallBound.Seconds() {
		r.Problems = append(r.Problems, fmt.Sprintf("writes stalled %.1fs with %s frozen (bound %v)", r.GapAfterFault, victim, stallBound))
	}
	finishScenario(t, c, r, via)
}

// TestRollingRestart (scenario 4): restart the six nodes one at a time
// (SIGTERM, 10 s grace), each once healthy again before the next.
func TestRollingRestart(t *testing.T) {
	c := up(t, "rolling")
	c.waitAcks(40, time.Time{}, 3*time.Minute)
	r := &result{Scenario: "rolling-restart", Fault: "docker restart -t 10 of each node in turn, waiting for healthy"}
	start := time.Now()
	var faults []time.Time
	for _, n := range nodes {
		f := time.Now()
		faults = append(faults, f)
		c.run(2*time.Minute, "docker", "restart", "-t", "10", c.ids[n])
		c.waitHealthy(3*time.Minute, n)
		c.waitAcks(10, time.Now(), time.Minute)
	}
	r.FullReplication = c.waitFull("n1a", start, 2*time.Minute)
	acks, _ := c.events()
	for i, n := range nodes {
		to, gap := recovery(acks, faults[i])
		if i+1 < len(faults) {
			// the gap of this restart only: acks before the next one
			var sub []ack
			for _, a := range acks {
				if a.T.Before(faults[i+1]) {
					sub = append(sub, a)
				}
			}
			to, gap = recovery(sub, faults[i])
		}
		r.PerNode = append(r.PerNode, nodeFigure{Node: n, FaultToWrite: to, Gap: gap})
		if to > r.FaultToWrite {
			r.FaultToWrite = to
		}
		if gap > r.GapAfterFault {
			r.GapAfterFault = gap
		}
	}
	finishScenario(t, c, r, "n1a")
}

// writeReport writes results/compose-report.json and .md for the
// scenarios run.
func writeReport() error {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if len(results) == 0 {
		return nil
	}
	dir := filepath.Join("..", "..", "results")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	doc := map[string]any{"generated": stamp, "scenarios": results}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "compose-report.json"), b, 0o644); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# fsrep compose AZ-failure report (%s)\n\n", stamp)
	md.WriteString("| scenario | pass | fault → first write (s) | longest gap after fault (s) | full replication (s) | after return (s) | acked writes | lost | corrupt | ESTALE | check |\n")
	md.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		ret := "—"
		if r.ReturnFull != nil {
			ret = secs(*r.ReturnFull)
		}
		w := r.Workload
		fmt.Fprintf(&md, "| %s | %v | %s | %.2f | %s | %s | %d | %d | %d | %d | %v |\n", r.Scenario, r.Pass,
			secs(r.FaultToWrite), r.GapAfterFault, secs(r.FullReplication), ret, w.AckedWrites, w.LostWrites, w.CorruptReads, w.Stale, r.CheckClean)
	}
	for _, r := range results {
		fmt.Fprintf(&md, "\n## %s\n\nFault: %s\n\n", r.Scenario, r.Fault)
		fmt.Fprintf(&md, "Workload: %d acknowledged writes in %d files, %d reads, %d errors, %d reconnects, longest gap %.2fs, writes per gateway %v.\n",
			r.Workload.AckedWrites, r.Workload.Files, r.Workload.Reads, r.Workload.Errors, r.Workload.Reconnects, r.Workload.LongestGap, r.Workload.WritesPerGateway)
		for _, p := range r.PerNode {
			fmt.Fprintf(&md, "- %s: fault → first write %ss, gap %.2fs\n", p.Node, secs(p.FaultToWrite), p.Gap)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(&md, "- PROBLEM: %s\n", p)
		}
	}
	return os.WriteFile(filepath.Join(dir, "compose-report.md"), []byte(md.String()), 0o644)
}

func secs(s float64) string {
	if s < 0 {
		return "not reached"
	}
	return fmt.Sprintf("%.2f", s)
}
