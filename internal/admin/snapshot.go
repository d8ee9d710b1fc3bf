package admin

import (
	"fmt"
	"net/http"
	"strconv"
)

// Headers of GET /v1/snapshot.
const (
	// AppliedIndexHeader is the last Raft index the copy contains.
	AppliedIndexHeader = "X-Fsrep-Applied-Index"
	// SnapshotNodeHeader names the node whose copy it is.
	SnapshotNodeHeader = "X-Fsrep-Node"
	// snapshotContentType: the body is a bbolt file, meta.db as it was.
	snapshotContentType = "application/octet-stream"
)

// handleSnapshot answers GET /v1/snapshot with a consistent copy of this
// node's meta.db, streamed from one bbolt read transaction (as a Raft
// snapshot is). The body is exactly a bbolt file; its size is in
// Content-Length, its applied index in X-Fsrep-Applied-Index, so a client
// can tell a cut-short download from a whole one. The format and how to
// restore it are in docs/backup.md.
func (s *server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	bk, err := s.b.FSM().Backup()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer bk.Close()
	h := w.Header()
	h.Set("Content-Type", snapshotContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.FormatInt(bk.Size(), 10))
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="fsrep-meta-%s-%d.db"`, s.b.NodeID(), bk.AppliedIndex()))
	h.Set(AppliedIndexHeader, strconv.FormatUint(bk.AppliedIndex(), 10))
	h.Set(SnapshotNodeHeader, s.b.NodeID())
	w.WriteHeader(http.StatusOK)
	n, err := bk.WriteTo(w)
	if err != nil {
		// The status line is sent: the client sees a body shorter than
		// Content-Length. Logged here because nobody else will hear of it.
		s.log.Warn("metadata snapshot cut short", "sent", n, "size", bk.Size(), "err", err)
		return
	}
	s.log.Info("metadata snapshot sent", "bytes", n, "applied_index", bk.AppliedIndex())
}
