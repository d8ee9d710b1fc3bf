package rpc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"strconv"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// The healing protocol: heartbeats to the leader, checksummed whole-chunk
// copies for re-replication, and the leader's repair controls (so that a
// request reaching any node can be forwarded to the leader).
const (
	pathHeartbeat  = "/v1/heal/heartbeat"
	pathHealChunk  = "/v1/heal/chunk"
	pathHealStatus = "/v1/heal/status"
	pathHealPause  = "/v1/heal/pause"
	pathHealRemove = "/v1/heal/remove"
	// crcHeader carries the CRC32C (Castagnoli) of a chunk body as 8 hex
	// digits: the sender's on a put, the server's on a fetch.
	crcHeader     = "X-Chunk-Crc32c"
	versionHeader = "X-Chunk-Version"
)

// HealService is the leader side of healing. Every method returns
// meta.ErrNoLeader when this node is not the leader: the peer that sent the
// request believed it was, and retries after finding the new one.
type HealService interface {
	LeaderHeartbeat(ctx context.Context, hb replication.Heartbeat) (replication.HeartbeatReply, error)
	LeaderRepairStatus(ctx context.Context) (replication.RepairStatus, error)
	LeaderPauseRepair(ctx context.Context, paused bool) error
	LeaderRemoveNode(ctx context.Context, id string) error
}

// Checksum is the CRC32C of b, as the healing protocol carries it.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

func formatCRC(c uint32) string {
	var b [4]byte
	b[0], b[1], b[2], b[3] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}

func parseCRC(s string) (uint32, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return 0, fmt.Errorf("%w: %s %q is not 8 hex digits", meta.ErrInvalid, crcHeader, s)
	}
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

// heal error names on the wire (Kind "heal").
func healErrors() map[string]error {
	return map[string]error{
		"only_copy":   replication.ErrOnlyCopy,
		"not_drained": replication.ErrNotDrained,
	}
}

// EnableHealing serves the healing protocol beside the other calls. Call it
// before Serve.
func (s *Server) EnableHealing(svc HealService) {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.auth(h)) }
	handle("GET "+pathHealChunk, s.handleHealFetch)
	handle("POST "+pathHealChunk, s.handleHealPut)
	handle("POST "+pathHeartbeat, func(w http.ResponseWriter, r *http.Request) {
		var hb replication.Heartbeat
		if !s.decodeHeal(w, r, &hb) {
			return
		}
		reply, err := svc.LeaderHeartbeat(r.Context(), hb)
		if err != nil {
			s.failHeal(w, err)
			return
		}
		writeJSON(w, reply)
	})
	handle("GET "+pathHealStatus, func(w http.ResponseWriter, r *http.Request) {
		st, err := svc.LeaderRepairStatus(r.Context())
		if err != nil {
			s.failHeal(w, err)
			return
		}
		writeJSON(w, st)
	})
	handle("POST "+pathHealPause, func(w http.ResponseWriter, r *http.Request) {
		var req pauseRequest
		if !s.decodeHeal(w, r, &req) {
			return
		}
		if err := svc.LeaderPauseRepair(r.Context(), req.Paused); err != nil {
			s.failHeal(w, err)
			return
		}
		writeJSON(w, req)
	})
	handle("POST "+pathHealRemove, func(w http.ResponseWriter, r *http.Request) {
		var req removeRequest
		if !s.decodeHeal(w, r, &req) {
			return
		}
		if err := svc.LeaderRemoveNode(r.Context(), req.ID); err != nil {
			s.failHeal(w, err)
			return
		}
		writeJSON(w, req)
	})
	// Everything else as before (it authenticates on its own).
	mux.Handle("/", s.srv.Handler)
	s.srv.Handler = mux
}

type pauseRequest struct {
	Paused bool `json:"paused"`
}

type removeRequest struct {
	ID string `json:"id"`
}

func (s *Server) decodeHeal(w http.ResponseWriter, r *http.Request, out any) bool {
	body, err := readBody(r, 64<<10)
	if err == nil {
		if jerr := json.Unmarshal(body, out); jerr != nil {
			err = fmt.Errorf("%w: %v", meta.ErrInvalid, jerr)
		}
	}
	if err != nil {
		s.fail(w, err)
		return false
	}
	return true
}

func (s *Server) failHeal(w http.ResponseWriter, err error) {
	for name, sentinel := range healErrors() {
		if errors.Is(err, sentinel) {
			writeErr(w, http.StatusConflict, wireError{Kind: "heal", Name: name, Msg: err.Error()})
			return
		}
	}
	s.fail(w, err)
}

// handleHealFetch sends a whole chunk with its version and the CRC32C of
// the bytes read (the chunk store verified its block checksums first).
func (s *Server) handleHealFetch(w http.ResponseWriter, r *http.Request) {
	p, err := parseChunkParams(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	data, version, err := s.chunks.ReadAll(p.id)
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(versionHeader, strconv.FormatUint(version, 10))
	w.Header().Set(crcHeader, formatCRC(Checksum(data)))
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

// handleHealPut stores a whole chunk only if the bytes received match the
// sender's CRC32C, then reads them back and answers the CRC32C of what it
// stored: the copy is verified on arrival and on disk before the leader
// commits it to the replica set.
func (s *Server) handleHealPut(w http.ResponseWriter, r *http.Request) {
	p, err := parseChunkParams(r, "version")
	if err != nil {
		s.fail(w, err)
		return
	}
	want, err := parseCRC(r.Header.Get(crcHeader))
	if err != nil {
		s.fail(w, err)
		return
	}
	data, err := readBody(r, maxChunk)
	if err != nil {
		s.fail(w, err)
		return
	}
	if got := Checksum(data); got != want {
		s.fail(w, fmt.Errorf("rpc: chunk %s arrived with CRC32C %08x, sender computed %08x: %w", p.id, got, want, chunkstore.ErrCorrupt))
		return
	}
	if err := s.chunks.Put(p.id, p.version, data); err != nil {
		s.fail(w, err)
		return
	}
	back, version, err := s.chunks.ReadAll(p.id)
	if err != nil {
		s.fail(w, err)
		return
	}
	if version != p.version {
		// Another writer replaced the file since our put; not ours to judge.
		s.fail(w, fmt.Errorf("rpc: chunk %s is at version %d after storing %d: %w", p.id, version, p.version, chunkstore.ErrVersionMismatch))
		return
	}
	if got := Checksum(back); got != want {
		s.fail(w, fmt.Errorf("rpc: chunk %s reads back with CRC32C %08x, stored %08x: %w", p.id, got, want, chunkstore.ErrCorrupt))
		return
	}
	writeJSON(w, healPutReply{CRC: formatCRC(want), Length: int64(len(back))})
}

type healPutReply struct {
	CRC    string `json:"crc32c"`
	Length int64  `json:"length"`
}
