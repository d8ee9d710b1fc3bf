package meta

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// applied is what one command handler returns: the result and a
// precondition error (which means nothing was changed).
type applied struct {
	Result
	err error
}

func fail(err error) applied { return applied{err: err} }

// applyCommand dispatches one decoded command. Handlers check every
// precondition before their first write.
func applyCommand(tx *bolt.Tx, index uint64, cmd Command) applied {
	s := &state{tx: tx, index: index}
	switch c := cmd.(type) {
	case *RegisterNode:
		return s.registerNode(c)
	case *CreateVolume:
		return s.createVolume(c)
	case *DeleteVolume:
		return s.deleteVolume(c)
	case *Create:
		return s.create(index, c)
	case *Remove:
		return s.remove(c)
	case *Rename:
		return s.rename(c)
	case *Link:
		return s.link(c)
	case *SetAttr:
		return s.setAttr(c)
	case *CommitWrite:
		return s.commitWrite(c)
	case *GCDone:
		return s.gcDone(c)
	case *SetExport:
		return s.setExport(c)
	case *SetReplicas:
		return s.setReplicas(c)
	case *SetNodeState:
		return s.setNodeState(c)
	case *RemoveNode:
		return s.removeNode(c)
	case *SetVolume:
		return s.setVolume(c)
	case *RotateToken:
		return s.rotateToken(c)
	case *RotateHandleKey:
		return s.rotateHandleKey(c)
	case *WriteInline:
		return s.writeInline(c)
	}
	// DecodeCommand only returns known types; reaching here is a build bug.
	panic(fmt.Sprintf("meta: no handler for %s", cmd.Type()))
}

// state wraps the buckets of one transaction with typed accessors.
type state struct {
	tx    *bolt.Tx
	index uint64 // log index of the command being applied (0 in reads)
}

func getJSON[T any](b *bolt.Bucket, key []byte) (*T, bool) {
	v := b.Get(key)
	if v == nil {
		return nil, false
	}
	var out T
	if err := json.Unmarshal(v, &out); err != nil {
		panic(fmt.Sprintf("meta: corrupt value in bucket: %v", err))
	}
	return &out, true
}

func putJSON(b *bolt.Bucket, key []byte, v any) {
	data, err := json.Marshal(v)
	must(err)
	must(b.Put(key, data))
}

func (s *state) volumeByID(id uint32) (*Volume, error) {
	name := s.tx.Bucket(bucketVolIDs).Get(volKey(id))
	if name == nil {
		return nil, ErrNoVolume
	}
	v, ok := getJSON[Volume](s.tx.Bucket(bucketVolumes), name)
	if !ok {
		return nil, ErrNoVolume
	}
	return v, nil
}

func (s *state) putVolume(v *Volume) { putJSON(s.tx.Bucket(bucketVolumes), []byte(v.Name), v) }

func (s *state) inode(vol uint32, ino uint64) (*Inode, error) {
	v := s.tx.Bucket(bucketInodes).Get(inodeKey(vol, ino))
	if v == nil {
		return nil, ErrNotExist
	}
	n, err := decodeInode(v)
	if err != nil {
		panic(fmt.Sprintf("meta: inode %d/%d: %v", vol, ino, err)) // as getJSON: meta.db is damaged
	}
	return n, nil
}

func (s *state) putInode(vol uint32, n *Inode) {
	must(s.tx.Bucket(bucketInodes).Put(inodeKey(vol, n.Ino), encodeInode(n)))
}

func (s *state) dir(vol uint32, ino uint64) (*Inode, error) {
	d, err := s.inode(vol, ino)
	if err != nil {
		return nil, err
	}
	if d.Type != TypeDir {
		return nil, ErrNotDir
	}
	return d, nil
}

func (s *state) lookup(vol uint32, parent uint64, name string) (uint64, bool) {
	v := s.tx.Bucket(bucketDirents).Get(direntKey(vol, parent, name))
	if v == nil {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

func (s *state) dirEmpty(vol uint32, ino uint64) bool {
	prefix := inodeKey(vol, ino)
	k, _ := s.tx.Bucket(bucketDirents).Cursor().Seek(prefix)
	return k == nil || !bytes.HasPrefix(k, prefix)
}

// ValidName reports whether name may be a directory entry.
func ValidName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: name %q is reserved", ErrInvalid, name)
	case len(name) > MaxNameLen:
		return ErrNameTooLong
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w: name contains '/' or NUL", ErrInvalid)
	}
	return nil
}

