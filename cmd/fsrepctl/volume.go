package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
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

Example:
  fsrepctl volume create data
  fsrepctl volume create scratch --replicas 2 --write-quorum 1 --chunk-size 1MiB`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			replicas := fs.Int("replicas", admin.DefaultReplicas, "copies of every chunk `N`")
			wq := fs.Int("write-quorum", 0, "replicas `N` that must hold a write before it is acknowledged (0: a majority)")
			chunk := fs.String("chunk-size", formatSize(admin.DefaultChunkSize), "chunk `SIZE`, e.g. 1MiB, 4MiB, 64MiB")
			mode := fs.String("root-mode", "", "octal permission `MODE` of the root directory (default 0755)")
			unsafe := fs.Bool("allow-unsafe-placement", false, "create it even if losing one AZ would stop its writes")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 1 {
					return usageErrorf("volume create takes exactly one NAME")
				}
				req := admin.CreateVolumeRequest{Name: args[0], Replicas: *replicas, WriteQuorum: *wq,
					AllowUnsafePlacement: *unsafe}
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
	fmt.Fprintf(c.stdout, "Created volume %s (id %d): %d replicas, write quorum %d, %s chunks; exported as /%s\n",
		v.Name, v.ID, v.Replicas, v.WriteQuorum, formatSize(v.ChunkSize), v.Name)
	return nil
}

func volumeListCommand() *command {
	return &command{
		name:    "volume list",
		summary: "list the volumes",
		help: `FILES counts files, directories and symlinks (the root included); USED is
the logical size of the files' data (not multiplied by the replica count).

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
	fmt.Fprintln(w, "NAME\tID\tREPLICAS\tWRITE-QUORUM\tCHUNK\tFILES\tUSED\tCREATED")
	for _, v := range vols {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%d\t%s\t%s\n", v.Name, v.ID, v.Replicas, v.WriteQuorum,
			formatSize(v.ChunkSize), v.Files, formatSize(v.Bytes), formatTime(v.Created))
	}
	return w.Flush()
}

func volumeInfoCommand() *command {
	return &command{
		name:    "volume info",
		args:    "NAME",
		summary: "show one volume",
		help: `Access and Squash are the volume's NFS export options (see 'fsrepctl export
show --help'; change them with 'fsrepctl export set'). Exits 3 when there is
no such volume.

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
	if c.jsonOutput() {
		return c.printJSON(v)
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
	fmt.Fprintf(w, "Files:\t%d\n", v.Files)
	fmt.Fprintf(w, "Used:\t%s (%d bytes)\n", formatSize(v.Bytes), v.Bytes)
	fmt.Fprintf(w, "Created:\t%s\n", formatTime(v.Created))
	return w.Flush()
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
