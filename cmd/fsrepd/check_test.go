package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/node"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// startNode starts a one-node cluster in dir/n1 holding one file of two
// chunks, and returns it running.
func startNode(t *testing.T, dir string) (*node.Node, meta.Volume) {
	t.Helper()
	cfg := node.Config{NodeID: "n1", AZ: "az1", DataDir: filepath.Join(dir, "n1"), Bootstrap: true,
		RaftAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", NFSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		ChunkNoSync: true, ScrubRate: -1}
	n, err := node.Start(cfg, node.SystemClock{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for n.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("node not ready: %v", n.Ready())
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	propose := func(cmd meta.Command) *meta.Result {
		res, err := n.Propose(t.Context(), cmd)
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	v := propose(&meta.CreateVolume{Name: "v", Replicas: 1, WriteQuorum: 1, ChunkSize: meta.MinChunkSize}).Volume
	f := propose(&meta.Create{Vol: v.ID, Parent: meta.RootIno, Name: "f", Kind: meta.TypeFile, Mode: 0o644}).Inode
	data := bytes.Repeat([]byte("check "), 1000)
	var writes []meta.ChunkWrite
	for i := range 2 {
		if err := n.Store().Put(replication.ChunkID(v.ID, f.Ino, uint64(i)), 7, data); err != nil {
			t.Fatal(err)
		}
		writes = append(writes, meta.ChunkWrite{Index: uint64(i), Version: 7, Length: int64(len(data)), Replicas: []string{"n1"}})
	}
	propose(&meta.CommitWrite{Vol: v.ID, Ino: f.Ino, Size: 2 * meta.MinChunkSize, Chunks: writes})
	return n, *v
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	n, v := startNode(t, dir)
	nodeDir := filepath.Join(dir, "n1")

	code, _, errOut := fsrepd(t, env{}, "check", "--data-dir", nodeDir)
	if code != exitError || !strings.Contains(errOut, "node is running") {
		t.Fatalf("check of a running node: exit %d, %s", code, errOut)
	}
	orphan := replication.ChunkID(v.ID, 999, 0)
	if err := n.Store().Put(orphan, 3, []byte("left over")); err != nil {
		t.Fatal(err)
	}
	n.Close()

	code, out, errOut := fsrepd(t, env{}, "check", "--data-dir", nodeDir)
	if code != exitOK || !strings.Contains(out, "Result: clean.") || !strings.Contains(out, "(node n1, from node.id)") ||
		!strings.Contains(out, "1 unlisted files too recent to judge") {
		t.Fatalf("clean check: exit %d\n%s%s", code, out, errOut)
	}
	old := time.Now().Add(-time.Hour)
	orphanPath, _ := filepath.Glob(filepath.Join(nodeDir, "chunks", "*", orphan.String()))
	if len(orphanPath) != 1 {
		t.Fatalf("orphan file: %v", orphanPath)
	}
	if err := os.Chtimes(orphanPath[0], old, old); err != nil {
		t.Fatal(err)
	}
	// The embedded layout (a directory of node directories), settings from
	// the environment, JSON.
	code, out, errOut = fsrepd(t, env{"FSREP_DATA_DIR": dir, "FSREP_ORPHAN_AGE": "30m"}, "check", "-o", "json")
	var reps []node.OfflineReport
	if err := json.Unmarshal([]byte(out), &reps); err != nil {
		t.Fatalf("check -o json: %v\n%s%s", err, out, errOut)
	}
	if code != exitProblems || len(reps) != 1 || reps[0].Orphans != 1 || reps[0].OK != 2 || reps[0].DataDir != nodeDir {
		t.Fatalf("check with an orphan: exit %d\n%s", code, out)
	}
	// A longer orphan age than the file's: not yet an orphan.
	if code, out, _ = fsrepd(t, env{}, "check", "--data-dir", nodeDir, "--orphan-age", "2h"); code != exitOK {
		t.Fatalf("check with orphan-age 2h: exit %d\n%s", code, out)
	}

	code, out, _ = fsrepd(t, env{}, "check", "--data-dir", nodeDir)
	t.Logf("check with an orphan:\n%s", out)
	if code != exitProblems || !strings.Contains(out, "orphan  v") || !strings.Contains(out, "Result: 1 problems.") {
		t.Fatalf("check with an orphan: exit %d\n%s", code, out)
	}
	code, out, _ = fsrepd(t, env{}, "check", "--data-dir", nodeDir, "--repair")
	t.Logf("check --repair:\n%s", out)
	if code != exitProblems || !strings.Contains(out, "Repair: 1 orphans deleted, 0 damaged files quarantined, 0 failed") {
		t.Fatalf("check --repair: exit %d\n%s", code, out)
	}
	if code, out, _ = fsrepd(t, env{}, "check", "--data-dir", nodeDir); code != exitOK {
		t.Fatalf("check after repair: exit %d\n%s", code, out)
	}

	// The daemon's config file works for check too.
	cfgFile := writeFile(t, "fsrepd.yaml", "node-id: n1\naz: az1\ndata-dir: "+nodeDir+"\nrepair-grace: 2m\n")
	if code, out, errOut = fsrepd(t, env{}, "check", "--config", cfgFile); code != exitOK {
		t.Fatalf("check --config: exit %d\n%s%s", code, out, errOut)
	}
	for _, args := range [][]string{{"check"}, {"check", "--data-dir", nodeDir, "-o", "xml"}, {"check", "--data-dir", nodeDir, "extra"},
		{"check", "--data-dir", nodeDir, "--orphan-age", "0s"}, {"check", "--data-dir", dir, "--node-id", "n1", "--examples", "0"}} {
		if code, _, _ := fsrepd(t, env{}, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	if code, _, errOut := fsrepd(t, env{}, "check", "--data-dir", t.TempDir()); code != exitError || !strings.Contains(errOut, "not an fsrep data directory") {
		t.Errorf("check of an empty directory: exit %d, %s", code, errOut)
	}
	if code, out, _ := fsrepd(t, env{}, "check", "--help"); code != exitOK || !strings.Contains(out, "--repair") {
		t.Errorf("check --help: exit %d\n%s", code, out)
	}
}
