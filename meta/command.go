package meta

import (
	"encoding/json"
	"fmt"
)

// CommandType is the first byte of every Raft log entry written by fsrep.
//
// The list is append-only: new types go at the end, a retired number is
// never reused, and a node that meets a type it does not know stops rather
// than let its state diverge from the other replicas (see FSM.Apply).
type CommandType uint8

const (
	CmdRegisterNode CommandType = 1
	CmdCreateVolume CommandType = 2
	CmdDeleteVolume CommandType = 3
	CmdCreate       CommandType = 4
	CmdRemove       CommandType = 5
	CmdRename       CommandType = 6
	CmdLink         CommandType = 7
	CmdSetAttr      CommandType = 8
	CmdCommitWrite  CommandType = 9
	CmdGCDone       CommandType = 10
	CmdSetExport    CommandType = 11
	CmdSetReplicas  CommandType = 12
	CmdSetNodeState CommandType = 13
	CmdRemoveNode   CommandType = 14
	CmdSetVolume    CommandType = 15
	CmdRotateToken  CommandType = 16
	CmdWriteInline  CommandType = 17
	// CmdRotateHandleKey is the file handle MAC key's next generation.
	CmdRotateHandleKey CommandType = 18
)

// commandFormat is the newest payload format version this build reads;
// decoders accept every version up to it. An entry is written with the
// lowest format that carries everything it holds (formatOf), so a build that
// would silently drop a field it does not know refuses the entry instead.
//
//	1: every command as first defined
//	2: CreateVolume with a quota (quota_bytes, quota_files)
//	3: CommitWrite that moves a small file's inline data to chunks (inline)
const commandFormat uint8 = 3

// formatted is implemented by commands whose payload may need a format
// above 1.
type formatted interface{ format() uint8 }

// formatOf is the format byte c is written with.
func formatOf(c Command) uint8 {
	if f, ok := c.(formatted); ok {
		return f.format()
	}
	return 1
}

