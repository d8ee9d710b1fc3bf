package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/fsrep/fsrep/meta"
)

// PathHandleKeyRotate moves the file handle MAC key to its next generation
// (POST, body HandleKeyRotateRequest; answered by any node, committed
// through Raft).
const PathHandleKeyRotate = "/v1/handles/rotate-key"

// Limits of a handle key rotation's grace time: NFS clients keep handles as
// long as they stay mounted, so the default is a day.
const (
	DefaultHandleKeyGrace = 24 * time.Hour
	MaxHandleKeyGrace     = time.Duration(meta.MaxHandleKeyGrace)
)

// HandleKeyRotator rotates the file handle MAC key: it returns the new
// generation and until when handles of the previous one stay valid.
type HandleKeyRotator interface {
	RotateHandleKey(ctx context.Context, grace time.Duration) (gen uint64, prevUntil time.Time, err error)
}

// HandleKeyRotateRequest is the body of POST /v1/handles/rotate-key.
type HandleKeyRotateRequest struct {
	// Grace is how long handles minted with the current key stay valid, as
	// a Go duration ("24h"); empty means 24 hours. At most 720h.
	Grace string `json:"grace,omitempty"`
}

// HandleKeyRotateResponse is the new generation.
type HandleKeyRotateResponse struct {
	Generation         uint64    `json:"generation"`
	PreviousValidUntil time.Time `json:"previous_valid_until"`
}

func (s *server) routeHandleKey(api *http.ServeMux) {
	rot, _ := s.b.(HandleKeyRotator)
	api.HandleFunc("POST "+PathHandleKeyRotate, func(w http.ResponseWriter, r *http.Request) {
		if rot == nil {
			s.fail(w, r, errNotImplemented("file handle key rotation"))
			return
		}
		var req HandleKeyRotateRequest
		if r.ContentLength != 0 {
			if err := decodeBody(w, r, "handle key rotation", &req); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		grace, err := parseGrace(req.Grace, DefaultHandleKeyGrace, MaxHandleKeyGrace)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		gen, until, err := rot.RotateHandleKey(r.Context(), grace)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, HandleKeyRotateResponse{Generation: gen, PreviousValidUntil: until})
	})
}

// RotateHandleKey moves the file handle MAC key to its next generation;
// handles of the current one stay valid for grace ("" = 24h).
func (c *Client) RotateHandleKey(ctx context.Context, grace string) (*HandleKeyRotateResponse, error) {
	var out HandleKeyRotateResponse
	if err := c.do(ctx, http.MethodPost, PathHandleKeyRotate, HandleKeyRotateRequest{Grace: grace}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
