package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

func volumeCreateCommand() *command {
	return &command{
		name:    "volume create",
		args:    "NAME",
		summary: "create a volume, exported over NFS as /NAME",
		help: `The replica count and write quorum must survive the loss of one AZ over the
AZs that have nodes now (3 replicas with a quorum of 2 need 3 AZs); otherwise
the cluster refuses unless --allow-unsafe-placement is given. The chunk size
is fixed for the volume's life.

--quota limits the logical size of the volume's files (what 'volume list'
shows as USED, not multiplied by the replica count) and --quota-files the
number of files, directories and symlinks (the root included); past them
NFS clients get "disk quota exceeded" (NFS3ERR_DQUOT). 0 is no quota; change
them later with 'fsrepctl volume set'.

Example:
  fsrepctl volume create data
  fsrepctl volume create scratch --replicas 2 --write-quorum 1 --chunk-size 1MiB
  fsrepctl volume create home --quota 500GiB --quota-files 10000000`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			replicas := fs.Int("replicas", admin.DefaultReplicas, "copies of every chunk `N`")
			wq := fs.Int("write-quorum", 0, "replicas `N` that must hold a write before it is acknowledged (0: a majority)")
			chunk := fs.String("chunk-size", formatSize(admin.DefaultChunkSize), "chunk `SIZE`, e.g. 1MiB, 4MiB, 64MiB")
			mode := fs.String("root-mode", "", "octal permission `MODE` of the root directory (default 0755)")
			unsafe := fs.Bool("allow-unsafe-placement", false, "create it even if losing one AZ would stop its writes")
			quota := fs.String("quota", "0", "most `BYTES` of file data, e.g. 500GiB (0: no quota)")
			quotaFiles := fs.Int64("quota-files", 0, "most files, directories and symlinks `N` (0: no quota)")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 1 {
					return usageErrorf("volume create takes exactly one NAME")
				}
				req := admin.CreateVolumeRequest{Name: args[0], Replicas: *replicas, WriteQuorum: *wq,
					AllowUnsafePlacement: *unsafe}
				var err error
				if req.QuotaBytes, err = parseQuota(*quota); err != nil {
					return usageErrorf("--quota: %v", err)
				}
				if req.QuotaFiles = *quotaFiles; req.QuotaFiles < 0 {
					return usageErrorf("--quota-files must not be negative (0: no quota)")
				}
				if *replicas < 1 || *wq < 0 {
					return usageErrorf("--replicas must be at least 1 and --write-quorum not negative")
				}
				size, err := parseSize(*chunk)
				if err != nil || size == 0 {
					return usageErrorf("--chunk-size: %v", err)
				}
				req.ChunkSize = size
				if *mode != "" {
					var m admin.FileMode
					if err := json.Unmarshal([]byte(fmt.Sprintf("%q", *mode)), &m); err != nil {
						return usageErrorf("--root-mode: %v", err)
					}
					req.RootMode = &m
				}
				return runVolumeCreate(ctx, c, req)
			}
		},
	}
}

func runVolumeCreate(ctx context.Context, c *cli, req admin.CreateVolumeRequest) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	v, err := cl.CreateVolume(ctx, req)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		return c.printJSON(v)
	}
	fmt.Fprintf(c.stdout, "Created volume %s (id %d): %d replicas, write quorum %d, %s chunks%s; exported as /%s\n",
		v.Name, v.ID, v.Replicas, v.WriteQuorum, formatSize(v.ChunkSize), quotaSummary(v), v.Name)
	return nil
}

// quotaColumn is the QUOTA of the volume table: "10GiB", "1000f" (files),
// "10GiB/1000f", or "-".
func quotaColumn(v *meta.Volume) string {
	var parts []string
	if v.QuotaBytes > 0 {
		parts = append(parts, formatSize(v.QuotaBytes))
	}
	if v.QuotaFiles > 0 {
		parts = append(parts, fmt.Sprintf("%df", v.QuotaFiles))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "/")
}

