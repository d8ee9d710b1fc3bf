package main

import (
	"context"
	"flag"
	"fmt"
)

func leaderTransferCommand() *command {
	return &command{
		name:    "leader transfer",
		args:    "[NODE]",
		summary: "hand the metadata leadership to another voter",
		help: `For planned maintenance of the leader's node: the leader hands its role to
NODE (a Raft voter), or without NODE to the voter that is most up to date,
and the command returns once the new leader is elected (well under a second
on a healthy network; metadata changes wait meanwhile, NFS clients do not
notice). Any node's admin API takes the request; a follower passes it to the
leader. Naming the current leader changes nothing.

Exits 3 when NODE is not a member of the Raft group, 1 when it is not a
voter or the transfer failed (the old leader then stays or an election
picks one).

Example:
  fsrepctl leader transfer
  fsrepctl leader transfer n2a -o json`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return runLeaderTransfer
		},
	}
}

func runLeaderTransfer(ctx context.Context, c *cli, args []string) error {
	if len(args) > 1 {
		return usageErrorf("leader transfer takes at most one NODE")
	}
	node := ""
	if len(args) == 1 {
		node = args[0]
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	tr, err := cl.TransferLeader(ctx, node)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		return c.printJSON(tr)
	}
	if tr.Leader == tr.Previous {
		fmt.Fprintf(c.stdout, "%s already leads (term %d); nothing to do\n", tr.Leader, tr.Term)
		return nil
	}
	fmt.Fprintf(c.stdout, "Leadership moved from %s to %s (term %d)\n", tr.Previous, tr.Leader, tr.Term)
	return nil
}
