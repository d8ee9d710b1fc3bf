package rpc

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// The chunk list call of the online check: a node's chunk files in ID
// order, a bounded page at a time, with each file's version, length and
// age (or that it is damaged).
//
//	GET /v1/chunk/list?from=ID&limit=N
//	-> {"files": [{"id", "version", "length", "age_ms", "corrupt", "detail"}], "next": ID, "done": bool}
const pathList = "/v1/chunk/list"

// ChunkLister serves the list call (replication.FileLister).
type ChunkLister interface {
	ListChunks(from chunkstore.ID, limit int) (replication.ChunkPage, error)
}

var _ ChunkLister = (*replication.FileLister)(nil)

type listFile struct {
	ID        string `json:"id"`
	Version   uint64 `json:"version,omitempty"`
	Length    int64  `json:"length,omitempty"`
	AgeMillis int64  `json:"age_ms"`
	Corrupt   bool   `json:"corrupt,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

type listReply struct {
	Files []listFile `json:"files"`
	Next  string     `json:"next,omitempty"`
	Done  bool       `json:"done"`
}

// EnableListing serves the list call beside the other calls. Call it
// before Serve.
func (s *Server) EnableListing(l ChunkLister) {
	mux := http.NewServeMux()
	mux.Handle("GET "+pathList, s.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var from chunkstore.ID
		if v := q.Get("from"); v != "" {
			id, err := chunkstore.ParseID(v)
			if err != nil {
				s.fail(w, errInvalidf("parameter from: %v", err))
				return
			}
			from = id
		}
		limit, err := strconv.Atoi(q.Get("limit"))
		if err != nil || limit < 1 || limit > replication.MaxListPage {
			s.fail(w, errInvalidf("parameter limit=%q must be 1-%d", q.Get("limit"), replication.MaxListPage))
			return
		}
		page, err := l.ListChunks(from, limit)
		if err != nil {
			s.fail(w, err)
			return
		}
		out := listReply{Files: make([]listFile, len(page.Files)), Done: page.Done}
		if !page.Done {
			out.Next = page.Next.String()
		}
		for i, f := range page.Files {
			out.Files[i] = listFile{ID: f.ID.String(), Version: f.Version, Length: f.Length,
				AgeMillis: f.Age.Milliseconds(), Corrupt: f.Corrupt, Detail: f.Detail}
		}
		writeJSON(w, out)
	})))
	// Everything else as before (it authenticates on its own).
	mux.Handle("/", s.srv.Handler)
	s.srv.Handler = mux
}

// ListChunks returns one page of node's chunk files from from on
// (inclusive), at most limit (1..replication.MaxListPage).
func (c *Client) ListChunks(ctx context.Context, nodeID string, from chunkstore.ID, limit int) (replication.ChunkPage, error) {
	addr, err := c.addr(nodeID)
	if err != nil {
		return replication.ChunkPage{}, err
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if from != (chunkstore.ID{}) {
		q.Set("from", from.String())
	}
	var out listReply
	if err := c.callJSON(ctx, http.MethodGet, addr, pathList, q, nil, &out); err != nil {
		return replication.ChunkPage{}, err
	}
	page := replication.ChunkPage{Files: make([]replication.ChunkFile, len(out.Files)), Done: out.Done}
	for i, f := range out.Files {
		id, err := chunkstore.ParseID(f.ID)
		if err != nil {
			return replication.ChunkPage{}, errInvalidf("%s listed a file named %q", nodeID, f.ID)
		}
		page.Files[i] = replication.ChunkFile{ID: id, Version: f.Version, Length: f.Length,
			Age: time.Duration(f.AgeMillis) * time.Millisecond, Corrupt: f.Corrupt, Detail: f.Detail}
	}
	if !out.Done {
		if page.Next, err = chunkstore.ParseID(out.Next); err != nil {
			return replication.ChunkPage{}, errInvalidf("%s answered a page without a next file", nodeID)
		}
	}
	return page, nil
}

// errInvalidf is a meta.ErrInvalid with a message.
func errInvalidf(format string, args ...any) error {
	return fmt.Errorf("%w: rpc: %s", meta.ErrInvalid, fmt.Sprintf(format, args...))
}
