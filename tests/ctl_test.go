package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// fsrepctl against in-process clusters: the real binary, built once per
// test, run as a subprocess against a node's admin address with the
// cluster's token, so that flags, output and exit codes are what an
// operator's script sees.

// fsrepctl's exit codes (cmd/fsrepctl/main.go, docs/admin-api.md).
const (
	ctlOK          = 0
	ctlError       = 1
	ctlUsage       = 2
	ctlNotFound    = 3
	ctlUnhealthy   = 4
	ctlUnreachable = 5
)

// ctlBinary builds cmd/fsrepctl into a temporary directory.
func ctlBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fsrepctl")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/fsrep/fsrep/cmd/fsrepctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go build fsrepctl: %v\n%s", err, out)
	}
	return bin
}

// ctl runs fsrepctl against one admin address.
type ctl struct {
	t     *testing.T
	bin   string
	admin string
	token string
	dir   string // working directory: no ./fsrep-data/admin.token there
}

func newCtl(t *testing.T, bin, adminAddr, token string) *ctl {
	return &ctl{t: t, bin: bin, admin: adminAddr, token: token, dir: t.TempDir()}
}

// ctlResult is one run: exit code and output.
type ctlResult struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r ctlResult) String() string {
	return fmt.Sprintf("fsrepctl %s: exit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// bare runs fsrepctl with exactly args (no --admin, no token), with no
// FSREP_* variables from the test's environment and stdin not a terminal.
func (c *ctl) bare(args ...string) ctlResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Dir = c.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FSREP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// A pipe, not /dev/null (a character device, which fsrepctl would
	// take for a terminal to ask a confirmation on).
	cmd.Stdin = strings.NewReader("")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := ctlResult{args: args, stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("fsrepctl %q: %v", args, err)
	}
	return r
}

// run runs fsrepctl with the admin address and token.
func (c *ctl) run(args ...string) ctlResult {
	c.t.Helper()
	return c.bare(append([]string{"--admin", c.admin, "--token", c.token}, args...)...)
}

// want runs fsrepctl and fails the test unless it exits with code.
func (c *ctl) want(code int, args ...string) ctlResult {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code {
		c.t.Fatalf("want exit %d, got %s", code, r)
	}
	return r
}

// json runs fsrepctl with -o json, wants exit code and decodes stdout into v.
func (c *ctl) json(code int, v any, args ...string) ctlResult {
	c.t.Helper()
	r := c.want(code, append(args, "-o", "json")...)
	// Decode into a zero value: a field the answer omits must not keep
	// what an earlier answer decoded into the same variable said.
	reflect.ValueOf(v).Elem().SetZero()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		c.t.Fatalf("decoding the JSON of %s\n%v", r, err)
	}
	return r
}

// wantIn fails the test unless r's stdout or stderr has every string.
func wantIn(t *testing.T, r ctlResult, out string, wants ...string) {
	t.Helper()
	text := r.stdout
	if out == "stderr" {
		text = r.stderr
	}
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", out, w, r)
		}
	}
}

// ctlClosedAddr is a loopback address nothing listens on.
func ctlClosedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// volumeInfo is volume info -o json: the volume and its replication.
type volumeInfo struct {
	meta.Volume
	Replication *replication.ReplicaStatus `json:"replication,omitempty"`
}

// replicaReport is replica status -o json.
type replicaReport struct {
	Volumes []replication.ReplicaStatus `json:"volumes"`
	Repair  *replication.RepairStatus   `json:"repair,omitempty"`
}

