package node

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsrep/fsrep/internal/admin"
	"github.com/fsrep/fsrep/meta"
)

// The admin token. Tokens are derived from the cluster secret and a
// generation number kept in Raft (meta.RotateToken): no token is stored in
// the metadata, every node computes the current one and writes it to
// <data-dir>/admin.token, and a rotation makes the previous generation
// expire after its grace time. Whoever holds the cluster secret can derive
// every token (they can do anything anyway: the secret also authenticates
// internode traffic and keys file handles).

var (
	_ admin.Tokens           = (*Node)(nil)
	_ admin.TokenRotator     = (*Node)(nil)
	_ admin.HandleKeyRotator = (*Node)(nil)
)

// AdminToken derives generation gen of the admin API token from the
// cluster secret. Generation 0 (before any rotation) is the token of
// clusters that never rotated.
func AdminToken(secret []byte, gen uint64) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("fsrep admin token v1"))
	if gen > 0 {
		fmt.Fprintf(m, "/gen %d", gen)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Token is the current admin token as this node's metadata knows it.
func (n *Node) Token() string {
	gen, _, err := n.meta.FSM().TokenGen()
	if err != nil {
		return n.token
	}
	return AdminToken(n.secret, gen)
}

// AdminTokens lists the tokens the admin API accepts now: the current
// generation, and the previous one until its grace time ends.
func (n *Node) AdminTokens() []string {
	gen, until, err := n.meta.FSM().TokenGen()
	if err != nil {
		return []string{n.token}
	}
	out := []string{AdminToken(n.secret, gen)}
	if gen > 0 && n.clock.Now().UnixNano() < until {
		out = append(out, AdminToken(n.secret, gen-1))
	}
	return out
}

// RotateToken moves the admin token to the next generation through Raft.
// A rotation racing another one fails with meta.ErrConflict (only one may
// win: the loser's caller would otherwise hold a token already replaced).
func (n *Node) RotateToken(ctx context.Context, grace time.Duration) (string, uint64, time.Time, error) {
	if err := n.meta.CatchUp(ctx); err != nil {
		return "", 0, time.Time{}, err
	}
	gen, _, err := n.meta.FSM().TokenGen()
	if err != nil {
		return "", 0, time.Time{}, err
	}
	cmd := &meta.RotateToken{Gen: gen + 1, Grace: int64(grace)}
	res, err := n.meta.Propose(ctx, cmd)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return "", 0, time.Time{}, err
	}
	n.log.Info("admin token rotated", "generation", cmd.Gen, "previous_valid_for", grace)
	return AdminToken(n.secret, cmd.Gen), cmd.Gen, time.Unix(0, meta.HeaderOf(cmd).Time+cmd.Grace).UTC(), nil
}

// writeTokenFiles keeps <data-dir>/admin.token (and the configured extra
// files) at the current token: it looks every second and writes when the
// generation moved.
func (n *Node) writeTokenFiles(written uint64) {
	files := append([]string{filepath.Join(n.cfg.DataDir, "admin.token")}, n.cfg.TokenFiles...)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		gen, _, err := n.meta.FSM().TokenGen()
		if err != nil || gen == written {
			continue
		}
		tok := AdminToken(n.secret, gen)
		ok := true
		for _, f := range files {
			if err := writeFile0600(f, []byte(tok+"\n")); err != nil {
				n.log.Error("cannot write the rotated admin token", "file", f, "err", err)
				ok = false
			}
		}
		if ok {
			written = gen
		}
	}
}

// RotateHandleKey moves the file handle MAC key to the next generation
// through Raft (gateway.HandleCodec): every gateway mints handles with the
// new key at once and accepts the previous key's until grace has passed;
// after that a client still holding an old handle gets STALE (and, like
// after a server's export change, remounts or looks the path up again).
func (n *Node) RotateHandleKey(ctx context.Context, grace time.Duration) (uint64, time.Time, error) {
	if err := n.meta.CatchUp(ctx); err != nil {
		return 0, time.Time{}, err
	}
	gen, _, err := n.meta.FSM().HandleKeyGen()
	if err != nil {
		return 0, time.Time{}, err
	}
	cmd := &meta.RotateHandleKey{Gen: gen + 1, Grace: int64(grace)}
	res, err := n.meta.Propose(ctx, cmd)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	n.log.Info("file handle key rotated", "generation", cmd.Gen, "previous_valid_for", grace)
	return cmd.Gen, time.Unix(0, meta.HeaderOf(cmd).Time+cmd.Grace).UTC(), nil
}
