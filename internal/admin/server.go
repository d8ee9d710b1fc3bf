package admin

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fsrep/fsrep/meta"
)

// Backend is what the admin API needs from a node (the node assembly
// implements it). Every method is safe for concurrent use.
type Backend interface {
	// NodeID and AZ identify the node serving the API.
	NodeID() string
	AZ() string
	// Status is this node's view of the Raft group.
	Status() meta.Status
	// FSM is the local metadata state, for reads.
	FSM() *meta.FSM
	// Propose commits cmd through Raft (forwarding to the leader when this
	// node is not it) and returns once this node has applied it. It fills in
	// the header's time and request ID when they are zero. A command that
	// fails a precondition comes back as a Result whose Err is not nil.
	Propose(ctx context.Context, cmd meta.Command) (*meta.Result, error)
	// Ready is nil when the node has a leader and is registered.
	Ready() error
}

// maxBody bounds request bodies; the largest legitimate one (an export with
// 64 client networks) is a few kilobytes.
const maxBody = 64 << 10

type server struct {
	b     Backend
	token [sha256.Size]byte
	open  bool // a token is configured
	log   *slog.Logger
	// The optional parts of b, nil when it lacks them.
	healer     Healer
	scrubber   Scrubber
	locator    Locator
	transferer LeaderTransferer
	tokens     Tokens
	// http calls other nodes' admin APIs (leader forwarding, ?all=1).
	http  *http.Client
	limit *authLimiter
}

// NewServer returns the admin API handler. token is the bearer token every
// path but /healthz and /readyz requires; an empty token refuses them all.
// The repair, replica, drain and remove endpoints need b to implement
// Healer, the scrub endpoints Scrubber; /metrics serves b's registry
// (MetricsGatherer) or, without one, what NewCollector reads from b.
func NewServer(b Backend, token string, log *slog.Logger) http.Handler {
	s := &server{b: b, token: sha256.Sum256([]byte(token)), open: token != "", log: log,
		http: &http.Client{Timeout: peerTimeout}}
	s.healer, _ = b.(Healer)
	s.scrubber, _ = b.(Scrubber)
	s.locator, _ = b.(Locator)
	s.transferer, _ = b.(LeaderTransferer)
	s.tokens, _ = b.(Tokens)
	if pt, ok := b.(PeerTLS); ok {
		// Other nodes' admin APIs serve https with certificates of the
		// cluster CA: forwarded requests (which carry the caller's token)
		// check that they reach a node.
		s.http.Transport = &http.Transport{TLSClientConfig: pt.AdminPeerTLS()}
	}
	s.limit = newAuthLimiter(time.Now)

	api := http.NewServeMux()
	api.HandleFunc("GET "+PathStatus, s.handleStatus)
	api.HandleFunc("GET "+PathNodes, s.handleNodes)
	api.HandleFunc("GET "+PathVolumes, s.handleVolumes)
	api.HandleFunc("POST "+PathVolumes, s.handleCreateVolume)
	api.HandleFunc("GET "+PathVolumes+"/{name}", s.handleVolume)
	api.HandleFunc("DELETE "+PathVolumes+"/{name}", s.handleDeleteVolume)
	api.HandleFunc("PATCH "+PathVolumes+"/{name}", s.handleSetVolume)
	api.HandleFunc("GET "+PathVolumes+"/{name}"+locateSuffix, s.handleLocate)
	api.HandleFunc("GET "+PathSnapshot, s.handleSnapshot)
	// Raft leadership moves from the leader: a follower forwards.
	api.HandleFunc("POST "+PathLeaderTransfer, s.withTransferer(s.leaderOnly(s.handleTransfer)))
	api.HandleFunc("GET "+PathVolumes+"/{name}"+exportSuffix, s.handleExport)
	api.HandleFunc("PUT "+PathVolumes+"/{name}"+exportSuffix, s.handleSetExport)
	api.Handle("GET "+PathMetrics, s.metricsHandler())

	// The healer runs on the leader: these are answered there.
	healer := func(h http.HandlerFunc) http.HandlerFunc { return s.withHealer(s.leaderOnly(h)) }
	api.HandleFunc("GET "+PathRepair, healer(s.handleRepair))
	api.HandleFunc("POST "+PathRepairPause, healer(s.handlePauseRepair(true)))
	api.HandleFunc("POST "+PathRepairResume, healer(s.handlePauseRepair(false)))
	api.HandleFunc("GET "+PathReplicas, healer(s.handleReplicas))
	api.HandleFunc("POST "+PathNodes+"/{id}"+drainSuffix, healer(s.handleDrain))
	api.HandleFunc("DELETE "+PathNodes+"/{id}", healer(s.handleRemoveNode))
	// The consistency check runs on the leader (check.go).
	s.routeCheck(api)
	// One node in detail, and its Raft role (nodes_ops.go).
	s.routeNodeOps(api)
	// Admin token rotation (token.go), file handle key rotation
	// (handlekey.go).
	s.routeToken(api)
	s.routeHandleKey(api)

	// Each node scrubs its own chunks.
	api.HandleFunc("GET "+PathScrub, s.withScrubber(s.handleScrub))
	api.HandleFunc("POST "+PathScrubStart, s.withScrubber(s.handleScrubStart))
	api.HandleFunc("POST "+PathScrubPause, s.withScrubber(s.handlePauseScrub(true)))
	api.HandleFunc("POST "+PathScrubResume, s.withScrubber(s.handlePauseScrub(false)))

	routePprof(api)

	api.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, &APIError{Status: http.StatusNotFound, Code: CodeNotFound,
			Message: "admin: no endpoint " + r.Method + " " + r.URL.Path})
	})

	root := http.NewServeMux()
	root.HandleFunc("GET "+PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, ReadyResponse{Status: "alive"})
	})
	root.HandleFunc("GET "+PathReadyz, s.handleReadyz)
	root.Handle("/", s.auth(api))
	return root
}

