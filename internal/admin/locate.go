package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// Locator asks a node about its copy of a chunk. A Backend may implement it;
// without it GET .../locate still answers from the metadata, with every
// replica "unchecked" (check=1 is then 501 not_implemented).
type Locator interface {
	// StatReplica returns node's copy of chunk id: its version and length,
	// with the header and checksum table checked, and with verify every
	// data block re-read and checked too (the whole chunk is read). A
	// missing copy is an error matching chunkstore.ErrNotFound, a damaged
	// one chunkstore.ErrCorrupt. It asks this node's store directly and
	// any other node over internode RPC; it is safe for concurrent use.
	StatReplica(ctx context.Context, node string, id chunkstore.ID, verify bool) (chunkstore.Info, error)
}

// Locate bounds.
const (
	defaultLocateLimit = 256
	maxLocateLimit     = 10000
	// locateParallel bounds the replica checks in flight for one request.
	locateParallel = 16
	// replicaCheckTimeout bounds one replica check (a verify reads the
	// whole chunk, up to 64 MiB, from the node's disk and over the network).
	replicaCheckTimeout = 30 * time.Second
)

// handleLocate answers GET /v1/volumes/{name}/locate?path=P[&check=0|1]
// [&verify=1][&from=N][&limit=N]. It works on any node: the placement is
// read from the local metadata, the replicas are asked over internode RPC.
func (s *server) handleLocate(w http.ResponseWriter, r *http.Request) {
	v, ok := s.volumeInPath(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	check, err := boolParam(q.Get("check"), true)
	if err != nil {
		s.fail(w, r, invalid("admin: check: %v", err))
		return
	}
	verify, err := boolParam(q.Get("verify"), false)
	if err != nil {
		s.fail(w, r, invalid("admin: verify: %v", err))
		return
	}
	from, err := uintParam(q.Get("from"), 0, 1<<62)
	if err != nil {
		s.fail(w, r, invalid("admin: from: %v", err))
		return
	}
	limit, err := uintParam(q.Get("limit"), defaultLocateLimit, maxLocateLimit)
	if err != nil || limit == 0 {
		s.fail(w, r, invalid("admin: limit must be 1-%d", maxLocateLimit))
		return
	}
	check = check || verify
	if check && s.locator == nil {
		s.fail(w, r, errNotImplemented("way to ask nodes about their replicas (ask with check=0)"))
		return
	}
	path := q.Get("path")
	n, err := resolvePath(s.b.FSM(), v.ID, path)
	if errors.Is(err, meta.ErrNotDir) {
		err = &APIError{Status: http.StatusNotFound, Code: CodeNotFound,
			Message: fmt.Sprintf("admin: %s in volume %s: a path element is not a directory", path, v.Name)}
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("admin: %s in volume %s: %w", path, v.Name, err))
		return
	}
	out := LocateResponse{Volume: v.Name, Path: cleanPath(path), Inode: *n, Type: n.Type.String(),
		ChunkSize: v.ChunkSize, Replicas: v.Replicas, Chunks: []ChunkLocation{}, Checked: check, Verified: verify}
	if n.Type == meta.TypeFile {
		chunks, err := s.b.FSM().Chunks(v.ID, n.Ino)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		in, err := s.b.FSM().Inline(v.ID, n.Ino)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if in != nil {
			out.InlineBytes = len(in.Data)
		}
		nodes, err := s.b.FSM().Nodes()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		azOf := map[string]string{}
		for _, nd := range nodes {
			azOf[nd.ID] = nd.AZ
		}
		for _, ch := range chunks {
			if ch.Index < from {
				continue
			}
			if uint64(len(out.Chunks)) == limit {
				next := ch.Index
				out.Next = &next
				break
			}
			loc := ChunkLocation{Index: ch.Index, Offset: ch.Index * uint64(v.ChunkSize), Version: ch.Version,
				Length: ch.Length, Replicas: make([]ReplicaLocation, len(ch.Replicas))}
			for i, id := range ch.Replicas {
				loc.Replicas[i] = ReplicaLocation{Node: id, AZ: azOf[id], State: ReplicaUnchecked}
			}
			out.Chunks = append(out.Chunks, loc)
		}
		if check {
			s.checkReplicas(r.Context(), v.ID, n.Ino, out.Chunks, verify)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// checkReplicas asks every replica of chunks about its copy, a bounded
// number at a time, and fills in their states.
func (s *server) checkReplicas(ctx context.Context, vol uint32, ino uint64, chunks []ChunkLocation, verify bool) {
	sem := make(chan struct{}, locateParallel)
	var wg sync.WaitGroup
	for ci := range chunks {
		ch := &chunks[ci]
		for ri := range ch.Replicas {
			rep := &ch.Replicas[ri]
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				cctx, cancel := context.WithTimeout(ctx, replicaCheckTimeout)
				defer cancel()
				info, err := s.locator.StatReplica(cctx, rep.Node, replication.ChunkID(vol, ino, ch.Index), verify)
				*rep = replicaState(*rep, ch.Version, info, err)
			}()
		}
	}
	wg.Wait()
	for ci := range chunks {
		for _, rep := range chunks[ci].Replicas {
			if rep.State == ReplicaOK {
				chunks[ci].OK++
			}
		}
	}
}

// replicaState judges one replica's answer against the version the
// metadata names.
func replicaState(rep ReplicaLocation, want uint64, info chunkstore.Info, err error) ReplicaLocation {
	switch {
	case errors.Is(err, chunkstore.ErrNotFound):
		rep.State = ReplicaMissing
	case errors.Is(err, chunkstore.ErrCorrupt):
		rep.State, rep.Error = ReplicaCorrupt, err.Error()
	case err != nil:
		rep.State, rep.Error = ReplicaError, err.Error()
	case info.Version < want:
		rep.State = ReplicaStale
	case info.Version > want:
		rep.State = ReplicaAhead
	default:
		rep.State = ReplicaOK
	}
	if err == nil {
		rep.Version, rep.Length = info.Version, info.Length
	}
	return rep
}

// resolvePath walks p from the volume's root in the local metadata, as an
// NFS client would: "." and empty elements are skipped, ".." goes up, and
// symlinks are not followed (a path naming one locates the symlink).
func resolvePath(f *meta.FSM, vol uint32, p string) (*meta.Inode, error) {
	cur, err := f.Inode(vol, meta.RootIno)
	if err != nil {
		return nil, err
	}
	for _, name := range strings.Split(p, "/") {
		switch name {
		case "", ".":
			continue
		case "..":
			if cur, err = f.Inode(vol, cur.Parent); err != nil {
				return nil, err
			}
			continue
		}
		if cur.Type != meta.TypeDir {
			return nil, meta.ErrNotDir
		}
		if cur, err = f.Lookup(vol, cur.Ino, name); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

// cleanPath is p as resolved: absolute, without empty or "." elements.
func cleanPath(p string) string {
	var parts []string
	for _, name := range strings.Split(p, "/") {
		if name != "" && name != "." {
			parts = append(parts, name)
		}
	}
	return "/" + strings.Join(parts, "/")
}

func boolParam(s string, def bool) (bool, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseBool(s)
}

func uintParam(s string, def, limit uint64) (uint64, error) {
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > limit {
		return 0, fmt.Errorf("%q is not a number from 0 to %d", s, limit)
	}
	return v, nil
}
