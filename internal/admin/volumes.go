package admin

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// RequestIDHeader optionally carries the request ID of a mutating call, so a
// client that retries after a timeout cannot apply the change twice.
const RequestIDHeader = "X-Request-ID"

func (s *server) handleVolumes(w http.ResponseWriter, r *http.Request) {
	vols, err := s.b.FSM().Volumes()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(vols))
}

func (s *server) handleVolume(w http.ResponseWriter, r *http.Request) {
	if v, ok := s.volumeInPath(w, r); ok {
		writeJSON(w, http.StatusOK, v)
	}
}

// volumeInPath returns the volume the request's {name} names, or answers
// the error itself and returns false.
func (s *server) volumeInPath(w http.ResponseWriter, r *http.Request) (*meta.Volume, bool) {
	name := r.PathValue("name")
	if err := meta.ValidVolumeName(name); err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	v, err := s.b.FSM().Volume(name)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return v, true
}

func (s *server) handleCreateVolume(w http.ResponseWriter, r *http.Request) {
	var req CreateVolumeRequest
	if err := decodeBody(w, r, "create-volume", &req); err != nil {
		s.fail(w, r, err)
		return
	}
	cmd, err := s.createCommand(req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cmd.RequestID, err = requestID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.propose(r, cmd)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("volume created", "volume", res.Volume.Name, "id", res.Volume.ID, "replicas", res.Volume.Replicas,
		"write_quorum", res.Volume.WriteQuorum, "unsafe_placement_allowed", req.AllowUnsafePlacement)
	w.Header().Set("Location", PathVolumes+"/"+res.Volume.Name)
	writeJSON(w, http.StatusCreated, res.Volume)
}

// createCommand fills in the defaults of req and checks that the policy
// survives the loss of one AZ over the AZs that have nodes now.
func (s *server) createCommand(req CreateVolumeRequest) (*meta.CreateVolume, error) {
	if err := meta.ValidVolumeName(req.Name); err != nil {
		return nil, err
	}
	if req.Replicas == 0 {
		req.Replicas = DefaultReplicas
	}
	if req.WriteQuorum == 0 {
		req.WriteQuorum = replication.DefaultWriteQuorum(req.Replicas)
	}
	if req.ChunkSize == 0 {
		req.ChunkSize = DefaultChunkSize
	}
	if req.ChunkSize < meta.MinChunkSize || req.ChunkSize > meta.MaxChunkSize {
		return nil, invalid("admin: chunk size %d outside [%d, %d]", req.ChunkSize, meta.MinChunkSize, meta.MaxChunkSize)
	}
	if req.Export != nil {
		// Apply checks it too; checking here keeps a bad request out of the log.
		if err := req.Export.Validate(); err != nil {
			return nil, err
		}
	}
	mode := DefaultRootMode
	if req.RootMode != nil {
		mode = *req.RootMode
	}

	nodes, err := s.b.FSM().Nodes()
	if err != nil {
		return nil, err
	}
	azs := distinctAZs(nodes)
	err = replication.CheckPolicy(req.Replicas, req.WriteQuorum, max(azs, 1))
	if err == nil && azs == 0 {
		err = fmt.Errorf("%w: no registered nodes to place replicas on", replication.ErrUnsafePlacement)
	}
	if err != nil && !(req.AllowUnsafePlacement && errors.Is(err, replication.ErrUnsafePlacement)) {
		return nil, err
	}
	return &meta.CreateVolume{
		Name: req.Name, Replicas: req.Replicas, WriteQuorum: req.WriteQuorum, ChunkSize: req.ChunkSize,
		RootMode: uint32(mode), RootUID: 0, RootGID: 0, Export: req.Export,
	}, nil
}

func (s *server) handleDeleteVolume(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := meta.ValidVolumeName(name); err != nil {
		s.fail(w, r, err)
		return
	}
	rid, err := requestID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cmd := &meta.DeleteVolume{Name: name}
	cmd.RequestID = rid
	res, err := s.propose(r, cmd)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("volume deleted", "volume", name, "id", res.Volume.ID)
	writeJSON(w, http.StatusOK, res.Volume)
}

// propose commits cmd and turns a failed precondition into an error. Every
// volume command (create, delete, set-export) returns the volume it touched.
func (s *server) propose(r *http.Request, cmd meta.Command) (*meta.Result, error) {
	res, err := s.b.Propose(r.Context(), cmd)
	if err != nil {
		return nil, err
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	if res == nil || res.Volume == nil {
		return nil, fmt.Errorf("admin: %s applied without returning its volume", cmd.Type())
	}
	return res, nil
}

// requestID returns the client's request ID, or "" to let Propose pick one.
func requestID(r *http.Request) (string, error) {
	id := r.Header.Get(RequestIDHeader)
	if len(id) > 128 {
		return "", invalid("admin: %s longer than 128 bytes", RequestIDHeader)
	}
	return id, nil
}
