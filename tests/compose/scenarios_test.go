//go:build compose

package compose

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
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

// repeat is how many times each scenario runs (`make compose-test
// COMPOSE_REPEAT=3`, or `go test -tags compose ./tests/compose/ -repeat 3`):
// the report gives the median and the maximum of each figure.
var repeat = flag.Int("repeat", 1, "run each scenario this many times, each on a fresh compose project")

// repeated runs scenario *repeat times as subtests rep1, rep2, ...
func repeated(t *testing.T, scenario func(t *testing.T, rep int)) {
	for i := 1; i <= max(*repeat, 1); i++ {
		t.Run(fmt.Sprintf("rep%d", i), func(t *testing.T) { scenario(t, i) })
	}
}

// result is one run of one scenario, as written to results/.
type result struct {
	Scenario        string                      `json:"scenario"`
	Rep             int                         `json:"rep"`
	Fault           string                      `json:"fault"`
	FaultToWrite    float64                     `json:"fault_to_first_write_s"`
	GapAfterFault   float64                     `json:"longest_gap_after_fault_s"`
	FullReplication float64                     `json:"full_replication_s"` // from the fault; -1 not reached
	ReturnFull      *float64                    `json:"full_replication_after_return_s,omitempty"`
	PerNode         []nodeFigure                `json:"per_node,omitempty"`
	Minority        *minority                   `json:"minority,omitempty"`
	CheckClean      bool                        `json:"check_clean"`
	Workload        *workload.Report            `json:"workload"`
	Others          map[string]*workload.Report `json:"other_clients,omitempty"`
	Problems        []string                    `json:"problems"`
	Pass            bool                        `json:"pass"`

	faultTime time.Time // of a lost AZ (loseAZ)
	az        string
}

type nodeFigure struct {
	Node         string  `json:"node"`
	FaultToWrite float64 `json:"fault_to_first_write_s"`
	Gap          float64 `json:"longest_gap_s"`
}

