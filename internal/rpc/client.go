package rpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
)

// ErrUnreachable wraps failures to reach a peer at all (refused, timed out,
// connection reset): the peer may be down, as opposed to having answered
// with an error.
var ErrUnreachable = errors.New("rpc: peer unreachable")

// Resolver maps a node ID to its RPC address.
type Resolver func(nodeID string) (string, error)

// Client calls other nodes. It is safe for concurrent use.
type Client struct {
	token   string
	resolve Resolver
	http    *http.Client
}

var _ meta.Forwarder = (*Client)(nil)

// NewClient returns a client. tlsConf is the node's mutual-TLS client
// configuration (pki.Identity.ClientConfig). callTimeout bounds each call
// without a shorter context deadline. dial, if not nil, opens every
// connection (tests cut the network with it); TLS runs over it.
func NewClient(secret []byte, tlsConf *tls.Config, resolve Resolver, callTimeout time.Duration, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Client {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	tr := &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Client{token: Token(secret), resolve: resolve, http: &http.Client{Transport: tr, Timeout: callTimeout}}
}

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

func (c *Client) do(ctx context.Context, method, addr, path string, q url.Values, body []byte) (*http.Response, error) {
	return c.send(ctx, method, addr, path, q, body, nil)
}

// send makes one call with extra request headers (nil: none) and turns a
// failure answer into the error it carries.
func (c *Client) send(ctx context.Context, method, addr, path string, q url.Values, body []byte, hdr http.Header) (*http.Response, error) {
	u := url.URL{Scheme: "https", Host: addr, Path: path, RawQuery: q.Encode()}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set(authHeader, c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, addr, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var we wireError
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &we) != nil {
		we = wireError{Kind: "other", Msg: fmt.Sprintf("%s answered %s", addr, resp.Status)}
	}
	if we.Kind == "heal" {
		if s, ok := healErrors()[we.Name]; ok {
			return nil, &remoteError{msg: we.Msg, sentinel: s}
		}
	}
	return nil, fromWire(we, resp.StatusCode)
}

func (c *Client) callJSON(ctx context.Context, method, addr, path string, q url.Values, body []byte, out any) error {
	resp, err := c.do(ctx, method, addr, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("rpc: %s%s: bad reply: %w", addr, path, err)
	}
	return nil
}

func (c *Client) addr(nodeID string) (string, error) {
	a, err := c.resolve(nodeID)
	if err != nil {
		return "", fmt.Errorf("%w: node %s: %v", ErrUnreachable, nodeID, err)
	}
	return a, nil
}

// ForwardApply implements meta.Forwarder.
func (c *Client) ForwardApply(ctx context.Context, leaderID string, entry []byte) (*meta.Result, error) {
	addr, err := c.addr(leaderID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", meta.ErrNoLeader, err)
	}
	var res meta.Result
	if err := c.callJSON(ctx, http.MethodPost, addr, pathApply, nil, entry, &res); err != nil {
		if errors.Is(err, ErrUnreachable) {
			return nil, fmt.Errorf("%w: %v", meta.ErrNoLeader, err)
		}
		return nil, err
	}
	return &res, nil
}

// LeaderIndex implements meta.Forwarder.
func (c *Client) LeaderIndex(ctx context.Context, leaderID string) (uint64, error) {
	addr, err := c.addr(leaderID)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", meta.ErrNoLeader, err)
	}
	var out map[string]uint64
	if err := c.callJSON(ctx, http.MethodGet, addr, pathIndex, nil, nil, &out); err != nil {
		if errors.Is(err, ErrUnreachable) {
			return 0, fmt.Errorf("%w: %v", meta.ErrNoLeader, err)
		}
		return 0, err
	}
	return out["index"], nil
}

// Join asks the node at addr (any member; it forwards) to admit info.
func (c *Client) Join(ctx context.Context, addr string, info meta.NodeInfo) error {
	body, err := json.Marshal(info)
	if err != nil {
		return err
	}
	var out map[string]string
	return c.callJSON(ctx, http.MethodPost, addr, pathJoin, nil, body, &out)
}

