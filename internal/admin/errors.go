package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// ErrUnreachable wraps every failure to reach the admin API at all
// (connection refused, DNS, timeout): fsrepctl exits 5 on it.
var ErrUnreachable = errors.New("admin: node unreachable")

// APIError is a failed call as the client sees it: the HTTP status and the
// ErrorBody the server sent.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("admin: %s (HTTP %d)", e.Code, e.Status)
	}
	return e.Message
}

// IsCode reports whether err is an *APIError with the given code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// errorFor maps an error from the backend, meta or replication to its HTTP
// status and wire body. It is the only place that does.
func errorFor(err error) (int, ErrorBody) {
	body := func(code string) ErrorBody { return ErrorBody{Code: code, Message: err.Error()} }
	var ae *APIError
	switch {
	case errors.As(err, &ae):
		return ae.Status, ErrorBody{Code: ae.Code, Message: ae.Message}
	case errors.Is(err, replication.ErrUnsafePlacement):
		return http.StatusConflict, body(CodeUnsafePlacement)
	case errors.Is(err, replication.ErrInvalidPolicy):
		return http.StatusBadRequest, body(CodeInvalid)
	case errors.Is(err, meta.ErrNoVolume), errors.Is(err, meta.ErrNotExist):
		return http.StatusNotFound, body(CodeNotFound)
	case errors.Is(err, meta.ErrVolumeExist), errors.Is(err, meta.ErrExist):
		return http.StatusConflict, body(CodeExists)
	case errors.Is(err, meta.ErrInvalid), errors.Is(err, meta.ErrNameTooLong):
		return http.StatusBadRequest, body(CodeInvalid)
	case errors.Is(err, meta.ErrNoLeader):
		return http.StatusServiceUnavailable, body(CodeNoLeader)
	}
	return http.StatusInternalServerError, body(CodeInternal)
}

// invalid is a request the server refuses before it reaches meta.
func invalid(format string, args ...any) error {
	return &APIError{Status: http.StatusBadRequest, Code: CodeInvalid, Message: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
