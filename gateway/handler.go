// Package gateway is fsrep's NFSv3 gateway: a go-nfs handler whose file
// handles are built from replicated identity (volume, inode, generation and
// a MAC keyed by the cluster secret), so any node decodes a handle minted by
// any other node and a client that moves between nodes keeps its handles.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-billy/v5"
	nfs "github.com/willscott/go-nfs"

	"github.com/fsrep/fsrep/fs/vfs"
	"github.com/fsrep/fsrep/meta"
)

// Metadata is what the gateway needs from the metadata node.
type Metadata interface {
	vfs.Metadata
}

// Config configures a gateway.
type Config struct {
	// DataDir is measured for FSSTAT (free space of this node's disk).
	DataDir string
	// OpTimeout bounds one filesystem operation, including waiting for a
	// metadata leader.
	OpTimeout time.Duration
	// StaleCheckTimeout bounds the catch-up with the leader before a handle
	// whose inode this node does not know is declared stale.
	StaleCheckTimeout time.Duration
}

// Handler implements nfs.Handler over fsrep volumes.
type Handler struct {
	cfg   Config
	meta  Metadata
	data  vfs.Data
	codec *HandleCodec
	clock vfs.Clock
	log   *slog.Logger

	mu  sync.Mutex
	fss map[uint32]*vfs.FS // one per volume, so RENAME sees the same filesystem
}

var _ nfs.Handler = (*Handler)(nil)

// NewHandler builds the handler.
func NewHandler(cfg Config, m Metadata, d vfs.Data, codec *HandleCodec, clock vfs.Clock, log *slog.Logger) *Handler {
	return &Handler{cfg: cfg, meta: m, data: d, codec: codec, clock: clock, log: log, fss: map[uint32]*vfs.FS{}}
}

func (h *Handler) fsFor(volID uint32) *vfs.FS {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.fss[volID]
	if f == nil {
		f = h.newFS(volID)
		h.fss[volID] = f
	}
	return f
}

// newFS returns a filesystem view of a volume, owned by root until a
// front lane sets the caller.
func (h *Handler) newFS(volID uint32) *vfs.FS {
	return vfs.New(volID, h.meta, h.data, h.clock, vfs.Owner{}, h.cfg.OpTimeout)
}

// Mount resolves an export path "/<volume>" to the volume's filesystem.
func (h *Handler) Mount(ctx context.Context, conn net.Conn, req nfs.MountRequest) (nfs.MountStatus, billy.Filesystem, []nfs.AuthFlavor) {
	vol, ok := h.mountVolume(string(req.Dirpath), conn.RemoteAddr().String())
	if !ok {
		return nfs.MountStatusErrNoEnt, nil, nil
	}
	return nfs.MountStatusOk, h.fsFor(vol), []nfs.AuthFlavor{nfs.AuthFlavorNull, nfs.AuthFlavorUnix}
}

// mountVolume resolves an export path to a volume ID.
func (h *Handler) mountVolume(dirpath, client string) (uint32, bool) {
	name := strings.Trim(dirpath, "/")
	if name == "" || strings.Contains(name, "/") {
		return 0, false
	}
	vol, err := h.meta.FSM().Volume(name)
	if err != nil {
		h.log.Info("mount refused", "export", dirpath, "client", client, "err", err)
		return 0, false
	}
	return vol.ID, true
}

// exportPaths lists "/<volume>" for every volume (MOUNT EXPORT).
func (h *Handler) exportPaths() []string {
	vols, err := h.meta.FSM().Volumes()
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(vols))
	for _, v := range vols {
		out = append(out, "/"+v.Name)
	}
	return out
}

// Change returns the filesystem's attribute-changing side (it implements
// nfs.UnixChange for LINK).
func (h *Handler) Change(fs billy.Filesystem) billy.Change {
	if f, ok := fs.(*vfs.FS); ok {
		return unixChange{f}
	}
	return nil
}

type unixChange struct{ *vfs.FS }

var _ nfs.UnixChange = unixChange{}

