package admin

import (
	"net/http"

	"github.com/fsrep/fsrep/meta"
)

// handleExport answers GET /v1/volumes/{name}/export with the volume's
// export options.
func (s *server) handleExport(w http.ResponseWriter, r *http.Request) {
	if v, ok := s.volumeInPath(w, r); ok {
		writeJSON(w, http.StatusOK, v.Export)
	}
}

// handleSetExport answers PUT /v1/volumes/{name}/export. The body is the
// whole meta.Export: a field left out takes its zero value, it does not keep
// the current one (fsrepctl reads, changes and sends back the whole object).
func (s *server) handleSetExport(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := meta.ValidVolumeName(name); err != nil {
		s.fail(w, r, err)
		return
	}
	var e meta.Export
	if err := decodeBody(w, r, "export", &e); err != nil {
		s.fail(w, r, err)
		return
	}
	// Apply checks it too; checking here keeps a bad request out of the log.
	if err := e.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	rid, err := requestID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cmd := &meta.SetExport{Name: name, Export: e}
	cmd.RequestID = rid
	res, err := s.propose(r, cmd)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	x := res.Volume.Export
	s.log.Info("volume export set", "volume", name, "read_only", x.ReadOnly, "clients", x.Clients,
		"squash", x.Squash, "anon_uid", x.AnonUID, "anon_gid", x.AnonGID)
	writeJSON(w, http.StatusOK, x)
}
