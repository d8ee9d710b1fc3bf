package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// PathCheck runs the online consistency check (POST, body CheckOptions;
// answered by the leader).
const PathCheck = "/v1/check"

// Checker runs the online consistency check: the metadata against the
// chunk files of every node (replication.Checker). A Backend may implement
// it; without it POST /v1/check answers 501 not_implemented. The admin
// server calls it on the Raft leader only (a follower forwards the
// request); called elsewhere it returns meta.ErrNoLeader. An unknown
// volume is an error matching meta.ErrNoVolume.
type Checker interface {
	Check(ctx context.Context, opts replication.CheckOptions) (*replication.CheckReport, error)
}

// checkForwardTimeout bounds a check forwarded to the leader: a check
// reads every chunk's metadata and every node's file list, which takes far
// longer than the other forwarded calls on a large cluster. The caller's
// own deadline (fsrepctl check --check-timeout) usually ends it first.
const checkForwardTimeout = 6 * time.Hour

// routeCheck adds the check endpoint.
func (s *server) routeCheck(api *http.ServeMux) {
	checker, _ := s.b.(Checker)
	api.HandleFunc("POST "+PathCheck, func(w http.ResponseWriter, r *http.Request) {
		if checker == nil {
			s.fail(w, r, errNotImplemented("consistency checker"))
			return
		}
		s.handleCheck(w, r, checker)
	})
}

func (s *server) handleCheck(w http.ResponseWriter, r *http.Request, checker Checker) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.fail(w, r, invalid("admin: bad check body: %v", err))
		return
	}
	var opts replication.CheckOptions
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&opts); err != nil {
			s.fail(w, r, invalid("admin: bad check body: %v", err))
			return
		}
	}
	if opts.Examples < 0 || opts.Examples > replication.MaxCheckExamples {
		s.fail(w, r, invalid("admin: examples must be 0-%d", replication.MaxCheckExamples))
		return
	}
	if opts.Volume != "" {
		if err := meta.ValidVolumeName(opts.Volume); err != nil {
			s.fail(w, r, err)
			return
		}
		if _, err := s.b.FSM().Volume(opts.Volume); err != nil {
			s.fail(w, r, err)
			return
		}
	}

	leader := s.b.Status().Leader
	switch {
	case leader == "":
		s.fail(w, r, meta.ErrNoLeader)
		return
	case leader != s.b.NodeID() && r.Header.Get(ForwardedHeader) != "":
		s.fail(w, r, fmt.Errorf("%w: %s forwarded this request to %s, which follows %s (an election is settling)",
			meta.ErrNoLeader, r.Header.Get(ForwardedHeader), s.b.NodeID(), leader))
		return
	case leader != s.b.NodeID():
		s.forwardCheck(w, r, leader, body)
		return
	}

	rep, err := checker.Check(r.Context(), opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rep.Nodes, rep.Findings = nonNil(rep.Nodes), nonNil(rep.Findings)
	if opts.Repair {
		s.log.Info("consistency check with repair", "volume", opts.Volume, "problems", rep.Problems(),
			"dropped", rep.Repaired.Dropped, "kept", rep.Repaired.Kept, "deleted", rep.Repaired.Deleted,
			"failed", rep.Repaired.Failed)
	}
	writeJSON(w, http.StatusOK, rep)
}

// forwardCheck relays a check to the leader like leaderOnly does, without
// the short deadline of the other forwarded calls.
func (s *server) forwardCheck(w http.ResponseWriter, r *http.Request, leader string, body []byte) {
	addr, err := s.adminAddr(leader)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), checkForwardTimeout)
	defer cancel()
	req, err := s.peerRequest(ctx, r, r.Method, addr, r.URL.RequestURI(), body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp, err := (&http.Client{Transport: s.http.Transport}).Do(req)
	if err != nil {
		s.fail(w, r, &APIError{Status: http.StatusBadGateway, Code: CodeUnreachable,
			Message: fmt.Sprintf("admin: forwarding the check to the leader %s at %s: %v", leader, addr, err)})
		return
	}
	defer resp.Body.Close()
	if v := resp.Header.Get("Content-Type"); v != "" {
		w.Header().Set("Content-Type", v)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxResponse))
}

// Check runs the online consistency check through the node the client
// calls (forwarded to the leader). It can take long: give the client a
// timeout to match, or a context deadline.
func (c *Client) Check(ctx context.Context, opts replication.CheckOptions) (*replication.CheckReport, error) {
	var rep replication.CheckReport
	if err := c.do(ctx, http.MethodPost, PathCheck, opts, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}
