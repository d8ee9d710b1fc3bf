package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/fsrep/fsrep/internal/node"
	"github.com/fsrep/fsrep/replication"
)

// fsrepd check: the offline check of a stopped node's data directory
// (node.CheckOffline, docs/integrity.md). It takes data-dir, node-id and
// orphan-age like the daemon (flag, environment, or the daemon's own
// config file), so "fsrepd check --config /etc/fsrep/fsrepd.yaml" checks
// the node that config runs.

func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var cfg config
	fl := flag.NewFlagSet("fsrepd check", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	configFile := fl.String("config", "", "the node's YAML config file (env "+envConfig+"): data-dir, node-id and orphan-age are read from it")
	cfg.register(fl, "data-dir", "node-id", "orphan-age")
	repair := fl.Bool("repair", false, "delete old orphan files and move damaged files into DATA-DIR/quarantine (the metadata is never changed)")
	output := fl.String("o", "text", "output: text or json")
	examples := fl.Int("examples", replication.DefaultCheckExamples, "findings listed per kind")
	_, _, err := cfg.load(fl, configFile, args, getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		checkUsage(stdout, fl)
		return exitOK
	case err != nil:
		return usageError(stderr, err)
	case fl.NArg() > 0:
		return usageError(stderr, fmt.Errorf("check: unexpected argument %q", fl.Arg(0)))
	case cfg.DataDir == "":
		return usageError(stderr, errors.New("check: --data-dir is required"))
	case *output != "text" && *output != "json":
		return usageError(stderr, fmt.Errorf("check: -o must be text or json, not %q", *output))
	case *examples < 1 || *examples > replication.MaxCheckExamples:
		return usageError(stderr, fmt.Errorf("check: --examples must be 1-%d", replication.MaxCheckExamples))
	}
	orphanAge, err := time.ParseDuration(cfg.OrphanAge)
	if err != nil || orphanAge <= 0 {
		return usageError(stderr, fmt.Errorf("check: --orphan-age: %q is not a positive duration", cfg.OrphanAge))
	}

	dirs := checkDirs(cfg.DataDir)
	if len(dirs) > 1 && cfg.NodeID != "" {
		return usageError(stderr, fmt.Errorf("check: %s holds %d nodes' directories: --node-id names one node", cfg.DataDir, len(dirs)))
	}
	var reports []*node.OfflineReport
	code := exitOK
	for _, dir := range dirs {
		rep, err := node.CheckOffline(ctx, node.OfflineCheckConfig{DataDir: dir, NodeID: cfg.NodeID, Repair: *repair,
			OrphanAge: orphanAge, Examples: *examples}, nil)
		if err != nil {
			fmt.Fprintf(stderr, "fsrepd check: %s: %v\n", dir, err)
			code = exitError
			continue
		}
		reports = append(reports, rep)
		if rep.Problems() > 0 && code == exitOK {
			code = exitProblems
		}
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if reports == nil {
			reports = []*node.OfflineReport{}
		}
		if err := enc.Encode(reports); err != nil {
			return exitError
		}
		return code
	}
	for i, rep := range reports {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printOffline(stdout, rep)
	}
	return code
}

