package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/fsrep/fsrep/replication"
)

// The repair verbs show and steer the leader's healer: any node answers,
// followers by asking the leader.

const defaultInterval = time.Second

func repairStatusCommand() *command {
	return &command{
		name:    "repair status",
		summary: "show the repair queue, node liveness and AZs",
		help: `The healer runs on the metadata leader; any node answers for it. The queue
counts chunks waiting for a copy (fewer healthy replicas than the volume's
replica count) or a move (drain, rebalance); "urgent" ones have a single
healthy replica left and go first. Copies start once a down node has been
down for the grace time, at most the rate limit.

--watch prints the status again every --interval until interrupted;
--until-idle stops (exit 0) once nothing is queued or in flight, and exits 1
when interrupted before. With -o json each report is one JSON document.

Example:
  fsrepctl repair status
  fsrepctl repair status --watch
  fsrepctl repair status --until-idle && echo healed`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			watch := fs.Bool("watch", false, "print the status again every --interval until interrupted")
			untilIdle := fs.Bool("until-idle", false, "watch until nothing is queued or in flight")
			interval := fs.Duration("interval", defaultInterval, "time between reports with --watch or --until-idle")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 0 {
					return usageErrorf("repair status takes no arguments")
				}
				if *interval <= 0 {
					return usageErrorf("--interval must be positive")
				}
				return runRepairStatus(ctx, c, *watch || *untilIdle, *untilIdle, *interval)
			}
		},
	}
}

func runRepairStatus(ctx context.Context, c *cli, watch, untilIdle bool, interval time.Duration) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	if !watch {
		rs, err := cl.Repair(ctx)
		if err != nil {
			return err
		}
		return c.printRepair(rs)
	}
	reports := 0
	err = c.poll(ctx, interval, func() (bool, error) {
		rs, err := cl.Repair(ctx)
		if err != nil {
			return false, err
		}
		if reports > 0 && !c.jsonOutput() {
			fmt.Fprintln(c.stdout, "---")
		}
		reports++
		if err := c.printRepair(rs); err != nil {
			return false, err
		}
		return untilIdle && repairIdle(rs), nil
	})
	if !untilIdle && ctx.Err() != nil {
		return nil // a plain watch ends when the user stops it
	}
	return interrupted(err, "repair went idle")
}

func repairIdle(rs *replication.RepairStatus) bool { return rs.Queue == 0 && rs.InFlight == 0 }

