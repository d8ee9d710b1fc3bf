package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/fsrep/fsrep/fs/chunkstore"
	"github.com/fsrep/fsrep/meta"
	"github.com/fsrep/fsrep/replication"
)

var _ replication.CopyPeers = (*Client)(nil)

func (c *Client) healJSON(ctx context.Context, method, nodeID, path string, in, out any) error {
	addr, err := c.addr(nodeID)
	if err != nil {
		return err
	}
	var body []byte
	if in != nil {
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	resp, err := c.send(ctx, method, addr, path, nil, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("rpc: %s%s: bad reply: %w", addr, path, err)
	}
	return nil
}

// leaderErr turns "the leader is unreachable" into meta.ErrNoLeader, as
// forwarding does, so callers retry once a leader is known.
func leaderErr(err error) error {
	if errors.Is(err, ErrUnreachable) {
		return fmt.Errorf("%w: %v", meta.ErrNoLeader, err)
	}
	return err
}

// Heartbeat sends this node's heartbeat to the leader and returns the
// leader's liveness view.
func (c *Client) Heartbeat(ctx context.Context, leaderID string, hb replication.Heartbeat) (replication.HeartbeatReply, error) {
	var out replication.HeartbeatReply
	err := c.healJSON(ctx, http.MethodPost, leaderID, pathHeartbeat, hb, &out)
	return out, leaderErr(err)
}

// RepairStatus asks the leader for its healer's status.
func (c *Client) RepairStatus(ctx context.Context, leaderID string) (replication.RepairStatus, error) {
	var out replication.RepairStatus
	err := c.healJSON(ctx, http.MethodGet, leaderID, pathHealStatus, nil, &out)
	return out, leaderErr(err)
}

// PauseRepair pauses or resumes the leader's healer.
func (c *Client) PauseRepair(ctx context.Context, leaderID string, paused bool) error {
	var out pauseRequest
	return leaderErr(c.healJSON(ctx, http.MethodPost, leaderID, pathHealPause, pauseRequest{Paused: paused}, &out))
}

// RemoveNode asks the leader to remove node id (see replication.Healer.Remove).
func (c *Client) RemoveNode(ctx context.Context, leaderID, id string) error {
	var out removeRequest
	return leaderErr(c.healJSON(ctx, http.MethodPost, leaderID, pathHealRemove, removeRequest{ID: id}, &out))
}

// FetchVerified reads a whole chunk, its version and the CRC32C the node
// computed, and checks the bytes received against it
// (replication.CopyPeers).
func (c *Client) FetchVerified(ctx context.Context, nodeID string, id chunkstore.ID) ([]byte, uint64, uint32, error) {
	addr, err := c.addr(nodeID)
	if err != nil {
		return nil, 0, 0, err
	}
	resp, err := c.send(ctx, http.MethodGet, addr, pathHealChunk, chunkQuery(id), nil, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	version, verr := strconv.ParseUint(resp.Header.Get(versionHeader), 10, 64)
	crc, cerr := parseCRC(resp.Header.Get(crcHeader))
	data, err := readAllBody(resp)
	if err != nil {
		return nil, 0, 0, err
	}
	if verr != nil || cerr != nil {
		return nil, 0, 0, fmt.Errorf("rpc: %s: chunk %s reply without a version or checksum", nodeID, id)
	}
	if got := Checksum(data); got != crc {
		return nil, 0, 0, fmt.Errorf("rpc: chunk %s from %s arrived with CRC32C %08x, sent as %08x: %w", id, nodeID, got, crc, chunkstore.ErrCorrupt)
	}
	return data, version, crc, nil
}

// PutVerified stores a whole chunk on a node, which checks it against crc
// on arrival and after storing it (replication.CopyPeers).
func (c *Client) PutVerified(ctx context.Context, nodeID string, id chunkstore.ID, version uint64, data []byte, crc uint32) error {
	addr, err := c.addr(nodeID)
	if err != nil {
		return err
	}
	hdr := http.Header{}
	hdr.Set(crcHeader, formatCRC(crc))
	resp, err := c.send(ctx, http.MethodPost, addr, pathHealChunk, chunkQuery(id, "version", version), data, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out healPutReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil {
		return fmt.Errorf("%w: %s: bad reply to a chunk put: %v", ErrUnreachable, nodeID, err)
	}
	if out.CRC != formatCRC(crc) || out.Length != int64(len(data)) {
		return fmt.Errorf("rpc: %s stored chunk %s as %d bytes with CRC32C %s, sent %d bytes with %08x: %w",
			nodeID, id, out.Length, out.CRC, len(data), crc, chunkstore.ErrCorrupt)
	}
	return nil
}
