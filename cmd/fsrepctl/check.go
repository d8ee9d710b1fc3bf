package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/fsrep/fsrep/replication"
)

// defaultCheckTimeout bounds one check; a check reads every chunk's
// metadata and every node's file list, far more than one --timeout.
const defaultCheckTimeout = 30 * time.Minute

func checkCommand() *command {
	return &command{
		name:    "check",
		args:    "[VOLUME]",
		summary: "check the metadata against every node's chunk files",
		help: `The leader walks every chunk of the metadata (of VOLUME, or of every volume)
and every node's list of chunk files, and reports:
  missing           a replica the metadata lists whose node has no file
  stale             a replica at another version than the metadata names
  corrupt           a replica whose header or checksums do not read back
  orphan            a file no replica set lists on its node, older than the
                    safety delay (--orphan-age of fsrepd, 10 min)
  under-replicated  a chunk with fewer healthy replicas than the volume's R
  unavailable       a chunk with no healthy replica at all
and, as no problem: files younger than the safety delay (writes on their
way), files awaiting garbage collection, replicas one write ahead (a write
being committed). A node that cannot list its files is reported, and its
replicas count as unhealthy.

Without --verify each replica's header and checksum table are checked
(cheap); --verify re-reads every block of every replica (reads the whole
data set, and sends other nodes' chunks over the network: slow).

--repair does what the self-healing machinery does, never more: a missing,
stale or corrupt replica is left out of its replica set (never the last good
copy) so that the repair copies the chunk back; an orphan is deleted if it
still holds the version seen and is older than the safety delay. Nothing the
metadata lists is deleted. Check again once "fsrepctl repair status" shows
an empty queue.

The first --examples findings of each kind are listed. Exits 0 when the check
is clean, 4 when it found problems (after printing; also with --repair: run
it again to see them gone), 3 when VOLUME does not exist. The check is one
request, bounded by --check-timeout (not --timeout).

Example:
  fsrepctl check
  fsrepctl check data --verify -o json | jq '.findings'
  fsrepctl check --repair && echo clean`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			repair := fs.Bool("repair", false, "drop damaged replicas for re-replication and delete orphans")
			verify := fs.Bool("verify", false, "re-read and check every block of every replica")
			examples := fs.Int("examples", replication.DefaultCheckExamples, "findings `N` listed per kind (at most 1000)")
			timeout := fs.Duration("check-timeout", defaultCheckTimeout, "`TIMEOUT` of the whole check")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) > 1 {
					return usageErrorf("check takes at most one VOLUME")
				}
				if *examples < 1 || *examples > replication.MaxCheckExamples {
					return usageErrorf("--examples must be 1-%d", replication.MaxCheckExamples)
				}
				if *timeout <= 0 {
					return usageErrorf("--check-timeout must be positive")
				}
				opts := replication.CheckOptions{Repair: *repair, Verify: *verify, Examples: *examples}
				if len(args) == 1 {
					opts.Volume = args[0]
				}
				return runCheck(ctx, c, opts, *timeout)
			}
		},
	}
}

func runCheck(ctx context.Context, c *cli, opts replication.CheckOptions, timeout time.Duration) error {
	tok, err := c.token()
	if err != nil {
		return err
	}
	cl, err := c.newClient(tok, timeout)
	if err != nil {
		return err
	}
	rep, err := cl.Check(ctx, opts)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		err = c.printJSON(rep)
	} else {
		err = c.printCheck(rep)
	}
	if err != nil {
		return err
	}
	if rep.Problems() > 0 {
		return errUnhealthy
	}
	return nil
}

func (c *cli) printCheck(rep *replication.CheckReport) error {
	scope := "every volume"
	if rep.Volume != "" {
		scope = "volume " + rep.Volume
	}
	how := "headers and checksum tables"
	if rep.Verified {
		how = "every block"
	}
	fmt.Fprintf(c.stdout, "Checked %d chunks (%d replicas, %s) of %s on %d nodes in %v (leader %s).\n",
		rep.Chunks, rep.Replicas, how, scope, len(rep.Nodes), rep.Duration.Round(time.Millisecond), dash(rep.Leader))
	if n := rep.Problems(); n == 0 {
		fmt.Fprintln(c.stdout, "Clean: no problems found.")
	} else {
		fmt.Fprintf(c.stdout, "PROBLEMS: %d.\n", n)
	}

	fmt.Fprintln(c.stdout)
	w := c.table()
	for _, row := range []struct {
		name string
		n    int
		note string
	}{
		{"healthy chunks", rep.Healthy, ""},
		{"under-replicated", rep.UnderReplicated, "chunks with fewer healthy replicas than R"},
		{"unavailable", rep.Unavailable, "chunks with no healthy replica"},
		{"missing", rep.Missing, "replicas listed, no file"},
		{"stale", rep.Stale, "replicas at another version"},
		{"corrupt", rep.Corrupt, "replicas failing their checksums"},
		{"unreachable", rep.Unreachable, "replicas on nodes that could not be asked"},
		{"orphan", rep.Orphans, "files no replica set lists, older than " + rep.OrphanAge.String()},
		{"young", rep.Young, "unlisted files, younger: not a problem"},
		{"awaiting GC", rep.Garbage, "files of deleted or replaced chunks: not a problem"},
		{"in flight", rep.InFlight, "replicas one write ahead: not a problem"},
	} {
		fmt.Fprintf(w, "  %s\t%d\t%s\n", row.name, row.n, row.note)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(c.stdout)
	w = c.table()
	fmt.Fprintln(w, "NODE\tAZ\tFILES\tORPHANS\tLISTING")
	for _, n := range rep.Nodes {
		listing := "ok"
		if n.Error != "" {
			listing = "FAILED: " + n.Error
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", n.ID, n.AZ, n.Files, n.Orphans, listing)
	}
	if err := w.Flush(); err != nil {
		return err
	}

	if len(rep.Findings) > 0 {
		fmt.Fprintln(c.stdout, "\nFindings (the first of each kind):")
		w = c.table()
		repair := ""
		if rep.Repair {
			repair = "\tREPAIR"
		}
		fmt.Fprintf(w, "KIND\tVOLUME\tCHUNK\tNODE\tVERSION\tFOUND\tDETAIL%s\n", repair)
		for _, f := range rep.Findings {
			detail := f.Detail
			if f.Want > 0 {
				detail = fmt.Sprintf("%d of %d healthy", f.Healthy, f.Want)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s", f.Kind, dash(f.Volume), f.Chunk, dash(f.Node),
				version(f.Version), version(f.Found), dash(detail))
			if rep.Repair {
				fmt.Fprintf(w, "\t%s", dash(f.Repair))
			}
			fmt.Fprintln(w)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if rep.Repair {
		r := rep.Repaired
		fmt.Fprintf(c.stdout, "\nRepair: %d replicas dropped for re-replication, %d kept (last copy), %d orphans deleted, %d skipped (changed meanwhile), %d failed.\n",
			r.Dropped, r.Kept, r.Deleted, r.Skipped, r.Failed)
		if r.Dropped > 0 || rep.UnderReplicated+rep.Unavailable > 0 {
			fmt.Fprintln(c.stdout, "The repair queue copies the chunks back: watch it with 'fsrepctl repair status --watch', then check again.")
		}
	}
	return nil
}

// version prints a chunk version ("-" for none).
func version(v uint64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatUint(v, 10)
}
