package admin

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/admin/admintest"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

var _ Checker = (*admintest.Backend)(nil)

func TestCheck(t *testing.T) {
	b, srv := newTestServer(t, threeAZs...)
	if status, data := call(t, srv, http.MethodPost, PathVolumes, testToken, CreateVolumeRequest{Name: "data"}); status != http.StatusCreated {
		t.Fatalf("create volume: %d %s", status, data)
	}
	b.SetCheckReport(&replication.CheckReport{Chunks: 9, Healthy: 8, Corrupt: 1, UnderReplicated: 1,
		Findings: []replication.CheckFinding{{Kind: replication.FindCorrupt, Chunk: "v1-i2-c0", Node: "n2"}}}, nil)

	// No body: every volume, defaults.
	status, data := call(t, srv, http.MethodPost, PathCheck, testToken, nil)
	rep := decode[replication.CheckReport](t, data)
	if status != http.StatusOK || rep.Leader != "n1" || rep.Chunks != 9 || rep.Problems() != 2 || len(rep.Findings) != 1 || rep.Nodes == nil {
		t.Fatalf("check: %d %s", status, data)
	}
	status, data = call(t, srv, http.MethodPost, PathCheck, testToken, replication.CheckOptions{Volume: "data", Repair: true, Verify: true, Examples: 3})
	if rep = decode[replication.CheckReport](t, data); status != http.StatusOK || !rep.Repair || !rep.Verified || rep.Volume != "data" {
		t.Fatalf("check data --repair: %d %s", status, data)
	}
	want := []replication.CheckOptions{{}, {Volume: "data", Repair: true, Verify: true, Examples: 3}}
	if got := b.CheckCalls(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("check calls %+v, want %+v", got, want)
	}

	// Refusals, before the checker is asked.
	status, data = call(t, srv, http.MethodPost, PathCheck, testToken, replication.CheckOptions{Volume: "nope"})
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	status, data = call(t, srv, http.MethodPost, PathCheck, testToken, replication.CheckOptions{Volume: "bad/name"})
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	status, data = call(t, srv, http.MethodPost, PathCheck, testToken, replication.CheckOptions{Examples: replication.MaxCheckExamples + 1})
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	status, data = call(t, srv, http.MethodPost, PathCheck, testToken, map[string]any{"repiar": true})
	wantError(t, status, data, http.StatusBadRequest, CodeInvalid)
	status, data = call(t, srv, http.MethodGet, PathCheck, testToken, nil)
	wantError(t, status, data, http.StatusNotFound, CodeNotFound)
	if n := len(b.CheckCalls()); n != 2 {
		t.Fatalf("refused checks reached the checker: %d calls", n)
	}
	// The checker's errors map as everywhere.
	b.SetCheckReport(nil, meta.ErrNoLeader)
	status, data = call(t, srv, http.MethodPost, PathCheck, testToken, nil)
	wantError(t, status, data, http.StatusServiceUnavailable, CodeNoLeader)

	// The client.
	b.SetCheckReport(&replication.CheckReport{Orphans: 2}, nil)
	c := NewClient(srv.URL, testToken, 5*time.Second)
	got, err := c.Check(t.Context(), replication.CheckOptions{Volume: "data"})
	if err != nil || got.Orphans != 2 || got.Volume != "data" {
		t.Fatalf("Client.Check: %+v %v", got, err)
	}
	if _, err := c.Check(t.Context(), replication.CheckOptions{Volume: "nope"}); !IsCode(err, CodeNotFound) {
		t.Fatalf("Client.Check of an unknown volume: %v", err)
	}
}

func TestCheckNotImplemented(t *testing.T) {
	b := admintest.New(t, threeAZs...)
	srv := httptest.NewServer(NewServer(plainBackend{b}, testToken, testLogger(t)))
	defer srv.Close()
	status, data := call(t, srv, http.MethodPost, PathCheck, testToken, nil)
	wantError(t, status, data, http.StatusNotImplemented, CodeNotImplemented)
}

func TestCheckForwarded(t *testing.T) {
	bs, srvs := newPeers(t, 3)
	bs[0].SetCheckReport(&replication.CheckReport{Chunks: 4, Healthy: 4}, nil)
	status, data := call(t, srvs[2], http.MethodPost, PathCheck, testToken, replication.CheckOptions{Repair: true})
	if rep := decode[replication.CheckReport](t, data); status != http.StatusOK || rep.Leader != "n1" || !rep.Repair || rep.Chunks != 4 {
		t.Fatalf("check through a follower: %d %s", status, data)
	}
	if len(bs[0].CheckCalls()) != 1 || len(bs[2].CheckCalls()) != 0 {
		t.Fatalf("the check ran on the wrong node: leader %d, follower %d calls", len(bs[0].CheckCalls()), len(bs[2].CheckCalls()))
	}
	// Forwarded once only.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srvs[1].URL+PathCheck, bytes.NewReader(nil))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set(ForwardedHeader, "n3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("forwarded check on a follower: %d", resp.StatusCode)
	}
	// The leader gone: 502 unreachable, and the client says so.
	srvs[0].Close()
	status, data = call(t, srvs[1], http.MethodPost, PathCheck, testToken, nil)
	wantError(t, status, data, http.StatusBadGateway, CodeUnreachable)
	_, err = NewClient(srvs[1].URL, testToken, 5*time.Second).Check(t.Context(), replication.CheckOptions{})
	if !IsCode(err, CodeUnreachable) || errors.Is(err, ErrUnreachable) {
		t.Fatalf("check with the leader gone: %v", err)
	}
}