// quotaSummary is ", quota 10GiB and 1000 files" or "" without quotas.
func quotaSummary(v *meta.Volume) string {
	var parts []string
	if v.QuotaBytes > 0 {
		parts = append(parts, formatSize(v.QuotaBytes))
	}
	if v.QuotaFiles > 0 {
		parts = append(parts, fmt.Sprintf("%d files", v.QuotaFiles))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", quota " + strings.Join(parts, " and ")
}

// parseQuota reads a byte quota: a size such as 500GiB, or 0, "none" or
// "unlimited" for no quota.
func parseQuota(s string) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "unlimited", "off":
		return 0, nil
	}
	return parseSize(s)
}

func volumeListCommand() *command {
	return &command{
		name:    "volume list",
		summary: "list the volumes",
		help: `FILES counts files, directories and symlinks (the root included); USED is
the logical size of the files' data (not multiplied by the replica count);
QUOTA the limits on them ("500GiB", "1000f" for files, "500GiB/1000f", "-":
none).

Example:
  fsrepctl volume list
  fsrepctl volume list -o json`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return runVolumeList
		},
	}
}

func runVolumeList(ctx context.Context, c *cli, args []string) error {
	if len(args) != 0 {
		return usageErrorf("volume list takes no arguments")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	vols, err := cl.Volumes(ctx)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		return c.printJSON(vols)
	}
	if len(vols) == 0 {
		fmt.Fprintln(c.stdout, "No volumes. Create one with 'fsrepctl volume create NAME'.")
		return nil
	}
	return c.printVolumes(vols)
}

// printVolumes is the volume table (also part of status).
func (c *cli) printVolumes(vols []meta.Volume) error {
	w := c.table()
	fmt.Fprintln(w, "NAME\tID\tREPLICAS\tWRITE-QUORUM\tCHUNK\tFILES\tUSED\tQUOTA\tCREATED")
	for _, v := range vols {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%d\t%s\t%s\t%s\n", v.Name, v.ID, v.Replicas, v.WriteQuorum,
			formatSize(v.ChunkSize), v.Files, formatSize(v.Bytes), quotaColumn(&v), formatTime(v.Created))
	}
	return w.Flush()
}

func volumeInfoCommand() *command {
	return &command{
		name:    "volume info",
		args:    "NAME",
		summary: "show one volume: settings, usage, quotas, replication per AZ",
		help: `Access and Squash are the volume's NFS export options (see 'fsrepctl export
show --help'; change them with 'fsrepctl export set'). Used and Files show
the usage against the quotas. Replication counts the volume's chunks by
health and the healthy replicas per AZ, as the leader's healer sees them
(see 'fsrepctl replica status --help'); it is left out when the cluster has
no healer, and reported as unavailable (without failing) when the leader
cannot be asked. Exits 3 when there is no such volume.

-o json prints the volume object with a "replication" field added.

Example:
  fsrepctl volume info data`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			return runVolumeInfo
		},
	}
}