// MaxNameLen is the longest name in bytes, as on Linux.
const MaxNameLen = 255

// MaxSymlinkLen is the longest symlink target in bytes (PATH_MAX).
const MaxSymlinkLen = 4096

func (s *state) registerNode(c *RegisterNode) applied {
	if c.Node.ID == "" || len(c.Node.ID) > MaxNodeIDLen {
		return fail(fmt.Errorf("%w: a node ID must be 1-%d bytes", ErrInvalid, MaxNodeIDLen))
	}
	n := c.Node
	old, known := getJSON[NodeInfo](s.tx.Bucket(bucketNodes), []byte(n.ID))
	if known {
		// Draining is the operator's decision, not the node's: a node
		// re-registering after a restart stays draining.
		n.Draining = old.Draining
	}
	if known && old.Joined != 0 {
		n.Joined = old.Joined
	} else if n.Joined == 0 {
		n.Joined = c.Time
	}
	putJSON(s.tx.Bucket(bucketNodes), []byte(n.ID), &n)
	return applied{}
}

// MaxNodeIDLen bounds node IDs (they are bbolt keys and appear in every
// chunk's replica list).
const MaxNodeIDLen = 64

// ValidVolumeName reports whether name may name a volume (it becomes the
// export path /<name>).
func ValidVolumeName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: volume name must be 1-64 characters", ErrInvalid)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%w: volume name %q may use only letters, digits, '-', '_' and '.'", ErrInvalid, name)
		}
	}
	if name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("%w: volume name %q must start with a letter or digit", ErrInvalid, name)
	}
	return nil
}

// Chunk size bounds accepted by CreateVolume.
const (
	MinChunkSize = 64 << 10
	MaxChunkSize = 64 << 20
)

func (s *state) createVolume(c *CreateVolume) applied {
	if err := ValidVolumeName(c.Name); err != nil {
		return fail(err)
	}
	if c.Replicas < 1 || c.WriteQuorum < 1 || c.WriteQuorum > c.Replicas {
		return fail(fmt.Errorf("%w: replicas %d with write quorum %d", ErrInvalid, c.Replicas, c.WriteQuorum))
	}
	if c.ChunkSize < MinChunkSize || c.ChunkSize > MaxChunkSize {
		return fail(fmt.Errorf("%w: chunk size %d outside [%d, %d]", ErrInvalid, c.ChunkSize, MinChunkSize, MaxChunkSize))
	}
	export := DefaultExport()
	if c.Export != nil {
		export = *c.Export
	}
	if err := export.Validate(); err != nil {
		return fail(err)
	}
	if err := validQuotas(c.QuotaBytes, c.QuotaFiles); err != nil {
		return fail(err)
	}
	vols := s.tx.Bucket(bucketVolumes)
	if vols.Get([]byte(c.Name)) != nil {
		return fail(ErrVolumeExist)
	}
	counters := s.tx.Bucket(bucketCounters)
	id := uint64(1)
	if v := counters.Get(keyNextVolID); v != nil {
		id = binary.BigEndian.Uint64(v)
	}
	must(counters.Put(keyNextVolID, u64(id+1)))
	vol := &Volume{
		ID: uint32(id), Name: c.Name, Replicas: c.Replicas, WriteQuorum: c.WriteQuorum,
		ChunkSize: c.ChunkSize, Created: c.Time, NextIno: RootIno + 1, Files: 1, Export: export,
		QuotaBytes: c.QuotaBytes, QuotaFiles: c.QuotaFiles,
	}
	s.putVolume(vol)
	must(s.tx.Bucket(bucketVolIDs).Put(volKey(vol.ID), []byte(vol.Name)))
	s.putInode(vol.ID, &Inode{
		Ino: RootIno, Gen: 1, Type: TypeDir, Mode: c.RootMode & 0o7777, UID: c.RootUID, GID: c.RootGID,
		Nlink: 2, Atime: c.Time, Mtime: c.Time, Ctime: c.Time, Parent: RootIno,
	})
	return applied{Result: Result{Volume: vol}}
}

