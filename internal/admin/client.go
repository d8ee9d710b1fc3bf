package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fsrep/fsrep/meta"
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
