package rpc

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/internal/pki"
	"github.com/fsrep/fsrep/meta"
)

// MetaService is what the server needs from the metadata node.
type MetaService interface {
	ApplyForwarded(ctx context.Context, entry []byte) (*meta.Result, error)
	LeaderAppliedIndex() (uint64, error)
}

// Joiner admits a new node into the cluster (leader side).
type Joiner interface {
	Join(ctx context.Context, info meta.NodeInfo) error
}

// ChunkService is the local chunk store as the server uses it.
type ChunkService interface {
	Write(id chunkstore.ID, baseVersion, newVersion uint64, baseLength, off int64, data []byte) (int64, error)
	Read(id chunkstore.ID, version uint64, off int64, length int) ([]byte, error)
	ReadAll(id chunkstore.ID) ([]byte, uint64, error)
	Put(id chunkstore.ID, version uint64, data []byte) error
	Inspect(id chunkstore.ID) (chunkstore.Info, error)
	DeleteVersion(id chunkstore.ID, version uint64, minAge time.Duration) error
}

// maxMinAgeMillis bounds the minimum age of a conditional chunk delete.
const maxMinAgeMillis = 100 * 365 * 24 * 3600 * 1000

// Limits on request bodies: a command entry, and a whole chunk.
const (
	maxEntry = 4 << 20
	maxChunk = meta.MaxChunkSize + 1<<20
)

// Server serves internode RPC.
type Server struct {
	tls     *tls.Config
	tlsFail func(net.Addr, error)
	token   string
	meta    MetaService
	join    Joiner
	chunks  ChunkService
	log     *slog.Logger
	srv     *http.Server
}

// NewServer builds a server; call Serve with a listener. tlsConf is the
// node's mutual-TLS server configuration (pki.Identity.ServerConfig): a
// caller without a certificate from the cluster CA is refused in the
// handshake, before the token is even looked at.
func NewServer(secret []byte, tlsConf *tls.Config, m MetaService, j Joiner, c ChunkService, log *slog.Logger) *Server {
	s := &Server{tls: tlsConf, token: Token(secret), meta: m, join: j, chunks: c, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathApply, s.handleApply)
	mux.HandleFunc("GET "+pathIndex, s.handleIndex)
	mux.HandleFunc("POST "+pathJoin, s.handleJoin)
	mux.HandleFunc("PUT "+pathChunk, s.handleChunkWrite)
	mux.HandleFunc("POST "+pathChunk, s.handleChunkPut)
	mux.HandleFunc("GET "+pathChunk, s.handleChunkRead)
	mux.HandleFunc("DELETE "+pathChunk, s.handleChunkDelete)
	mux.HandleFunc("GET "+pathStat, s.handleChunkStat)
	s.srv = &http.Server{
		Handler:           s.auth(mux),
		ReadHeaderTimeout: 10 * time.Second,
		// A whole chunk body must arrive within ReadTimeout: a peer (or an
		// unauthenticated client) cannot hold a connection open by stalling.
		ReadTimeout: 2 * time.Minute,
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// OnTLSFailure sets a function that hears every failed TLS handshake
// (a caller without a certificate from the cluster CA); call before Serve.
func (s *Server) OnTLSFailure(f func(remote net.Addr, err error)) { s.tlsFail = f }

// handshakeTimeout bounds a caller's TLS handshake.
const handshakeTimeout = 10 * time.Second

// Serve serves on l until Close.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(pki.Listener(l, s.tls, handshakeTimeout, s.tlsFail))
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// Close stops the server and its open connections.
func (s *Server) Close() error { return s.srv.Close() }

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get(authHeader)
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
			writeErr(w, http.StatusUnauthorized, wireError{Kind: "other", Msg: "rpc: bad or missing internode token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeErr(w http.ResponseWriter, status int, e wireError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	status, e := toWire(err)
	writeErr(w, status, e)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds %d", meta.ErrInvalid, r.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: body exceeds %d bytes", meta.ErrInvalid, limit)
	}
	return b, nil
}

func (s *Server) handleApply(w http.ResponseWriter, r *http.Request) {
	entry, err := readBody(r, maxEntry)
	if err != nil {
		s.fail(w, err)
		return
	}
	res, err := s.meta.ApplyForwarded(r.Context(), entry)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, res)
}

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	idx, err := s.meta.LeaderAppliedIndex()
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, map[string]uint64{"index": idx})
}