// PeerTLS is implemented by a backend whose nodes serve their admin API
// over https: the client configuration that verifies them.
type PeerTLS interface {
	AdminPeerTLS() *tls.Config
}

// auth lets a request through when it carries an accepted bearer token
// (validToken). A client address that failed too often is turned away
// before its token is even looked at (ratelimit.go).
func (s *server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientIP(r)
		if wait := s.limit.blocked(client); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+1)))
			writeJSON(w, http.StatusTooManyRequests, ErrorBody{Code: CodeUnauthorized,
				Message: fmt.Sprintf("admin: too many requests with a wrong token from %s: retry in %v", client, wait.Round(time.Second))})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !s.validToken(strings.TrimSpace(got)) {
			s.limit.failed(client)
			w.Header().Set("WWW-Authenticate", `Bearer realm="fsrep-admin"`)
			writeJSON(w, http.StatusUnauthorized, ErrorBody{Code: CodeUnauthorized,
				Message: "admin: missing or wrong bearer token (see --token / FSREP_TOKEN / admin.token)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fail answers with the error's status and code. Internal errors are logged
// here: the handler is where they end.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := errorFor(err)
	if status == http.StatusInternalServerError {
		s.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, body)
}

func (s *server) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.b.Ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, ReadyResponse{Status: "not ready", Reason: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ReadyResponse{Status: "ready"})
}

func (s *server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := s.b.Status()
	nodes, err := s.b.FSM().Nodes()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	vols, err := s.b.FSM().Volumes()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	health, reasons := clusterHealth(st, nodes, vols)
	repair := s.leaderRepair(r)
	if repair != nil {
		h, more := repairHealth(*repair)
		health, reasons = worse(health, h), append(reasons, more...)
	}
	writeJSON(w, http.StatusOK, StatusResponse{
		Node: s.b.NodeID(), AZ: s.b.AZ(), Raft: st,
		Nodes: withVoters(nodes, st), Volumes: nonNil(vols),
		Health: health, Reasons: reasons, Repair: repair,
	})
}

func (s *server) handleNodes(w http.ResponseWriter, r *http.Request) {
	nodes, err := s.b.FSM().Nodes()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, withVoters(nodes, s.b.Status()))
}

// decodeBody reads a JSON request body into v, refusing unknown fields so
// that a typo cannot silently fall back to a default.
func decodeBody(w http.ResponseWriter, r *http.Request, what string, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("admin: bad %s body: %v", what, err)
	}
	return nil
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
