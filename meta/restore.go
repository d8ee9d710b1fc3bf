package meta

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// RestoreBackup prepares the metadata directory of a node (the meta/
// directory under its data directory) to start a new cluster from a backup
// (GET /v1/snapshot), as etcdctl snapshot restore does for etcd.
//
// A restored state is not a function of a Raft log that starts at 1, so it
// must enter Raft as a snapshot: RestoreBackup writes the backup as a Raft
// snapshot at the backup's applied index, whose configuration has this node
// as the only voter, and a first term. Started on that directory the node
// restores the snapshot into meta.db, elects itself and goes on from the
// next index; a node that joins it later receives the snapshot, never a
// replay from index 1 onto an empty state.
//
// The restored state is the backup with its inode and volume ID counters
// moved on (prepareRestoredState), so nothing created after the backup was
// taken shares an identity with what is created after the restore.
//
// dir must hold no metadata yet (no meta.db, raft.db or snapshots): the
// operator moves the old ones away first. The backup is checked first
// (InspectBackup) and needs an applied index of at least 1; it is not
// changed.
func RestoreBackup(backup, dir, nodeID, raftAddr string) (*BackupInfo, error) {
	if nodeID == "" || raftAddr == "" {
		return nil, errors.New("meta: restore needs the node's ID and Raft address")
	}
	info, err := InspectBackup(backup)
	if err != nil {
		return nil, err
	}
	if info.AppliedIndex == 0 {
		return nil, errors.New("meta: the backup has no applied index; it holds nothing to restore")
	}
	for _, name := range []string{"meta.db", "raft.db", "snapshots"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return nil, fmt.Errorf("meta: %s already holds %s; move the node's old metadata away before restoring", dir, name)
		} else if !errors.Is(err, iofs.ErrNotExist) {
			return nil, fmt.Errorf("meta: restore: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("meta: restore: %w", err)
	}
	state := filepath.Join(dir, "restore.db.tmp")
	defer os.Remove(state)
	if err := prepareRestoredState(backup, state); err != nil {
		return nil, err
	}
	if err := writeRestoreSnapshot(state, dir, info.AppliedIndex, nodeID, raftAddr); err != nil {
		return nil, err
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("meta: restore: open raft.db: %w", err)
	}
	// The snapshot's term; the first election takes the next one.
	err = store.SetUint64([]byte("CurrentTerm"), 1)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("meta: restore: raft.db: %w", err)
	}
	return info, nil
}

// Gaps the restored counters jump by (see prepareRestoredState).
const (
	restoreInoGap   = 1 << 32
	restoreVolIDGap = 1 << 16
)

// prepareRestoredState copies the backup to path and moves its counters
// past anything the lost timeline may have handed out after the backup:
// every volume's next inode number by 2^32 and the next volume ID by 2^16.
// Inode numbers and volume IDs are never reused, and the nodes' chunk
// stores and NFS clients may still hold chunk files and file handles of
// objects created after the backup: a new file must not take their
// identity (its chunks would meet their orphaned files, an old handle
// would open it).
func prepareRestoredState(backup, path string) error {
	data, err := os.ReadFile(backup)
	if err != nil {
		return fmt.Errorf("meta: restore: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("meta: restore: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("meta: restore: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		vols := tx.Bucket(bucketVolumes)
		var names [][]byte
		if err := vols.ForEach(func(k, _ []byte) error { names = append(names, bytes.Clone(k)); return nil }); err != nil {
			return err
		}
		for _, name := range names {
			v, _ := getJSON[Volume](vols, name)
			v.NextIno += restoreInoGap
			data, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if err := vols.Put(name, data); err != nil {
				return err
			}
		}
		counters := tx.Bucket(bucketCounters)
		next := uint64(1)
		if v := counters.Get(keyNextVolID); v != nil {
			next = binary.BigEndian.Uint64(v)
		}
		return counters.Put(keyNextVolID, u64(next+restoreVolIDGap))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("meta: restore: moving the counters on: %w", err)
	}
	return nil
}

func writeRestoreSnapshot(backup, dir string, index uint64, nodeID, raftAddr string) error {
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hclog.NewNullLogger())
	if err != nil {
		return fmt.Errorf("meta: restore: snapshot store: %w", err)
	}
	addr := raft.ServerAddress(raftAddr)
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(nodeID), Address: addr}}}
	// The transport only encodes the legacy peer list of the snapshot's
	// metadata; an in-memory one does that without listening anywhere.
	_, trans := raft.NewInmemTransport(addr)
	defer trans.Close()
	sink, err := snaps.Create(raft.SnapshotVersionMax, index, 1, conf, 1, trans)
	if err != nil {
		return fmt.Errorf("meta: restore: %w", err)
	}
	in, err := os.Open(backup)
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("meta: restore: %w", err)
	}
	defer in.Close()
	if _, err := io.Copy(sink, in); err != nil {
		sink.Cancel()
		return fmt.Errorf("meta: restore: writing the snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("meta: restore: writing the snapshot: %w", err)
	}
	return nil
}
