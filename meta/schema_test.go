package meta

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenCreatesSchema(t *testing.T) {
	h := newHarness(t)
	d := dumpDB(t, h.fsm)
	for _, b := range allBuckets {
		if _, ok := d[string(b)]; !ok {
			t.Errorf("bucket %s missing from a new meta.db", b)
		}
	}
	if len(d) != len(allBuckets) {
		t.Errorf("a new meta.db has %d buckets, the schema names %d", len(d), len(allBuckets))
	}
	if got := storageVersion(t, h.fsm); got != StorageVersion {
		t.Errorf("storage version %d, want %d", got, StorageVersion)
	}
	if h.fsm.AppliedIndex() != 0 {
		t.Errorf("a new FSM has applied index %d", h.fsm.AppliedIndex())
	}
	// Reopening an existing file keeps it as it is.
	h.volume("v")
	before := dumpDB(t, h.fsm)
	h.reopen()
	if diff := diffDumps(before, dumpDB(t, h.fsm), nil); diff != "" {
		t.Fatalf("reopen changed meta.db:\n%s", diff)
	}
}

func storageVersion(t *testing.T, f *FSM) uint64 {
	t.Helper()
	var v uint64
	if err := f.view(func(tx *bolt.Tx) error {
		v = binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(keyMetaVersion))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// writeStorageVersion makes a meta.db at path whose storage version is v.
func writeStorageVersion(t *testing.T, path string, v uint64) {
	t.Helper()
	f := openFSM(t, path)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyMetaVersion, u64(v))
	}); err != nil {
		t.Fatal(err)
	}
}

// newerVersionFile returns the bytes of a meta.db written by a newer build.
func newerVersionFile(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "newer.db")
	writeStorageVersion(t, path, StorageVersion+1)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenRefusesNewerStorageVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	writeStorageVersion(t, path, StorageVersion+1)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenFSM(path, testLogger(t))
	if err == nil {
		f.Close()
		t.Fatal("OpenFSM opened a meta.db of a newer storage version")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{fmt.Sprintf("storage version %d", StorageVersion+1), "newer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("the refused open modified the file")
	}
	// The file was closed again: a newer build (here: the raw bbolt API) can
	// open it without waiting for a lock.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("file still locked after the refused open: %v", err)
	}
	db.Close()
}

func TestOpenUnknownOlderStorageVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	writeStorageVersion(t, path, 0)
	f, err := OpenFSM(path, testLogger(t))
	if err == nil {
		f.Close()
		t.Fatal("OpenFSM opened a meta.db of a storage version it has no migration for")
	}
	if !strings.Contains(err.Error(), "migration") {
		t.Errorf("error %q does not mention the missing migration", err)
	}
}

func TestKeysSortNumerically(t *testing.T) {
	// bbolt orders keys bytewise; big-endian integers make that numeric order,
	// which ReadDir, Chunks and the garbage scan rely on.
	if string(chunkKey(1, 2, 255)) >= string(chunkKey(1, 2, 256)) {
		t.Error("chunk keys do not sort by index")
	}
	if string(inodeKey(1, 1<<40)) >= string(inodeKey(2, 0)) {
		t.Error("inode keys do not sort by volume first")
	}
	k := GarbageKey{Vol: 1, Ino: 2, Index: 3, Version: 4}
	if got, ok := parseGarbageKey(k.bytes()); !ok || got != k {
		t.Errorf("garbage key round trip: %+v %v", got, ok)
	}
	if _, ok := parseGarbageKey([]byte("short")); ok {
		t.Error("parseGarbageKey accepted a short key")
	}
}

// TestMigrateV1Dirents: a meta.db of storage version 1 (entries keyed by
// name) opens as version 2 (entries keyed by cookie, then name), with every
// entry still found by name and listed.
func TestMigrateV1Dirents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	h := openFSM(t, path)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"b", "a", "zeta", "é"}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keyMetaVersion, u64(1)); err != nil {
			return err
		}
		putJSON(tx.Bucket(bucketVolumes), []byte("v"), &Volume{ID: 1, Name: "v", Replicas: 1, WriteQuorum: 1, ChunkSize: MinChunkSize, NextIno: 10})
		if err := tx.Bucket(bucketVolIDs).Put(volKey(1), []byte("v")); err != nil {
			return err
		}
		putJSON(tx.Bucket(bucketInodes), inodeKey(1, RootIno), &Inode{Ino: RootIno, Type: TypeDir, Mode: 0o755, Nlink: 2, Parent: RootIno})
		for i, name := range names {
			ino := uint64(2 + i)
			putJSON(tx.Bucket(bucketInodes), inodeKey(1, ino), &Inode{Ino: ino, Type: TypeFile, Nlink: 1})
			v1 := append(inodeKey(1, RootIno), name...) // version 1 layout
			if err := tx.Bucket(bucketDirents).Put(v1, u64(ino)); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenFSM(path, testLogger(t))
	if err != nil {
		t.Fatalf("open a version 1 meta.db: %v", err)
	}
	defer f.Close()
	for i, name := range names {
		n, err := f.Lookup(1, RootIno, name)
		if err != nil || n.Ino != uint64(2+i) {
			t.Fatalf("after migration Lookup(%q) = %+v, %v", name, n, err)
		}
	}
	ents, _, err := f.ReadDir(1, RootIno, 0, 0)
	if err != nil || len(ents) != len(names) {
		t.Fatalf("after migration ReadDir = %+v, %v", ents, err)
	}
	var version uint64
	_ = f.view(func(tx *bolt.Tx) error {
		version = binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(keyMetaVersion))
		return nil
	})
	if version != StorageVersion {
		t.Fatalf("storage version after migration = %d, want %d", version, StorageVersion)
	}
}
