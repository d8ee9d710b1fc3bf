package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/replication"
)

func replicaStatusCommand() *command {
	return &command{
		name:    "replica status",
		args:    "[VOLUME]",
		summary: "count chunks by replication health, per volume and AZ",
		help: `For every volume (or only VOLUME), the leader counts its chunks:
  HEALTHY      as many healthy replicas as the volume's replica count (R),
               in distinct AZs where the topology allows
  UNDER        fewer than R healthy replicas, at least one
  UNAVAILABLE  no healthy replica at all
  MISPLACED    R healthy replicas, but two share an AZ another could take
  DRAINING     replicas on draining nodes still to be moved
  CORRUPT      replicas found damaged and not yet repaired
then the healthy replicas per AZ and the repair queue.

Exits 4 when some chunk is under-replicated, unavailable or corrupt (after
printing), 3 when VOLUME does not exist. -o json prints
{"volumes": [...], "repair": {...}}.

Example:
  fsrepctl replica status
  fsrepctl replica status data -o json | jq '.volumes[0].under_replicated'
  until fsrepctl replica status >/dev/null; do sleep 5; done`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return runReplicaStatus
		},
	}
}

// replicaReport is what replica status prints with -o json.
type replicaReport struct {
	Volumes []replication.ReplicaStatus `json:"volumes"`
	Repair  *replication.RepairStatus   `json:"repair,omitempty"`
}

func runReplicaStatus(ctx context.Context, c *cli, args []string) error {
	if len(args) > 1 {
		return usageErrorf("replica status takes at most one VOLUME")
	}
	volume := ""
	if len(args) == 1 {
		volume = args[0]
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	rep := replicaReport{}
	if rep.Volumes, err = cl.Replicas(ctx, volume); err != nil {
		return err
	}
	rs, err := cl.Repair(ctx)
	switch {
	case admin.IsCode(err, admin.CodeNotImplemented):
	case err != nil:
		return err
	default:
		rep.Repair = rs
	}

	if c.jsonOutput() {
		err = c.printJSON(rep)
	} else {
		err = c.printReplicas(rep)
	}
	if err != nil {
		return err
	}
	for _, v := range rep.Volumes {
		if v.UnderReplicated+v.Unavailable+v.Corrupt > 0 {
			return errUnhealthy
		}
	}
	return nil
}

func (c *cli) printReplicas(rep replicaReport) error {
	if len(rep.Volumes) == 0 {
		fmt.Fprintln(c.stdout, "No volumes.")
	} else {
		w := c.table()
		fmt.Fprintln(w, "VOLUME\tR\tCHUNKS\tHEALTHY\tUNDER\tUNAVAILABLE\tMISPLACED\tDRAINING\tCORRUPT")
		for _, v := range rep.Volumes {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", v.Volume, v.Replicas, v.Chunks, v.Healthy,
				v.UnderReplicated, v.Unavailable, v.Misplaced, v.Draining, v.Corrupt)
		}
		if err := w.Flush(); err != nil {
			return err
		}

		// Every AZ the leader knows gets a column, so that an AZ holding
		// nothing shows as 0 rather than going missing.
		var azs []string
		if rep.Repair != nil {
			for _, az := range rep.Repair.AZs {
				azs = append(azs, az.AZ)
			}
		}
		for _, v := range rep.Volumes {
			for az := range v.PerAZ {
				azs = append(azs, az)
			}
		}
		slices.Sort(azs)
		azs = slices.Compact(azs)
		if len(azs) > 0 {
			fmt.Fprintln(c.stdout, "\nHealthy replicas per AZ:")
			w = c.table()
			fmt.Fprintf(w, "VOLUME\t%s\n", strings.Join(azs, "\t"))
			for _, v := range rep.Volumes {
				fmt.Fprint(w, v.Volume)
				for _, az := range azs {
					fmt.Fprintf(w, "\t%d", v.PerAZ[az])
				}
				fmt.Fprintln(w)
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	if rep.Repair != nil {
		fmt.Fprintf(c.stdout, "\nRepair: %s\n", repairSummary(rep.Repair))
	}
	return nil
}
