package admin

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/fsrep/fsrep/replication"
)

func TestScrubLocal(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	b.SetScrub(replication.ScrubStatus{RateLimit: 1 << 20, PassChunks: 10, Scanned: 4, ScannedBytes: 16 << 20, Passes: 2, Corrupt: 1, Repaired: 1})

	status, data := call(t, srv, http.MethodGet, PathScrub, testToken, nil)
	if sc := decode[replication.ScrubStatus](t, data); status != http.StatusOK || sc.Node != "n1" || sc.Scanned != 4 || sc.Passes != 2 || sc.Paused {
		t.Fatalf("scrub: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodPost, PathScrubPause, testToken, nil)
	if sc := decode[replication.ScrubStatus](t, data); status != http.StatusOK || !sc.Paused {
		t.Fatalf("scrub pause: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodPost, PathScrubResume, testToken, nil)
	if sc := decode[replication.ScrubStatus](t, data); status != http.StatusOK || sc.Paused {
		t.Fatalf("scrub resume: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodPost, PathScrubStart, testToken, nil)
	if sc := decode[replication.ScrubStatus](t, data); status != http.StatusOK || sc.Scanned != 0 || sc.PassStarted.IsZero() || b.ScrubStarts() != 1 {
		t.Fatalf("scrub start: %d %s (starts %d)", status, data, b.ScrubStarts())
	}
	status, data = call(t, srv, http.MethodGet, PathScrub+"?all=maybe", testToken, nil)
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	status, data = call(t, srv, http.MethodGet, PathScrubStart, testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	if b.ScrubStarts() != 1 {
		t.Fatal("GET started a scrub")
	}

	c := NewClient(srv.URL, testToken, 5*time.Second)
	if sc, err := c.ControlScrub(t.Context(), ScrubPause); err != nil || !sc.Paused {
		t.Fatalf("Client.ControlScrub(pause): %+v %v", sc, err)
	}
	if sc, err := c.Scrub(t.Context()); err != nil || !sc.Paused || sc.Node != "n1" {
		t.Fatalf("Client.Scrub: %+v %v", sc, err)
	}
}

func TestScrubAll(t *testing.T) {
	bs, srvs := newPeers(t, 3)
	for i, b := range bs {
		b.SetScrub(replication.ScrubStatus{Passes: i + 1})
	}

	// Asked of a follower, it covers every node, itself included.
	status, data := call(t, srvs[1], http.MethodGet, PathScrub+"?all=1", testToken, nil)
	all := decode[[]NodeScrub](t, data)
	if status != http.StatusOK || len(all) != 3 {
		t.Fatalf("scrub all: %d %s", status, data)
	}
	for i, ns := range all {
		if ns.Error != nil || ns.Scrub == nil || ns.Node != bs[i].ID || ns.AZ != bs[i].Zone || ns.Scrub.Node != bs[i].ID || ns.Scrub.Passes != i+1 {
			t.Errorf("entry %d: %+v", i, ns)
		}
	}

	// Control every node at once.
	status, data = call(t, srvs[0], http.MethodPost, PathScrubPause+"?all=true", testToken, nil)
	if status != http.StatusOK {
		t.Fatalf("pause all: %d %s", status, data)
	}
	for i, b := range bs {
		if !b.ScrubStatus().Paused {
			t.Errorf("node %d not paused", i)
		}
	}
	c := NewClient(srvs[2].URL, testToken, 5*time.Second)
	if out, err := c.ControlScrubAll(t.Context(), ScrubStart); err != nil || len(out) != 3 {
		t.Fatalf("Client.ControlScrubAll(start): %+v %v", out, err)
	}
	for i, b := range bs {
		if b.ScrubStarts() != 1 {
			t.Errorf("node %d started %d passes, want 1", i, b.ScrubStarts())
		}
	}

	// A node that does not answer has an error in its entry; the rest answer.
	srvs[2].Close()
	out, err := NewClient(srvs[0].URL, testToken, 5*time.Second).ScrubAll(t.Context())
	if err != nil || len(out) != 3 || out[0].Scrub == nil || out[1].Scrub == nil || out[2].Scrub != nil ||
		out[2].Error == nil || out[2].Error.Code != CodeUnreachable {
		t.Fatalf("scrub all with n3 down: %+v %v", out, err)
	}

	// A forwarded ?all=1 is answered locally: no fan-out loops.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srvs[1].URL+PathScrub+"?all=1", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set(ForwardedHeader, "n1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("forwarded all: %d", resp.StatusCode)
	}
	var one replication.ScrubStatus
	if err := decodeReader(resp, &one); err != nil || one.Node != "n2" {
		t.Fatalf("forwarded all answered %+v %v, want n2's own status", one, err)
	}
}

func decodeReader(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
