package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"

	"github.com/fsrep/fsrep/meta"
)

func snapshotSaveCommand() *command {
	return &command{
		name:    "snapshot-meta save",
		args:    "FILE",
		summary: "save a consistent copy of the metadata (a backup)",
		help: `Downloads the metadata (meta.db: volumes, namespace, chunk placement, nodes)
of the node at --admin as one consistent bbolt file, as of the last Raft
entry that node applied, and checks the file before keeping it (complete,
consistent, a storage version this build reads). The file data itself is
not in it: it stays in the chunk stores. Ask the leader for the freshest
copy; a follower's lags by the commits in flight.

The file is written next to FILE and renamed into place when whole, so FILE
is never left half-written; an existing FILE is kept unless --force. FILE
"-" writes to stdout, unchecked. See docs/backup.md for the format and how
to restore.

--timeout bounds the wait for the answer and each pause in the transfer,
not the whole transfer.

Example:
  fsrepctl snapshot-meta save /backup/fsrep-meta-$(date +%F).db
  fsrepctl snapshot-meta save - | gzip > meta.db.gz`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			force := fs.Bool("force", false, "replace FILE if it exists")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 1 {
					return usageErrorf("snapshot-meta save takes exactly one FILE")
				}
				return runSnapshotSave(ctx, c, args[0], *force)
			}
		},
	}
}

// snapshotReport is what snapshot-meta save prints with -o json.
type snapshotReport struct {
	File           string   `json:"file"`
	Node           string   `json:"node"`
	AppliedIndex   uint64   `json:"applied_index"`
	Bytes          int64    `json:"bytes"`
	StorageVersion uint64   `json:"storage_version"`
	Volumes        []string `json:"volumes"`
	Nodes          int      `json:"nodes"`
}

func runSnapshotSave(ctx context.Context, c *cli, file string, force bool) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	if file == "-" {
		_, err := cl.Snapshot(ctx, c.stdout)
		return err
	}
	if _, err := os.Lstat(file); err == nil && !force {
		return usageErrorf("%s exists; pass --force to replace it", file)
	} else if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".partial-*")
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	info, err := cl.Snapshot(ctx, tmp)
	if err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	bi, err := meta.InspectBackup(tmp.Name())
	if err != nil {
		return fmt.Errorf("snapshot: the copy received from %s does not check out: %w", cl.Addr(), err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	keep = true
	if d, err := os.Open(filepath.Dir(file)); err == nil {
		_ = d.Sync() // the rename is durable with its directory
		d.Close()
	}

	rep := snapshotReport{File: file, Node: info.Node, AppliedIndex: bi.AppliedIndex, Bytes: info.Size,
		StorageVersion: bi.StorageVersion, Volumes: []string{}, Nodes: bi.Nodes}
	for _, v := range bi.Volumes {
		rep.Volumes = append(rep.Volumes, v.Name)
	}
	if c.jsonOutput() {
		return c.printJSON(rep)
	}
	fmt.Fprintf(c.stdout, "Saved the metadata of %s at Raft index %d to %s: %s, %d volume(s), %d node(s), storage version %d\n",
		dash(rep.Node), rep.AppliedIndex, file, formatSize(rep.Bytes), len(rep.Volumes), rep.Nodes, rep.StorageVersion)
	return nil
}

func snapshotRestoreCommand() *command {
	return &command{
		name:    "snapshot-meta restore",
		args:    "FILE",
		summary: "start a new cluster's metadata from a saved copy (offline)",
		help: `Disaster recovery, run where the node's data directory is, with fsrepd
stopped (it talks to no cluster). It checks FILE (as saved by 'snapshot-meta
save') and writes it into DIR/meta as the Raft snapshot of a new cluster
whose only voter is the node NODE at ADDR. DIR/meta must hold no metadata:
move the old meta.db, raft.db and snapshots away first. DIR keeps its
cluster.secret and its chunks.

Then start that node with the same --data-dir, --node-id and --raft-addr
(it leads alone), and the other nodes with their DIR/meta moved away and
--join pointing at it: they receive the restored metadata from it. Chunks
written after the backup was taken are not in it: files changed since then
read as they were at the backup or fail to read (their chunk versions moved
on); files created since are gone. Remove nodes that no longer exist with
'fsrepctl node remove'. See docs/backup.md.

Example:
  mv /var/lib/fsrep/meta /var/lib/fsrep/meta.old
  fsrepctl snapshot-meta restore /backup/meta.db --data-dir /var/lib/fsrep \
      --node-id n1a --raft-addr n1a:7000`,
		setup: func(fs *flag.FlagSet) func(context.Context, *cli, []string) error {
			dataDir := fs.String("data-dir", "", "the node's data `DIR` (fsrepd --data-dir)")
			nodeID := fs.String("node-id", "", "the node's `ID` (fsrepd --node-id)")
			raftAddr := fs.String("raft-addr", "", "the node's Raft `ADDR` (fsrepd --raft-addr)")
			return func(ctx context.Context, c *cli, args []string) error {
				if len(args) != 1 {
					return usageErrorf("snapshot-meta restore takes exactly one FILE")
				}
				if *dataDir == "" || *nodeID == "" || *raftAddr == "" {
					return usageErrorf("snapshot-meta restore needs --data-dir, --node-id and --raft-addr")
				}
				return runSnapshotRestore(c, args[0], *dataDir, *nodeID, *raftAddr)
			}
		},
	}
}

func runSnapshotRestore(c *cli, file, dataDir, nodeID, raftAddr string) error {
	dir := filepath.Join(dataDir, "meta") // where fsrepd keeps its metadata
	info, err := meta.RestoreBackup(file, dir, nodeID, raftAddr)
	if err != nil {
		return err
	}
	if c.jsonOutput() {
		rep := snapshotReport{File: file, AppliedIndex: info.AppliedIndex, StorageVersion: info.StorageVersion,
			Volumes: []string{}, Nodes: info.Nodes}
		for _, v := range info.Volumes {
			rep.Volumes = append(rep.Volumes, v.Name)
		}
		return c.printJSON(rep)
	}
	fmt.Fprintf(c.stdout, `Restored %s (Raft index %d, %d volume(s), %d node(s)) into %s.
Next: start fsrepd --data-dir %s --node-id %s --raft-addr %s (and its other flags);
then start the other nodes with their metadata moved away and --join to this one.
`, file, info.AppliedIndex, len(info.Volumes), info.Nodes, dir, dataDir, nodeID, raftAddr)
	return nil
}
