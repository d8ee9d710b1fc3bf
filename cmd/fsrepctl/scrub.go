package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/replication"
)

// Every node scrubs its own chunks: the scrub verbs act on the node at
// --admin, or with --all on every registered node (asked by that node).

func scrubStatusCommand() *command {
	return &command{
		name:    "scrub status",
		summary: "show the scrubber of a node (or of every node with --all)",
		help: `The scrubber re-reads the node's chunks at a paced rate and verifies their
checksums; a damaged replica is dropped from its replica set (the healer
copies a good one back) unless it is the chunk's last copy, which is kept
and counted. "Read errors" are damaged replicas that reads through the node
ran into.

With --all, the node at --admin asks every registered node; a node that does
not answer shows its error, and the exit code is 1.

Example:
  fsrepctl scrub status
  fsrepctl scrub status --all
  fsrepctl scrub status --all -o json | jq '.[] | {node, corrupt: .scrub.corrupt}'`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			all := fs.Bool("all", false, "every registered node")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 0 {
					return usageErrorf("scrub status takes no arguments")
				}
				return runScrub(ctx, c, "", *all)
			}
		},
	}
}

func scrubStartCommand() *command {
	return &command{
		name:    "scrub start",
		summary: "start a scrub pass now",
		help: `Starts a pass on the node at --admin (every node with --all) unless one
is running; the pass still keeps to the scrubber's rate limit.

Example:
  fsrepctl scrub start --admin n2:9090
  fsrepctl scrub start --all`,
		setup: scrubControlSetup(admin.ScrubStart),
	}
}

func scrubPauseCommand() *command {
	return &command{
		name:    "scrub pause",
		summary: "pause the scrubber",
		help: `Stops the paced re-reading on the node at --admin (every node with --all),
for instance to leave the disks to a heavy workload. Reads still verify
checksums.

Example:
  fsrepctl scrub pause --all`,
		setup: scrubControlSetup(admin.ScrubPause),
	}
}

func scrubResumeCommand() *command {
	return &command{
		name:    "scrub resume",
		summary: "resume the scrubber after 'scrub pause'",
		help: `Example:
  fsrepctl scrub resume --all`,
		setup: scrubControlSetup(admin.ScrubResume),
	}
}

func scrubControlSetup(act admin.ScrubAction) func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
	return func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
		all := fs.Bool("all", false, "every registered node")
		return func(ctx context.Context, c *cli, args []string) error {
			if len(args) != 0 {
				return usageErrorf("scrub %s takes no arguments", scrubVerb(act))
			}
			return runScrub(ctx, c, act, *all)
		}
	}
}

func scrubVerb(act admin.ScrubAction) string {
	switch act {
	case admin.ScrubStart:
		return "start"
	case admin.ScrubPause:
		return "pause"
	case admin.ScrubResume:
		return "resume"
	}
	return "status"
}

// runScrub shows (act "") or controls the scrubber of one node or all.
func runScrub(ctx context.Context, c *cli, act admin.ScrubAction, all bool) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	if all {
		var out []admin.NodeScrub
		if act == "" {
			out, err = cl.ScrubAll(ctx)
		} else {
			out, err = cl.ControlScrubAll(ctx, act)
		}
		if err != nil {
			return err
		}
		return c.printScrubAll(act, out)
	}
	var st *replication.ScrubStatus
	if act == "" {
		st, err = cl.Scrub(ctx)
	} else {
		st, err = cl.ControlScrub(ctx, act)
	}
	if err != nil {
		return err
	}
	switch {
	case c.jsonOutput():
		return c.printJSON(st)
	case act == "":
		return c.printScrub(st)
	}
	fmt.Fprintf(c.stdout, "%s: %s\n", st.Node, scrubDone(act, st))
	return nil
}