func runVolumeInfo(ctx context.Context, c *cli, args []string) error {
	if len(args) != 1 {
		return usageErrorf("volume info takes exactly one NAME")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	v, err := cl.Volume(ctx, args[0])
	if err != nil {
		return err
	}
	info := volumeInfo{Volume: v}
	var replErr error
	switch st, err := cl.Replicas(ctx, v.Name); {
	case admin.IsCode(err, admin.CodeNotImplemented):
	case err != nil:
		replErr = err
	case len(st) == 1:
		info.Replication = &st[0]
	}
	if c.jsonOutput() {
		return c.printJSON(info)
	}
	w := c.table()
	fmt.Fprintf(w, "Name:\t%s\n", v.Name)
	fmt.Fprintf(w, "ID:\t%d\n", v.ID)
	fmt.Fprintf(w, "Export:\t/%s\n", v.Name)
	fmt.Fprintf(w, "Access:\t%s, clients %s\n", exportAccess(v.Export), exportClients(v.Export))
	if v.Export.Squash == meta.SquashNone {
		fmt.Fprintf(w, "Squash:\t%s\n", v.Export.Squash)
	} else {
		fmt.Fprintf(w, "Squash:\t%s (anon %d:%d)\n", v.Export.Squash, v.Export.AnonUID, v.Export.AnonGID)
	}
	fmt.Fprintf(w, "Replicas:\t%d\n", v.Replicas)
	fmt.Fprintf(w, "Write quorum:\t%d\n", v.WriteQuorum)
	fmt.Fprintf(w, "Chunk size:\t%s\n", formatSize(v.ChunkSize))
	if v.QuotaFiles > 0 {
		fmt.Fprintf(w, "Files:\t%d of %d (%s)\n", v.Files, v.QuotaFiles, percent(v.Files, v.QuotaFiles))
	} else {
		fmt.Fprintf(w, "Files:\t%d (no quota)\n", v.Files)
	}
	if v.QuotaBytes > 0 {
		fmt.Fprintf(w, "Used:\t%s of %s (%s; %d of %d bytes)\n", formatSize(v.Bytes), formatSize(v.QuotaBytes),
			percent(v.Bytes, v.QuotaBytes), v.Bytes, v.QuotaBytes)
	} else {
		fmt.Fprintf(w, "Used:\t%s (%d bytes; no quota)\n", formatSize(v.Bytes), v.Bytes)
	}
	fmt.Fprintf(w, "Created:\t%s\n", formatTime(v.Created))
	switch r := info.Replication; {
	case replErr != nil:
		fmt.Fprintf(w, "Replication:\tunavailable: %v\n", replErr)
	case r != nil:
		fmt.Fprintf(w, "Chunks:\t%d: %d healthy, %d under-replicated, %d unavailable, %d misplaced, %d draining, %d corrupt\n",
			r.Chunks, r.Healthy, r.UnderReplicated, r.Unavailable, r.Misplaced, r.Draining, r.Corrupt)
		azs := make([]string, 0, len(r.PerAZ))
		for az := range r.PerAZ {
			azs = append(azs, az)
		}
		slices.Sort(azs)
		per := make([]string, len(azs))
		for i, az := range azs {
			per[i] = fmt.Sprintf("%s %d", az, r.PerAZ[az])
		}
		if len(per) > 0 {
			fmt.Fprintf(w, "Per AZ:\t%s (healthy replicas)\n", strings.Join(per, ", "))
		}
	}
	return w.Flush()
}

// volumeInfo is what volume info prints with -o json: the volume object
// with the leader's replication counts for it.
type volumeInfo struct {
	*meta.Volume
	Replication *replication.ReplicaStatus `json:"replication,omitempty"`
}

// percent is used of limit as "42%" (one decimal below 10%).
func percent(used, limit int64) string {
	p := float64(used) * 100 / float64(limit)
	if p < 10 {
		return fmt.Sprintf("%.1f%%", p)
	}
	return fmt.Sprintf("%.0f%%", p)
}

func volumeDeleteCommand() *command {
	return &command{
		name:    "volume delete",
		args:    "NAME",
		summary: "delete a volume and every file in it",
		help: `This cannot be undone: the volume's files are gone and their chunks are
garbage-collected on every replica. Without --yes, fsrepctl asks you to type
the volume name, and refuses when stdin is not a terminal.

Example:
  fsrepctl volume delete scratch
  fsrepctl volume delete scratch --yes`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			yes := fs.Bool("yes", false, "do not ask for confirmation")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 1 {
					return usageErrorf("volume delete takes exactly one NAME")
				}
				return runVolumeDelete(ctx, c, args[0], *yes)
			}
		},
	}
}

func runVolumeDelete(ctx context.Context, c *cli, name string, yes bool) error {
	if !yes && !c.stdinIsTerminal() {
		return usageErrorf("refusing to delete volume %q without --yes: stdin is not a terminal to confirm on", name)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	if !yes {
		v, err := cl.Volume(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "Deleting volume %s (id %d, %d files, %s) removes all of its data.\nType the volume name to confirm: ",
			v.Name, v.ID, v.Files, formatSize(v.Bytes))
		line, _ := bufio.NewReader(c.stdin).ReadString('\n')
		if strings.TrimSpace(line) != name {
			return usageErrorf("confirmation did not match; volume %s not deleted", name)
		}
	}
	v, err := cl.DeleteVolume(ctx, name)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		return c.printJSON(v)
	}
	fmt.Fprintf(c.stdout, "Deleted volume %s (id %d)\n", v.Name, v.ID)
	return nil
}

