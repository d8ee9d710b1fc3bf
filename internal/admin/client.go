package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

// Client calls one node's admin API.
type Client struct {
	base  string // scheme://host:port, no trailing slash
	token string
	http  *http.Client
}

// NewClient returns a client for the admin API at addr ("host:port" or a
// URL such as "http://host:port"). timeout bounds each call; 0 means none.
func NewClient(addr, token string, timeout time.Duration) *Client {
	base := strings.TrimRight(addr, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{base: base, token: token, http: &http.Client{Timeout: timeout}}
}

// WithTLS makes the client verify an https admin API against cfg (its
// RootCAs: the cluster CA, fsrepctl --ca-file) and returns it.
func (c *Client) WithTLS(cfg *tls.Config) *Client {
	c.http.Transport = &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}
	return c
}

// Addr is the base URL the client calls.
func (c *Client) Addr() string { return c.base }

// Ready returns nil when the node answers /readyz with 200, an *APIError
// with Code CodeNotReady and the node's reason when it answers 503, and an
// error wrapping ErrUnreachable when it cannot be reached. It sends no token.
func (c *Client) Ready(ctx context.Context) error {
	var rr ReadyResponse
	err := c.do(ctx, http.MethodGet, PathReadyz, nil, &rr)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "" {
		return err
	}
	if ae.Status == http.StatusServiceUnavailable {
		ae.Code, ae.Message = CodeNotReady, "node not ready"
		if rr.Reason != "" {
			ae.Message += ": " + rr.Reason
		}
	} else {
		ae.Code, ae.Message = CodeInternal, fmt.Sprintf("admin: %s: unexpected HTTP %d", PathReadyz, ae.Status)
	}
	return ae
}

