package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestSnapshotSave(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	for _, name := range []string{"alpha", "beta"} {
		wantExit(t, cl.ctl(t, "volume", "create", name), exitOK)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "meta.db")
	r := cl.ctl(t, "snapshot-meta", "save", file)
	wantExit(t, r, exitOK)
	if !strings.HasPrefix(r.stdout, "Saved the metadata of n1 at Raft index 5 to "+file) || !strings.Contains(r.stdout, "2 volume(s), 3 node(s)") {
		t.Errorf("save output:\n%s", r)
	}

	// The file opens with bbolt and holds the volumes.
	db, err := bolt.Open(file, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("volumes")).ForEach(func(k, _ []byte) error { names = append(names, string(k)); return nil })
	})
	db.Close()
	if err != nil || !slices.Equal(names, []string{"alpha", "beta"}) {
		t.Fatalf("volumes in the saved file: %v %v", names, err)
	}

	// An existing file is kept unless --force; nothing is left behind.
	r = cl.ctl(t, "snapshot-meta", "save", file)
	wantExit(t, r, exitUsage)
	if !strings.Contains(r.stderr, "--force") {
		t.Errorf("save over a file:\n%s", r)
	}
	wantExit(t, cl.ctl(t, "volume", "create", "gamma"), exitOK)
	r = cl.ctl(t, "snapshot-meta", "save", file, "--force", "-o", "json")
	wantExit(t, r, exitOK)
	var rep snapshotReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Node != "n1" || rep.AppliedIndex != 6 ||
		!slices.Equal(rep.Volumes, []string{"alpha", "beta", "gamma"}) || rep.Nodes != 3 || rep.Bytes == 0 {
		t.Fatalf("save -o json: %+v %v\n%s", rep, err, r.stdout)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files left in %s: %v", dir, ents)
	}

	// To stdout.
	r = cl.ctl(t, "snapshot-meta", "save", "-")
	wantExit(t, r, exitOK)
	if int64(len(r.stdout)) != rep.Bytes {
		t.Errorf("stdout got %d bytes, the file %d", len(r.stdout), rep.Bytes)
	}

	// Nothing answering: 5, and no file.
	missing := filepath.Join(dir, "never.db")
	wantExit(t, fsrepctl(t, invocation{}, "--admin", closedAddr(t), "--token", testToken, "snapshot-meta", "save", missing), exitUnreachable)
	if _, err := os.Stat(missing); err == nil {
		t.Error("a failed save left a file")
	}
	wantExit(t, cl.ctl(t, "snapshot-meta", "save"), exitUsage)
}

func TestSnapshotRestore(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	wantExit(t, cl.ctl(t, "volume", "create", "alpha"), exitOK)
	file := filepath.Join(t.TempDir(), "meta.db")
	wantExit(t, cl.ctl(t, "snapshot-meta", "save", file), exitOK)

	dataDir := t.TempDir()
	r := fsrepctl(t, invocation{}, "snapshot-meta", "restore", file, "--data-dir", dataDir, "--node-id", "n1", "--raft-addr", "127.0.0.1:7000")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "Restored "+file+" (Raft index 4, 1 volume(s), 3 node(s)) into "+filepath.Join(dataDir, "meta")) {
		t.Errorf("restore output:\n%s", r)
	}
	for _, name := range []string{"raft.db", "snapshots"} {
		if _, err := os.Stat(filepath.Join(dataDir, "meta", name)); err != nil {
			t.Errorf("restore wrote no %s: %v", name, err)
		}
	}
	// Never over existing metadata; flags are required; a bad file is refused.
	r = fsrepctl(t, invocation{}, "snapshot-meta", "restore", file, "--data-dir", dataDir, "--node-id", "n1", "--raft-addr", "127.0.0.1:7000")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stderr, "move the node's old metadata away") {
		t.Errorf("restore over metadata:\n%s", r)
	}
	wantExit(t, fsrepctl(t, invocation{}, "snapshot-meta", "restore", file, "--data-dir", t.TempDir()), exitUsage)
	bad := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(bad, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantExit(t, fsrepctl(t, invocation{}, "snapshot-meta", "restore", bad, "--data-dir", t.TempDir(), "--node-id", "n1", "--raft-addr", "h:1"), exitError)
}
