package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"time"
)

// PathTokenRotate moves the admin token to its next generation (POST, body
// RotateRequest; answered by any node, committed through Raft).
const PathTokenRotate = "/v1/token/rotate"

// Tokens is implemented by a backend whose admin tokens change (rotation):
// the server then accepts exactly the tokens it lists, asked on every
// request, instead of the fixed token NewServer was given.
type Tokens interface {
	AdminTokens() []string
}

// TokenRotator rotates the admin token: it returns the new token, its
// generation and until when the old one stays valid. Every node writes the
// new token to its data directory. (Plain values, so that test backends
// need not import this package.)
type TokenRotator interface {
	RotateToken(ctx context.Context, grace time.Duration) (token string, gen uint64, prevUntil time.Time, err error)
}

// RotateRequest is the body of POST /v1/token/rotate.
type RotateRequest struct {
	// Grace is how long the current token stays valid, as a Go duration
	// ("1h"); empty means 1 hour. At most 7 days.
	Grace string `json:"grace,omitempty"`
}

// RotateResponse is the new token. It is shown once; nodes keep only the
// generation (tokens are derived from the cluster secret).
type RotateResponse struct {
	Token              string    `json:"token"`
	Generation         uint64    `json:"generation"`
	PreviousValidUntil time.Time `json:"previous_valid_until"`
}

// validToken reports whether tok is an accepted admin token. Both sides are
// hashed before the constant-time comparison so that neither the content
// nor the length of a token leaks through timing.
func (s *server) validToken(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	if s.tokens == nil {
		return s.open && subtle.ConstantTimeCompare(sum[:], s.token[:]) == 1
	}
	ok := 0
	for _, t := range s.tokens.AdminTokens() {
		want := sha256.Sum256([]byte(t))
		ok |= subtle.ConstantTimeCompare(sum[:], want[:])
	}
	return ok == 1
}

func (s *server) routeToken(api *http.ServeMux) {
	rot, _ := s.b.(TokenRotator)
	api.HandleFunc("POST "+PathTokenRotate, func(w http.ResponseWriter, r *http.Request) {
		if rot == nil {
			s.fail(w, r, errNotImplemented("admin token rotation"))
			return
		}
		var req RotateRequest
		if r.ContentLength != 0 { // no body: the defaults
			if err := decodeBody(w, r, "token rotation", &req); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		grace, err := parseGrace(req.Grace, time.Hour, 7*24*time.Hour)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		tok, gen, until, err := rot.RotateToken(r.Context(), grace)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, RotateResponse{Token: tok, Generation: gen, PreviousValidUntil: until})
	})
}

// parseGrace reads a rotation's grace time: def when empty, at most max.
func parseGrace(v string, def, max time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > max {
		return 0, invalid("admin: grace %q must be a duration between 0s and %v", v, max)
	}
	return d, nil
}
