package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/replication"
)

func statusCommand() *command {
	return &command{
		name:    "status",
		summary: "show the cluster at a glance: health, Raft, nodes, repair, volumes",
		help: `Reads are served by the node at --admin from its own copy of the metadata;
node liveness (STATE: up, suspect or down, and draining), chunk counts, free
space and the repair queue are the leader's, fetched by that node. Health is
ok, degraded (something needs an operator: a node or AZ down, a join that did
not finish, too few AZs, repair paused with work queued), at_risk (some chunk
has a single healthy replica left) or down (no metadata leader), with every
reason. Exits 4 when the health is not ok, after printing it.

--watch prints the screen again every --interval (separated by "---"; with
-o json one document each) until interrupted, riding out an unreachable
node or an election; it then exits with the code of the last screen shown.

Example:
  fsrepctl status --admin 10.0.0.1:19090
  fsrepctl status -o json | jq .health
  fsrepctl status --watch --interval 5s`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			watch := fs.Bool("watch", false, "print the status again every --interval until interrupted")
			interval := fs.Duration("interval", defaultInterval, "time between screens with --watch")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 0 {
					return usageErrorf("status takes no arguments")
				}
				if *interval <= 0 {
					return usageErrorf("--interval must be positive")
				}
				if *watch {
					return runStatusWatch(ctx, c, *interval)
				}
				return runStatus(ctx, c)
			}
		},
	}
}

func runStatus(ctx context.Context, c *cli) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	return c.showStatus(st)
}

// showStatus prints one status screen and returns errUnhealthy when the
// health is not ok.
func (c *cli) showStatus(st *admin.StatusResponse) error {
	if c.jsonOutput() {
		if err := c.printJSON(st); err != nil {
			return err
		}
	} else if err := c.printStatus(st); err != nil {
		return err
	}
	if st.Health != admin.HealthOK {
		return errUnhealthy
	}
	return nil
}

// runStatusWatch reprints the status until ctx ends (Ctrl-C), then exits
// with the last screen's verdict: 0 for ok, 4 otherwise.
func runStatusWatch(ctx context.Context, c *cli, interval time.Duration) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	screens := 0
	var last error // the last screen's verdict, or why there was none
	err = c.poll(ctx, interval, func() (bool, error) {
		st, err := cl.Status(ctx)
		if err != nil {
			if ctx.Err() == nil { // not the interruption itself
				last = err
			}
			return false, err
		}
		if screens > 0 && !c.jsonOutput() {
			fmt.Fprintln(c.stdout, "---")
		}
		screens++
		last = c.showStatus(st)
		if last != nil && !errors.Is(last, errUnhealthy) {
			return false, last
		}
		return false, nil
	})
	if ctx.Err() != nil {
		// A watch ends when the user stops it.
		if last == nil && screens == 0 {
			return interrupted(ctx.Err(), "the first status screen")
		}
		return last
	}
	return err
}

