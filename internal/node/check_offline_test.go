package node

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

func chunkFileOf(t *testing.T, dataDir string, id chunkstore.ID) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dataDir, "chunks", "*", id.String()))
	if err != nil || len(m) != 1 {
		t.Fatalf("chunk file %s under %s: %v %v", id, dataDir, m, err)
	}
	return m[0]
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func kindsOf(fs []replication.CheckFinding) []replication.FindingKind {
	var out []replication.FindingKind
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	slices.Sort(out)
	return out
}

// TestCheckOffline builds a real data directory with a running cluster,
// damages n1's files while it is stopped (a flipped data byte, a deleted
// replica, a replica at another version, an old and a young unlisted
// file), and checks it: everything is found and nothing is changed; with
// repair the old orphan is deleted and the damaged file quarantined, and
// the metadata is never touched.
func TestCheckOffline(t *testing.T) {
	nodes := startOpsCluster(t)
	n1 := nodes[0]
	dir := n1.cfg.DataDir
	v := propose(t, n1, &meta.CreateVolume{Name: "v", Replicas: 3, WriteQuorum: 2, ChunkSize: meta.MinChunkSize}).Volume
	f := propose(t, n1, &meta.Create{Vol: v.ID, Parent: meta.RootIno, Name: "f", Kind: meta.TypeFile, Mode: 0o644}).Inode
	data := bytes.Repeat([]byte("offline "), 2000)
	var ids []chunkstore.ID
	var writes []meta.ChunkWrite
	for i := range 5 {
		id := replication.ChunkID(v.ID, f.Ino, uint64(i))
		for _, n := range nodes {
			if err := n.Store().Put(id, 5, data); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, id)
		writes = append(writes, meta.ChunkWrite{Index: uint64(i), Version: 5, Length: int64(len(data)), Replicas: []string{"n1", "n2", "n3"}})
	}
	res := propose(t, n1, &meta.CommitWrite{Vol: v.ID, Ino: f.Ino, Size: 5 * meta.MinChunkSize, Chunks: writes})
	if err := n1.Meta().WaitApplied(t.Context(), res.Index); err != nil {
		t.Fatal(err)
	}
	oldOrphan, youngOrphan := replication.ChunkID(v.ID, 999, 0), replication.ChunkID(v.ID, 998, 0)
	for _, id := range []chunkstore.ID{oldOrphan, youngOrphan} {
		if err := n1.Store().Put(id, 3, data[:100]); err != nil {
			t.Fatal(err)
		}
	}
	if err := n1.Store().Put(ids[3], 4, data); err != nil { // listed at 5
		t.Fatal(err)
	}
	// One write ahead of the metadata, just now: the node stopped between
	// the replica write and the commit's apply, which is in flight.
	if err := n1.Store().Put(ids[4], 6, data); err != nil {
		t.Fatal(err)
	}

	// A running node is refused.
	if _, err := CheckOffline(t.Context(), OfflineCheckConfig{DataDir: dir, LockTimeout: 100 * time.Millisecond}, nil); !errors.Is(err, ErrNodeRunning) {
		t.Fatalf("check of a running node: %v", err)
	}

	for _, n := range nodes {
		n.Close()
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(chunkFileOf(t, dir, oldOrphan), old, old); err != nil {
		t.Fatal(err)
	}
	corrupt := chunkFileOf(t, dir, ids[1])
	b, err := os.ReadFile(corrupt)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x40 // a data byte: only a full read sees it
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(corrupt, old, old); err != nil { // rot in a file written long ago
		t.Fatal(err)
	}
	// A write the stop interrupted, in a file changed just now: torn.
	torn := chunkFileOf(t, dir, youngOrphan)
	tb, err := os.ReadFile(torn)
	if err != nil {
		t.Fatal(err)
	}
	tb[len(tb)-1] ^= 0x40
	if err := os.WriteFile(torn, tb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(chunkFileOf(t, dir, ids[2])); err != nil {
		t.Fatal(err)
	}
	metaDB := filepath.Join(dir, "meta", "meta.db")
	metaSum := fileSum(t, metaDB)

	rep, err := CheckOffline(t.Context(), OfflineCheckConfig{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := OfflineReport{Files: 6, Listed: 5, OK: 1, Missing: 1, Stale: 1, Corrupt: 1, Orphans: 1, InFlight: 1, Torn: 1}
	got := OfflineReport{Files: rep.Files, Listed: rep.Listed, OK: rep.OK, Missing: rep.Missing, Stale: rep.Stale,
		Corrupt: rep.Corrupt, Orphans: rep.Orphans, Young: rep.Young, InFlight: rep.InFlight, Torn: rep.Torn}
	if !reflectEqual(got, want) || rep.Problems() != 4 || rep.NodeID != "n1" || rep.NodeIDInferred ||
		rep.StorageVersion != meta.StorageVersion || rep.AppliedIndex == 0 || len(rep.MetaProblems) != 0 {
		t.Fatalf("report %+v\nwant counts %+v", rep, want)
	}
	wantKinds := []replication.FindingKind{replication.FindCorrupt, replication.FindMissing, replication.FindOrphan, replication.FindStale}
	if k := kindsOf(rep.Findings); !slices.Equal(k, wantKinds) {
		t.Errorf("findings %v, want %v: %+v", k, wantKinds, rep.Findings)
	}
	for _, fd := range rep.Findings {
		if fd.Repair != "" {
			t.Errorf("a check without repair repaired: %+v", fd)
		}
	}
	if fileSum(t, metaDB) != metaSum {
		t.Fatal("the check changed meta.db")
	}
	if _, err := os.Stat(chunkFileOf(t, dir, oldOrphan)); err != nil {
		t.Fatalf("the check removed a file: %v", err)
	}

	// The node ID: given, recorded in node.id, or inferred (not here:
	// every node holds every chunk).
	if _, err := CheckOffline(t.Context(), OfflineCheckConfig{DataDir: dir, NodeID: "n9"}, nil); err == nil {
		t.Error("a node ID the metadata does not know was accepted")
	}
	if err := os.Rename(filepath.Join(dir, nodeIDFile), filepath.Join(dir, nodeIDFile+".bak")); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckOffline(t.Context(), OfflineCheckConfig{DataDir: dir}, nil); !errors.Is(err, ErrNodeUnknown) {
		t.Errorf("no node.id, every node alike: %v", err)
	}
	if rep, err := CheckOffline(t.Context(), OfflineCheckConfig{DataDir: dir, NodeID: "n1"}, nil); err != nil || rep.Problems() != 4 {
		t.Errorf("with the node ID given: %v, %+v", err, rep)
	}

	// Repair: the old orphan goes, the damaged file moves aside; the
	// missing and stale replicas are the metadata's business.
	rep, err = CheckOffline(t.Context(), OfflineCheckConfig{DataDir: dir, NodeID: "n1", Repair: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Repaired != (OfflineRepairs{Deleted: 1, Quarantined: 1}) || rep.Quarantine != filepath.Join(dir, "quarantine") {
		t.Fatalf("repair: %+v", rep)
	}
	if _, err := os.Stat(filepath.Join(dir, "quarantine", ids[1].String())); err != nil {
		t.Errorf("damaged file not in quarantine: %v", err)
	}
	if fileSum(t, metaDB) != metaSum {
		t.Fatal("the repair changed meta.db")
	}
	rep, err = CheckOffline(t.Context(), OfflineCheckConfig{DataDir: dir, NodeID: "n1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Orphans != 0 || rep.Corrupt != 0 || rep.Missing != 2 || rep.Stale != 1 || rep.Torn != 1 || rep.OK != 1 || rep.InFlight != 1 {
		t.Errorf("after repair: %+v", rep)
	}
}

// reflectEqual compares two reports' counts (the structs hold slices).
func reflectEqual(a, b OfflineReport) bool {
	return a.Files == b.Files && a.Listed == b.Listed && a.OK == b.OK && a.Missing == b.Missing && a.Stale == b.Stale &&
		a.Corrupt == b.Corrupt && a.Orphans == b.Orphans && a.Young == b.Young
}

// TestCheckOfflineDamagedMeta: a meta.db whose pages are damaged is
// reported, and the chunk files are still verified.
func TestCheckOfflineDamagedMeta(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "meta"), 0o700); err != nil {
		t.Fatal(err)
	}
	fsm, err := meta.OpenFSM(filepath.Join(dir, "meta", "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	fsm.Close()
	if _, err := CheckOffline(t.Context(), OfflineCheckConfig{DataDir: dir}, nil); !errors.Is(err, ErrNodeUnknown) {
		t.Fatalf("a node that never registered: %v", err)
	}
	// Cut the file short: its pages past the end.
	path := filepath.Join(dir, "meta", "meta.db")
	if err := os.Truncate(path, 3*4096); err != nil { // the meta pages and the freelist only
		t.Fatal(err)
	}
	rep, err := CheckOffline(t.Context(), OfflineCheckConfig{DataDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.MetaProblems) == 0 || rep.Problems() == 0 {
		t.Errorf("a truncated meta.db passed: %+v", rep)
	}
	if _, err := CheckOffline(t.Context(), OfflineCheckConfig{DataDir: t.TempDir()}, nil); err == nil {
		t.Error("a directory without meta.db was checked")
	}
}

// TestCheckOfflineUnsyncedMeta: a meta.db that was open unsynced when the
// machine stopped (its marker names another boot) is not judged: the node
// rebuilds it at its next start, and orphans counted against it could be
// live chunks.
func TestCheckOfflineUnsyncedMeta(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "meta"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "meta", "meta.db")
	fsm, err := meta.OpenFSM(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fsm.Close()
	if err := os.WriteFile(path+".unsynced", []byte("a-boot-long-gone\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := CheckOffline(t.Context(), OfflineCheckConfig{DataDir: dir, Repair: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.MetaProblems) == 0 || !strings.Contains(rep.MetaProblems[0], "unsynced") {
		t.Errorf("an unsynced meta.db from another boot was judged: %+v", rep.MetaProblems)
	}
}
