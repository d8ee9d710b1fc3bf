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

func nodeInfoCommand() *command {
	return &command{
		name:    "node info",
		args:    "NODE",
		summary: "show one node: role, state, chunks, free space, addresses",
		help: `ROLE is the node's place in the metadata Raft group (leader, voter,
nonvoter, or not-member: registered but not in the Raft configuration).
STATE (up, suspect or down), the last heartbeat, the chunk replicas the
metadata places on the node and its free space are the leader's healer's
view; they read "unknown" when the leader could not be asked. Exits 3 when
there is no such node.

Example:
  fsrepctl node info n2
  fsrepctl node info n2 -o json | jq .health.state`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return runNodeInfo
		},
	}
}

func runNodeInfo(ctx context.Context, c *cli, args []string) error {
	if len(args) != 1 {
		return usageErrorf("node info takes exactly one NODE")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	n, err := cl.Node(ctx, args[0])
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		return c.printJSON(n)
	}
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	w := c.table()
	fmt.Fprintf(w, "Node:\t%s\n", n.ID)
	fmt.Fprintf(w, "AZ:\t%s (region %s)\n", dash(n.AZ), dash(n.Region))
	fmt.Fprintf(w, "Role:\t%s\n", n.Role)
	fmt.Fprintf(w, "Draining:\t%s\n", yesNo(n.Draining))
	if h := n.Health; h != nil {
		fmt.Fprintf(w, "State:\t%s\n", h.State)
		if !h.DownSince.IsZero() {
			fmt.Fprintf(w, "Down since:\t%s\n", formatWhen(h.DownSince))
		}
		fmt.Fprintf(w, "Last heartbeat:\t%s\n", lastSeen(h.LastSeen, c.clock()))
		fmt.Fprintf(w, "Chunks:\t%d replica(s) placed on it by the metadata, %d chunk file(s) on its disk\n", h.Chunks, h.Files)
		fmt.Fprintf(w, "Free:\t%s\n", formatFree(h.FreeBytes))
		fmt.Fprintf(w, "Used:\t%s\n", formatFree(h.UsedBytes))
	} else {
		fmt.Fprintf(w, "State:\tunknown (the leader's healer could not be asked)\n")
	}
	fmt.Fprintf(w, "Joined:\t%s\n", formatTime(n.Joined))
	fmt.Fprintf(w, "NFS:\t%s\n", dash(n.NFSAddr))
	fmt.Fprintf(w, "Admin:\t%s\n", dash(n.AdminAddr))
	fmt.Fprintf(w, "RPC:\t%s\n", dash(n.RPCAddr))
	fmt.Fprintf(w, "Raft:\t%s\n", dash(n.RaftAddr))
	return w.Flush()
}

// lastSeen is a heartbeat time with its age: "2025-01-01T00:00:00Z (3s ago)".
func lastSeen(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	age := now.Sub(t)
	if age < 0 {
		return formatWhen(t)
	}
	return fmt.Sprintf("%s (%s ago)", formatWhen(t), age.Round(100*time.Millisecond))
}

func nodeAddCommand() *command {
	return &command{
		name:    "node add",
		args:    "NODE",
		summary: "admit a node started with --join, as voter or non-voter",
		help: `A new node is started with fsrepd --join (the RPC address of any member) and
the cluster's secret; it registers itself and joins the metadata Raft group:
as a voter when its AZ has none and there are fewer than 5, else as a
non-voter. 'node add' then sets its role:

  --voter     make it a voter. When its AZ already has a voter and another
              would break the rule that losing one AZ keeps a majority,
              the AZ's vote moves to NODE (the old voter becomes a
              non-voter). Refused for a node that is draining, down or
              suspect, and beyond 5 voters.
  --nonvoter  make it a non-voter. When that leaves its AZ without a voter,
              another up node of the AZ is promoted first (what the
              healer would do); refused when NODE is the only one (the
              healer would promote it again) and for the leader (transfer
              the leadership first).
  neither     admit NODE with the default role if its join did not finish
              (registered, not in the Raft group); otherwise change
              nothing and show its role.

Refusals on the voter rules exit 1 with code unsafe_voters;
--allow-unsafe-voters accepts a voter spread that cannot survive losing one
AZ. Exits 3 for a node that never registered: start it with --join first.
The healer manages voters on its own (replacing lost ones, one per AZ);
these changes follow the same rules, so it does not undo them.

Example:
  fsrepd --node-id n4 --az az1 --data-dir /var/lib/fsrep --secret-file /etc/fsrep/secret \
    --raft-addr 10.0.1.4:7000 --rpc-addr 10.0.1.4:7001 --nfs-addr 10.0.1.4:2049 \
    --admin-addr 10.0.1.4:9090 --join 10.0.1.1:7001
  fsrepctl node add n4              # show its role; admit it if its join stalled
  fsrepctl node add n4 --voter      # n4 takes over az1's vote`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			voter := fs.Bool("voter", false, "make the node a Raft voter")
			nonvoter := fs.Bool("nonvoter", false, "make the node a Raft non-voter")
			unsafe := fs.Bool("allow-unsafe-voters", false, "accept voters that cannot keep a majority after losing one AZ")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 1 {
					return usageErrorf("node add takes exactly one NODE")
				}
				req := admin.RoleRequest{AllowUnsafe: *unsafe}
				switch {
				case *voter && *nonvoter:
					return usageErrorf("--voter and --nonvoter exclude each other")
				case *voter || *nonvoter:
					req.Voter = voter
				}
				return runNodeAdd(ctx, c, args[0], req)
			}
		},
	}
}

func runNodeAdd(ctx context.Context, c *cli, id string, req admin.RoleRequest) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	res, err := cl.SetNodeRole(ctx, id, req)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		return c.printJSON(res)
	}
	n := res.Node
	switch {
	case len(res.Steps) == 0:
		fmt.Fprintf(c.stdout, "Node %s (%s) is already a %s of the metadata group; nothing changed\n", n.ID, dash(n.AZ), roleWords(res.Role))
	case res.Previous == admin.RoleNotMember:
		fmt.Fprintf(c.stdout, "Admitted node %s (%s) to the metadata group as a %s\n", n.ID, dash(n.AZ), roleWords(res.Role))
	default:
		fmt.Fprintf(c.stdout, "Node %s (%s) is now a %s (was a %s)\n", n.ID, dash(n.AZ), roleWords(res.Role), roleWords(res.Previous))
	}
	if len(res.Steps) > 1 {
		fmt.Fprintln(c.stdout, "Changes:")
		for _, s := range res.Steps {
			fmt.Fprintf(c.stdout, "  %s -> %s\n", s.Node, roleWords(s.Role))
		}
	}
	for _, note := range res.Notes {
		fmt.Fprintf(c.stdout, "Note: %s\n", note)
	}
	return nil
}

// roleWords spells a Raft role for sentences.
func roleWords(role string) string {
	switch role {
	case admin.RoleNonVoter:
		return "non-voter"
	case admin.RoleNotMember:
		return "registered node outside the Raft group"
	case admin.RoleLeader:
		return "voter (the leader)"
	}
	return role
}
