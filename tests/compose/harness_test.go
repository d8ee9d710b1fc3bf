//go:build compose

// Package compose holds the AZ-failure scenarios run against the
// docker-compose cluster (docker-compose.yml): `make compose-test` builds
// the image and runs them all; `make compose-test-az-loss` etc. run one.
// Every scenario starts its own compose project (never the developer's
// `make compose-up` one), injects its fault while fsrep-workload writes,
// and tears the project down (containers, networks, volumes) however it
// ends. See docs/compose-harness.md.
package compose

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/workload"
)

var nodes = []string{"n1a", "n1b", "n2a", "n2b", "n3a", "n3b"}

// azOf returns the AZ of a node of docker-compose.yml (n2b -> az2).
func azOf(node string) string { return "az" + node[1:2] }

// nodesOf returns the nodes of az.
func nodesOf(az string) []string {
	var out []string
	for _, n := range nodes {
		if azOf(n) == az {
			out = append(out, n)
		}
	}
	return out
}

// cluster is one compose project started by a scenario.
type cluster struct {
	t       *testing.T
	root    string // repository root (docker-compose.yml)
	project string
	ids     map[string]string // service -> container ID
}

func repoRoot(t *testing.T) string {
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func composeCmd() []string {
	if c := os.Getenv("COMPOSE"); c != "" {
		return strings.Fields(c)
	}
	return []string{"docker-compose"}
}

// run runs a command and returns its stdout; it fails the test on error.
func (c *cluster) run(timeout time.Duration, name string, args ...string) string {
	c.t.Helper()
	out, err := c.try(timeout, name, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// try runs a command and returns its stdout and an error carrying stderr.
func (c *cluster) try(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.root
	// COMPOSE_PROFILES: the per-AZ clients of the partition scenario are
	// known to every compose command (down removes them too); up names the
	// services it starts.
	cmd.Env = append(os.Environ(), "FSREP_NFS_PUBLISH=127.0.0.1:", "FSREP_ADMIN_PUBLISH=127.0.0.1:", "COMPOSE_PROFILES=partition")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (c *cluster) compose(timeout time.Duration, args ...string) string {
	c.t.Helper()
	cc := composeCmd()
	return c.run(timeout, cc[0], append(append(cc[1:], "-p", c.project), args...)...)
}

var projects atomic.Int32

// projectName is a fresh compose project name: fsrepct, the run's ID
// (FSREP_COMPOSE_RUN, set by the make targets, whose clean-up removes
// fsrepct<run>* whatever happens), the scenario, a counter.
func projectName(scenario string) string {
	run := os.Getenv("FSREP_COMPOSE_RUN")
	if run == "" {
		run = fmt.Sprintf("%05d", time.Now().Unix()%100000)
	}
	return strings.ToLower(fmt.Sprintf("fsrepct%s%s%d", run, scenario, projects.Add(1)))
}

// up starts a fresh project: the six nodes, the volume "data", then the
// workload client. The project is removed by t.Cleanup whatever happens.
func up(t *testing.T, name string) *cluster {
	c := &cluster{t: t, root: repoRoot(t), project: projectName(name), ids: map[string]string{}}
	t.Cleanup(func() {
		c.saveLogs(t.Failed())
		c.down()
	})
	c.compose(5*time.Minute, append([]string{"up", "-d"}, nodes...)...)
	for _, s := range nodes {
		c.ids[s] = strings.TrimSpace(c.compose(time.Minute, "ps", "-q", s))
	}
	c.run(5*time.Minute, "bash", "scripts/compose-wait.sh", c.project, "180")
	c.run(time.Minute, "bash", "scripts/compose-volume.sh", c.project, "data")
	c.waitVotersSpread(2 * time.Minute)
	c.compose(2*time.Minute, "up", "-d", "client")
	c.ids["client"] = strings.TrimSpace(c.compose(time.Minute, "ps", "-q", "client"))
	return c
}

// down removes the project's containers, networks and volumes, retrying:
// right after containers were killed or disconnected, the engine
// sometimes still counts an endpoint on a network and refuses to remove
// it. A network left behind that way (empty, it holds no data) is only
// a warning; anything else left is an error. scripts/compose-clean.sh,
// run by the make targets afterwards, removes what is left.
func (c *cluster) down() {
	cc := composeCmd()
	args := append(append(cc[1:], "-p", c.project), "down", "-v", "--remove-orphans", "-t", "5")
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			time.Sleep(5 * time.Second) // retry interval: the engine releases the endpoint in its own time
		}
		if _, err = c.try(3*time.Minute, cc[0], args...); err == nil {
			return
		}
	}
	switch left := c.leftovers(); {
	case left == "":
	case !strings.Contains(left, "container") && !strings.Contains(left, "volume"):
		c.t.Logf("warning: compose down %s left %s (an engine endpoint leak; scripts/compose-clean.sh retries): %v", c.project, left, err)
	default:
		c.t.Errorf("compose down %s left %s: %v", c.project, left, err)
	}
}

// leftovers names what of the project still exists ("" when nothing):
// containers, volumes and networks labelled with its compose project.
func (c *cluster) leftovers() string {
	var left []string
	for _, kind := range []string{"container", "volume", "network"} {
		args := []string{kind, "ls", "-q", "--filter", "label=com.docker.compose.project=" + c.project}
		if kind == "container" {
			args = []string{"ps", "-aq", "--filter", "label=com.docker.compose.project=" + c.project}
		}
		out, err := c.try(time.Minute, "docker", args...)
		if err != nil {
			left = append(left, kind+"s (unknown: "+err.Error()+")")
		} else if n := len(strings.Fields(out)); n > 0 {
			left = append(left, fmt.Sprintf("%d %s(s)", n, kind))
		}
	}
	return strings.Join(left, ", ")
}

// saveLogs writes every container's whole log (stdout and stderr: fsrepd
// logs to stderr) to results/logs/<project>/<service>.log, and when show
// is set also logs the last lines of each.
func (c *cluster) saveLogs(show bool) {
	dir := filepath.Join(c.root, "results", "logs", c.project)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Logf("saving logs: %v", err)
	}
	for _, s := range append(slices.Clone(nodes), "client", "client-az1", "client-az2", "client-az3") {
		id := c.ids[s]
		if id == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, "docker", "logs", "-t", id).CombinedOutput()
		cancel()
		if err != nil {
			c.t.Logf("docker logs %s: %v", s, err)
		}
		_ = os.WriteFile(filepath.Join(dir, s+".log"), out, 0o644)
		if !show {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		c.t.Logf("--- last logs of %s (all in %s):\n%s", s, filepath.Join(dir, s+".log"), strings.Join(lines[max(0, len(lines)-15):], "\n"))
	}
}

// startClient starts another workload client service (client-az1 ...).
func (c *cluster) startClient(svc string) {
	c.t.Helper()
	c.compose(2*time.Minute, "up", "-d", "--no-deps", svc)
	c.ids[svc] = strings.TrimSpace(c.compose(time.Minute, "ps", "-q", svc))
	if c.ids[svc] == "" {
		c.t.Fatalf("%s did not start", svc)
	}
}

// ctl runs fsrepctl inside node's container.
func (c *cluster) ctl(node string, args ...string) (string, error) {
	a := append([]string{"exec", c.ids[node], "/fsrepctl", "--admin", "https://127.0.0.1:9090", "--ca-file", "/run/fsrep/tls/ca.crt", "--token-file", "/data/admin.token", "--timeout", "5s"}, args...)
	return c.try(30*time.Second, "docker", a...)
}

type status struct {
	Raft struct {
		State  string   `json:"state"`
		Leader string   `json:"leader"`
		Voters []string `json:"voters"`
	} `json:"raft"`
	Health string `json:"health"`
	Repair *struct {
		Nodes []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"nodes"`
	} `json:"repair"`
}

// seenDown reports whether the leader's healer, asked through node,
// reports every one of down as down.
func (c *cluster) seenDown(node string, down []string) bool {
	out, err := c.ctl(node, "-o", "json", "status")
	var st status
	if json.Unmarshal([]byte(out), &st) != nil || st.Repair == nil {
		return false
	}
	_ = err // status exits 4 while degraded; the JSON is what counts
	n := 0
	for _, s := range st.Repair.Nodes {
		for _, d := range down {
			if s.ID == d && s.State == "down" {
				n++
			}
		}
	}
	return n == len(down)
}

// leader asks the given nodes in turn for the Raft leader, for up to a
// minute (an election may be under way).
func (c *cluster) leader(via ...string) string {
	c.t.Helper()
	var last error
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, n := range via {
			out, err := c.ctl(n, "-o", "json", "status")
			var st status
			if jerr := json.Unmarshal([]byte(out), &st); jerr == nil && st.Raft.Leader != "" {
				return st.Raft.Leader
			} else if err == nil {
				err = jerr
			} else {
				err = fmt.Errorf("%s: %w", n, err)
			}
			last = err
		}
		time.Sleep(time.Second) // poll interval
	}
	c.t.Fatalf("no leader known: %v", last)
	return ""
}

// waitVotersSpread waits until no AZ holds half the Raft voters or more
// (the healer demotes a surplus voter left by the start-up order), so
// that losing any one AZ keeps a majority before a fault is injected.
func (c *cluster) waitVotersSpread(d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var voters []string
	for {
		out, _ := c.ctl("n1a", "-o", "json", "status")
		var st status
		if json.Unmarshal([]byte(out), &st) == nil {
			voters = st.Raft.Voters
			per := map[string]int{}
			worst := 0
			for _, v := range voters {
				per[azOf(v)]++
				worst = max(worst, per[azOf(v)])
			}
			if len(voters) >= 3 && 2*worst < len(voters) {
				c.t.Logf("voters: %v", voters)
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("voters %v still not spread over the AZs after %v", voters, d)
		}
		time.Sleep(time.Second) // poll interval
	}
}

// raftState is node's own Raft state as it reports it ("Leader",
// "Follower", "Candidate"), or "" if it does not answer.
func (c *cluster) raftState(node string) string {
	out, _ := c.ctl(node, "-o", "json", "status")
	var st status
	if json.Unmarshal([]byte(out), &st) != nil {
		return ""
	}
	return st.Raft.State
}

// regionNet is the compose network that joins the AZs.
func (c *cluster) regionNet() string { return c.project + "_region" }

// disconnect cuts the nodes off the region network (they keep their AZ
// network) and returns their aliases there, for reconnect.
func (c *cluster) disconnect(names []string) map[string][]string {
	c.t.Helper()
	aliases := map[string][]string{}
	for _, n := range names {
		out := c.run(30*time.Second, "docker", "inspect", "-f",
			fmt.Sprintf(`{{json (index .NetworkSettings.Networks %q).Aliases}}`, c.regionNet()), c.ids[n])
		var as []string
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &as); err != nil {
			c.t.Fatalf("aliases of %s on %s: %v: %s", n, c.regionNet(), err, out)
		}
		for _, a := range as {
			if !strings.HasPrefix(c.ids[n], a) { // docker adds the short ID itself
				aliases[n] = append(aliases[n], a)
			}
		}
	}
	for _, n := range names {
		c.run(time.Minute, "docker", "network", "disconnect", c.regionNet(), c.ids[n])
	}
	return aliases
}

// reconnect joins the nodes to the region network again under the
// aliases they had (the service name is one: peers dial n1a:7000).
func (c *cluster) reconnect(names []string, aliases map[string][]string) {
	c.t.Helper()
	for _, n := range names {
		args := []string{"network", "connect"}
		for _, a := range aliases[n] {
			args = append(args, "--alias", a)
		}
		c.run(time.Minute, "docker", append(args, c.regionNet(), c.ids[n])...)
	}
}

// replicationFull reports whether `replica status` exits 0 through node.
func (c *cluster) replicationFull(node string) bool {
	_, err := c.ctl(node, "-o", "json", "replica", "status")
	return err == nil
}

// waitFull polls replica status until full, and returns how long it took
// from since, or -1 if not within d. Nodes in down must first be reported
// down by the healer: until then (a new leader counts every node as up for
// down-after) replica status still counts their replicas as healthy.
func (c *cluster) waitFull(node string, since time.Time, d time.Duration, down ...string) float64 {
	deadline := time.Now().Add(d)
	seen := len(down) == 0
	for time.Now().Before(deadline) {
		seen = seen || c.seenDown(node, down)
		if seen && c.replicationFull(node) {
			return time.Since(since).Seconds()
		}
		time.Sleep(time.Second) // poll interval
	}
	return -1
}

// waitHealthy waits until the given containers report healthy.
func (c *cluster) waitHealthy(d time.Duration, names ...string) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for _, n := range names {
		for {
			out, _ := c.try(30*time.Second, "docker", "inspect", "-f", "{{.State.Health.Status}}", c.ids[n])
			if strings.TrimSpace(out) == "healthy" {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s not healthy after %v", n, d)
			}
			time.Sleep(time.Second) // poll interval
		}
	}
}

// ack is one acknowledged write of the workload's log.
type ack struct {
	T     time.Time
	File  string
	LatMs float64
	GW    string
}

// started is when the write was sent.
func (a ack) started() time.Time { return a.T.Add(-time.Duration(a.LatMs * float64(time.Millisecond))) }

// events reads the JSON lines of the workload client "client" so far.
func (c *cluster) events() (acks []ack, report *workload.Report) {
	c.t.Helper()
	acks, _, report = c.clientEvents("client")
	return acks, report
}

// clientEvents reads a workload client's JSON lines so far: its
// acknowledged writes, the times of its errors, and its final report.
func (c *cluster) clientEvents(svc string) (acks []ack, errs []time.Time, report *workload.Report) {
	c.t.Helper()
	out := c.run(time.Minute, "docker", "logs", c.ids[svc])
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Ev     string           `json:"ev"`
			T      time.Time        `json:"t"`
			File   string           `json:"file"`
			LatMs  float64          `json:"lat_ms"`
			GW     string           `json:"gw"`
			Report *workload.Report `json:"report"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch e.Ev {
		case "ack":
			acks = append(acks, ack{T: e.T, File: e.File, LatMs: e.LatMs, GW: e.GW})
		case "err":
			errs = append(errs, e.T)
		case "report":
			report = e.Report
		}
	}
	return acks, errs, report
}

// waitAcks waits until the workload has n acknowledged writes after since.
func (c *cluster) waitAcks(n int, since time.Time, d time.Duration) []ack {
	c.t.Helper()
	return c.waitClientAcks("client", n, since, d)
}

// waitClientAcks waits until client svc has n acknowledged writes after since.
func (c *cluster) waitClientAcks(svc string, n int, since time.Time, d time.Duration) []ack {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		acks, _, _ := c.clientEvents(svc)
		cnt := 0
		for _, a := range acks {
			if a.T.After(since) {
				cnt++
			}
		}
		if cnt >= n {
			return acks
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: only %d of %d acknowledged writes after %s within %v", svc, cnt, n, since.Format(time.RFC3339Nano), d)
		}
		time.Sleep(500 * time.Millisecond) // poll interval
	}
}

