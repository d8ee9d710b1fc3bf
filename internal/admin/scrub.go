package admin

import (
	"net/http"
	"strconv"

	"github.com/fsrep/fsrep/replication"
)

// Every node scrubs its own chunks, so the scrub endpoints answer for the
// node serving them. With ?all=1 the node asks every registered node
// (itself directly, the others through their admin API) and answers a
// []NodeScrub; a request forwarded by another node is never fanned out
// again.

// wantAll reports whether the request asks for every node.
func wantAll(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("all")
	if v == "" {
		return false, nil
	}
	all, err := strconv.ParseBool(v)
	if err != nil {
		return false, invalid("admin: all=%q is not a boolean", v)
	}
	return all && r.Header.Get(ForwardedHeader) == "", nil
}

func (s *server) handleScrub(w http.ResponseWriter, r *http.Request) {
	s.scrubAction(w, r, PathScrub, func() {})
}

func (s *server) handleScrubStart(w http.ResponseWriter, r *http.Request) {
	s.scrubAction(w, r, PathScrubStart, s.scrubber.StartScrub)
}

func (s *server) handlePauseScrub(paused bool) http.HandlerFunc {
	path := PathScrubResume
	if paused {
		path = PathScrubPause
	}
	return func(w http.ResponseWriter, r *http.Request) {
		s.scrubAction(w, r, path, func() { s.scrubber.PauseScrub(paused) })
	}
}

// scrubAction does act on this node (or on every node with ?all=1) and
// answers the scrubber status after it.
func (s *server) scrubAction(w http.ResponseWriter, r *http.Request, path string, act func()) {
	all, err := wantAll(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	local := func() replication.ScrubStatus {
		act()
		return s.scrubber.ScrubStatus()
	}
	if r.Method != http.MethodGet {
		s.log.Info("scrub control", "action", path, "all", all)
	}
	if !all {
		writeJSON(w, http.StatusOK, local())
		return
	}
	out, err := s.scrubAll(r, r.Method, path, local)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