// Status returns the node's view of the cluster.
func (c *Client) Status(ctx context.Context) (*StatusResponse, error) {
	var st StatusResponse
	if err := c.do(ctx, http.MethodGet, PathStatus, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Nodes lists the registered nodes.
func (c *Client) Nodes(ctx context.Context) ([]meta.NodeInfo, error) {
	var nodes []meta.NodeInfo
	if err := c.do(ctx, http.MethodGet, PathNodes, nil, &nodes); err != nil {
		return nil, err
	}
	return nodes, nil
}

// Volumes lists the volumes.
func (c *Client) Volumes(ctx context.Context) ([]meta.Volume, error) {
	var vols []meta.Volume
	if err := c.do(ctx, http.MethodGet, PathVolumes, nil, &vols); err != nil {
		return nil, err
	}
	return vols, nil
}

// Volume returns one volume.
func (c *Client) Volume(ctx context.Context, name string) (*meta.Volume, error) {
	var v meta.Volume
	if err := c.do(ctx, http.MethodGet, volumePath(name), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// CreateVolume creates a volume and returns it.
func (c *Client) CreateVolume(ctx context.Context, req CreateVolumeRequest) (*meta.Volume, error) {
	var v meta.Volume
	if err := c.do(ctx, http.MethodPost, PathVolumes, req, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// DeleteVolume deletes a volume with all its files and returns what it was.
func (c *Client) DeleteVolume(ctx context.Context, name string) (*meta.Volume, error) {
	var v meta.Volume
	if err := c.do(ctx, http.MethodDelete, volumePath(name), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Export returns a volume's export options.
func (c *Client) Export(ctx context.Context, name string) (*meta.Export, error) {
	var e meta.Export
	if err := c.do(ctx, http.MethodGet, volumePath(name)+exportSuffix, nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// SetExport replaces a volume's export options with e (all of it: read
// with Export, change, and send back) and returns them as applied.
func (c *Client) SetExport(ctx context.Context, name string, e meta.Export) (*meta.Export, error) {
	var out meta.Export
	if err := c.do(ctx, http.MethodPut, volumePath(name)+exportSuffix, e, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func volumePath(name string) string { return PathVolumes + "/" + url.PathEscape(name) }

func nodePath(id string) string { return PathNodes + "/" + url.PathEscape(id) }

// Repair returns the leader's repair status (a follower forwards the call).
func (c *Client) Repair(ctx context.Context) (*replication.RepairStatus, error) {
	var st replication.RepairStatus
	if err := c.do(ctx, http.MethodGet, PathRepair, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// PauseRepair pauses (true) or resumes (false) repair and returns the
// status after the change.
func (c *Client) PauseRepair(ctx context.Context, paused bool) (*replication.RepairStatus, error) {
	path := PathRepairResume
	if paused {
		path = PathRepairPause
	}
	var st replication.RepairStatus
	if err := c.do(ctx, http.MethodPost, path, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Replicas counts the chunks of volume by replication health, or of every
// volume when volume is "".
func (c *Client) Replicas(ctx context.Context, volume string) ([]replication.ReplicaStatus, error) {
	path := PathReplicas
	if volume != "" {
		path += "?volume=" + url.QueryEscape(volume)
	}
	var st []replication.ReplicaStatus
	if err := c.do(ctx, http.MethodGet, path, nil, &st); err != nil {
		return nil, err
	}
	return st, nil
}

// Scrub returns the scrubber status of the node the client calls.
func (c *Client) Scrub(ctx context.Context) (*replication.ScrubStatus, error) {
	var st replication.ScrubStatus
	if err := c.do(ctx, http.MethodGet, PathScrub, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// ScrubAll returns the scrubber status of every registered node, asked by
// the node the client calls; a node that could not answer has its Error set.
func (c *Client) ScrubAll(ctx context.Context) ([]NodeScrub, error) {
	var out []NodeScrub
	if err := c.do(ctx, http.MethodGet, PathScrub+"?all=1", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ScrubAction is a scrubber control: one of PathScrubStart,
// PathScrubPause or PathScrubResume.
type ScrubAction string

// Scrub controls.
const (
	ScrubStart  ScrubAction = PathScrubStart
	ScrubPause  ScrubAction = PathScrubPause
	ScrubResume ScrubAction = PathScrubResume
)

// ControlScrub applies act to the scrubber of the node the client calls
// and returns its status after it.
func (c *Client) ControlScrub(ctx context.Context, act ScrubAction) (*replication.ScrubStatus, error) {
	var st replication.ScrubStatus
	if err := c.do(ctx, http.MethodPost, string(act), nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// ControlScrubAll applies act to every registered node's scrubber.
func (c *Client) ControlScrubAll(ctx context.Context, act ScrubAction) ([]NodeScrub, error) {
	var out []NodeScrub
	if err := c.do(ctx, http.MethodPost, string(act)+"?all=1", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// DrainNode starts (drain true) or stops draining node id and returns the
// node as registered after the change.
func (c *Client) DrainNode(ctx context.Context, id string, drain bool) (*meta.NodeInfo, error) {
	var n meta.NodeInfo
	if err := c.do(ctx, http.MethodPost, nodePath(id)+drainSuffix, DrainRequest{Drain: drain}, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// RemoveNode removes node id from the cluster and returns what it was. It
// fails with CodeHoldsOnlyCopy while the node holds the only healthy
// replica of a chunk.
func (c *Client) RemoveNode(ctx context.Context, id string) (*meta.NodeInfo, error) {
	var n meta.NodeInfo
	if err := c.do(ctx, http.MethodDelete, nodePath(id), nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// SetVolume changes the settings req names and returns the volume after
// the change.
func (c *Client) SetVolume(ctx context.Context, name string, req SetVolumeRequest) (*meta.Volume, error) {
	var v meta.Volume
	if err := c.do(ctx, http.MethodPatch, volumePath(name), req, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// LocateOptions tune Locate.
type LocateOptions struct {
	// NoCheck reads the placement from the metadata only; otherwise every
	// replica is asked what it holds (header and checksum table checked).
	NoCheck bool
	// Verify has every replica re-read and check all of its blocks.
	Verify bool
	// From is the first chunk index; Limit the most chunks (0: the
	// server's default).
	From, Limit uint64
}

// Locate returns where the file at path in volume is stored.
func (c *Client) Locate(ctx context.Context, volume, path string, o LocateOptions) (*LocateResponse, error) {
	q := url.Values{"path": {path}}
	if o.NoCheck {
		q.Set("check", "0")
	}
	if o.Verify {
		q.Set("verify", "1")
	}
	if o.From > 0 {
		q.Set("from", strconv.FormatUint(o.From, 10))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.FormatUint(o.Limit, 10))
	}
	var out LocateResponse
	if err := c.do(ctx, http.MethodGet, volumePath(volume)+locateSuffix+"?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TransferLeader hands the metadata leadership to node ("" lets Raft pick
// a voter) and returns who leads after it.
func (c *Client) TransferLeader(ctx context.Context, node string) (*TransferResponse, error) {
	var out TransferResponse
	if err := c.do(ctx, http.MethodPost, PathLeaderTransfer, TransferRequest{Node: node}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SnapshotInfo describes a metadata snapshot received by Snapshot.
type SnapshotInfo struct {
	Node         string // the node whose copy it is
	AppliedIndex uint64 // the last Raft index it holds
	Size         int64  // bytes written
}

// Snapshot streams a consistent copy of the node's meta.db into w. The
// client's timeout bounds the wait for the answer and then each pause in
// the stream, not the whole transfer (a large metadata file takes as long
// as it takes). A stream shorter than announced is an error wrapping
// ErrUnreachable.
func (c *Client) Snapshot(ctx context.Context, w io.Writer) (*SnapshotInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := c.http.Timeout
	var timer *time.Timer
	if idle > 0 {
		timer = time.AfterFunc(idle, cancel)
		defer timer.Stop()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathSnapshot, nil)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	stream := &http.Client{Transport: c.http.Transport, CheckRedirect: c.http.CheckRedirect}
	resp, err := stream.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		ae := &APIError{Status: resp.StatusCode, Code: CodeInternal,
			Message: fmt.Sprintf("admin: GET %s: HTTP %d: %s", PathSnapshot, resp.StatusCode, snippet(data))}
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Code != "" {
			ae.Code, ae.Message = eb.Code, eb.Message
		}
		return nil, ae
	}
	info := &SnapshotInfo{Node: resp.Header.Get(SnapshotNodeHeader)}
	info.AppliedIndex, _ = strconv.ParseUint(resp.Header.Get(AppliedIndexHeader), 10, 64)
	var body io.Reader = resp.Body
	if timer != nil {
		body = &idleReader{r: resp.Body, timer: timer, idle: idle}
	}
	n, err := io.Copy(w, body)
	info.Size = n
	if err != nil {
		return info, fmt.Errorf("%w: %s: snapshot cut short after %d bytes: %v", ErrUnreachable, c.base, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return info, fmt.Errorf("%w: %s: snapshot cut short: %d of %d bytes", ErrUnreachable, c.base, n, resp.ContentLength)
	}
	return info, nil
}

// idleReader restarts timer at every read that brings data, so that it
// fires only when the stream stalls for idle.
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.timer.Reset(ir.idle)
	}
	return n, err
}

// maxResponse bounds what the client reads from a (possibly wrong) server.
const maxResponse = 16 << 20

// do sends one request and decodes a 2xx body into out. A non-2xx answer
// becomes an *APIError (out still receives the body when it decodes, which
// /readyz uses); a transport failure wraps ErrUnreachable.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" && path != PathReadyz && path != PathHealthz {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%w: %s: reading the answer: %v", ErrUnreachable, c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Status: resp.StatusCode}
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Code != "" {
			ae.Code, ae.Message = eb.Code, eb.Message
		} else if path != PathReadyz {
			ae.Code = CodeInternal
			ae.Message = fmt.Sprintf("admin: %s %s: HTTP %d: %s", method, path, resp.StatusCode, snippet(data))
		}
		if out != nil {
			_ = json.Unmarshal(data, out)
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin: %s %s: undecodable answer: %w", method, path, err)
	}
	return nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// RotateToken moves the admin token to its next generation; the current
// token stays valid for grace ("" = 1h).
func (c *Client) RotateToken(ctx context.Context, grace string) (*RotateResponse, error) {
	var out RotateResponse
	if err := c.do(ctx, http.MethodPost, PathTokenRotate, RotateRequest{Grace: grace}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