// minority is what the cut-off side of a partition did.
type minority struct {
	Nodes  []string `json:"nodes"`
	Client string   `json:"client"` // the workload client inside the cut-off AZ
	CutS   float64  `json:"cut_s"`
	// Accepted counts writes acknowledged through a cut-off gateway that
	// started after the cut and were acknowledged before the heal: the
	// promise is 0.
	Accepted int `json:"accepted_writes"`
	// InFlight counts writes started before the cut and acknowledged
	// after it (committed before the cut took effect; read back like
	// every other).
	InFlight int `json:"in_flight_at_cut"`
	// Errors counts the inside client's failed attempts during the cut:
	// proof that it kept trying.
	Errors int `json:"errors_during_cut"`
	// OldLeader is the Raft state the cut-off old leader reported once it
	// had stepped down ("" if it still led after 30 s).
	OldLeader string `json:"old_leader_state"`
	// ResumeS is the time from the heal to the inside client's first
	// acknowledged write.
	ResumeS float64 `json:"inside_client_resume_s"`
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

// finishScenario stops the workload clients (each reads every write it
// had acknowledged back), checks the common promises once for the whole
// run, and records rs (the faults of one run: they share the clients and
// the check).
func finishScenario(t *testing.T, c *cluster, via string, clients []string, rs ...*result) {
	reports := map[string]*workload.Report{}
	var problems []string
	for _, svc := range clients {
		rep := c.finishClient(svc)
		reports[svc] = rep
		if rep.LostWrites != 0 || !rep.Verified {
			problems = append(problems, fmt.Sprintf("%s: %d acknowledged writes lost, %d unverified", svc, rep.LostWrites, rep.Unverified))
		}
		if rep.CorruptReads != 0 {
			problems = append(problems, fmt.Sprintf("%s: %d corrupt reads", svc, rep.CorruptReads))
		}
		if rep.Stale != 0 {
			problems = append(problems, fmt.Sprintf("%s: %d ESTALE", svc, rep.Stale))
		}
	}
	ok, out := c.checkClean(via)
	if !ok {
		problems = append(problems, "fsrepctl check: "+out)
	}
	for _, r := range rs {
		r.Workload = reports["client"]
		for svc, rep := range reports {
			if svc != "client" {
				if r.Others == nil {
					r.Others = map[string]*workload.Report{}
				}
				r.Others[svc] = rep
			}
		}
		r.CheckClean = ok
		r.Problems = append(r.Problems, problems...)
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
			t.Errorf("%s: %s", r.Scenario, p)
		}
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

// TestAZLoss (scenarios 1, 5 and 6): kill both nodes of the AZ holding the
// Raft leader while the workload writes; measure the failover; start the
// AZ again and measure until replication is full; then, healed, kill a
// different AZ (the leader's again if it moved there) and bring it back.
func TestAZLoss(t *testing.T) { repeated(t, azLoss) }

func azLoss(t *testing.T, rep int) {
	c := up(t, "az")
	c.waitAcks(40, time.Time{}, 3*time.Minute)
	r := c.loseAZ("az-loss", rep, "", nodes)

	// Scenario 6: replication is full again; lose another AZ.
	second := azOf(c.leader(nodes...))
	if second == r.az {
		second = map[string]string{"az1": "az2", "az2": "az3", "az3": "az1"}[r.az]
	}
	r6 := c.loseAZ("second-az-loss", rep, second, nodes)
	acks, _ := c.events()
	r.FaultToWrite, r.GapAfterFault = recovery(acksBefore(acks, r6.faultTime), r.faultTime)
	r6.FaultToWrite, r6.GapAfterFault = recovery(acks, r6.faultTime)
	finishScenario(t, c, others(nodesOf(second))[0], []string{"client"}, r, r6)
}

// loseAZ kills az's two nodes (with az "", those of the leader's AZ),
// waits for the workload to write on and for replication to be full
// without them, starts them again and waits for full replication.
func (c *cluster) loseAZ(scenario string, rep int, az string, via []string) *result {
	t := c.t
	t.Helper()
	leader := c.leader(via...)
	what := "holding the leader " + leader
	if az == "" {
		az = azOf(leader)
	} else if azOf(leader) != az {
		what = "the leader " + leader + " is elsewhere"
	}
	victims := nodesOf(az)
	survivors := others(victims)
	r := &result{Scenario: scenario, Rep: rep, Fault: fmt.Sprintf("docker kill %s (%s, %s)", strings.Join(victims, " "), az, what)}
	t.Log(r.Fault)

	c.run(time.Minute, "docker", append([]string{"kill"}, c.idsOf(victims)...)...)
	fault := time.Now() // the kill has returned: the AZ is gone
	r.faultTime, r.az = fault, az
	c.markFault()
	c.waitAcks(40, fault, 2*time.Minute)
	t.Logf("new leader: %s", c.leader(survivors...))
	r.FullReplication = c.waitFull(survivors[0], fault, 2*time.Minute, victims...)
	t.Logf("replication full with %s down: %.1fs", az, r.FullReplication)

	back := time.Now()
	c.run(time.Minute, "docker", append([]string{"start"}, c.idsOf(victims)...)...)
	c.waitHealthy(3*time.Minute, victims...)
	full := c.waitFull(survivors[0], back, 3*time.Minute)
	r.ReturnFull = &full
	t.Logf("replication full after %s returned: %.1fs", az, full)
	c.waitAcks(20, time.Now(), 2*time.Minute)
	return r
}

// acksBefore returns the acknowledged writes before t.
func acksBefore(acks []ack, t time.Time) []ack {
	var out []ack
	for _, a := range acks {
		if a.T.Before(t) {
			out = append(out, a)
		}
	}
	return out
}

// TestAZPartition (scenario 2): cut the AZ holding the Raft leader off the
// region network while two workload clients write: "client" from the
// region (it moves to the majority side) and one inside the cut-off AZ,
// which reaches only that AZ's gateways. Nothing may be acknowledged
// through a cut-off gateway while the cut lasts; after the heal the AZ
// catches up, the inside client writes again, and every acknowledged
// write of both reads back.
func TestAZPartition(t *testing.T) { repeated(t, azPartition) }

func azPartition(t *testing.T, rep int) {
	c := up(t, "part")
	c.waitAcks(40, time.Time{}, 3*time.Minute)
	leader := c.leader("n1a", "n2a", "n3a")
	az := azOf(leader)
	victims := nodesOf(az)
	survivors := others(victims)
	inside := "client-" + az
	c.startClient(inside)
	c.waitClientAcks(inside, 20, time.Time{}, 3*time.Minute)
	r := &result{Scenario: "az-partition", Rep: rep, Fault: fmt.Sprintf("docker network disconnect %s %s (%s, holding the leader %s); %s writes inside %s",
		c.regionNet(), strings.Join(victims, " "), az, leader, inside, az)}
	t.Log(r.Fault)

	aliases := c.disconnect(victims)
	cut := time.Now()
	c.markFault("client", inside)
	c.waitAcks(40, cut, 2*time.Minute)
	t.Logf("majority leader: %s", c.leader(survivors...))
	m := &minority{Nodes: victims, Client: inside}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) { // poll
		if st := c.raftState(leader); st != "" && st != "Leader" {
			m.OldLeader = st
			break
		}
	}
	r.FullReplication = c.waitFull(survivors[0], cut, 2*time.Minute, victims...)
	t.Logf("replication full on the majority side: %.1fs", r.FullReplication)
	for time.Since(cut) < 20*time.Second { // the cut lasts 20 s at least
		c.waitAcks(1, time.Now(), 2*time.Minute)
	}

	heal := time.Now()
	c.reconnect(victims, aliases)
	m.CutS = heal.Sub(cut).Seconds()
	c.waitHealthy(3*time.Minute, victims...)
	c.waitClientAcks(inside, 20, heal, 3*time.Minute)
	full := c.waitFull(survivors[0], heal, 3*time.Minute)
	r.ReturnFull = &full
	c.waitAcks(20, time.Now(), 2*time.Minute)

	acks, _ := c.events()
	r.FaultToWrite, r.GapAfterFault = recovery(acks, cut)
	in, errs, _ := c.clientEvents(inside)
	cutOff := map[string]bool{}
	for _, v := range victims {
		cutOff[v] = true
	}
	m.ResumeS = -1
	for _, a := range in {
		if a.T.After(heal) {
			m.ResumeS = a.T.Sub(heal).Seconds()
			break
		}
	}
	for _, a := range append(acks, in...) {
		host, _, _ := net.SplitHostPort(a.GW)
		if !cutOff[host] || !a.T.After(cut) || !a.T.Before(heal) {
			continue
		}
		if a.started().Before(cut) {
			m.InFlight++
		} else {
			m.Accepted++
		}
	}
	for _, e := range errs {
		if e.After(cut) && e.Before(heal) {
			m.Errors++
		}
	}
	r.Minority = m
	if m.Accepted > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("the cut-off side (%s) acknowledged %d writes during the cut", strings.Join(victims, " "), m.Accepted))
	}
	if m.Errors == 0 {
		r.Problems = append(r.Problems, inside+" made no failed attempt during the cut: the scenario proved nothing")
	}
	if m.OldLeader == "" {
		r.Problems = append(r.Problems, "the cut-off leader "+leader+" still reported itself leader 30 s into the cut")
	}
	finishScenario(t, c, survivors[0], []string{"client", inside}, r)
}

