package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/fsrep/fsrep/internal/admin"
)

func fileLocateCommand() *command {
	return &command{
		name:    "file locate",
		args:    "VOLUME PATH",
		summary: "show where a file's chunks are and what each replica holds",
		help: `Resolves PATH in VOLUME (from the volume's root, as an NFS client does; a
symlink is not followed) and lists the file's inode and chunks: index, byte
offset, the version and length the metadata names, and the replica nodes
with their AZs.

With --check (the default) every replica is asked what it holds, and its
STATE is:
  ok         the version the metadata names; header and checksum table sound
  stale      an older version: it missed a write (repair replaces it)
  ahead      a newer version: a write that never committed
  missing    the node has no file for the chunk
  corrupt    the file fails its checksums
  error      the node could not be asked (down, unreachable)
--verify has each replica re-read every block of the chunk and check it
(slow: the whole chunk is read, and sent over the network from other
nodes; raise --timeout, or list fewer chunks with --limit, for large
files). --check=false reads the metadata only.

At most --limit chunks are listed, from chunk --from on; the output says how
to continue. Exits 4 when a checked replica is not ok, 3 when the volume or
path does not exist.

Example:
  fsrepctl file locate data /projects/report.pdf
  fsrepctl file locate data /big.iso --verify --from 100 --limit 50
  fsrepctl file locate data /big.iso --check=false -o json`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			check := fs.Bool("check", true, "ask each replica what it holds")
			verify := fs.Bool("verify", false, "have each replica re-read and check every block")
			from := fs.Uint64("from", 0, "first chunk `INDEX` to list")
			limit := fs.Uint64("limit", 256, "most chunks `N` to list (at most 10000)")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 2 {
					return usageErrorf("file locate takes a VOLUME and a PATH")
				}
				if *limit < 1 || *limit > 10000 {
					return usageErrorf("--limit must be 1-10000")
				}
				return runFileLocate(ctx, c, args[0], args[1],
					admin.LocateOptions{NoCheck: !*check && !*verify, Verify: *verify, From: *from, Limit: *limit})
			}
		},
	}
}

func runFileLocate(ctx context.Context, c *cli, volume, path string, o admin.LocateOptions) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	loc, err := cl.Locate(ctx, volume, path, o)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		err = c.printJSON(loc)
	} else {
		err = c.printLocation(loc, o)
	}
	if err != nil {
		return err
	}
	if loc.Checked {
		for _, ch := range loc.Chunks {
			if ch.OK < len(ch.Replicas) {
				return errUnhealthy
			}
		}
	}
	return nil
}

func (c *cli) printLocation(loc *admin.LocateResponse, o admin.LocateOptions) error {
	n := loc.Inode
	w := c.table()
	fmt.Fprintf(w, "Volume:\t%s\n", loc.Volume)
	fmt.Fprintf(w, "Path:\t%s\n", loc.Path)
	fmt.Fprintf(w, "Inode:\t%d (%s, generation %d, %d link(s))\n", n.Ino, loc.Type, n.Gen, n.Nlink)
	switch loc.Type {
	case "file":
		fmt.Fprintf(w, "Size:\t%s (%d bytes)\n", formatSize(int64(n.Size)), n.Size)
		fmt.Fprintf(w, "Chunk size:\t%s; %d replicas wanted\n", formatSize(loc.ChunkSize), loc.Replicas)
	case "symlink":
		fmt.Fprintf(w, "Target:\t%s\n", n.Target)
	}
	fmt.Fprintf(w, "Modified:\t%s\n", formatTime(n.Mtime))
	if err := w.Flush(); err != nil {
		return err
	}
	if loc.Type != "file" {
		return nil
	}
	if loc.InlineBytes > 0 {
		fmt.Fprintf(c.stdout, "\nChunk 0 is inline: %s (%d bytes) kept in the metadata, on every node.\n",
			formatSize(int64(loc.InlineBytes)), loc.InlineBytes)
	}
	if len(loc.Chunks) == 0 && loc.InlineBytes > 0 {
		return nil
	}
	if len(loc.Chunks) == 0 {
		if o.From > 0 {
			fmt.Fprintf(c.stdout, "\nNo chunks from index %d on.\n", o.From)
		} else {
			fmt.Fprintln(c.stdout, "\nNo chunks: the file is empty or all holes.")
		}
		return nil
	}
	fmt.Fprintln(c.stdout)
	w = c.table()
	fmt.Fprintln(w, "CHUNK\tOFFSET\tLENGTH\tVERSION\tNODE\tAZ\tSTATE")
	for _, ch := range loc.Chunks {
		for i, r := range ch.Replicas {
			lead := fmt.Sprintf("%d\t%s\t%s\t%d", ch.Index, formatSize(int64(ch.Offset)), formatSize(ch.Length), ch.Version)
			if i > 0 {
				lead = "\t\t\t"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", lead, r.Node, dash(r.AZ), replicaDetail(r, loc.Verified))
		}
		if len(ch.Replicas) == 0 {
			fmt.Fprintf(w, "%d\t%s\t%s\t%d\t-\t-\tno replicas\n", ch.Index, formatSize(int64(ch.Offset)), formatSize(ch.Length), ch.Version)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if loc.Next != nil {
		fmt.Fprintf(c.stdout, "\nMore chunks follow: add --from %d.\n", *loc.Next)
	}
	return nil
}

// replicaDetail is a replica's state with what explains it.
func replicaDetail(r admin.ReplicaLocation, verified bool) string {
	switch r.State {
	case admin.ReplicaOK:
		if verified {
			return "ok (every block verified)"
		}
		return "ok"
	case admin.ReplicaStale, admin.ReplicaAhead:
		return fmt.Sprintf("%s (holds version %d)", r.State, r.Version)
	case admin.ReplicaCorrupt, admin.ReplicaError:
		return fmt.Sprintf("%s: %s", r.State, r.Error)
	}
	return r.State
}