func volumeSetCommand() *command {
	return &command{
		name:    "volume set",
		args:    "NAME",
		summary: "change a volume's replicas, quotas or export options",
		help: `Only the settings given change.

--replicas changes the replica count R; without --write-quorum the quorum
becomes a majority of the new count. New chunks get the new count at once;
existing ones are brought to it by the healer (a higher count adds copies;
a lower one is not trimmed yet: existing chunks keep their extra copies).
As at create, a count and quorum that would stop the volume's writes after
losing one AZ are refused unless --allow-unsafe-placement is given.

--quota and --quota-files replace the quotas (0 or none removes one). A
quota below the current usage is accepted: writes that grow the volume then
fail with "disk quota exceeded" until it shrinks, writes inside files still
pass.

The export flags change the NFS export as 'fsrepctl export set' does (the
current export is read, changed and sent back whole).

Prints the volume as 'volume info' would; exits 3 when there is no such
volume.

Example:
  fsrepctl volume set data --quota 2TiB
  fsrepctl volume set data --quota none --quota-files 0
  fsrepctl volume set data --replicas 5
  fsrepctl volume set scratch --replicas 3 --allow-unsafe-placement
  fsrepctl volume set data --ro --clients 10.0.0.0/8`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			replicas := fs.Int("replicas", 0, "copies of every chunk `N`")
			wq := fs.Int("write-quorum", 0, "replicas `N` that must hold a write before it is acknowledged")
			quota := fs.String("quota", "", "most `BYTES` of file data, e.g. 500GiB (0 or none: no quota)")
			quotaFiles := fs.Int64("quota-files", 0, "most files, directories and symlinks `N` (0: no quota)")
			unsafe := fs.Bool("allow-unsafe-placement", false, "accept a policy that cannot survive losing one AZ")
			ex := newExportFlags(fs)
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 1 {
					return usageErrorf("volume set takes exactly one NAME")
				}
				set := map[string]bool{}
				fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
				req := admin.SetVolumeRequest{AllowUnsafePlacement: *unsafe}
				if set["replicas"] {
					if *replicas < 1 {
						return usageErrorf("--replicas must be at least 1")
					}
					req.Replicas = replicas
				}
				if set["write-quorum"] {
					if *wq < 1 {
						return usageErrorf("--write-quorum must be at least 1")
					}
					req.WriteQuorum = wq
				}
				if set["quota"] {
					q, err := parseQuota(*quota)
					if err != nil {
						return usageErrorf("--quota: %v", err)
					}
					req.QuotaBytes = &q
				}
				if set["quota-files"] {
					if *quotaFiles < 0 {
						return usageErrorf("--quota-files must not be negative (0: no quota)")
					}
					req.QuotaFiles = quotaFiles
				}
				edits, err := ex.edits(set)
				if err != nil {
					return err
				}
				if req.Replicas == nil && req.WriteQuorum == nil && req.QuotaBytes == nil && req.QuotaFiles == nil && len(edits) == 0 {
					return usageErrorf("volume set needs at least one of --replicas, --write-quorum, --quota, --quota-files or an export flag (--ro, --rw, --clients, --squash, --anon-uid, --anon-gid)")
				}
				return runVolumeSet(ctx, c, args[0], req, edits)
			}
		},
	}
}

func runVolumeSet(ctx context.Context, c *cli, name string, req admin.SetVolumeRequest, edits []func(*meta.Export)) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	if len(edits) > 0 {
		v, err := cl.Volume(ctx, name)
		if err != nil {
			return err
		}
		e := v.Export
		for _, edit := range edits {
			edit(&e)
		}
		req.Export = &e
	}
	if _, err := cl.SetVolume(ctx, name, req); err != nil {
		return err
	}
	return runVolumeInfo(ctx, c, []string{name})
}