// TestFrozenNode (scenario 3): docker pause a node that holds a replica of
// the file being written (not the leader, not the client's gateway when
// there is a choice); writes must not stall longer than failure detection.
func TestFrozenNode(t *testing.T) { repeated(t, frozenNode) }

func frozenNode(t *testing.T, rep int) {
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
	r := &result{Scenario: "frozen-node", Rep: rep, Fault: fmt.Sprintf("docker pause %s (replica of %s; leader %s, client on %s)", victim, file, leader, gwHost)}
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
	finishScenario(t, c, via, []string{"client"}, r)
}

// TestRollingRestart (scenario 4): restart the six nodes one at a time
// (SIGTERM, 10 s grace), each once healthy again before the next.
func TestRollingRestart(t *testing.T) { repeated(t, rollingRestart) }

func rollingRestart(t *testing.T, rep int) {
	c := up(t, "rolling")
	c.waitAcks(40, time.Time{}, 3*time.Minute)
	r := &result{Scenario: "rolling-restart", Rep: rep, Fault: "docker restart -t 10 of each node in turn, waiting for healthy"}
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
	finishScenario(t, c, "n1a", []string{"client"}, r)
}

// summary is one scenario over its repetitions.
type summary struct {
	Scenario      string   `json:"scenario"`
	Runs          int      `json:"runs"`
	Passed        int      `json:"passed"`
	FaultToWrite  stat     `json:"fault_to_first_write_s"`
	GapAfterFault stat     `json:"longest_gap_after_fault_s"`
	Full          stat     `json:"full_replication_s"`
	ReturnFull    *stat    `json:"full_replication_after_return_s,omitempty"`
	Acked         int64    `json:"acked_writes"`
	Lost          int64    `json:"lost_acked_writes"`
	Unverified    int64    `json:"unverified_writes"`
	Corrupt       int64    `json:"corrupt_reads"`
	Stale         int64    `json:"estale"`
	Accepted      *int     `json:"minority_accepted_writes,omitempty"`
	CheckClean    int      `json:"check_clean_runs"`
	Problems      []string `json:"problems,omitempty"`
}