func (s *state) deleteVolume(c *DeleteVolume) applied {
	vol, ok := getJSON[Volume](s.tx.Bucket(bucketVolumes), []byte(c.Name))
	if !ok {
		return fail(ErrNoVolume)
	}
	prefix := volKey(vol.ID)
	for _, b := range [][]byte{bucketInodes, bucketDirents, bucketInline} {
		deletePrefix(s.tx.Bucket(b), prefix)
	}
	chunks := s.tx.Bucket(bucketChunks)
	var keys [][]byte
	cur := chunks.Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		var ch Chunk
		must(json.Unmarshal(v, &ch))
		s.addGarbage(vol.ID, binary.BigEndian.Uint64(k[4:]), &ch, ch.Replicas)
		keys = append(keys, slices.Clone(k))
	}
	for _, k := range keys {
		must(chunks.Delete(k))
	}
	must(s.tx.Bucket(bucketVolIDs).Delete(prefix))
	must(s.tx.Bucket(bucketVolumes).Delete([]byte(c.Name)))
	return applied{Result: Result{Volume: vol}}
}

func deletePrefix(b *bolt.Bucket, prefix []byte) {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, slices.Clone(k))
	}
	for _, k := range keys {
		must(b.Delete(k))
	}
}

func (s *state) addGarbage(vol uint32, ino uint64, ch *Chunk, replicas []string) {
	if len(replicas) == 0 {
		return
	}
	key := GarbageKey{Vol: vol, Ino: ino, Index: ch.Index, Version: ch.Version}
	g := s.tx.Bucket(bucketGarbage)
	rec := Garbage{Key: key, Replicas: slices.Clone(replicas)}
	if old, ok := getJSON[Garbage](g, key.bytes()); ok {
		for _, r := range old.Replicas {
			if !slices.Contains(rec.Replicas, r) {
				rec.Replicas = append(rec.Replicas, r)
			}
		}
	}
	putJSON(g, key.bytes(), &rec)
}

func (s *state) create(index uint64, c *Create) applied {
	vol, err := s.volumeByID(c.Vol)
	if err != nil {
		return fail(err)
	}
	parent, err := s.dir(c.Vol, c.Parent)
	if err != nil {
		return fail(err)
	}
	if err := ValidName(c.Name); err != nil {
		return fail(err)
	}
	if _, ok := s.lookup(c.Vol, c.Parent, c.Name); ok {
		return fail(ErrExist)
	}
	n := &Inode{
		Ino: vol.NextIno, Gen: uint32(index) | 1, Type: c.Kind, Mode: c.Mode & 0o7777,
		UID: c.UID, GID: c.GID, Nlink: 1, Atime: c.Time, Mtime: c.Time, Ctime: c.Time,
	}
	switch c.Kind {
	case TypeFile:
	case TypeDir:
		n.Nlink = 2
		n.Parent = c.Parent
	case TypeSymlink:
		if c.Target == "" || len(c.Target) > MaxSymlinkLen || strings.ContainsRune(c.Target, 0) {
			return fail(fmt.Errorf("%w: symlink target must be 1-%d bytes without NUL", ErrInvalid, MaxSymlinkLen))
		}
		n.Target = c.Target
		n.Size = uint64(len(c.Target))
	default:
		return fail(fmt.Errorf("%w: cannot create a %s", ErrInvalid, c.Kind))
	}
	if !vol.quotaAllowsFile() {
		return fail(fmt.Errorf("%w: volume %s holds %d of its %d files", ErrQuota, vol.Name, vol.Files, vol.QuotaFiles))
	}
	vol.NextIno++
	vol.Files++
	s.putVolume(vol)
	s.putInode(c.Vol, n)
	must(s.tx.Bucket(bucketDirents).Put(direntKey(c.Vol, c.Parent, c.Name), u64(n.Ino)))
	if c.Kind == TypeDir {
		parent.Nlink++
	}
	parent.Mtime, parent.Ctime = c.Time, c.Time
	s.putInode(c.Vol, parent)
	return applied{Result: Result{Inode: n}}
}

// unlinkInode drops one link to n (whose dirent the caller removed) and frees
// it when none is left. For a directory the caller fixes the parent's nlink.
func (s *state) unlinkInode(vol *Volume, n *Inode, now int64) {
	if n.Type == TypeDir {
		n.Nlink = 0
	} else if n.Nlink > 0 {
		n.Nlink--
	}
	n.Ctime = now
	if n.Nlink > 0 {
		s.putInode(vol.ID, n)
		return
	}
	must(s.tx.Bucket(bucketInodes).Delete(inodeKey(vol.ID, n.Ino)))
	s.dropChunksFrom(vol, n.Ino, 0)
	s.dropInline(vol.ID, n.Ino)
	vol.Files--
	if n.Type == TypeFile {
		// Bytes counts file data only: a symlink's size (its target) was
		// never added.
		vol.Bytes -= int64(n.Size)
	}
	s.putVolume(vol)
}