func (u unixChange) Mknod(string, uint32, uint32, uint32) error {
	return fmt.Errorf("gateway: device files are not supported: %w", errors.ErrUnsupported)
}
func (u unixChange) Mkfifo(string, uint32) error {
	return fmt.Errorf("gateway: FIFOs are not supported: %w", errors.ErrUnsupported)
}
func (u unixChange) Socket(string) error {
	return fmt.Errorf("gateway: sockets are not supported: %w", errors.ErrUnsupported)
}

// FSStat reports this node's disk capacity.
func (h *Handler) FSStat(ctx context.Context, fs billy.Filesystem, s *nfs.FSStat) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(h.cfg.DataDir, &st); err != nil {
		return err
	}
	bs := uint64(st.Bsize)
	s.TotalSize, s.FreeSize, s.AvailableSize = st.Blocks*bs, st.Bfree*bs, st.Bavail*bs
	s.TotalFiles, s.FreeFiles, s.AvailableFiles = math.MaxUint32, math.MaxUint32, math.MaxUint32
	return nil
}

// ToHandle mints the handle of the object at path.
func (h *Handler) ToHandle(fs billy.Filesystem, path []string) []byte {
	f, ok := fs.(*vfs.FS)
	if !ok {
		return nil
	}
	n, err := f.Resolve(f.Join(path...))
	if err != nil {
		h.log.Debug("no handle for path", "err", err)
		return nil
	}
	return h.codec.Encode(FileID{Vol: f.VolumeID(), Ino: n.Ino, Gen: n.Gen})
}

// ErrStale is returned for a handle whose object no longer exists.
var ErrStale = errors.New("gateway: stale file handle")

// FromHandle decodes a handle into its volume filesystem and path tokens.
func (h *Handler) FromHandle(fh []byte) (billy.Filesystem, []string, error) {
	vol, path, err := h.resolveHandle(fh)
	if err != nil {
		return nil, nil, err
	}
	return h.fsFor(vol), path, nil
}

// resolveHandle decodes a handle into its volume and path tokens. An inode
// this node does not know may have been created through a node ahead of it:
// the node catches up with the leader before calling it stale.
func (h *Handler) resolveHandle(fh []byte) (uint32, []string, error) {
	id, n, err := h.inodeFor(fh)
	if err != nil {
		return 0, nil, err
	}
	return id.Vol, vfs.HandlePath(n), nil
}

// inodeFor decodes a handle and returns the inode it names, catching up
// with the leader before calling an unknown inode stale.
func (h *Handler) inodeFor(fh []byte) (FileID, *meta.Inode, error) {
	id, err := h.codec.Decode(fh)
	if err != nil {
		return id, nil, err
	}
	n, err := h.lookupHandle(id)
	if errors.Is(err, meta.ErrNotExist) || errors.Is(err, meta.ErrNoVolume) || errors.Is(err, ErrStale) {
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.StaleCheckTimeout)
		cerr := h.meta.CatchUp(ctx)
		cancel()
		if cerr == nil {
			n, err = h.lookupHandle(id)
		}
	}
	return id, n, err
}

// handleInode returns the inode number a valid handle names.
func (h *Handler) handleInode(fh []byte) (uint64, bool) {
	id, err := h.codec.Decode(fh)
	if err != nil {
		return 0, false
	}
	if _, err := h.lookupHandle(id); err != nil {
		return 0, false
	}
	return id.Ino, true
}

func (h *Handler) lookupHandle(id FileID) (*meta.Inode, error) {
	n, err := h.meta.FSM().Inode(id.Vol, id.Ino)
	if err != nil {
		return nil, err
	}
	if n.Gen != id.Gen {
		return nil, ErrStale
	}
	return n, nil
}

// InvalidateHandle is a no-op: handles are computed, not cached.
func (h *Handler) InvalidateHandle(billy.Filesystem, []byte) error { return nil }

// HandleLimit is unbounded: handles are computed, not stored.
func (h *Handler) HandleLimit() int { return math.MaxInt32 }