// markFault tells the workload clients when the fault happened (SIGUSR1);
// with none named, "client".
func (c *cluster) markFault(svcs ...string) {
	c.t.Helper()
	if len(svcs) == 0 {
		svcs = []string{"client"}
	}
	for _, s := range svcs {
		c.run(30*time.Second, "docker", "kill", "-s", "USR1", c.ids[s])
	}
}

// finish stops the workload (it reads every acknowledged write back, then
// prints its report) and returns the report.
func (c *cluster) finish() *workload.Report {
	c.t.Helper()
	return c.finishClient("client")
}

// finishClient stops workload client svc and returns its report.
func (c *cluster) finishClient(svc string) *workload.Report {
	c.t.Helper()
	c.run(5*time.Minute, "docker", "stop", "-t", "180", c.ids[svc])
	_, _, rep := c.clientEvents(svc)
	if rep == nil {
		c.t.Fatalf("the workload %s printed no report", svc)
	}
	return rep
}

// recovery measures, from the ack log, the time from fault to the first
// acknowledged write that started after it, and the longest time without
// an acknowledged write that contains the fault or follows it.
func recovery(acks []ack, fault time.Time) (toWrite, gap float64) {
	toWrite = -1
	var prev time.Time
	for _, a := range acks {
		if toWrite < 0 && !a.started().Before(fault) {
			toWrite = a.T.Sub(fault).Seconds()
		}
		if !prev.IsZero() && a.T.After(fault) {
			if g := a.T.Sub(prev).Seconds(); g > gap {
				gap = g
			}
		}
		prev = a.T
	}
	return toWrite, gap
}

// lastFile is the file the workload wrote last.
func lastFile(acks []ack) string {
	if len(acks) == 0 {
		return ""
	}
	return acks[len(acks)-1].File
}

// checkClean runs `fsrepctl check` through node.
func (c *cluster) checkClean(node string) (bool, string) {
	out, err := c.ctl(node, "check")
	if err != nil {
		return false, fmt.Sprint(err, "\n", out)
	}
	return true, out
}