func (c *cli) printStatus(st *admin.StatusResponse) error {
	w := c.table()
	r := st.Raft
	fmt.Fprintf(w, "Node:\t%s (%s)\n", st.Node, dash(st.AZ))
	fmt.Fprintf(w, "Raft:\t%s, term %d, leader %s, commit %d, applied %d\n",
		dash(strings.ToLower(r.State)), r.Term, dash(r.Leader), r.CommitIndex, r.AppliedIndex)
	fmt.Fprintf(w, "Health:\t%s\n", st.Health)
	for _, reason := range st.Reasons {
		fmt.Fprintf(w, "\t- %s\n", reason)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(c.stdout, "\nNodes:")
	w = c.table()
	if st.Repair == nil {
		fmt.Fprintln(w, "ID\tAZ\tROLE\tNFS\tADMIN")
		for _, n := range st.Nodes {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", n.ID, dash(n.AZ), raftRole(n.ID, st), dash(n.NFSAddr), dash(n.AdminAddr))
		}
	} else {
		// The leader's liveness view joins the registered nodes by ID; a
		// node it does not track yet shows as unknown.
		health := map[string]replication.NodeHealth{}
		for _, h := range st.Repair.Nodes {
			health[h.ID] = h
		}
		fmt.Fprintln(w, "ID\tAZ\tROLE\tSTATE\tCHUNKS\tFREE\tNFS\tADMIN")
		for _, n := range st.Nodes {
			h, ok := health[n.ID]
			state, chunks, free := "unknown", "-", "-"
			if ok {
				state, chunks, free = nodeState(h), strconv.Itoa(h.Chunks), formatFree(h.FreeBytes)
			} else if n.Draining {
				state = "unknown,draining"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, dash(n.AZ), raftRole(n.ID, st), state, chunks, free,
				dash(n.NFSAddr), dash(n.AdminAddr))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if st.Repair != nil {
		fmt.Fprintf(c.stdout, "\nRepair: %s\n", repairSummary(st.Repair))
	}

	fmt.Fprintln(c.stdout, "\nVolumes:")
	if len(st.Volumes) == 0 {
		fmt.Fprintln(c.stdout, "(none)")
		return nil
	}
	return c.printVolumes(st.Volumes)
}

// raftRole is a node's place in the Raft group as the status reports it.
func raftRole(id string, st *admin.StatusResponse) string {
	switch {
	case id == st.Raft.Leader:
		return "leader"
	case slices.Contains(st.Raft.Voters, id):
		return "voter"
	case slices.Contains(st.Raft.NonVoters, id):
		return "nonvoter"
	}
	return "not-member"
}

func healthCommand() *command {
	return &command{
		name:    "health",
		summary: "exit 0 when the node is ready and the cluster health is ok",
		help: `Asks /readyz, which needs no token: the node has a leader and is registered.
When an admin token is available it also asks /v1/status and requires the
cluster health to be ok. Exits 4 when not ready or not ok, 5 when nothing
answers. Suited to container health checks.

Example:
  fsrepctl health --admin 127.0.0.1:9090`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return runHealth
		},
	}
}

// healthReport is what health prints with -o json.
type healthReport struct {
	Ready   bool     `json:"ready"`
	Reason  string   `json:"reason,omitempty"`
	Health  string   `json:"health,omitempty"` // empty when not checked (no token)
	Reasons []string `json:"reasons,omitempty"`
	Note    string   `json:"note,omitempty"`
}

func runHealth(ctx context.Context, c *cli, args []string) error {
	if len(args) != 0 {
		return usageErrorf("health takes no arguments")
	}
	rep := healthReport{Ready: true}
	cl, err := c.newClient("", c.g.timeout)
	if err != nil {
		return err
	}
	err = cl.Ready(ctx)
	switch {
	case admin.IsCode(err, admin.CodeNotReady):
		rep.Ready, rep.Reason = false, err.Error()
	case err != nil:
		return err
	}

	if rep.Ready {
		tok, err := c.token()
		switch {
		case errors.Is(err, errNoToken):
			rep.Note = "cluster health not checked: no admin token"
		case err != nil:
			return err
		default:
			cl, err := c.newClient(tok, c.g.timeout)
			if err != nil {
				return err
			}
			st, err := cl.Status(ctx)
			if err != nil {
				return err
			}
			rep.Health, rep.Reasons = string(st.Health), st.Reasons
		}
	}

	if c.jsonOutput() {
		if err := c.printJSON(rep); err != nil {
			return err
		}
	} else {
		switch {
		case !rep.Ready:
			fmt.Fprintln(c.stdout, rep.Reason)
		case rep.Health == "":
			fmt.Fprintf(c.stdout, "node ready (%s)\n", rep.Note)
		default:
			fmt.Fprintf(c.stdout, "node ready, cluster health %s\n", rep.Health)
			for _, r := range rep.Reasons {
				fmt.Fprintf(c.stdout, "  - %s\n", r)
			}
		}
	}
	if !rep.Ready || (rep.Health != "" && rep.Health != string(admin.HealthOK)) {
		return errUnhealthy
	}
	return nil
}