// dropChunksFrom removes the chunks of ino that start at or after offset
// `from` (chunks wholly past the new end of file) and records them as
// garbage; the caller shortens a chunk the new end cuts.
func (s *state) dropChunksFrom(vol *Volume, ino uint64, from uint64) {
	chunks := s.tx.Bucket(bucketChunks)
	first := (from + uint64(vol.ChunkSize) - 1) / uint64(vol.ChunkSize)
	prefix := inodeKey(vol.ID, ino)
	var keys [][]byte
	c := chunks.Cursor()
	for k, v := c.Seek(chunkKey(vol.ID, ino, first)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var ch Chunk
		must(json.Unmarshal(v, &ch))
		s.addGarbage(vol.ID, ino, &ch, ch.Replicas)
		keys = append(keys, slices.Clone(k))
	}
	for _, k := range keys {
		must(chunks.Delete(k))
	}
}

func (s *state) remove(c *Remove) applied {
	vol, err := s.volumeByID(c.Vol)
	if err != nil {
		return fail(err)
	}
	parent, err := s.dir(c.Vol, c.Parent)
	if err != nil {
		return fail(err)
	}
	if c.Name == "." || c.Name == ".." {
		return fail(fmt.Errorf("%w: cannot remove %q", ErrInvalid, c.Name))
	}
	ino, ok := s.lookup(c.Vol, c.Parent, c.Name)
	if !ok {
		return fail(ErrNotExist)
	}
	child, err := s.inode(c.Vol, ino)
	if err != nil {
		return fail(err)
	}
	if c.Dir {
		if child.Type != TypeDir {
			return fail(ErrNotDir)
		}
		if !s.dirEmpty(c.Vol, ino) {
			return fail(ErrNotEmpty)
		}
	} else if child.Type == TypeDir {
		return fail(ErrIsDir)
	}
	must(s.tx.Bucket(bucketDirents).Delete(direntKey(c.Vol, c.Parent, c.Name)))
	if child.Type == TypeDir {
		parent.Nlink--
	}
	parent.Mtime, parent.Ctime = c.Time, c.Time
	s.putInode(c.Vol, parent)
	s.unlinkInode(vol, child, c.Time)
	return applied{Result: Result{Inode: child}}
}

func (s *state) rename(c *Rename) applied {
	vol, err := s.volumeByID(c.Vol)
	if err != nil {
		return fail(err)
	}
	srcDir, err := s.dir(c.Vol, c.SrcParent)
	if err != nil {
		return fail(err)
	}
	dstDir, err := s.dir(c.Vol, c.DstParent)
	if err != nil {
		return fail(err)
	}
	if c.SrcName == "." || c.SrcName == ".." {
		return fail(fmt.Errorf("%w: cannot rename %q", ErrInvalid, c.SrcName))
	}
	if err := ValidName(c.DstName); err != nil {
		return fail(err)
	}
	ino, ok := s.lookup(c.Vol, c.SrcParent, c.SrcName)
	if !ok {
		return fail(ErrNotExist)
	}
	src, err := s.inode(c.Vol, ino)
	if err != nil {
		return fail(err)
	}
	if src.Type == TypeDir && c.SrcParent != c.DstParent {
		// Walk up from the destination: moving a directory under itself would
		// cut a cycle out of the tree.
		for at := c.DstParent; ; {
			if at == src.Ino {
				return fail(ErrLoop)
			}
			if at == RootIno {
				break
			}
			d, err := s.inode(c.Vol, at)
			if err != nil {
				return fail(err)
			}
			at = d.Parent
		}
	}
	var dst *Inode
	if dino, ok := s.lookup(c.Vol, c.DstParent, c.DstName); ok {
		if dino == ino {
			return applied{Result: Result{Inode: src}} // same file: POSIX says do nothing
		}
		if dst, err = s.inode(c.Vol, dino); err != nil {
			return fail(err)
		}
		switch {
		case src.Type == TypeDir && dst.Type != TypeDir:
			return fail(ErrNotDir)
		case src.Type != TypeDir && dst.Type == TypeDir:
			return fail(ErrIsDir)
		case dst.Type == TypeDir && !s.dirEmpty(c.Vol, dino):
			return fail(ErrNotEmpty)
		}
	}
	dirents := s.tx.Bucket(bucketDirents)
	sameDir := c.SrcParent == c.DstParent
	if sameDir {
		dstDir = srcDir
	}
	if dst != nil {
		if dst.Type == TypeDir {
			dstDir.Nlink--
		}
		s.unlinkInode(vol, dst, c.Time)
	}
	must(dirents.Delete(direntKey(c.Vol, c.SrcParent, c.SrcName)))
	must(dirents.Put(direntKey(c.Vol, c.DstParent, c.DstName), u64(ino)))
	if src.Type == TypeDir && !sameDir {
		srcDir.Nlink--
		dstDir.Nlink++
		src.Parent = c.DstParent
	}
	src.Ctime = c.Time
	s.putInode(c.Vol, src)
	srcDir.Mtime, srcDir.Ctime = c.Time, c.Time
	s.putInode(c.Vol, srcDir)
	if !sameDir {
		dstDir.Mtime, dstDir.Ctime = c.Time, c.Time
		s.putInode(c.Vol, dstDir)
	}
	return applied{Result: Result{Inode: src}}
}