func (c *cli) printRepair(rs *replication.RepairStatus) error {
	if c.jsonOutput() {
		return c.printJSON(rs)
	}
	w := c.table()
	fmt.Fprintf(w, "Leader:\t%s\n", dash(rs.Leader))
	fmt.Fprintf(w, "Repair:\t%s\n", repairState(rs))
	fmt.Fprintf(w, "Queue:\t%d chunk(s), %d with a single healthy replica left\n", rs.Queue, rs.QueueUrgent)
	if rs.Unplaceable > 0 {
		fmt.Fprintf(w, "Unplaceable:\t%d chunk(s) under-replicated with no eligible node to copy to (add nodes, or bring the lost AZ back)\n", rs.Unplaceable)
	}
	fmt.Fprintf(w, "In flight:\t%d\n", rs.InFlight)
	fmt.Fprintf(w, "Copied:\t%d chunk(s), %s; %d failed (since %s became leader)\n",
		rs.Copied, formatSize(rs.CopiedBytes), rs.Failed, dash(rs.Leader))
	fmt.Fprintf(w, "Grace:\t%s before a down node's chunks are copied elsewhere\n", rs.Grace)
	fmt.Fprintf(w, "Rate limit:\t%s\n", formatBandwidth(rs.RateLimit))
	fmt.Fprintf(w, "Last pass:\t%s\n", formatWhen(rs.LastPass))
	if err := w.Flush(); err != nil {
		return err
	}
	if len(rs.Nodes) > 0 {
		fmt.Fprintln(c.stdout, "\nNodes:")
		w = c.table()
		fmt.Fprintln(w, "ID\tAZ\tSTATE\tCHUNKS\tFREE\tLAST-SEEN")
		for _, n := range rs.Nodes {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", n.ID, dash(n.AZ), nodeState(n), n.Chunks, formatFree(n.FreeBytes), formatWhen(n.LastSeen))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if len(rs.AZs) > 0 {
		fmt.Fprintln(c.stdout, "\nAZs:")
		w = c.table()
		fmt.Fprintln(w, "AZ\tNODES\tUP\tSTATE")
		for _, az := range rs.AZs {
			state := "up"
			if az.Down {
				state = "down"
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", az.AZ, az.Nodes, az.Up, state)
		}
		return w.Flush()
	}
	return nil
}

// repairSummary is the one-line repair state of status and replica status.
func repairSummary(rs *replication.RepairStatus) string {
	return fmt.Sprintf("%s; queue %d (%d urgent), %d in flight", repairState(rs), rs.Queue, rs.QueueUrgent, rs.InFlight)
}

func repairState(rs *replication.RepairStatus) string {
	if rs.Paused {
		return "paused (resume with: fsrepctl repair resume)"
	}
	return "running"
}

// nodeState is a node's liveness, with ",draining" while it drains.
func nodeState(n replication.NodeHealth) string {
	s := string(n.State)
	if s == "" {
		s = "unknown"
	}
	if n.Draining {
		s += ",draining"
	}
	return s
}

func formatFree(n int64) string {
	if n < 0 {
		return "-"
	}
	return formatSize(n)
}

func formatBandwidth(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return formatSize(n) + "/s"
}

// formatWhen prints a time as RFC 3339 in UTC ("-" for the zero time).
func formatWhen(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func repairPauseCommand() *command {
	return &command{
		name:    "repair pause",
		summary: "stop starting new repair copies and moves",
		help: `Copies in flight finish; nothing new starts until 'fsrepctl repair resume'.
Useful during planned maintenance, when a node that is about to come back
would otherwise have its chunks copied elsewhere. While paused with chunks
queued, the cluster health is degraded.

Example:
  fsrepctl repair pause`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return func(ctx context.Context, c *cli, args []string) error {
				return runRepairPause(ctx, c, args, true)
			}
		},
	}
}

func repairResumeCommand() *command {
	return &command{
		name:    "repair resume",
		summary: "resume repair after 'repair pause'",
		help: `Example:
  fsrepctl repair resume
  fsrepctl repair resume && fsrepctl repair status --until-idle`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return func(ctx context.Context, c *cli, args []string) error {
				return runRepairPause(ctx, c, args, false)
			}
		},
	}
}

func repairStartCommand() *command {
	var wait bool
	var interval time.Duration
	return &command{
		name:    "repair start",
		summary: "start (resume) repair now; with --wait, follow it until the queue is empty",
		help: `Resumes repair if it was paused and wakes the healer for a pass at once
(repair otherwise runs by itself: nothing needs starting after a failure).
With --wait it then shows a progress line on stderr (chunks left, rate, ETA)
until nothing is queued or in flight; exit 1 if interrupted first (repair
goes on).

Example:
  fsrepctl repair start --wait`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			fs.BoolVar(&wait, "wait", false, "follow the repair until the queue is empty")
			fs.DurationVar(&interval, "interval", defaultInterval, "time between progress updates with --wait")
			return func(ctx context.Context, c *cli, args []string) error {
				if interval <= 0 {
					return usageErrorf("--interval must be positive")
				}
				if err := runRepairPause(ctx, c, args, false); err != nil || !wait {
					return err
				}
				cl, err := c.client()
				if err != nil {
					return err
				}
				bar := newCountdown(c.stderr, c.progressOnTerminal(), "repairing", "chunks copied")
				err = c.poll(ctx, interval, func() (bool, error) {
					rs, err := cl.Repair(ctx)
					if err != nil {
						return false, err
					}
					bar.update(c.clock(), rs.Queue+rs.InFlight)
					return repairIdle(rs), nil
				})
				bar.finish()
				if err != nil {
					return interrupted(err, "repair finished (repair goes on)")
				}
				if !c.jsonOutput() {
					fmt.Fprintln(c.stdout, "Repair is idle: nothing queued or in flight.")
				}
				return nil
			}
		},
	}
}

func runRepairPause(ctx context.Context, c *cli, args []string, paused bool) error {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	if len(args) != 0 {
		return usageErrorf("repair %s takes no arguments", verb)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	rs, err := cl.PauseRepair(ctx, paused)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		return c.printJSON(rs)
	}
	if paused {
		fmt.Fprintf(c.stdout, "Repair paused on leader %s: %d chunk(s) queued; %d copies in flight will finish\n",
			dash(rs.Leader), rs.Queue, rs.InFlight)
	} else {
		fmt.Fprintf(c.stdout, "Repair resumed on leader %s: %d chunk(s) queued\n", dash(rs.Leader), rs.Queue)
	}
	return nil
}