// stat is the median and maximum of one figure over the runs that reached
// it; Missed counts the runs that did not (-1).
type stat struct {
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	Missed int     `json:"not_reached,omitempty"`
}

func statOf(vs []float64) stat {
	var ok []float64
	var st stat
	for _, v := range vs {
		if v < 0 {
			st.Missed++
			continue
		}
		ok = append(ok, v)
	}
	if len(ok) == 0 {
		return stat{Median: -1, Max: -1, Missed: st.Missed}
	}
	slices.Sort(ok)
	st.Max = ok[len(ok)-1]
	if n := len(ok); n%2 == 1 {
		st.Median = ok[n/2]
	} else {
		st.Median = (ok[n/2-1] + ok[n/2]) / 2
	}
	return st
}

func (s stat) String() string {
	if s.Median < 0 {
		return "not reached"
	}
	out := fmt.Sprintf("%.2f / %.2f", s.Median, s.Max)
	if s.Missed > 0 {
		out += fmt.Sprintf(" (%d not reached)", s.Missed)
	}
	return out
}

// summarize groups the results by scenario, in the order first run.
func summarize(rs []*result) []*summary {
	var out []*summary
	by := map[string]*summary{}
	vals := map[string]map[string][]float64{}
	for _, r := range rs {
		s := by[r.Scenario]
		if s == nil {
			s = &summary{Scenario: r.Scenario}
			by[r.Scenario] = s
			vals[r.Scenario] = map[string][]float64{}
			out = append(out, s)
		}
		v := vals[r.Scenario]
		s.Runs++
		if r.Pass {
			s.Passed++
		}
		if r.CheckClean {
			s.CheckClean++
		}
		v["to"] = append(v["to"], r.FaultToWrite)
		v["gap"] = append(v["gap"], r.GapAfterFault)
		v["full"] = append(v["full"], r.FullReplication)
		if r.ReturnFull != nil {
			v["ret"] = append(v["ret"], *r.ReturnFull)
		}
		for _, w := range append([]*workload.Report{r.Workload}, mapValues(r.Others)...) {
			if w == nil {
				continue
			}
			s.Acked += w.AckedWrites
			s.Lost += w.LostWrites
			s.Unverified += w.Unverified
			s.Corrupt += w.CorruptReads
			s.Stale += w.Stale
		}
		if r.Minority != nil {
			if s.Accepted == nil {
				s.Accepted = new(int)
			}
			*s.Accepted += r.Minority.Accepted
		}
		for _, p := range r.Problems {
			s.Problems = append(s.Problems, fmt.Sprintf("rep %d: %s", r.Rep, p))
		}
	}
	for name, s := range by {
		v := vals[name]
		s.FaultToWrite, s.GapAfterFault, s.Full = statOf(v["to"]), statOf(v["gap"]), statOf(v["full"])
		if len(v["ret"]) > 0 {
			st := statOf(v["ret"])
			s.ReturnFull = &st
		}
	}
	return out
}