// checkDirs is the data directory to check, or, for the embedded
// cluster's directory (no meta/ of its own, n1/ n2/ n3/ inside), each
// node's.
func checkDirs(dir string) []string {
	if _, err := os.Stat(filepath.Join(dir, "meta")); err == nil {
		return []string{dir}
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*", "meta", "meta.db"))
	if len(m) == 0 {
		return []string{dir} // CheckOffline says what is wrong with it
	}
	out := make([]string, len(m))
	for i, p := range m {
		out[i] = filepath.Dir(filepath.Dir(p))
	}
	return out
}

func checkUsage(w io.Writer, fl *flag.FlagSet) {
	fmt.Fprint(w, `fsrepd check checks a stopped node's files.

Usage:
  fsrepd check --data-dir DIR [--node-id ID] [--repair] [-o json]
  fsrepd check --config /etc/fsrep/fsrepd.yaml [--repair]

It refuses a data directory whose node is running (meta.db is locked), and
checks, reading only:
  - meta.db: storage version, and bbolt's page-level consistency check
    (raft.db is not opened);
  - every chunk file: header, checksum table and every block's checksum;
  - the chunk files against this node's metadata: replicas listed here with
    no file (missing) or at another version (stale), damaged files
    (corrupt), and files no replica set lists here that last changed an
    orphan-age before the metadata did (orphans). Younger unlisted files
    (writes whose commit this node had not applied) and files recorded as
    garbage are counted, not reported as problems.
The node is the one its node.id file names (written at every start) unless
--node-id says otherwise. For the embedded cluster's directory (./fsrep-data)
each node's directory inside it is checked.

--repair does only what is safe without the cluster: it deletes the
orphans and moves damaged files into DATA-DIR/quarantine (kept for
inspection; delete them by hand). It never changes the metadata: once the
node runs again, "fsrepctl check --repair" has the cluster re-replicate
what the node lost.

Exit codes: 0 clean, 1 the check could not run (node running, not a data
directory), 2 usage, 4 problems found.

Flags:
`)
	fl.SetOutput(w)
	fl.PrintDefaults()
}

func printOffline(w io.Writer, rep *node.OfflineReport) {
	how := "from node.id"
	if rep.NodeIDInferred {
		how = "inferred from its chunk files"
	}
	if rep.NodeID == "" {
		how = "unknown"
	}
	fmt.Fprintf(w, "Data directory %s (node %s, %s)\n", rep.DataDir, dash(rep.NodeID), how)
	if len(rep.MetaProblems) > 0 {
		fmt.Fprintf(w, "  meta.db: DAMAGED (the chunk files are checked, not cross-checked):\n")
		for _, p := range rep.MetaProblems {
			fmt.Fprintf(w, "    %s\n", p)
		}
	} else {
		note := ""
		if rep.StorageVersion < rep.BuildVersion {
			note = fmt.Sprintf(" (migrated to %d at the next start)", rep.BuildVersion)
		}
		fmt.Fprintf(w, "  meta.db: consistent, storage version %d%s, applied index %d\n", rep.StorageVersion, note, rep.AppliedIndex)
	}
	fmt.Fprintf(w, "  chunk files: %d checked, %d ok; the metadata places %d replicas here\n", rep.Files, rep.OK, rep.Listed)
	fmt.Fprintf(w, "  missing %d, stale %d, corrupt %d, orphan %d\n", rep.Missing, rep.Stale, rep.Corrupt, rep.Orphans)
	fmt.Fprintf(w, "  not problems: %d unlisted files too recent to judge, %d awaiting garbage collection, %d temporary files of unfinished writes (removed), %d replicas ahead of this node's metadata, too recent to judge (in flight), %d damaged by a write the stop interrupted (torn; replaced after restart)\n",
		rep.Young, rep.Garbage, rep.TempFiles, rep.InFlight, rep.Torn)
	if len(rep.Findings) > 0 {
		fmt.Fprintln(w, "  Findings (the first of each kind):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, "    KIND\tVOLUME\tCHUNK\tVERSION\tFOUND\tDETAIL")
		if rep.Repair {
			fmt.Fprint(tw, "\tREPAIR")
		}
		fmt.Fprintln(tw)
		for _, f := range rep.Findings {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s", f.Kind, dash(f.Volume), f.Chunk, version(f.Version), version(f.Found), dash(f.Detail))
			if rep.Repair {
				fmt.Fprintf(tw, "\t%s", dash(f.Repair))
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
	}
	if rep.Repair {
		fmt.Fprintf(w, "  Repair: %d orphans deleted, %d damaged files quarantined, %d failed\n",
			rep.Repaired.Deleted, rep.Repaired.Quarantined, rep.Repaired.Failed)
	}
	if n := rep.Problems(); n > 0 {
		fmt.Fprintf(w, "Result: %d problems.\n", n)
	} else {
		fmt.Fprintln(w, "Result: clean.")
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func version(v uint64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprint(v)
}
