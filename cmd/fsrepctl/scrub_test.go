package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/internal/admin/admintest"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// newPeerClusters starts n admin servers that know each other as nodes
// n1..nN in az1..azN, n1 leading; the returned servers can be closed to
// take a node away.
func newPeerClusters(t *testing.T, n int) ([]*cluster, []*httptest.Server) {
	t.Helper()
	handlers := make([]http.Handler, n)
	srvs := make([]*httptest.Server, n)
	nodes := make([]meta.NodeInfo, n)
	for i := range n {
		srvs[i] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handlers[i].ServeHTTP(w, r)
		}))
		t.Cleanup(srvs[i].Close)
		nodes[i] = meta.NodeInfo{ID: fmt.Sprintf("n%d", i+1), AZ: fmt.Sprintf("az%d", i+1),
			AdminAddr: strings.TrimPrefix(srvs[i].URL, "http://")}
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cls := make([]*cluster, n)
	for i := range n {
		b := admintest.New(t, nodes...)
		b.ID, b.Zone = nodes[i].ID, nodes[i].AZ
		handlers[i] = admin.NewServer(b, testToken, log)
		cls[i] = &cluster{b: b, addr: nodes[i].AdminAddr}
	}
	return cls, srvs
}

func TestScrubStatus(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	r := cl.ctl(t, "scrub", "status")
	wantExit(t, r, exitOK)
	for _, want := range []string{"Node:          n1", "Scrubber:      running", "Current pass:  none", "Next pass:     -"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("idle scrub status lacks %q:\n%s", want, r.stdout)
		}
	}

	cl.b.SetScrub(replication.ScrubStatus{RateLimit: 8 << 20, PassStarted: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), PassChunks: 200,
		Scanned: 50, ScannedBytes: 200 << 20, Passes: 3, Corrupt: 4, Repaired: 3, Kept: 1, Errors: 2,
		ReadCorrupt: replication.CorruptCounts{Found: 5, Dropped: 4, Kept: 1}})
	r = cl.ctl(t, "scrub", "status")
	wantExit(t, r, exitOK)
	for _, want := range []string{
		"Rate limit:    8MiB/s",
		"Current pass:  50/200 chunks (25%), 200MiB, since 2025-01-02T03:04:05Z",
		"Passes:        3 (last ended -)",
		"Corrupt:       4 found, 3 repaired, 1 kept as the last copy",
		"Read errors:   5 found by reads, 4 dropped, 1 kept",
		"Errors:        2 chunk file(s)",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("scrub status lacks %q:\n%s", want, r.stdout)
		}
	}
	r = cl.ctl(t, "scrub", "status", "-o", "json")
	wantExit(t, r, exitOK)
	var st replication.ScrubStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Node != "n1" || st.Scanned != 50 {
		t.Errorf("scrub status json: %+v %v", st, err)
	}
}

func TestScrubControl(t *testing.T) {
	cl := newCluster(t, threeAZs...)
	r := cl.ctl(t, "scrub", "pause")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "n1: scrubber paused" || !cl.b.ScrubStatus().Paused {
		t.Errorf("scrub pause:\n%s", r)
	}
	r = cl.ctl(t, "scrub", "resume")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "n1: scrubber resumed" || cl.b.ScrubStatus().Paused {
		t.Errorf("scrub resume:\n%s", r)
	}
	r = cl.ctl(t, "scrub", "start")
	wantExit(t, r, exitOK)
	if strings.TrimSpace(r.stdout) != "n1: scrub pass running since 2025-01-01T00:00:00Z" || cl.b.ScrubStarts() != 1 {
		t.Errorf("scrub start:\n%s", r)
	}
	r = cl.ctl(t, "scrub", "start", "-o", "json")
	var st replication.ScrubStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.PassStarted.IsZero() || cl.b.ScrubStarts() != 2 {
		t.Errorf("scrub start -o json: %+v %v", st, err)
	}
}

func TestScrubAll(t *testing.T) {
	cls, srvs := newPeerClusters(t, 3)
	for i, cl := range cls {
		cl.b.SetScrub(replication.ScrubStatus{Passes: i + 1, Corrupt: int64(i)})
	}
	// Asked of a follower.
	r := cls[1].ctl(t, "scrub", "status", "--all")
	wantExit(t, r, exitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NODE  AZ   STATE    PASS  SCANNED  PASSES  CORRUPT") {
		t.Fatalf("scrub status --all:\n%s", r.stdout)
	}
	if f := strings.Fields(lines[3]); f[0] != "n3" || f[1] != "az3" || f[2] != "running" || f[5] != "3" || f[6] != "2" {
		t.Errorf("row n3: %q", f)
	}

	r = cls[0].ctl(t, "scrub", "pause", "--all")
	wantExit(t, r, exitOK)
	if !strings.Contains(r.stdout, "n2    az2  scrubber paused") {
		t.Errorf("scrub pause --all:\n%s", r.stdout)
	}
	for i, cl := range cls {
		if !cl.b.ScrubStatus().Paused {
			t.Errorf("node %d not paused", i)
		}
	}

	// A node that does not answer: shown, and exit 1.
	srvs[2].Close()
	r = cls[0].ctl(t, "scrub", "status", "--all")
	wantExit(t, r, exitError)
	if !strings.Contains(r.stdout, "n3    az3  error: ") || !strings.Contains(r.stderr, "1 of 3 node(s) did not answer") ||
		!strings.Contains(r.stdout, "n2    az2  paused") {
		t.Errorf("scrub status --all with n3 gone:\n%s", r)
	}
	r = cls[0].ctl(t, "scrub", "start", "--all", "-o", "json")
	wantExit(t, r, exitError)
	var out []admin.NodeScrub
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out) != 3 || out[2].Error == nil ||
		out[2].Error.Code != admin.CodeUnreachable || out[0].Scrub == nil {
		t.Errorf("scrub start --all -o json: %+v %v\n%s", out, err, r.stdout)
	}
}

func TestScrubWithoutScrubber(t *testing.T) {
	cl := newPlainCluster(t, threeAZs...)
	for _, args := range [][]string{{"scrub", "status"}, {"scrub", "status", "--all"}, {"scrub", "start"}} {
		r := cl.ctl(t, args...)
		wantExit(t, r, exitError)
		if !strings.Contains(r.stderr, "no scrubber") {
			t.Errorf("%q without a scrubber:\n%s", args, r)
		}
	}
}