func mapValues(m map[string]*workload.Report) []*workload.Report {
	var out []*workload.Report
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// writeReport writes results/compose-report.json and .md for the
// scenarios run: a summary per scenario (median / max over the
// repetitions), then every run.
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
	sums := summarize(results)
	doc := map[string]any{"generated": stamp, "repeat": *repeat, "summary": sums, "runs": results}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "compose-report.json"), b, 0o644); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# fsrep compose AZ-failure report (%s, %d repetition(s) per scenario)\n\n", stamp, *repeat)
	md.WriteString("Seconds as median / max over the runs. Fault → first write: from the fault to the first acknowledged write started after it.\n\n")
	md.WriteString("| scenario | passed | fault → first write | longest gap after fault | full replication | after return | acked writes | lost | unverified | corrupt | ESTALE | minority accepted | check clean |\n")
	md.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range sums {
		ret, acc := "—", "—"
		if s.ReturnFull != nil {
			ret = s.ReturnFull.String()
		}
		if s.Accepted != nil {
			acc = fmt.Sprint(*s.Accepted)
		}
		fmt.Fprintf(&md, "| %s | %d/%d | %s | %s | %s | %s | %d | %d | %d | %d | %d | %s | %d/%d |\n", s.Scenario, s.Passed, s.Runs,
			s.FaultToWrite, s.GapAfterFault, s.Full, ret, s.Acked, s.Lost, s.Unverified, s.Corrupt, s.Stale, acc, s.CheckClean, s.Runs)
	}
	md.WriteString("\n## Runs\n\n| scenario | rep | pass | fault → first write (s) | longest gap after fault (s) | full replication (s) | after return (s) | acked writes | lost | corrupt | ESTALE | check |\n")
	md.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		ret := "—"
		if r.ReturnFull != nil {
			ret = secs(*r.ReturnFull)
		}
		w := r.Workload
		if w == nil {
			w = &workload.Report{}
		}
		fmt.Fprintf(&md, "| %s | %d | %v | %s | %.2f | %s | %s | %d | %d | %d | %d | %v |\n", r.Scenario, r.Rep, r.Pass,
			secs(r.FaultToWrite), r.GapAfterFault, secs(r.FullReplication), ret, w.AckedWrites, w.LostWrites, w.CorruptReads, w.Stale, r.CheckClean)
	}
	for _, r := range results {
		fmt.Fprintf(&md, "\n### %s, rep %d\n\nFault: %s\n\n", r.Scenario, r.Rep, r.Fault)
		if w := r.Workload; w != nil {
			fmt.Fprintf(&md, "Workload: %d acknowledged writes in %d files, %d reads, %d errors, %d reconnects, longest gap %.2fs, writes per gateway %v.\n",
				w.AckedWrites, w.Files, w.Reads, w.Errors, w.Reconnects, w.LongestGap, w.WritesPerGateway)
		}
		for _, name := range sortedKeys(r.Others) {
			w := r.Others[name]
			fmt.Fprintf(&md, "- %s: %d acknowledged writes, %d lost, %d corrupt, %d ESTALE, %d errors, writes per gateway %v\n",
				name, w.AckedWrites, w.LostWrites, w.CorruptReads, w.Stale, w.Errors, w.WritesPerGateway)
		}
		if m := r.Minority; m != nil {
			fmt.Fprintf(&md, "- cut-off side %v for %.1fs: %d writes accepted during the cut (in flight at the cut: %d), %d failed attempts by %s, old leader became %q, %s wrote again %.2fs after the heal\n",
				m.Nodes, m.CutS, m.Accepted, m.InFlight, m.Errors, m.Client, m.OldLeader, m.Client, m.ResumeS)
		}
		for _, p := range r.PerNode {
			fmt.Fprintf(&md, "- %s: fault → first write %ss, gap %.2fs\n", p.Node, secs(p.FaultToWrite), p.Gap)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(&md, "- PROBLEM: %s\n", p)
		}
	}
	return os.WriteFile(filepath.Join(dir, "compose-report.md"), []byte(md.String()), 0o644)
}

func sortedKeys(m map[string]*workload.Report) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func secs(s float64) string {
	if s < 0 {
		return "not reached"
	}
	return fmt.Sprintf("%.2f", s)
}
