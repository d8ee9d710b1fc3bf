// Package rpc is fsrep's internode RPC: leader forwarding, the read barrier,
// cluster join, and chunk transfer between nodes. It is HTTP/1.1 over
// mutual TLS (internal/pki: both ends hold a certificate from the cluster
// CA) with a bearer token derived from the cluster secret on top; errors travel as
// stable codes (never strings to match) and come back as the sentinel
// errors of meta and chunkstore.
package rpc

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	iofs "io/fs"
	"net/http"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// Header names and paths of the protocol (version 1).
const (
	authHeader = "Authorization"
	pathApply  = "/v1/meta/apply"
	pathIndex  = "/v1/meta/index"
	pathJoin   = "/v1/cluster/join"
	pathChunk  = "/v1/chunk"
	pathStat   = "/v1/chunk/stat"
)

// Token derives the internode bearer token from the cluster secret.
func Token(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("fsrep internode v1"))
	return "Bearer " + hex.EncodeToString(m.Sum(nil))
}

// wireError is the JSON body of every failed call.
type wireError struct {
	Kind string    `json:"kind"` // "meta", "chunk" or "other"
	Code meta.Code `json:"code,omitempty"`
	Name string    `json:"name,omitempty"` // chunk error name
	Msg  string    `json:"msg"`
}

// chunk error names on the wire.
var chunkErrors = map[string]error{
	"not_found":        chunkstore.ErrNotFound,
	"version_mismatch": chunkstore.ErrVersionMismatch,
	"corrupt":          chunkstore.ErrCorrupt,
	"too_large":        chunkstore.ErrTooLarge,
	"too_recent":       chunkstore.ErrTooRecent,
	// The peer's chunk disk is full (or below its reserve): the caller
	// gets chunkstore.ErrNoSpace, which matches syscall.ENOSPC, so a write
	// that lacks its quorum for this reason answers NFS3ERR_NOSPC rather
	// than JUKEBOX (retrying would not help until space is freed).
	"no_space": chunkstore.ErrNoSpace,
}

func toWire(err error) (int, wireError) {
	for name, sentinel := range chunkErrors {
		if errors.Is(err, sentinel) {
			status := http.StatusConflict
			switch name {
			case "not_found":
				status = http.StatusNotFound
			case "no_space":
				status = http.StatusInsufficientStorage
			}
			return status, wireError{Kind: "chunk", Name: name, Msg: err.Error()}
		}
	}
	var ce *meta.CodedError
	if errors.As(err, &ce) {
		status := http.StatusConflict
		switch ce.Code {
		case meta.CodeNoLeader:
			status = http.StatusServiceUnavailable
		case meta.CodeInvalid:
			status = http.StatusBadRequest
		}
		return status, wireError{Kind: "meta", Code: ce.Code, Msg: err.Error()}
	}
	// The chunk store reports bad arguments (version 0, a negative offset)
	// with the standard sentinel: the caller's mistake, not the server's,
	// and it must still match io/fs.ErrInvalid on the caller's side.
	if errors.Is(err, iofs.ErrInvalid) {
		return http.StatusBadRequest, wireError{Kind: "meta", Code: meta.CodeInvalid, Msg: err.Error()}
	}
	return http.StatusInternalServerError, wireError{Kind: "other", Msg: err.Error()}
}

// remoteError keeps the peer's message and matches the local sentinel.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

func fromWire(w wireError, status int) error {
	switch w.Kind {
	case "chunk":
		if s, ok := chunkErrors[w.Name]; ok {
			return &remoteError{msg: w.Msg, sentinel: s}
		}
	case "meta":
		return meta.ErrorFor(w.Code, w.Msg)
	}
	if w.Msg == "" {
		w.Msg = http.StatusText(status)
	}
	return fmt.Errorf("rpc: peer: %s", w.Msg)
}
