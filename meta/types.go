package meta

import (
	"fmt"
	"net"
)

// Values stored in the FSM. Every value is encoded as JSON; the layout of
// meta.db as a whole is versioned by StorageVersion (schema.go). Field names
// are part of the on-disk format, so rename nothing and only add fields with
// zero-value defaults.

// RootIno is the inode number of every volume's root directory.
const RootIno uint64 = 1

// FileType is the kind of an inode.
type FileType uint8

const (
	TypeFile    FileType = 1
	TypeDir     FileType = 2
	TypeSymlink FileType = 3
)

func (t FileType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	}
	return "unknown"
}

// Volume is a named namespace with its own replication policy.
type Volume struct {
	ID          uint32 `json:"id"`
	Name        string `json:"name"`
	Replicas    int    `json:"replicas"`     // R: copies of every chunk
	WriteQuorum int    `json:"write_quorum"` // replicas that must hold a write durably
	ChunkSize   int64  `json:"chunk_size"`   // bytes per chunk, fixed at creation
	Created     int64  `json:"created"`      // unix nanoseconds, fixed by the proposer
	// NextIno is the next inode number to hand out; inode numbers are never reused.
	NextIno uint64 `json:"next_ino"`
	// Files and Bytes are usage counters maintained by Apply.
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
	// Export is how every gateway serves the volume as /<name>.
	Export Export `json:"export"`
	// QuotaBytes and QuotaFiles bound Bytes and Files (0: no limit). Apply
	// refuses with ErrQuota a command that would grow a counter past its
	// quota; a volume already past a lowered quota only shrinks.
	QuotaBytes int64 `json:"quota_bytes"`
	QuotaFiles int64 `json:"quota_files"`
}

// quotaAllowsBytes reports whether the volume may grow by growth bytes.
func (v *Volume) quotaAllowsBytes(growth int64) bool {
	return v.QuotaBytes <= 0 || growth <= 0 || growth <= v.QuotaBytes-v.Bytes // no overflow: both >= 0
}

// quotaAllowsFile reports whether the volume may hold one more inode.
func (v *Volume) quotaAllowsFile() bool {
	return v.QuotaFiles <= 0 || v.Files < v.QuotaFiles
}

// QuotaExceeded reports whether growing the volume's data by growth bytes
// would take it past its byte quota: the check Apply makes, for a gateway
// that wants to refuse a write before it sends the data to the replicas.
func (v *Volume) QuotaExceeded(growth int64) bool { return !v.quotaAllowsBytes(growth) }

// Squash modes of an export, as knfsd names them.
const (
	SquashRoot = "root_squash"    // uid 0 becomes the anonymous user (default)
	SquashAll  = "all_squash"     // every caller becomes the anonymous user
	SquashNone = "no_root_squash" // identities are taken as sent
)

// Export holds a volume's NFS export options, enforced identically by every
// gateway (they are replicated with the volume).
type Export struct {
	ReadOnly bool `json:"read_only"`
	// Clients lists the networks (CIDRs) allowed to mount and use the
	// export; empty allows every client.
	Clients []string `json:"clients,omitempty"`
	Squash  string   `json:"squash"`
	AnonUID uint32   `json:"anon_uid"`
	AnonGID uint32   `json:"anon_gid"`
}

// DefaultExport is what a new volume gets: read-write, every client, root
// squashed to nobody (65534), as knfsd does by default.
func DefaultExport() Export {
	return Export{Squash: SquashRoot, AnonUID: 65534, AnonGID: 65534}
}

// Validate checks the options.
func (e Export) Validate() error {
	switch e.Squash {
	case SquashRoot, SquashAll, SquashNone:
	default:
		return fmt.Errorf("%w: squash must be %s, %s or %s, not %q", ErrInvalid, SquashRoot, SquashAll, SquashNone, e.Squash)
	}
	if len(e.Clients) > 64 {
		return fmt.Errorf("%w: at most 64 client networks", ErrInvalid)
	}
	for _, c := range e.Clients {
		if _, _, err := net.ParseCIDR(c); err != nil {
			return fmt.Errorf("%w: client network %q is not a CIDR (like 10.0.0.0/8)", ErrInvalid, c)
		}
	}
	return nil
}

// Allows reports whether a client IP may use the export.
func (e Export) Allows(ip net.IP) bool {
	if len(e.Clients) == 0 {
		return true
	}
	for _, c := range e.Clients {
		if _, n, err := net.ParseCIDR(c); err == nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// Inode is the attributes of a file, directory or symlink.
type Inode struct {
	Ino    uint64   `json:"ino"`
	Gen    uint32   `json:"gen"` // generation; with Ino it identifies the object forever
	Type   FileType `json:"type"`
	Mode   uint32   `json:"mode"` // permission bits plus setuid/setgid/sticky (07777)
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Nlink  uint32   `json:"nlink"`
	Size   uint64   `json:"size"`
	Atime  int64    `json:"atime"` // unix nanoseconds
	Mtime  int64    `json:"mtime"`
	Ctime  int64    `json:"ctime"`
	Target string   `json:"target,omitempty"` // symlink target
	// Parent is the containing directory of a directory (directories have
	// exactly one parent); 0 for files and symlinks, which may have several.
	Parent uint64 `json:"parent,omitempty"`
}

// Chunk is the metadata of one fixed-size piece of a file.
type Chunk struct {
	Index uint64 `json:"index"`
	// Version increases by one with every committed write; replicas hold the
	// version in their chunk header and a reader asks for exactly this one.
	Version uint64 `json:"version"`
	// Length is how many bytes of the chunk hold data; bytes past it read as
	// zeros (it shrinks on truncate).
	Length int64 `json:"length"`
	// Replicas are the node IDs holding Version durably.
	Replicas []string `json:"replicas"`
}

// NodeInfo is one fsrepd node as registered in the cluster.
type NodeInfo struct {
	ID        string `json:"id"`
	AZ        string `json:"az"`
	Region    string `json:"region,omitempty"`
	RaftAddr  string `json:"raft_addr"`
	RPCAddr   string `json:"rpc_addr"`
	NFSAddr   string `json:"nfs_addr"`
	AdminAddr string `json:"admin_addr"`
	Voter     bool   `json:"voter"`
	Joined    int64  `json:"joined"`
	// Draining nodes receive no new replicas; the healer moves their chunks
	// to other nodes so that they can be removed.
	Draining bool `json:"draining,omitempty"`
}

// DirEntry is one name in a directory.
type DirEntry struct {
	Name   string `json:"name"`
	Ino    uint64 `json:"ino"`
	Cookie uint64 `json:"cookie"` // DirCookie(Name): where a listing resumes after it
}