func (t CommandType) String() string {
	switch t {
	case CmdRegisterNode:
		return "register-node"
	case CmdCreateVolume:
		return "create-volume"
	case CmdDeleteVolume:
		return "delete-volume"
	case CmdCreate:
		return "create"
	case CmdRemove:
		return "remove"
	case CmdRename:
		return "rename"
	case CmdLink:
		return "link"
	case CmdSetAttr:
		return "setattr"
	case CmdCommitWrite:
		return "commit-write"
	case CmdGCDone:
		return "gc-done"
	case CmdSetExport:
		return "set-export"
	case CmdSetReplicas:
		return "set-replicas"
	case CmdSetNodeState:
		return "set-node-state"
	case CmdRemoveNode:
		return "remove-node"
	case CmdSetVolume:
		return "set-volume"
	case CmdRotateToken:
		return "rotate-token"
	case CmdWriteInline:
		return "write-inline"
	case CmdRotateHandleKey:
		return "rotate-handle-key"
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// Header is carried by every command. The proposer fixes both fields so that
// Apply never reads a clock or a random source.
type Header struct {
	// RequestID makes a mutating request idempotent: a command whose
	// RequestID was applied recently returns the recorded result instead of
	// being applied again (a retry after a timeout or a leader change).
	RequestID string `json:"rid,omitempty"`
	// Time is the proposer's wall clock in unix nanoseconds; it becomes
	// mtime/ctime and ages the duplicate-request table.
	Time int64 `json:"time"`
}

// Command is implemented by every command payload.
type Command interface {
	Type() CommandType
	header() *Header
}

type RegisterNode struct {
	Header
	Node NodeInfo `json:"node"`
}

type CreateVolume struct {
	Header
	// Export is the volume's export; nil means DefaultExport.
	Export      *Export `json:"export,omitempty"`
	Name        string  `json:"name"`
	Replicas    int     `json:"replicas"`
	WriteQuorum int     `json:"write_quorum"`
	ChunkSize   int64   `json:"chunk_size"`
	RootMode    uint32  `json:"root_mode"`
	RootUID     uint32  `json:"root_uid"`
	RootGID     uint32  `json:"root_gid"`
	// QuotaBytes and QuotaFiles are the volume's quotas (0: none). An entry
	// that sets one is written in format 2.
	QuotaBytes int64 `json:"quota_bytes,omitempty"`
	QuotaFiles int64 `json:"quota_files,omitempty"`
}

// format: a build that knows no quotas must not create the volume without
// them (its copy of the volume would accept what the others refuse).
func (c *CreateVolume) format() uint8 {
	if c.QuotaBytes != 0 || c.QuotaFiles != 0 {
		return 2
	}
	return 1
}

type DeleteVolume struct {
	Header
	Name string `json:"name"`
}

// Create makes a file, directory or symlink. It fails with ErrExist when the
// name is taken.
type Create struct {
	Header
	Vol    uint32   `json:"vol"`
	Parent uint64   `json:"parent"`
	Name   string   `json:"name"`
	Kind   FileType `json:"kind"`
	Mode   uint32   `json:"mode"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Target string   `json:"target,omitempty"`
}

// Remove unlinks a name. Dir selects rmdir semantics (the target must be an
// empty directory); otherwise a directory target fails with ErrIsDir.
type Remove struct {
	Header
	Vol    uint32 `json:"vol"`
	Parent uint64 `json:"parent"`
	Name   string `json:"name"`
	Dir    bool   `json:"dir"`
}

// Rename moves a name with POSIX semantics: an existing target is replaced
// when the kinds are compatible (a directory only by an empty directory).
type Rename struct {
	Header
	Vol       uint32 `json:"vol"`
	SrcParent uint64 `json:"src_parent"`
	SrcName   string `json:"src_name"`
	DstParent uint64 `json:"dst_parent"`
	DstName   string `json:"dst_name"`
}

type Link struct {
	Header
	Vol    uint32 `json:"vol"`
	Ino    uint64 `json:"ino"`
	Parent uint64 `json:"parent"`
	Name   string `json:"name"`
}

// SetAttr changes the attributes whose pointers are set. A smaller Size drops
// the chunks past the end and shortens the last one.
type SetAttr struct {
	Header
	Vol   uint32  `json:"vol"`
	Ino   uint64  `json:"ino"`
	Mode  *uint32 `json:"mode,omitempty"`
	UID   *uint32 `json:"uid,omitempty"`
	GID   *uint32 `json:"gid,omitempty"`
	Size  *uint64 `json:"size,omitempty"`
	Atime *int64  `json:"atime,omitempty"`
	Mtime *int64  `json:"mtime,omitempty"`
}

// ChunkWrite is one chunk touched by a write, after its replicas stored it.
type ChunkWrite struct {
	Index uint64 `json:"index"`
	// BaseVersion is the version the writer started from (0: a new chunk);
	// the commit fails with ErrConflict if the chunk moved on meanwhile.
	BaseVersion uint64   `json:"base_version"`
	Version     uint64   `json:"version"`
	Length      int64    `json:"length"`
	Replicas    []string `json:"replicas"`
}

// CommitWrite records a write whose data a quorum of replicas holds: new chunk
// versions and replica sets (replicas that failed are left out), the file
// size (grown to at least Size) and mtime. Chunk 0 is either inline or a
// chunk: a CommitWrite that writes chunk 0 of a file with inline data
// fails with ErrConflict unless Spill is the generation of that data (then
// the new chunk 0 holds it and the inline copy is dropped).
type CommitWrite struct {
	Header
	Vol    uint32       `json:"vol"`
	Ino    uint64       `json:"ino"`
	Chunks []ChunkWrite `json:"chunks"`
	Size   uint64       `json:"size"`
	Spill  *uint64      `json:"spill,omitempty"`
}

func (c *CommitWrite) format() uint8 {
	if c.Spill != nil {
		return 3
	}
	return 1
}

// WriteInline writes Data at Off of a file that has no chunk 0, in the
// metadata itself; Off+len(Data) must not pass InlineMax. It fails with
// ErrConflict when the file has a chunk 0 (the writer takes the chunk
// path). Without Data it changes nothing but the inline data's generation:
// a fence, after which no move of the inline bytes to chunk 0 prepared
// before it can commit.
// The size grows to at least Off+len(Data); mtime and ctime are set.
type WriteInline struct {
	Header
	Vol  uint32 `json:"vol"`
	Ino  uint64 `json:"ino"`
	Off  uint64 `json:"off"`
	Data []byte `json:"data"`
}

// SetExport replaces a volume's export options.
type SetExport struct {
	Header
	Name   string `json:"name"`
	Export Export `json:"export"`
}

// GCDone removes garbage records whose chunk files were deleted everywhere.
type GCDone struct {
	Header
	Keys []GarbageKey `json:"keys"`
}

// SetReplicas replaces the replica set of one chunk at one version: the
// healer adds a copy it made and verified, or leaves out a replica that is
// down, corrupt, draining or moved. It fails with ErrConflict if the chunk
// moved to another version meanwhile (a write won the race; the healer
// looks again) and with ErrNotExist if the chunk is gone. Replicas left out
// are recorded as garbage.
type SetReplicas struct {
	Header
	Vol      uint32   `json:"vol"`
	Ino      uint64   `json:"ino"`
	Index    uint64   `json:"index"`
	Version  uint64   `json:"version"`
	Replicas []string `json:"replicas"`
	// From is the replica set the change was computed from. When not empty, the
	// command fails with ErrConflict unless the chunk still has exactly
	// those replicas (in any order): SetReplicas does not change the
	// version, so two changes computed from one version (the healer's copy
	// and a drop of a corrupt replica) would otherwise overwrite each other
	// and list again a replica the other one dropped and deleted.
	From []string `json:"from"`
}

// SetNodeState marks a node as draining (no new replicas; the healer moves
// its chunks elsewhere) or returns it to service.
type SetNodeState struct {
	Header
	ID       string `json:"id"`
	Draining bool   `json:"draining"`
}

// SetVolume changes the settings of a volume whose fields are set (nil:
// unchanged). Replicas and WriteQuorum apply to new chunks at once and to
// existing ones as the healer reaches them; the proposer checks the policy
// against the AZs (Apply only checks it makes sense on its own). A quota
// below the current usage is accepted: the volume then only shrinks.
type SetVolume struct {
	Header
	Name        string  `json:"name"`
	Replicas    *int    `json:"replicas,omitempty"`
	WriteQuorum *int    `json:"write_quorum,omitempty"`
	QuotaBytes  *int64  `json:"quota_bytes,omitempty"`
	QuotaFiles  *int64  `json:"quota_files,omitempty"`
	Export      *Export `json:"export,omitempty"`
}

// RotateToken moves the admin token to the next generation. Tokens are
// derived from the cluster secret and the generation (no token is stored),
// so every node computes the current one and writes it to its data
// directory. The previous generation stays valid until Time+Grace, so that
// scripts holding it can be updated. Gen must be the generation after the
// current one: two rotations racing cannot both win.
type RotateToken struct {
	Header
	Gen   uint64 `json:"gen"`
	Grace int64  `json:"grace_ns"`
}

// RotateHandleKey moves the file handle MAC key to the next generation.
// Keys are derived from the cluster secret and the generation, so every
// node computes the current one; handles minted with the previous key are
// accepted until Time+Grace, then answered STALE. Gen must be the
// generation after the current one.
type RotateHandleKey struct {
	Header
	Gen   uint64 `json:"gen"`
	Grace int64  `json:"grace_ns"`
}

// RemoveNode forgets a node. The caller checks first that the node holds no
// chunk that lacks a healthy copy elsewhere; Apply refuses while any chunk's
// only replica is on the node.
type RemoveNode struct {
	Header
	ID string `json:"id"`
}

func (c *RegisterNode) Type() CommandType    { return CmdRegisterNode }
func (c *SetReplicas) Type() CommandType     { return CmdSetReplicas }
func (c *SetNodeState) Type() CommandType    { return CmdSetNodeState }
func (c *RemoveNode) Type() CommandType      { return CmdRemoveNode }
func (c *SetVolume) Type() CommandType       { return CmdSetVolume }
func (c *RotateToken) Type() CommandType     { return CmdRotateToken }
func (c *WriteInline) Type() CommandType     { return CmdWriteInline }
func (c *RotateHandleKey) Type() CommandType { return CmdRotateHandleKey }
func (c *CreateVolume) Type() CommandType    { return CmdCreateVolume }
func (c *DeleteVolume) Type() CommandType    { return CmdDeleteVolume }
func (c *Create) Type() CommandType          { return CmdCreate }
func (c *Remove) Type() CommandType          { return CmdRemove }
func (c *Rename) Type() CommandType          { return CmdRename }
func (c *Link) Type() CommandType            { return CmdLink }
func (c *SetAttr) Type() CommandType         { return CmdSetAttr }
func (c *CommitWrite) Type() CommandType     { return CmdCommitWrite }
func (c *GCDone) Type() CommandType          { return CmdGCDone }
func (c *SetExport) Type() CommandType       { return CmdSetExport }

func (h *Header) header() *Header { return h }

// newCommand returns an empty payload for a type, or nil if the type is unknown.
func newCommand(t CommandType) Command {
	switch t {
	case CmdRegisterNode:
		return &RegisterNode{}
	case CmdCreateVolume:
		return &CreateVolume{}
	case CmdDeleteVolume:
		return &DeleteVolume{}
	case CmdCreate:
		return &Create{}
	case CmdRemove:
		return &Remove{}
	case CmdRename:
		return &Rename{}
	case CmdLink:
		return &Link{}
	case CmdSetAttr:
		return &SetAttr{}
	case CmdCommitWrite:
		return &CommitWrite{}
	case CmdGCDone:
		return &GCDone{}
	case CmdSetExport:
		return &SetExport{}
	case CmdSetReplicas:
		return &SetReplicas{}
	case CmdSetNodeState:
		return &SetNodeState{}
	case CmdRemoveNode:
		return &RemoveNode{}
	case CmdSetVolume:
		return &SetVolume{}
	case CmdRotateToken:
		return &RotateToken{}
	case CmdWriteInline:
		return &WriteInline{}
	case CmdRotateHandleKey:
		return &RotateHandleKey{}
	}
	return nil
}

// EncodeCommand returns the log entry for c: type byte, format byte
// (formatOf), JSON.
func EncodeCommand(c Command) ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("meta: encode %s: %w", c.Type(), err)
	}
	out := make([]byte, 0, 2+len(body))
	out = append(out, byte(c.Type()), formatOf(c))
	return append(out, body...), nil
}

// ErrUnknownCommand is returned by DecodeCommand for a type byte this build
// does not know. The FSM treats it as fatal.
var ErrUnknownCommand = fmt.Errorf("meta: unknown command type")

// DecodeCommand parses a log entry written by EncodeCommand.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("meta: command entry of %d bytes is too short", len(b))
	}
	c := newCommand(CommandType(b[0]))
	if c == nil {
		return nil, fmt.Errorf("%w %d", ErrUnknownCommand, b[0])
	}
	if b[1] == 0 || b[1] > commandFormat {
		return nil, fmt.Errorf("%w: %s format %d (this build reads up to %d)", ErrUnknownCommand, c.Type(), b[1], commandFormat)
	}
	if err := json.Unmarshal(b[2:], c); err != nil {
		return nil, fmt.Errorf("meta: decode %s: %w", c.Type(), err)
	}
	return c, nil
}

// HeaderOf returns the common header of a command.
func HeaderOf(c Command) *Header { return c.header() }