func (s *state) link(c *Link) applied {
	if _, err := s.volumeByID(c.Vol); err != nil {
		return fail(err)
	}
	n, err := s.inode(c.Vol, c.Ino)
	if err != nil {
		return fail(err)
	}
	if n.Type == TypeDir {
		return fail(ErrIsDir)
	}
	parent, err := s.dir(c.Vol, c.Parent)
	if err != nil {
		return fail(err)
	}
	if err := ValidName(c.Name); err != nil {
		return fail(err)
	}
	if _, ok := s.lookup(c.Vol, c.Parent, c.Name); ok {
		return fail(ErrExist)
	}
	n.Nlink++
	n.Ctime = c.Time
	s.putInode(c.Vol, n)
	must(s.tx.Bucket(bucketDirents).Put(direntKey(c.Vol, c.Parent, c.Name), u64(n.Ino)))
	parent.Mtime, parent.Ctime = c.Time, c.Time
	s.putInode(c.Vol, parent)
	return applied{Result: Result{Inode: n}}
}

func (s *state) setAttr(c *SetAttr) applied {
	vol, err := s.volumeByID(c.Vol)
	if err != nil {
		return fail(err)
	}
	n, err := s.inode(c.Vol, c.Ino)
	if err != nil {
		return fail(err)
	}
	if c.Size != nil && n.Type != TypeFile {
		if n.Type == TypeDir {
			return fail(ErrIsDir)
		}
		return fail(fmt.Errorf("%w: cannot resize a %s", ErrInvalid, n.Type))
	}
	if c.Size != nil && *c.Size > uint64(1)<<62 {
		return fail(fmt.Errorf("%w: size %d too large", ErrInvalid, *c.Size))
	}
	if c.Size != nil && *c.Size > n.Size && !vol.quotaAllowsBytes(int64(*c.Size-n.Size)) {
		return fail(quotaBytesErr(vol, int64(*c.Size-n.Size)))
	}
	if c.Mode != nil {
		n.Mode = *c.Mode & 0o7777
	}
	if c.UID != nil {
		n.UID = *c.UID
	}
	if c.GID != nil {
		n.GID = *c.GID
	}
	if c.Size != nil && *c.Size != n.Size {
		size := *c.Size
		if size < n.Size {
			s.truncateChunks(vol, n.Ino, size)
			s.truncateInline(vol.ID, n.Ino, size)
		}
		vol.Bytes += int64(size) - int64(n.Size)
		s.putVolume(vol)
		n.Size = size
		n.Mtime = c.Time
	}
	if c.Atime != nil {
		n.Atime = *c.Atime
	}
	if c.Mtime != nil {
		n.Mtime = *c.Mtime
	}
	n.Ctime = c.Time
	s.putInode(c.Vol, n)
	return applied{Result: Result{Inode: n}}
}

// truncateChunks drops the chunks past size and shortens the one it cuts.
func (s *state) truncateChunks(vol *Volume, ino, size uint64) {
	s.dropChunksFrom(vol, ino, size)
	cs := uint64(vol.ChunkSize)
	if size%cs == 0 {
		return
	}
	idx := size / cs
	chunks := s.tx.Bucket(bucketChunks)
	key := chunkKey(vol.ID, ino, idx)
	if ch, ok := getJSON[Chunk](chunks, key); ok {
		if keep := int64(size - idx*cs); ch.Length > keep {
			ch.Length = keep
			putJSON(chunks, key, ch)
		}
	}
}

