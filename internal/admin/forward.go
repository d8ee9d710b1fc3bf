package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// ForwardedHeader marks a request that one admin server sent to another on
// a caller's behalf; its value is the sending node's ID. Such a request is
// never forwarded again, so two nodes that each believe the other leads
// (during an election) cannot bounce it between them.
const ForwardedHeader = "X-Fsrep-Forwarded"

// peerTimeout bounds one call to another node's admin API. A forwarded
// drain or remove waits for a Raft commit, which takes well under this
// unless there is no leader, and then the caller should hear about it.
const peerTimeout = 20 * time.Second

// statusRepairTimeout bounds the follower's fetch of the leader's repair
// status for /v1/status: the status screen must come back even when the
// leader is slow, just without the repair section.
const statusRepairTimeout = 2 * time.Second

// leaderOnly runs h on the Raft leader, where the healer runs; a follower
// forwards the request to the leader's admin API with the caller's token
// and relays the answer as it is.
func (s *server) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		leader := s.b.Status().Leader
		switch {
		case leader == s.b.NodeID():
			h(w, r)
			return
		case leader == "":
			s.fail(w, r, meta.ErrNoLeader)
			return
		case r.Header.Get(ForwardedHeader) != "":
			s.fail(w, r, fmt.Errorf("%w: %s forwarded this request to %s, which follows %s (an election is settling)",
				meta.ErrNoLeader, r.Header.Get(ForwardedHeader), s.b.NodeID(), leader))
			return
		}
		addr, err := s.adminAddr(leader)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.proxy(w, r, leader, addr)
	}
}

// adminAddr is a registered node's admin address.
func (s *server) adminAddr(id string) (string, error) {
	n, err := s.b.FSM().Node(id)
	if err != nil {
		return "", &APIError{Status: http.StatusBadGateway, Code: CodeUnreachable,
			Message: fmt.Sprintf("admin: node %s is not registered, so its admin API is unknown: %v", id, err)}
	}
	if n.AdminAddr == "" {
		return "", &APIError{Status: http.StatusBadGateway, Code: CodeUnreachable,
			Message: fmt.Sprintf("admin: node %s registered no admin address", id)}
	}
	return n.AdminAddr, nil
}

// peerRequest builds a request for another node's admin API that carries
// the caller's credentials and request ID.
func (s *server) peerRequest(ctx context.Context, from *http.Request, method, addr, uri string, body []byte) (*http.Request, error) {
	base := strings.TrimRight(addr, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, method, base+uri, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for _, h := range []string{"Authorization", "Content-Type", "Accept", RequestIDHeader} {
		if v := from.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(ForwardedHeader, s.b.NodeID())
	return req, nil
}

// proxy relays r to the admin API at addr (node id) and copies the answer
// back. Failing to reach it is 502 unreachable.
func (s *server) proxy(w http.ResponseWriter, r *http.Request, id, addr string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.fail(w, r, invalid("admin: bad request body: %v", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), peerTimeout)
	defer cancel()
	req, err := s.peerRequest(ctx, r, r.Method, addr, r.URL.RequestURI(), body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp, err := s.http.Do(req)
	if err != nil {
		s.fail(w, r, &APIError{Status: http.StatusBadGateway, Code: CodeUnreachable,
			Message: fmt.Sprintf("admin: forwarding to the leader %s at %s: %v", id, addr, err)})
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Cache-Control", "Location", "WWW-Authenticate"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	// The status line is sent; a failure from here on can only cut the
	// answer short, which the client sees as an undecodable body.
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxResponse))
}

// callPeer sends one request to node id's admin API and decodes a 2xx JSON
// answer into out. A refusal comes back as its *APIError, a failure to
// reach the node as an *APIError with CodeUnreachable.
func (s *server) callPeer(ctx context.Context, from *http.Request, method, addr, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	req, err := s.peerRequest(ctx, from, method, addr, path, nil)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return &APIError{Status: http.StatusBadGateway, Code: CodeUnreachable, Message: fmt.Sprintf("admin: %s: %v", addr, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return &APIError{Status: http.StatusBadGateway, Code: CodeUnreachable, Message: fmt.Sprintf("admin: %s: reading the answer: %v", addr, err)}
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Code == "" {
			eb = ErrorBody{Code: CodeInternal, Message: fmt.Sprintf("admin: %s %s: HTTP %d: %s", method, addr+path, resp.StatusCode, snippet(data))}
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Code, Message: eb.Message}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &APIError{Status: http.StatusBadGateway, Code: CodeInternal, Message: fmt.Sprintf("admin: %s: undecodable answer: %v", addr, err)}
	}
	return nil
}

// leaderRepair is the leader's repair status for /v1/status: asked of the
// local healer on the leader, fetched from the leader's admin API on a
// follower. It returns nil when there is none to be had; the status screen
// is still useful without it.
func (s *server) leaderRepair(r *http.Request) *replication.RepairStatus {
	if s.healer == nil {
		return nil
	}
	leader := s.b.Status().Leader
	if leader == s.b.NodeID() {
		st := repairView(s.healer.RepairStatus())
		return &st
	}
	if leader == "" || r.Header.Get(ForwardedHeader) != "" {
		return nil
	}
	addr, err := s.adminAddr(leader)
	if err != nil {
		s.log.Debug("no repair status for /v1/status", "leader", leader, "err", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), statusRepairTimeout)
	defer cancel()
	var st replication.RepairStatus
	if err := s.callPeer(ctx, r, http.MethodGet, addr, PathRepair, &st); err != nil {
		s.log.Debug("no repair status for /v1/status", "leader", leader, "err", err)
		return nil
	}
	return &st
}

// scrubAll runs one scrub call on every registered node: local() here,
// the same method and path through each other node's admin API. Nodes are
// asked in parallel; the answer keeps the FSM's order (by ID). A node that
// fails has its error in its entry instead of a status.
func (s *server) scrubAll(r *http.Request, method, path string, local func() replication.ScrubStatus) ([]NodeScrub, error) {
	nodes, err := s.b.FSM().Nodes()
	if err != nil {
		return nil, err
	}
	out := make([]NodeScrub, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i] = NodeScrub{Node: n.ID, AZ: n.AZ}
		if n.ID == s.b.NodeID() {
			st := local()
			out[i].Scrub = &st
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr, err := s.adminAddr(n.ID)
			if err == nil {
				var st replication.ScrubStatus
				if err = s.callPeer(r.Context(), r, method, addr, path, &st); err == nil {
					out[i].Scrub = &st
					return
				}
			}
			_, eb := errorFor(err)
			out[i].Error = &eb
		}()
	}
	wg.Wait()
	return out, nil
}