// JoinLeader sends a join request to the node with ID leaderID.
func (c *Client) JoinLeader(ctx context.Context, leaderID string, info meta.NodeInfo) error {
	addr, err := c.addr(leaderID)
	if err != nil {
		return err
	}
	return c.Join(ctx, addr, info)
}

func chunkQuery(id chunkstore.ID, kv ...any) url.Values {
	q := url.Values{"id": {id.String()}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i].(string), fmt.Sprint(kv[i+1]))
	}
	return q
}

// WriteChunk applies a write on a replica; see chunkstore.Store.Write.
func (c *Client) WriteChunk(ctx context.Context, nodeID string, id chunkstore.ID, base, version uint64, baseLen, off int64, data []byte) (int64, error) {
	addr, err := c.addr(nodeID)
	if err != nil {
		return 0, err
	}
	var out map[string]int64
	q := chunkQuery(id, "base", base, "version", version, "baselen", baseLen, "off", off)
	if err := c.callJSON(ctx, http.MethodPut, addr, pathChunk, q, data, &out); err != nil {
		return 0, err
	}
	return out["length"], nil
}

// PutChunk stores a whole chunk on a node (re-replication).
func (c *Client) PutChunk(ctx context.Context, nodeID string, id chunkstore.ID, version uint64, data []byte) error {
	addr, err := c.addr(nodeID)
	if err != nil {
		return err
	}
	var out map[string]int64
	return c.callJSON(ctx, http.MethodPost, addr, pathChunk, chunkQuery(id, "version", version), data, &out)
}

func readAllBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	if resp.ContentLength > maxChunk {
		return nil, fmt.Errorf("rpc: reply of %d bytes too large", resp.ContentLength)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxChunk+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading reply: %v", ErrUnreachable, err)
	}
	if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return nil, fmt.Errorf("%w: short reply", ErrUnreachable)
	}
	return b, nil
}

// ReadChunk reads length bytes at off of a replica's chunk at version.
func (c *Client) ReadChunk(ctx context.Context, nodeID string, id chunkstore.ID, version uint64, off int64, length int) ([]byte, error) {
	addr, err := c.addr(nodeID)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodGet, addr, pathChunk, chunkQuery(id, "version", version, "off", off, "len", length), nil)
	if err != nil {
		return nil, err
	}
	return readAllBody(resp)
}

// FetchChunk reads a whole chunk and its version from a node.
func (c *Client) FetchChunk(ctx context.Context, nodeID string, id chunkstore.ID) ([]byte, uint64, error) {
	addr, err := c.addr(nodeID)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.do(ctx, http.MethodGet, addr, pathChunk, chunkQuery(id, "all", 1), nil)
	if err != nil {
		return nil, 0, err
	}
	v, _ := strconv.ParseUint(resp.Header.Get("X-Chunk-Version"), 10, 64)
	b, err := readAllBody(resp)
	return b, v, err
}

// DeleteChunk removes a chunk file from a node if it holds exactly version
// and has not changed for minAge; see chunkstore.Store.DeleteVersion
// (garbage collection: a file that became live again must survive).
func (c *Client) DeleteChunk(ctx context.Context, nodeID string, id chunkstore.ID, version uint64, minAge time.Duration) error {
	addr, err := c.addr(nodeID)
	if err != nil {
		return err
	}
	var out map[string]string
	q := chunkQuery(id, "version", version, "min_age_ms", minAge.Milliseconds())
	return c.callJSON(ctx, http.MethodDelete, addr, pathChunk, q, nil, &out)
}

// StatChunk returns a node's version, length and age of a chunk.
func (c *Client) StatChunk(ctx context.Context, nodeID string, id chunkstore.ID) (chunkstore.Info, error) {
	addr, err := c.addr(nodeID)
	if err != nil {
		return chunkstore.Info{}, err
	}
	var out chunkStat
	if err := c.callJSON(ctx, http.MethodGet, addr, pathStat, chunkQuery(id), nil, &out); err != nil {
		return chunkstore.Info{}, err
	}
	return chunkstore.Info{Version: out.Version, Length: out.Length, Age: time.Duration(out.AgeMillis) * time.Millisecond}, nil
}