// healthReport is health -o json.
type healthReport struct {
	Ready   bool     `json:"ready"`
	Reason  string   `json:"reason,omitempty"`
	Health  string   `json:"health,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// snapshotReport is snapshot-meta save -o json.
type snapshotReport struct {
	File           string   `json:"file"`
	Node           string   `json:"node"`
	AppliedIndex   uint64   `json:"applied_index"`
	Bytes          int64    `json:"bytes"`
	StorageVersion uint64   `json:"storage_version"`
	Volumes        []string `json:"volumes"`
	Nodes          int      `json:"nodes"`
}

// ctlVoters are the voters and the non-voters of node list -o json.
func ctlVoters(t *testing.T, c *ctl) (voters, nonVoters []string) {
	t.Helper()
	var nodes []meta.NodeInfo
	c.json(ctlOK, &nodes, "node", "list")
	for _, n := range nodes {
		if n.Voter {
			voters = append(voters, n.ID)
		} else {
			nonVoters = append(nonVoters, n.ID)
		}
	}
	return voters, nonVoters
}

// ctlWaitOK polls fsrepctl status until it exits 0.
func ctlWaitOK(t *testing.T, cl *Cluster, c *ctl, what string) {
	t.Helper()
	cl.Eventually(60*time.Second, what, func() error {
		if r := c.run("status"); r.code != ctlOK {
			return errors.New(r.String())
		}
		return nil
	})
}

// TestCtlVerbs runs every verb group against a 4-node cluster (n1 and n4
// in az1, n2 in az2, n3 in az3), through n2's admin API so that the
// leader-only calls are forwarded.
func TestCtlVerbs(t *testing.T) {
	bin := ctlBinary(t)
	c := NewCluster(t, ClusterOptions{Nodes: 4})
	ctl := newCtl(t, bin, c.Node(1).AdminAddr(), c.Node(0).Token())

	nfs, err := Mount(c.NFSAddr(1), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer nfs.Close()
	data := bytes.Repeat([]byte("fsrep operating test\n"), 150000) // 3.0 MiB: 4 chunks of 1 MiB
	if err := healPut(nfs, "report.bin", data); err != nil {
		t.Fatal(err)
	}

	t.Run("status and health", func(t *testing.T) {
		ctlWaitOK(t, c, ctl, "status ok")
		r := ctl.want(ctlOK, "status")
		wantIn(t, r, "stdout", "Node:    n2 (az2)", "Health:  ok", "Nodes:", "n4  az1  nonvoter  up", "Repair: running", "Volumes:", "vol")
		var st admin.StatusResponse
		ctl.json(ctlOK, &st, "status")
		if st.Node != "n2" || st.Health != admin.HealthOK || len(st.Nodes) != 4 || len(st.Raft.Voters) != 3 ||
			st.Repair == nil || len(st.Repair.Nodes) != 4 || len(st.Volumes) != 1 || st.Volumes[0].Files != 2 {
			t.Errorf("status -o json: %+v", st)
		}
		r = ctl.want(ctlOK, "health")
		if strings.TrimSpace(r.stdout) != "node ready, cluster health ok" {
			t.Errorf("health:\n%s", r)
		}
		var hr healthReport
		ctl.json(ctlOK, &hr, "health")
		if !hr.Ready || hr.Health != "ok" {
			t.Errorf("health -o json: %+v", hr)
		}
		// No token: readiness only, as a container health check.
		r = ctl.bare("--admin", ctl.admin, "health")
		if r.code != ctlOK || !strings.Contains(r.stdout, "cluster health not checked: no admin token") {
			t.Errorf("health without a token:\n%s", r)
		}
	})

	t.Run("node list and info", func(t *testing.T) {
		voters, nonVoters := ctlVoters(t, ctl)
		if !slices.Equal(voters, []string{"n1", "n2", "n3"}) || !slices.Equal(nonVoters, []string{"n4"}) {
			t.Fatalf("voters %v, non-voters %v", voters, nonVoters)
		}
		wantIn(t, ctl.want(ctlOK, "node", "list"), "stdout", "ID  AZ   REGION  VOTER", "n4  az1  test    no")

		var n admin.NodeResponse
		ctl.json(ctlOK, &n, "node", "info", "n4")
		if n.ID != "n4" || n.AZ != "az1" || n.Role != admin.RoleNonVoter || n.NFSAddr != c.NFSAddr(3) || n.Health == nil ||
			n.Health.State != replication.StateUp {
			t.Errorf("node info n4 -o json: %+v %+v", n, n.Health)
		}
		// The leader's view fills in with n4's heartbeats.
		c.Eventually(30*time.Second, "n4's heartbeat in node info", func() error {
			ctl.json(ctlOK, &n, "node", "info", "n4")
			if h := n.Health; h == nil || h.LastSeen.IsZero() || h.FreeBytes <= 0 {
				return fmt.Errorf("health %+v", h)
			}
			return nil
		})
		r := ctl.want(ctlOK, "node", "info", "n2")
		wantIn(t, r, "stdout", "Node:            n2", "AZ:              az2 (region test)", "State:           up",
			"Last heartbeat:  ", "Admin:           "+c.Node(1).AdminAddr())
		wantIn(t, ctl.want(ctlNotFound, "node", "info", "n9"), "stderr", `no node "n9"`)
		ctl.want(ctlUsage, "node", "info")
	})

	t.Run("leader transfer and node add", func(t *testing.T) {
		var tr admin.TransferResponse
		ctl.json(ctlOK, &tr, "leader", "transfer", "n1")
		if tr.Leader != "n1" {
			t.Fatalf("leader transfer n1: %+v", tr)
		}
		// az1's vote is the leader's: moving it to n4 needs a transfer first.
		wantIn(t, ctl.want(ctlError, "node", "add", "n4", "--voter"), "stderr", "held by the leader n1", "fsrepctl leader transfer")
		wantIn(t, ctl.want(ctlError, "node", "add", "n1", "--nonvoter"), "stderr", "n1 leads the metadata group")
		r := ctl.want(ctlOK, "node", "add", "n4")
		if strings.TrimSpace(r.stdout) != "Node n4 (az1) is already a non-voter of the metadata group; nothing changed" {
			t.Errorf("node add n4:\n%s", r)
		}

		ctl.json(ctlOK, &tr, "leader", "transfer", "n2")
		if tr.Previous != "n1" || tr.Leader != "n2" || tr.Term == 0 {
			t.Fatalf("leader transfer n2: %+v", tr)
		}
		var rr admin.RoleResponse
		ctl.json(ctlOK, &rr, "node", "add", "n4", "--voter")
		want := []admin.RoleStep{{Node: "n4", Role: admin.RoleVoter}, {Node: "n1", Role: admin.RoleNonVoter}}
		if rr.Previous != admin.RoleNonVoter || rr.Role != admin.RoleVoter || !slices.Equal(rr.Steps, want) || len(rr.Notes) != 1 {
			t.Fatalf("node add n4 --voter: %+v", rr)
		}
		if voters, nonVoters := ctlVoters(t, ctl); !slices.Equal(voters, []string{"n2", "n3", "n4"}) || !slices.Equal(nonVoters, []string{"n1"}) {
			t.Fatalf("after moving az1's vote: voters %v, non-voters %v", voters, nonVoters)
		}
		// n3 is az3's only node: the healer would give its vote back.
		wantIn(t, ctl.want(ctlError, "node", "add", "n3", "--nonvoter"), "stderr", "the healer would promote n3 again")
		// Demoting n4 hands az1's vote back to n1, as the healer would.
		r = ctl.want(ctlOK, "node", "add", "n4", "--nonvoter")
		wantIn(t, r, "stdout", "Node n4 (az1) is now a non-voter (was a voter)", "n1 -> voter", "n4 -> non-voter",
			"Note: n1 takes over the vote of n4")
		if voters, _ := ctlVoters(t, ctl); !slices.Equal(voters, []string{"n1", "n2", "n3"}) {
			t.Fatalf("voters %v", voters)
		}
		r = ctl.want(ctlNotFound, "node", "add", "n9", "--voter")
		wantIn(t, r, "stderr", `node "n9" is not registered`, "--join")
		ctl.want(ctlUsage, "node", "add", "n4", "--voter", "--nonvoter")
		ctlWaitOK(t, c, ctl, "status ok after the role changes")
	})

	t.Run("volume", func(t *testing.T) {
		var v meta.Volume
		ctl.json(ctlOK, &v, "volume", "create", "media", "--replicas", "3", "--chunk-size", "1MiB", "--quota", "10MiB", "--quota-files", "100")
		if v.Name != "media" || v.Replicas != 3 || v.WriteQuorum != 2 || v.ChunkSize != 1<<20 || v.QuotaBytes != 10<<20 || v.QuotaFiles != 100 {
			t.Fatalf("volume create: %+v", v)
		}
		wantIn(t, ctl.want(ctlError, "volume", "create", "media"), "stderr", "exists")
		// Three replicas that all must answer cannot survive losing an AZ.
		wantIn(t, ctl.want(ctlError, "volume", "create", "strict", "--replicas", "3", "--write-quorum", "3"), "stderr", "--allow-unsafe-placement")
		ctl.want(ctlUsage, "volume", "create", "bad", "--chunk-size", "lots")

		var vols []meta.Volume
		ctl.json(ctlOK, &vols, "volume", "list")
		if len(vols) != 2 || vols[0].Name != "media" || vols[1].Name != "vol" {
			t.Errorf("volume list: %+v", vols)
		}
		var vi volumeInfo
		ctl.json(ctlOK, &vi, "volume", "info", "vol")
		if vi.Name != "vol" || vi.Files != 2 || vi.Bytes != int64(len(data)) || vi.Replication == nil ||
			vi.Replication.Chunks != 4 || vi.Replication.Healthy != 4 || len(vi.Replication.PerAZ) != 3 {
			t.Errorf("volume info vol: %+v %+v", vi.Volume, vi.Replication)
		}
		wantIn(t, ctl.want(ctlOK, "volume", "info", "media"), "stdout", "media", "10MiB")
		ctl.json(ctlOK, &vi, "volume", "set", "media", "--quota", "20MiB", "--quota-files", "0")
		if vi.QuotaBytes != 20<<20 || vi.QuotaFiles != 0 || vi.Replicas != 3 {
			t.Errorf("volume set: %+v", vi.Volume)
		}
		ctl.want(ctlNotFound, "volume", "set", "nope", "--quota", "1GiB")
		// stdin is not a terminal: no deletion without --yes.
		wantIn(t, ctl.want(ctlUsage, "volume", "delete", "media"), "stderr", "--yes")
		ctl.json(ctlOK, &v, "volume", "delete", "media", "--yes")
		if v.Name != "media" {
			t.Errorf("volume delete: %+v", v)
		}
		ctl.want(ctlNotFound, "volume", "info", "media")
		ctl.want(ctlNotFound, "volume", "delete", "media", "--yes")
	})

	t.Run("export", func(t *testing.T) {
		var e meta.Export
		ctl.json(ctlOK, &e, "export", "show", "vol")
		if e.ReadOnly {
			t.Fatalf("export show: %+v", e)
		}
		ctl.json(ctlOK, &e, "export", "set", "vol", "--ro", "--clients", "10.0.0.0/8,127.0.0.1/32")
		if !e.ReadOnly || len(e.Clients) != 2 {
			t.Fatalf("export set --ro: %+v", e)
		}
		wantIn(t, ctl.want(ctlOK, "export", "show", "vol"), "stdout", "10.0.0.0/8")
		ctl.json(ctlOK, &e, "export", "set", "vol", "--rw", "--clients", "*")
		if e.ReadOnly || len(e.Clients) != 0 {
			t.Fatalf("export set --rw: %+v", e)
		}
		ctl.want(ctlNotFound, "export", "show", "nope")
		ctl.want(ctlUsage, "export", "set", "vol", "--ro", "--rw")
	})

	t.Run("replica and file locate", func(t *testing.T) {
		var rep replicaReport
		ctl.json(ctlOK, &rep, "replica", "status")
		if len(rep.Volumes) != 1 || rep.Volumes[0].Chunks != 4 || rep.Volumes[0].UnderReplicated != 0 || rep.Repair == nil {
			t.Errorf("replica status: %+v", rep)
		}
		wantIn(t, ctl.want(ctlOK, "replica", "status", "vol"), "stdout", "vol")
		ctl.want(ctlNotFound, "replica", "status", "nope")

		var loc admin.LocateResponse
		ctl.json(ctlOK, &loc, "file", "locate", "vol", "report.bin")
		if loc.Type != "file" || len(loc.Chunks) != 4 || !loc.Checked {
			t.Fatalf("file locate: %+v", loc)
		}
		for _, ch := range loc.Chunks {
			azs := map[string]bool{}
			for _, r := range ch.Replicas {
				azs[r.AZ] = r.State == admin.ReplicaOK
			}
			if ch.OK != 3 || len(azs) != 3 {
				t.Errorf("chunk %d: %+v", ch.Index, ch)
			}
		}
		wantIn(t, ctl.want(ctlOK, "file", "locate", "vol", "/report.bin", "--verify"), "stdout", "ok")
		ctl.want(ctlNotFound, "file", "locate", "vol", "nope.bin")
	})

	t.Run("repair and scrub", func(t *testing.T) {
		var rs replication.RepairStatus
		ctl.json(ctlOK, &rs, "repair", "status")
		if rs.Leader != "n2" || rs.Paused || len(rs.Nodes) != 4 {
			t.Errorf("repair status: %+v", rs)
		}
		ctl.json(ctlOK, &rs, "repair", "pause")
		if !rs.Paused {
			t.Errorf("repair pause: %+v", rs)
		}
		wantIn(t, ctl.want(ctlOK, "repair", "status"), "stdout", "paused")
		ctl.json(ctlOK, &rs, "repair", "resume")
		if rs.Paused {
			t.Errorf("repair resume: %+v", rs)
		}
		ctl.want(ctlOK, "repair", "status", "--until-idle", "--interval", "50ms")

		var sc replication.ScrubStatus
		ctl.json(ctlOK, &sc, "scrub", "status")
		if sc.Node != "n2" {
			t.Errorf("scrub status: %+v", sc)
		}
		var all []admin.NodeScrub
		ctl.json(ctlOK, &all, "scrub", "start", "--all")
		if len(all) != 4 {
			t.Fatalf("scrub start --all: %+v", all)
		}
		for _, ns := range all {
			if ns.Error != nil || ns.Scrub == nil || ns.Scrub.Node != ns.Node {
				t.Errorf("scrub start on %s: %+v", ns.Node, ns)
			}
		}
		ctl.json(ctlOK, &all, "scrub", "pause", "--all")
		for _, ns := range all {
			if ns.Scrub == nil || !ns.Scrub.Paused {
				t.Errorf("scrub pause on %s: %+v", ns.Node, ns)
			}
		}
		ctl.json(ctlOK, &sc, "scrub", "resume")
		if sc.Paused || sc.Node != "n2" {
			t.Errorf("scrub resume: %+v", sc)
		}
		ctl.json(ctlOK, &all, "scrub", "resume", "--all")
		wantIn(t, ctl.want(ctlOK, "scrub", "status", "--all"), "stdout", "n1", "n4")
	})

	t.Run("snapshot-meta save", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "meta.bak")
		var sr snapshotReport
		ctl.json(ctlOK, &sr, "snapshot-meta", "save", file)
		fi, err := os.Stat(file)
		if err != nil || fi.Size() != sr.Bytes || sr.Node != "n2" || !slices.Contains(sr.Volumes, "vol") || sr.Nodes != 4 {
			t.Fatalf("snapshot-meta save: %+v, %v", sr, err)
		}
		wantIn(t, ctl.want(ctlUsage, "snapshot-meta", "save", file), "stderr", "--force")
		ctl.want(ctlOK, "snapshot-meta", "save", file, "--force")
	})

	t.Run("node drain, undrain, remove", func(t *testing.T) {
		var n meta.NodeInfo
		ctl.json(ctlOK, &n, "node", "drain", "n4")
		if n.ID != "n4" || !n.Draining {
			t.Fatalf("node drain: %+v", n)
		}
		wantIn(t, ctl.want(ctlOK, "node", "info", "n4"), "stdout", "Draining:        yes")
		ctl.json(ctlOK, &n, "node", "undrain", "n4")
		if n.Draining {
			t.Fatalf("node undrain: %+v", n)
		}
		ctl.want(ctlNotFound, "node", "drain", "n9")

		r := ctl.want(ctlOK, "node", "drain", "n4", "--wait", "--interval", "100ms")
		wantIn(t, r, "stdout", "Node n4 is drained: it holds no chunks.")
		var info admin.NodeResponse
		ctl.json(ctlOK, &info, "node", "info", "n4")
		if info.Health == nil || info.Health.Chunks != 0 || !info.Draining {
			t.Fatalf("n4 after the drain: %+v %+v", info, info.Health)
		}
		wantIn(t, ctl.want(ctlUsage, "node", "remove", "n4"), "stderr", "without --yes")
		ctl.json(ctlOK, &n, "node", "remove", "n4", "--yes")
		if n.ID != "n4" {
			t.Fatalf("node remove: %+v", n)
		}
		c.Stop(3)
		voters, nonVoters := ctlVoters(t, ctl)
		if !slices.Equal(voters, []string{"n1", "n2", "n3"}) || len(nonVoters) != 0 {
			t.Errorf("after removing n4: voters %v, non-voters %v", voters, nonVoters)
		}
		ctl.want(ctlNotFound, "node", "remove", "n4", "--yes")
		ctlWaitOK(t, c, ctl, "status ok without n4")
	})

	t.Run("failures", func(t *testing.T) {
		r := newCtl(t, bin, ctlClosedAddr(t), ctl.token).run("status")
		if r.code != ctlUnreachable {
			t.Errorf("unreachable: %s", r)
		}
		if r := ctl.bare("--admin", ctlClosedAddr(t), "health"); r.code != ctlUnreachable {
			t.Errorf("health, unreachable: %s", r)
		}
		wantIn(t, ctl.want(ctlUsage, "frobnicate"), "stderr", `unknown verb "frobnicate"`)
		wantIn(t, ctl.want(ctlUsage, "volume"), "stderr", "needs one of")
		ctl.want(ctlUsage, "status", "-o", "yaml")
		if r := ctl.bare("--admin", ctl.admin, "volume", "list"); r.code != ctlUsage || !strings.Contains(r.stderr, "no admin token") {
			t.Errorf("no token: %s", r)
		}
		if r := ctl.bare("--admin", ctl.admin, "--token", "wrong", "volume", "list"); r.code != ctlError {
			t.Errorf("wrong token: %s", r)
		}
		ctl.want(ctlNotFound, "volume", "info", "nope")
		ctl.want(ctlOK, "--help")
	})
}

// TestCtlUnsafePlacement: on two AZs, three replicas cannot survive the
// loss of one, so volume create refuses them unless told; and the
// cluster's health says why it is degraded.
func TestCtlUnsafePlacement(t *testing.T) {
	bin := ctlBinary(t)
	c := NewCluster(t, ClusterOptions{Nodes: 2}) // az1, az2; "vol" wants 3 replicas
	ctl := newCtl(t, bin, c.Node(0).AdminAddr(), c.Node(0).Token())

	r := ctl.want(ctlError, "volume", "create", "media", "--replicas", "3")
	wantIn(t, r, "stderr", "3 replicas over 2 AZs", "--allow-unsafe-placement")
	ctl.want(ctlNotFound, "volume", "info", "media")
	var v meta.Volume
	ctl.json(ctlOK, &v, "volume", "create", "media", "--replicas", "3", "--allow-unsafe-placement")
	if v.Replicas != 3 {
		t.Errorf("volume create --allow-unsafe-placement: %+v", v)
	}
	ctl.json(ctlOK, &v, "volume", "create", "pair", "--replicas", "2", "--write-quorum", "1")
	// Raising it to 3 is refused as well.
	wantIn(t, ctl.want(ctlError, "volume", "set", "pair", "--replicas", "3"), "stderr", "--allow-unsafe-placement")

	// Unhealthy: 4 from status and health, with the reason.
	r = ctl.want(ctlUnhealthy, "status")
	wantIn(t, r, "stdout", "Health:  degraded", "only 2 AZ(s) have nodes")
	r = ctl.want(ctlUnhealthy, "health")
	wantIn(t, r, "stdout", "cluster health degraded", "only 2 AZ(s) have nodes")
	var hr healthReport
	ctl.json(ctlUnhealthy, &hr, "health")
	if !hr.Ready || hr.Health != "degraded" || len(hr.Reasons) != 1 {
		t.Errorf("health -o json: %+v", hr)
	}
}
