package meta

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// How meta.db is made durable.
//
// The Raft log (raft.db) is fsynced on every append on a majority before a
// command counts as committed: that is what makes an acknowledged change
// durable. meta.db only mirrors the log, so with FSMOptions.NoSync its
// applies skip bbolt's two fsyncs, halving the fsyncs on every metadata
// commit and taking one of them off every proposal's latency.
//
// A process that dies (kill -9, a panic, an OOM kill) loses nothing: its
// writes are in the kernel's page cache, and bbolt's copy-on-write commits
// leave meta.db at the last commit that finished. A machine that loses power
// or panics can leave meta.db torn (its meta page pointing at pages that
// never reached the disk). So while meta.db is open unsynced, a marker file
// beside it (meta.db.unsynced) holds the kernel's boot ID; a clean Close
// syncs meta.db and removes the marker. At open, a marker from another boot
// means the machine stopped with meta.db unsynced: meta.db is set aside
// (meta.db.discarded) and a fresh one is rebuilt from the latest snapshot
// and the Raft log, which hashicorp/raft replays into it.

// FSMOptions say how meta.db is kept.
type FSMOptions struct {
	// NoSync skips bbolt's fsyncs on apply (see above). It needs BootID.
	NoSync bool
	// BootID identifies the running kernel boot (BootID()); a marker left
	// under another boot ID means meta.db may be torn.
	BootID string
	// LockWait bounds the wait for another process to let go of meta.db
	// (0: 5 s).
	LockWait time.Duration
}

// bootIDPath is where Linux names the current boot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// BootID returns the running kernel's boot ID, or "" when there is none
// (not Linux): then meta.db must be kept synced.
func BootID() string {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func markerPath(dbPath string) string    { return dbPath + ".unsynced" }
func discardedPath(dbPath string) string { return dbPath + ".discarded" }

// prepareDB runs before meta.db is opened: it sets aside a meta.db that a
// machine crash may have torn, and when the new session will not sync, it
// writes the marker (durably, before any unsynced commit).
func prepareDB(path string, o FSMOptions) (discarded bool, err error) {
	if o.NoSync && o.BootID == "" {
		return false, errors.New("meta: an unsynced meta.db needs the kernel's boot ID")
	}
	mark := markerPath(path)
	prev, err := os.ReadFile(mark)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("meta: read %s: %w", mark, err)
	case !bytes.Equal(bytes.TrimSpace(prev), []byte(o.BootID)) || o.BootID == "":
		// Open unsynced when another boot ended: the machine stopped.
		if err := os.Rename(path, discardedPath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("meta: set aside %s: %w", path, err)
		}
		discarded = true
	}
	if discarded {
		// The set-aside file had the marker's doubt; the new one starts
		// empty and clean.
		if err := os.Remove(mark); err != nil {
			return true, fmt.Errorf("meta: remove %s: %w", mark, err)
		}
	}
	if o.NoSync {
		if err := writeSynced(mark, []byte(o.BootID+"\n")); err != nil {
			return discarded, err
		}
	}
	// A marker left by this boot stays until a synced meta.db is open
	// (FSM.open): its pages may still be only in the page cache.
	return discarded, syncDir(filepath.Dir(path))
}

// UnsyncedByAnotherBoot reports whether meta.db at path was open unsynced
// under another boot than the running one (its marker names that boot):
// then the machine stopped with it unsynced, and the node will set it
// aside at its next start.
func UnsyncedByAnotherBoot(path string) (boot string, torn bool) {
	b, err := os.ReadFile(markerPath(path))
	if err != nil {
		return "", false
	}
	boot = strings.TrimSpace(string(b))
	return boot, boot != BootID()
}

// hasMarker reports whether meta.db at path may hold unsynced commits.
func hasMarker(path string) bool {
	_, err := os.Stat(markerPath(path))
	return err == nil
}

// lockDB takes the lock file beside meta.db, which OpenFSMWith holds until
// Close: the marker of one process must not be written or removed while
// another has meta.db open (bbolt's own lock is taken only after the
// marker is written).
func lockDB(path string, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("meta: %s is in use by another process: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond) // retry interval of a lock held by another process
	}
}

// releaseMarker removes the marker once meta.db has been synced and closed.
func releaseMarker(path string) error {
	if err := os.Remove(markerPath(path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("meta: remove %s: %w", markerPath(path), err)
	}
	return syncDir(filepath.Dir(path))
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("meta: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("meta: sync %s: %w", path, err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("meta: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("meta: sync %s: %w", dir, err)
	}
	return nil
}