// regularFile returns file ino and its volume for a write: ErrIsDir for a
// directory, ErrInvalid for anything else that is not a regular file.
func (s *state) regularFile(vol uint32, ino uint64) (*Volume, *Inode, error) {
	v, err := s.volumeByID(vol)
	if err != nil {
		return nil, nil, err
	}
	n, err := s.inode(vol, ino)
	if err != nil {
		return nil, nil, err
	}
	switch n.Type {
	case TypeFile:
		return v, n, nil
	case TypeDir:
		return nil, nil, ErrIsDir
	default:
		return nil, nil, fmt.Errorf("%w: cannot write to a %s", ErrInvalid, n.Type)
	}
}

func (s *state) commitWrite(c *CommitWrite) applied {
	vol, n, err := s.regularFile(c.Vol, c.Ino)
	if err != nil {
		return fail(err)
	}
	chunks := s.tx.Bucket(bucketChunks)
	olds := make([]*Chunk, len(c.Chunks))
	lefts := make([][]string, len(c.Chunks)) // written but not listed: garbage at the new version
	for i, w := range c.Chunks {
		if len(w.Replicas) == 0 || w.Version <= w.BaseVersion || w.Length < 0 || w.Length > vol.ChunkSize {
			return fail(fmt.Errorf("%w: chunk %d write without replicas or with a bad version or length", ErrInvalid, w.Index))
		}
		// The same chunk twice would leave the first new version's replicas
		// neither referenced nor recorded as garbage.
		if slices.ContainsFunc(c.Chunks[:i], func(p ChunkWrite) bool { return p.Index == w.Index }) {
			return fail(fmt.Errorf("%w: chunk %d written twice in one commit", ErrInvalid, w.Index))
		}
		cur, ok := getJSON[Chunk](chunks, chunkKey(c.Vol, c.Ino, w.Index))
		version := uint64(0)
		if ok {
			version = cur.Version
		}
		if version != w.BaseVersion {
			return fail(fmt.Errorf("%w: chunk %d is at version %d, write was based on %d", ErrConflict, w.Index, version, w.BaseVersion))
		}
		olds[i] = cur
		// Only replicas the chunk still has (or, for a new chunk, nodes not
		// draining) are listed: a writer working from an older view of the
		// replica set (at the same version: the healer and the drop of a
		// corrupt replica do not change it) must not list again a node that
		// was dropped, drained or deleted its file meanwhile. If that leaves
		// fewer than the write quorum, the write did not reach a quorum of
		// the chunk's real replicas: the writer retries from the new set.
		keep := s.liveReplicas(cur, w.Replicas)
		if len(keep) < len(w.Replicas) && len(keep) < vol.WriteQuorum {
			return fail(fmt.Errorf("%w: chunk %d: only %v of the replicas written %v are still its replicas", ErrConflict, w.Index, keep, w.Replicas))
		}
		c.Chunks[i].Replicas = keep
		lefts[i] = slices.DeleteFunc(slices.Clone(w.Replicas), func(r string) bool { return slices.Contains(keep, r) })
	}
	if c.Spill != nil && !slices.ContainsFunc(c.Chunks, func(w ChunkWrite) bool { return w.Index == 0 && w.BaseVersion == 0 }) {
		return fail(fmt.Errorf("%w: inline data moved to chunks without a new chunk 0", ErrInvalid))
	}
	// Only growth counts: a write inside the current size always passes,
	// even on a volume past a lowered quota. The size is checked here, not
	// the chunk lengths, because Bytes counts the logical size of files.
	if c.Size > n.Size && !vol.quotaAllowsBytes(int64(c.Size-n.Size)) {
		return fail(quotaBytesErr(vol, int64(c.Size-n.Size)))
	}
	if slices.ContainsFunc(c.Chunks, func(w ChunkWrite) bool { return w.Index == 0 }) {
		if err := s.spill(c.Vol, c.Ino, c.Spill); err != nil {
			return fail(err)
		}
	}
	for i, w := range c.Chunks {
		s.addGarbage(c.Vol, c.Ino, &Chunk{Index: w.Index, Version: w.Version}, lefts[i])
		if old := olds[i]; old != nil {
			var dropped []string
			for _, r := range old.Replicas {
				if !slices.Contains(w.Replicas, r) {
					dropped = append(dropped, r)
				}
			}
			s.addGarbage(c.Vol, c.Ino, old, dropped)
		}
		putJSON(chunks, chunkKey(c.Vol, c.Ino, w.Index), &Chunk{
			Index: w.Index, Version: w.Version, Length: w.Length, Replicas: slices.Clone(w.Replicas),
		})
	}
	if c.Size > n.Size {
		vol.Bytes += int64(c.Size - n.Size)
		s.putVolume(vol)
		n.Size = c.Size
	}
	n.Mtime, n.Ctime = c.Time, c.Time
	s.putInode(c.Vol, n)
	return applied{Result: Result{Inode: n}}
}

