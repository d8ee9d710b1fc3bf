package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

func nodeListCommand() *command {
	return &command{
		name:    "node list",
		summary: "list the registered nodes",
		help: `VOTER tells whether the node votes in the metadata Raft group; non-voters
still serve NFS and hold chunks.

Example:
  fsrepctl node list
  fsrepctl node list -o json`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return runNodeList
		},
	}
}

func runNodeList(ctx context.Context, c *cli, args []string) error {
	if len(args) != 0 {
		return usageErrorf("node list takes no arguments")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		return c.printJSON(nodes)
	}
	w := c.table()
	fmt.Fprintln(w, "ID\tAZ\tREGION\tVOTER\tNFS\tADMIN\tRPC\tRAFT\tJOINED")
	for _, n := range nodes {
		voter := "no"
		if n.Voter {
			voter = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, dash(n.AZ), dash(n.Region), voter,
			dash(n.NFSAddr), dash(n.AdminAddr), dash(n.RPCAddr), dash(n.RaftAddr), formatTime(n.Joined))
	}
	return w.Flush()
}

func nodeDrainCommand() *command {
	return &command{
		name:    "node drain",
		args:    "NODE",
		summary: "move every chunk off a node before it leaves",
		help: `Marks NODE draining: it takes no new replicas, and the healer moves its
chunks to other nodes, keeping each chunk's replicas in distinct AZs, at the
repair rate limit. The node keeps serving NFS and reads meanwhile. Undo with
'fsrepctl node undrain NODE'.

--wait follows the node's chunk count down to 0 with a progress line (rate
and ETA) on stderr, then exits 0; interrupting the wait (exit 1) does not
stop the drain. Exits 3 when there is no such node.

Example:
  fsrepctl node drain n2
  fsrepctl node drain n2 --wait && fsrepctl node remove n2 --yes`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			wait := fs.Bool("wait", false, "wait until the node holds no chunks, showing progress")
			interval := fs.Duration("interval", defaultInterval, "time between progress updates with --wait")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 1 {
					return usageErrorf("node drain takes exactly one NODE")
				}
				if *interval <= 0 {
					return usageErrorf("--interval must be positive")
				}
				return runNodeDrain(ctx, c, args[0], *wait, *interval)
			}
		},
	}
}

func runNodeDrain(ctx context.Context, c *cli, id string, wait bool, interval time.Duration) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	n, err := cl.DrainNode(ctx, id, true)
	if err != nil {
		return err
	}
	if !wait {
		if c.jsonOutput() {
			return c.printJSON(n)
		}
		fmt.Fprintf(c.stdout, "Draining node %s (%s): its chunks are moving to other nodes.\nFollow it with: fsrepctl node drain %s --wait\n",
			n.ID, dash(n.AZ), n.ID)
		return nil
	}

	bar := newCountdown(c.stderr, c.progressOnTerminal(), "draining "+id, "chunks moved")
	err = c.poll(ctx, interval, func() (bool, error) {
		rs, err := cl.Repair(ctx)
		if err != nil {
			return false, err
		}
		i := slices.IndexFunc(rs.Nodes, func(h replication.NodeHealth) bool { return h.ID == id })
		if i < 0 {
			return false, fmt.Errorf("node %s is no longer in the leader's view (removed meanwhile?)", id)
		}
		h := rs.Nodes[i]
		if !h.Draining {
			return false, fmt.Errorf("node %s is no longer draining (undrained meanwhile?); %d chunks left on it", id, h.Chunks)
		}
		bar.update(c.clock(), h.Chunks)
		return h.Chunks == 0, nil
	})
	bar.finish()
	if err != nil {
		return interrupted(err, "node "+id+" was drained (the drain goes on)")
	}
	if c.jsonOutput() {
		return c.printJSON(n)
	}
	fmt.Fprintf(c.stdout, "Node %s is drained: it holds no chunks.\nRemove it with: fsrepctl node remove %s\n", id, id)
	return nil
}

func nodeUndrainCommand() *command {
	return &command{
		name:    "node undrain",
		args:    "NODE",
		summary: "return a draining node to service",
		help: `Stops moving chunks off NODE and lets it take new replicas again. Chunks
already moved stay where they are (rebalancing may bring some back).

Example:
  fsrepctl node undrain n2`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return runNodeUndrain
		},
	}
}

func runNodeUndrain(ctx context.Context, c *cli, args []string) error {
	if len(args) != 1 {
		return usageErrorf("node undrain takes exactly one NODE")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	n, err := cl.DrainNode(ctx, args[0], false)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		return c.printJSON(n)
	}
	fmt.Fprintf(c.stdout, "Node %s (%s) is back in service: it takes new replicas again\n", n.ID, dash(n.AZ))
	return nil
}

func nodeRemoveCommand() *command {
	return &command{
		name:    "node remove",
		args:    "NODE",
		summary: "remove a node from the cluster",
		help: `Forgets NODE and takes it out of the metadata Raft group. Refused (exit 1,
code holds_only_copy) while the node holds the only healthy replica of some
chunk: drain it first. Without --yes, fsrepctl asks you to type the node ID,
and refuses when stdin is not a terminal. Stop fsrepd on the node afterwards;
to come back it must join again with an empty data directory.

Example:
  fsrepctl node drain n2 --wait
  fsrepctl node remove n2
  fsrepctl node remove n2 --yes`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			yes := fs.Bool("yes", false, "do not ask for confirmation")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 1 {
					return usageErrorf("node remove takes exactly one NODE")
				}
				return runNodeRemove(ctx, c, args[0], *yes)
			}
		},
	}
}

func runNodeRemove(ctx context.Context, c *cli, id string, yes bool) error {
	if !yes && !c.stdinIsTerminal() {
		return usageErrorf("refusing to remove node %q without --yes: stdin is not a terminal to confirm on", id)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	if !yes {
		if err := c.confirmRemove(ctx, cl, id); err != nil {
			return err
		}
	}
	n, err := cl.RemoveNode(ctx, id)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		return c.printJSON(n)
	}
	fmt.Fprintf(c.stdout, "Removed node %s (%s) from the cluster; stop its fsrepd now\n", n.ID, dash(n.AZ))
	return nil
}

// confirmRemove describes the node and asks for its ID to be typed.
func (c *cli) confirmRemove(ctx context.Context, cl *admin.Client, id string) error {
	nodes, err := cl.Nodes(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(nodes, func(n meta.NodeInfo) bool { return n.ID == id })
	if i < 0 {
		return &admin.APIError{Status: http.StatusNotFound, Code: admin.CodeNotFound, Message: fmt.Sprintf("no node %q", id)}
	}
	n := nodes[i]
	what := fmt.Sprintf("node %s (%s", n.ID, dash(n.AZ))
	if n.Voter {
		what += ", a Raft voter"
	}
	if n.Draining {
		what += ", draining"
	}
	what += ")"
	// The chunk count is the leader's; without a healer it is unknown.
	if rs, err := cl.Repair(ctx); err == nil {
		if j := slices.IndexFunc(rs.Nodes, func(h replication.NodeHealth) bool { return h.ID == id }); j >= 0 {
			what += fmt.Sprintf(", holding %d chunk replica(s)", rs.Nodes[j].Chunks)
		}
	}
	fmt.Fprintf(c.stderr, "Removing %s takes it out of the cluster.\nType the node ID to confirm: ", what)
	line, _ := bufio.NewReader(c.stdin).ReadString('\n')
	if strings.TrimSpace(line) != id {
		return usageErrorf("confirmation did not match; node %s not removed", id)
	}
	return nil
}
