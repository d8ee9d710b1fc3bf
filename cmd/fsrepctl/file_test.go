package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// fileFixture makes volume "data" with /dir/file of two chunks on n1..n3.
func fileFixture(t *testing.T, cl *cluster) (uint32, uint64) {
	t.Helper()
	propose := func(cmd meta.Command) *meta.Result {
		t.Helper()
		res, err := cl.b.Propose(t.Context(), cmd)
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			t.Fatalf("%s: %v", cmd.Type(), err)
		}
		return res
	}
	v := propose(&meta.CreateVolume{Name: "data", Replicas: 3, WriteQuorum: 2, ChunkSize: meta.MinChunkSize, RootMode: 0o755}).Volume
	d := propose(&meta.Create{Vol: v.ID, Parent: meta.RootIno, Name: "dir", Kind: meta.TypeDir, Mode: 0o755}).Inode
	f := propose(&meta.Create{Vol: v.ID, Parent: d.Ino, Name: "file", Kind: meta.TypeFile, Mode: 0o644}).Inode
	for idx := range uint64(2) {
		propose(&meta.CommitWrite{Vol: v.ID, Ino: f.Ino, Size: idx*meta.MinChunkSize + 1000, Chunks: []meta.ChunkWrite{
			{Index: idx, Version: 7, Length: 1000, Replicas: []string{"n1", "n2", "n3"}}}})
	}
	return v.ID, f.Ino
}

func TestFileLocate(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	vol, ino := fileFixture(t, cl)

	r := cl.ctl(t, "file", "locate", "data", "/dir/file")
	wantExit(t, r, exitOK)
	for _, want := range []string{"Path:        /dir/file", "(file, generation", "Size:        65.0KiB (66536 bytes)",
		"Chunk size:  64KiB; 3 replicas wanted", "CHUNK  OFFSET  LENGTH  VERSION  NODE  AZ   STATE",
		"0      0B      1000B   7        n1    az1  ok", "\n" + strings.Repeat(" ", 32) + "n3    az3  ok",
		"1      64KiB   1000B   7        n1    az1  ok"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("locate lacks %q:\n%s", want, r.stdout)
		}
	}

	// A replica that is not ok: shown, and exit 4.
	cl.b.SetReplicaAnswer("n2", replication.ChunkID(vol, ino, 1), chunkstore.Info{Version: 6, Length: 900}, nil)
	cl.b.SetReplicaAnswer("n3", replication.ChunkID(vol, ino, 1), chunkstore.Info{}, chunkstore.ErrCorrupt)
	r = cl.ctl(t, "file", "locate", "data", "dir/file")
	wantExit(t, r, exitUnhealthy)
	if !strings.Contains(r.stdout, "n2    az2  stale (holds version 6)") || !strings.Contains(r.stdout, "n3    az3  corrupt: chunkstore: chunk corrupt") {
		t.Errorf("damaged replicas:\n%s", r.stdout)
	}
	// Metadata only: nothing asked, nothing unhealthy.
	r = cl.ctl(t, "file", "locate", "data", "/dir/file", "--check=false")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "n2    az2  unchecked") {
		t.Errorf("unchecked:\n%s", r.stdout)
	}
	// Pages, verify, JSON.
	r = cl.ctl(t, "file", "locate", "data", "/dir/file", "--limit", "1", "--verify", "-o", "json")
	wantExit(t, r, exitOK)
	var loc admin.LocateResponse
	if err := json.Unmarshal([]byte(r.stdout), &loc); err != nil || !loc.Verified || len(loc.Chunks) != 1 || loc.Next == nil || *loc.Next != 1 ||
		loc.Chunks[0].OK != 3 || loc.Chunks[0].Replicas[2].AZ != "az3" {
		t.Fatalf("locate -o json: %+v %v\n%s", loc, err, r.stdout)
	}
	r = cl.ctl(t, "file", "locate", "data", "/dir/file", "--limit", "1")
	if !strings.Contains(r.stdout, "More chunks follow: add --from 1.") {
		t.Errorf("paged:\n%s", r.stdout)
	}
	r = cl.ctl(t, "file", "locate", "data", "/dir")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "(dir, generation") || strings.Contains(r.stdout, "CHUNK") {
		t.Errorf("a directory:\n%s", r.stdout)
	}

	wantExit(t, cl.ctl(t, "file", "locate", "data", "/nope"), exitNotFound)
	wantExit(t, cl.ctl(t, "file", "locate", "nope", "/"), exitNotFound)
	wantExit(t, cl.ctl(t, "file", "locate", "data"), exitUsage)
	wantExit(t, cl.ctl(t, "file", "locate", "data", "/dir/file", "--limit", "0"), exitUsage)
}
