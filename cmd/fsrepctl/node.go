package main

import (
	"context"
	"flag"
	"fmt"
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