func (s *state) gcDone(c *GCDone) applied {
	g := s.tx.Bucket(bucketGarbage)
	for _, k := range c.Keys {
		must(g.Delete(k.bytes()))
	}
	return applied{}
}

func (s *state) setExport(c *SetExport) applied {
	vol, ok := getJSON[Volume](s.tx.Bucket(bucketVolumes), []byte(c.Name))
	if !ok {
		return fail(ErrNoVolume)
	}
	if err := c.Export.Validate(); err != nil {
		return fail(err)
	}
	vol.Export = c.Export
	s.putVolume(vol)
	return applied{Result: Result{Volume: vol}}
}

// validQuotas checks quota values: 0 is no quota, negative is nonsense.
func validQuotas(bytes, files int64) error {
	if bytes < 0 || files < 0 {
		return fmt.Errorf("%w: quotas must not be negative (0 means none)", ErrInvalid)
	}
	return nil
}

func quotaBytesErr(vol *Volume, growth int64) error {
	return fmt.Errorf("%w: volume %s uses %d of its %d bytes; %d more do not fit", ErrQuota, vol.Name, vol.Bytes, vol.QuotaBytes, growth)
}

func (s *state) setVolume(c *SetVolume) applied {
	vol, ok := getJSON[Volume](s.tx.Bucket(bucketVolumes), []byte(c.Name))
	if !ok {
		return fail(ErrNoVolume)
	}
	next := *vol
	if c.Replicas != nil {
		next.Replicas = *c.Replicas
	}
	if c.WriteQuorum != nil {
		next.WriteQuorum = *c.WriteQuorum
	}
	if c.QuotaBytes != nil {
		next.QuotaBytes = *c.QuotaBytes
	}
	if c.QuotaFiles != nil {
		next.QuotaFiles = *c.QuotaFiles
	}
	if c.Export != nil {
		next.Export = *c.Export
		next.Export.Clients = slices.Clone(c.Export.Clients)
	}
	if next.Replicas < 1 || next.WriteQuorum < 1 || next.WriteQuorum > next.Replicas {
		return fail(fmt.Errorf("%w: replicas %d with write quorum %d", ErrInvalid, next.Replicas, next.WriteQuorum))
	}
	if err := validQuotas(next.QuotaBytes, next.QuotaFiles); err != nil {
		return fail(err)
	}
	if err := next.Export.Validate(); err != nil {
		return fail(err)
	}
	s.putVolume(&next)
	return applied{Result: Result{Volume: &next}}
}

func (s *state) setReplicas(c *SetReplicas) applied {
	if len(c.Replicas) == 0 {
		return fail(fmt.Errorf("%w: a chunk needs at least one replica", ErrInvalid))
	}
	for i, r := range c.Replicas {
		if r == "" || len(r) > MaxNodeIDLen || slices.Contains(c.Replicas[:i], r) {
			return fail(fmt.Errorf("%w: replica list %q has an empty, overlong or repeated node ID", ErrInvalid, c.Replicas))
		}
	}
	chunks := s.tx.Bucket(bucketChunks)
	key := chunkKey(c.Vol, c.Ino, c.Index)
	ch, ok := getJSON[Chunk](chunks, key)
	if !ok {
		return fail(fmt.Errorf("%w: chunk %d of inode %d", ErrNotExist, c.Index, c.Ino))
	}
	if ch.Version != c.Version {
		return fail(fmt.Errorf("%w: chunk %d is at version %d, not %d", ErrConflict, c.Index, ch.Version, c.Version))
	}
	if len(c.From) > 0 && !sameNodes(ch.Replicas, c.From) {
		return fail(fmt.Errorf("%w: chunk %d has replicas %v, the change was computed from %v", ErrConflict, c.Index, ch.Replicas, c.From))
	}
	var dropped []string
	for _, r := range ch.Replicas {
		if !slices.Contains(c.Replicas, r) {
			dropped = append(dropped, r)
		}
	}
	s.addGarbage(c.Vol, c.Ino, ch, dropped)
	ch.Replicas = slices.Clone(c.Replicas)
	putJSON(chunks, key, ch)
	return applied{}
}