// scrubDone says what a control did, from the status after it.
func scrubDone(act admin.ScrubAction, st *replication.ScrubStatus) string {
	switch act {
	case admin.ScrubStart:
		if st.PassStarted.IsZero() {
			return "scrub requested"
		}
		return "scrub pass running since " + formatWhen(st.PassStarted)
	case admin.ScrubPause:
		return "scrubber paused"
	}
	return "scrubber resumed"
}

func (c *cli) printScrub(st *replication.ScrubStatus) error {
	w := c.table()
	fmt.Fprintf(w, "Node:\t%s\n", st.Node)
	fmt.Fprintf(w, "Scrubber:\t%s\n", scrubState(st))
	fmt.Fprintf(w, "Rate limit:\t%s\n", formatBandwidth(st.RateLimit))
	fmt.Fprintf(w, "Current pass:\t%s\n", scrubPass(st))
	fmt.Fprintf(w, "Next pass:\t%s\n", formatWhen(st.NextPass))
	fmt.Fprintf(w, "Passes:\t%d (last ended %s)\n", st.Passes, formatWhen(st.LastPassEnded))
	fmt.Fprintf(w, "Corrupt:\t%d found, %d repaired, %d kept as the last copy\n", st.Corrupt, st.Repaired, st.Kept)
	fmt.Fprintf(w, "Read errors:\t%d found by reads, %d dropped, %d kept\n", st.ReadCorrupt.Found, st.ReadCorrupt.Dropped, st.ReadCorrupt.Kept)
	fmt.Fprintf(w, "Errors:\t%d chunk file(s) could not be checked\n", st.Errors)
	return w.Flush()
}

func scrubState(st *replication.ScrubStatus) string {
	if st.Paused {
		return "paused"
	}
	return "running"
}

// scrubPass is the current pass: chunks and bytes verified so far.
func scrubPass(st *replication.ScrubStatus) string {
	if st.PassStarted.IsZero() {
		return "none"
	}
	pct := 100
	if st.PassChunks > 0 {
		pct = min(100, st.Scanned*100/st.PassChunks)
	}
	return fmt.Sprintf("%d/%d chunks (%d%%), %s, since %s", st.Scanned, st.PassChunks, pct,
		formatSize(st.ScannedBytes), formatWhen(st.PassStarted))
}

// printScrubAll prints every node's answer and fails (exit 1) when some
// node did not give one.
func (c *cli) printScrubAll(act admin.ScrubAction, out []admin.NodeScrub) error {
	failed := 0
	for _, ns := range out {
		if ns.Error != nil {
			failed++
		}
	}
	if c.jsonOutput() {
		if err := c.printJSON(out); err != nil {
			return err
		}
	} else {
		w := c.table()
		if act == "" {
			fmt.Fprintln(w, "NODE\tAZ\tSTATE\tPASS\tSCANNED\tPASSES\tCORRUPT\tREPAIRED\tKEPT\tERRORS\tNEXT-PASS")
		} else {
			fmt.Fprintln(w, "NODE\tAZ\tRESULT")
		}
		for _, ns := range out {
			switch {
			case ns.Error != nil:
				fmt.Fprintf(w, "%s\t%s\terror: %s\n", ns.Node, dash(ns.AZ), ns.Error.Message)
			case ns.Scrub == nil:
				fmt.Fprintf(w, "%s\t%s\terror: no answer\n", ns.Node, dash(ns.AZ))
			case act == "":
				st := ns.Scrub
				pass := "-"
				if !st.PassStarted.IsZero() {
					pass = fmt.Sprintf("%d/%d", st.Scanned, st.PassChunks)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", ns.Node, dash(ns.AZ), scrubState(st), pass,
					formatSize(st.ScannedBytes), st.Passes, st.Corrupt, st.Repaired, st.Kept, st.Errors, formatWhen(st.NextPass))
			default:
				fmt.Fprintf(w, "%s\t%s\t%s\n", ns.Node, dash(ns.AZ), scrubDone(act, ns.Scrub))
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d node(s) did not answer", failed, len(out))
	}
	return nil
}