func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, 64<<10)
	if err != nil {
		s.fail(w, err)
		return
	}
	var info meta.NodeInfo
	if err := json.Unmarshal(body, &info); err != nil {
		s.fail(w, fmt.Errorf("%w: join request: %v", meta.ErrInvalid, err))
		return
	}
	if err := s.join.Join(r.Context(), info); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, map[string]string{"status": "joined"})
}

// chunkStat is the reply of a chunk stat call.
type chunkStat struct {
	Version   uint64 `json:"version"`
	Length    int64  `json:"length"`
	AgeMillis int64  `json:"age_ms"`
}

// chunkParams parses the query of a chunk call.
type chunkParams struct {
	id                   chunkstore.ID
	base, version        uint64
	baseLen, off, length int64
	minAgeMillis         int64
}

func parseChunkParams(r *http.Request, need ...string) (chunkParams, error) {
	q := r.URL.Query()
	var p chunkParams
	id, err := chunkstore.ParseID(q.Get("id"))
	if err != nil {
		return p, fmt.Errorf("%w: chunk id: %v", meta.ErrInvalid, err)
	}
	p.id = id
	for _, name := range need {
		v, err := strconv.ParseInt(q.Get(name), 10, 64)
		if err != nil || v < 0 {
			return p, fmt.Errorf("%w: parameter %s=%q", meta.ErrInvalid, name, q.Get(name))
		}
		switch name {
		case "base":
			p.base = uint64(v)
		case "version":
			p.version = uint64(v)
		case "baselen":
			p.baseLen = v
		case "off":
			p.off = v
		case "len":
			p.length = v
		case "min_age_ms":
			p.minAgeMillis = v
		}
	}
	return p, nil
}

func (s *Server) handleChunkWrite(w http.ResponseWriter, r *http.Request) {
	p, err := parseChunkParams(r, "base", "version", "baselen", "off")
	if err != nil {
		s.fail(w, err)
		return
	}
	data, err := readBody(r, maxChunk)
	if err != nil {
		s.fail(w, err)
		return
	}
	n, err := s.chunks.Write(p.id, p.base, p.version, p.baseLen, p.off, data)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, map[string]int64{"length": n})
}

func (s *Server) handleChunkPut(w http.ResponseWriter, r *http.Request) {
	p, err := parseChunkParams(r, "version")
	if err != nil {
		s.fail(w, err)
		return
	}
	data, err := readBody(r, maxChunk)
	if err != nil {
		s.fail(w, err)
		return
	}
	if err := s.chunks.Put(p.id, p.version, data); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, map[string]int64{"length": int64(len(data))})
}

func (s *Server) handleChunkRead(w http.ResponseWriter, r *http.Request) {
	var (
		data    []byte
		version uint64
	)
	if r.URL.Query().Get("all") == "1" {
		p, err := parseChunkParams(r)
		if err != nil {
			s.fail(w, err)
			return
		}
		if data, version, err = s.chunks.ReadAll(p.id); err != nil {
			s.fail(w, err)
			return
		}
	} else {
		p, err := parseChunkParams(r, "version", "off", "len")
		if err != nil {
			s.fail(w, err)
			return
		}
		if p.length > maxChunk {
			s.fail(w, fmt.Errorf("%w: read of %d bytes", meta.ErrInvalid, p.length))
			return
		}
		if data, err = s.chunks.Read(p.id, p.version, p.off, int(p.length)); err != nil {
			s.fail(w, err)
			return
		}
		version = p.version
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Chunk-Version", strconv.FormatUint(version, 10))
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	_, _ = w.Write(data)
}

func (s *Server) handleChunkDelete(w http.ResponseWriter, r *http.Request) {
	p, err := parseChunkParams(r, "version", "min_age_ms")
	if err != nil {
		s.fail(w, err)
		return
	}
	// A bound keeps the conversion from overflowing: no deletion waits
	// for a file older than a century.
	if p.minAgeMillis > maxMinAgeMillis {
		s.fail(w, fmt.Errorf("%w: min_age_ms=%d", meta.ErrInvalid, p.minAgeMillis))
		return
	}
	if err := s.chunks.DeleteVersion(p.id, p.version, time.Duration(p.minAgeMillis)*time.Millisecond); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, map[string]string{"status": "deleted"})
}

func (s *Server) handleChunkStat(w http.ResponseWriter, r *http.Request) {
	p, err := parseChunkParams(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	info, err := s.chunks.Inspect(p.id)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, chunkStat{Version: info.Version, Length: info.Length, AgeMillis: info.Age.Milliseconds()})
}