func (s *state) setNodeState(c *SetNodeState) applied {
	nodes := s.tx.Bucket(bucketNodes)
	n, ok := getJSON[NodeInfo](nodes, []byte(c.ID))
	if !ok {
		return fail(fmt.Errorf("%w: no node %q", ErrNotExist, c.ID))
	}
	n.Draining = c.Draining
	putJSON(nodes, []byte(c.ID), n)
	return applied{}
}

func (s *state) removeNode(c *RemoveNode) applied {
	nodes := s.tx.Bucket(bucketNodes)
	if _, ok := getJSON[NodeInfo](nodes, []byte(c.ID)); !ok {
		return fail(fmt.Errorf("%w: no node %q", ErrNotExist, c.ID))
	}
	// The last copy of anything must never be forgotten with its node.
	cur := s.tx.Bucket(bucketChunks).Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		var ch Chunk
		must(json.Unmarshal(v, &ch))
		if len(ch.Replicas) == 1 && ch.Replicas[0] == c.ID {
			return fail(fmt.Errorf("%w: node %q holds the only replica of a chunk", ErrConflict, c.ID))
		}
	}
	must(nodes.Delete([]byte(c.ID)))
	return applied{}
}

// sameNodes reports whether two replica lists hold the same nodes.
func sameNodes(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, n := range a {
		if !slices.Contains(b, n) {
			return false
		}
	}
	return true
}

// liveReplicas returns the nodes of written that may be listed for a chunk
// whose current record is cur (nil: a new chunk): for an existing chunk the
// ones it still lists, for a new one the ones not draining.
func (s *state) liveReplicas(cur *Chunk, written []string) []string {
	nodes := s.tx.Bucket(bucketNodes)
	return slices.DeleteFunc(slices.Clone(written), func(r string) bool {
		if cur != nil {
			return !slices.Contains(cur.Replicas, r)
		}
		n, ok := getJSON[NodeInfo](nodes, []byte(r))
		return ok && n.Draining
	})
}

// MaxTokenGrace bounds how long a rotated-out admin token stays valid.
const MaxTokenGrace = 7 * 24 * int64(time.Hour)

func (s *state) rotateToken(c *RotateToken) applied {
	return s.rotateGeneration("the admin token", keyTokenGen, keyTokenPrevUntil, c.Gen, c.Time, c.Grace, MaxTokenGrace)
}

// rotateGeneration moves the generation counter at genKey to gen, which
// must be the next one (two racing rotations cannot both win), and keeps
// at untilKey until when the previous generation stays valid.
func (s *state) rotateGeneration(what string, genKey, untilKey []byte, gen uint64, now, grace, maxGrace int64) applied {
	counters := s.tx.Bucket(bucketCounters)
	cur := uint64(0)
	if v := counters.Get(genKey); v != nil {
		cur = binary.BigEndian.Uint64(v)
	}
	if gen != cur+1 {
		return fail(fmt.Errorf("%w: %s is at generation %d, the rotation asked for %d", ErrConflict, what, cur, gen))
	}
	if grace < 0 || grace > maxGrace {
		return fail(fmt.Errorf("%w: grace must be between 0 and %v", ErrInvalid, time.Duration(maxGrace)))
	}
	must(counters.Put(genKey, u64(gen)))
	must(counters.Put(untilKey, u64(uint64(now+grace))))
	return applied{}
}

// MaxHandleKeyGrace bounds how long handles of a rotated-out key stay
// valid: NFS clients keep handles as long as they are mounted.
const MaxHandleKeyGrace = 30 * 24 * int64(time.Hour)

func (s *state) rotateHandleKey(c *RotateHandleKey) applied {
	return s.rotateGeneration("the handle key", keyHandleKeyGen, keyHandleKeyPrevUntil, c.Gen, c.Time, c.Grace, MaxHandleKeyGrace)
}
