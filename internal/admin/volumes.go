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
	if req.QuotaBytes < 0 || req.QuotaFiles < 0 {
		return nil, invalid("admin: quotas must not be negative (0 means none)")
	}
	if err := s.checkPolicy(req.Replicas, req.WriteQuorum, req.AllowUnsafePlacement); err != nil {
		return nil, err
	}
	return &meta.CreateVolume{
		Name: req.Name, Replicas: req.Replicas, WriteQuorum: req.WriteQuorum, ChunkSize: req.ChunkSize,
		RootMode: uint32(mode), RootUID: 0, RootGID: 0, Export: req.Export,
		QuotaBytes: req.QuotaBytes, QuotaFiles: req.QuotaFiles,
	}, nil
}

// checkPolicy checks that r replicas with write quorum wq survive the loss
// of one AZ over the AZs that have nodes now; allowUnsafe lets an unsafe
// (but valid) policy through.
func (s *server) checkPolicy(r, wq int, allowUnsafe bool) error {
	nodes, err := s.b.FSM().Nodes()
	if err != nil {
		return err
	}
	azs := distinctAZs(nodes)
	err = replication.CheckPolicy(r, wq, max(azs, 1))
	if err == nil && azs == 0 {
		err = fmt.Errorf("%w: no registered nodes to place replicas on", replication.ErrUnsafePlacement)
	}
	if err != nil && !(allowUnsafe && errors.Is(err, replication.ErrUnsafePlacement)) {
		return err
	}
	return nil
}

// handleSetVolume answers PATCH /v1/volumes/{name}: it changes the settings
// the body names (meta.SetVolume) and answers the volume after the change.
func (s *server) handleSetVolume(w http.ResponseWriter, r *http.Request) {
	var req SetVolumeRequest
	if err := decodeBody(w, r, "set-volume", &req); err != nil {
		s.fail(w, r, err)
		return
	}
	v, ok := s.volumeInPath(w, r)
	if !ok {
		return
	}
	cmd, err := s.setCommand(v, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if cmd.RequestID, err = requestID(r); err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.propose(r, cmd)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	nv := res.Volume
	s.log.Info("volume set", "volume", nv.Name, "replicas", nv.Replicas, "write_quorum", nv.WriteQuorum,
		"quota_bytes", nv.QuotaBytes, "quota_files", nv.QuotaFiles, "export_changed", req.Export != nil,
		"unsafe_placement_allowed", req.AllowUnsafePlacement)
	writeJSON(w, http.StatusOK, nv)
}

// setCommand checks a set-volume request against the volume as this node
// knows it and turns it into the command. The replication policy is checked
// whenever the request touches it, so that an unsafe policy is refused
// unless allowed, as at create.
func (s *server) setCommand(v *meta.Volume, req SetVolumeRequest) (*meta.SetVolume, error) {
	if req.Replicas == nil && req.WriteQuorum == nil && req.QuotaBytes == nil && req.QuotaFiles == nil && req.Export == nil {
		return nil, invalid("admin: nothing to change: give replicas, write_quorum, quota_bytes, quota_files or export")
	}
	cmd := &meta.SetVolume{Name: v.Name, QuotaBytes: req.QuotaBytes, QuotaFiles: req.QuotaFiles, Export: req.Export}
	if (req.QuotaBytes != nil && *req.QuotaBytes < 0) || (req.QuotaFiles != nil && *req.QuotaFiles < 0) {
		return nil, invalid("admin: quotas must not be negative (0 removes a quota)")
	}
	if req.Export != nil {
		if err := req.Export.Validate(); err != nil {
			return nil, err
		}
	}
	if req.Replicas != nil || req.WriteQuorum != nil {
		r, wq := v.Replicas, v.WriteQuorum
		if req.Replicas != nil {
			r = *req.Replicas
			wq = replication.DefaultWriteQuorum(r)
		}
		if req.WriteQuorum != nil {
			wq = *req.WriteQuorum
		}
		if err := s.checkPolicy(r, wq, req.AllowUnsafePlacement); err != nil {
			return nil, err
		}
		// Both are sent, so the command does not depend on what the
		// leader's copy says the other one is.
		cmd.Replicas, cmd.WriteQuorum = &r, &wq
	}
	return cmd, nil
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
