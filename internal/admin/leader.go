package admin

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/fsrep/fsrep/meta"
)

// LeaderTransferer hands the metadata Raft leadership to another voter
// (meta.Node.TransferLeadership). A Backend may implement it; without it
// POST /v1/leader/transfer answers 501 not_implemented. The server calls it
// on the leader only (a follower forwards the request to the leader's admin
// API).
type LeaderTransferer interface {
	// TransferLeadership hands the leadership to voter id ("" lets Raft
	// pick) and returns once Raft has done so or given up. A node that is
	// not the leader returns an error matching meta.ErrNoLeader.
	TransferLeadership(ctx context.Context, id string) error
}

// transferSettle bounds how long the old leader waits, after Raft reports
// the transfer done, to hear from the new leader, so that its answer can
// name it.
const transferSettle = 10 * time.Second

func (s *server) withTransferer(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.transferer == nil {
			s.fail(w, r, errNotImplemented("way to transfer the Raft leadership"))
			return
		}
		h(w, r)
	}
}

// handleTransfer answers POST /v1/leader/transfer on the leader. The body
// is optional ({} or none: any voter).
func (s *server) handleTransfer(w http.ResponseWriter, r *http.Request) {
	var req TransferRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, "leader-transfer", &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	st := s.b.Status()
	self := s.b.NodeID()
	if req.Node != "" && req.Node != self {
		switch {
		case slices.Contains(st.NonVoters, req.Node):
			s.fail(w, r, invalid("admin: %s is not a Raft voter, so it cannot lead (voters: %v)", req.Node, st.Voters))
			return
		case !slices.Contains(st.Voters, req.Node):
			s.fail(w, r, &APIError{Status: http.StatusNotFound, Code: CodeNotFound,
				Message: fmt.Sprintf("admin: %s is not a member of the Raft group (voters: %v)", req.Node, st.Voters)})
			return
		}
	}
	if req.Node == self {
		writeJSON(w, http.StatusOK, TransferResponse{Previous: self, Leader: self, Term: st.Term})
		return
	}
	if err := s.transferer.TransferLeadership(r.Context(), req.Node); err != nil {
		s.fail(w, r, err)
		return
	}
	// Raft reports the transfer done when this node stepped down; wait to
	// hear the new leader's name so that the answer is useful.
	ctx, cancel := context.WithTimeout(r.Context(), transferSettle)
	defer cancel()
	for {
		st = s.b.Status()
		if st.Leader != "" && st.Leader != self {
			break
		}
		select {
		case <-ctx.Done():
			s.fail(w, r, fmt.Errorf("%w: %s stepped down, but no new leader was heard of within %v", meta.ErrNoLeader, self, transferSettle))
			return
		case <-time.After(20 * time.Millisecond): // poll interval
		}
	}
	s.log.Info("leadership transferred", "from", self, "to", st.Leader, "asked_for", req.Node, "term", st.Term)
	writeJSON(w, http.StatusOK, TransferResponse{Previous: self, Leader: st.Leader, Term: st.Term})
}
