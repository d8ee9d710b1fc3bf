package meta

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Reads served from the local FSM. They see every command this node has
// applied; a node that lags the leader (a follower) may be behind by the
// commits still in flight (normally milliseconds; see docs/consistency.md).
// Values are decoded out of the transaction, so callers own them.

// Volume returns the volume named name.
func (f *FSM) Volume(name string) (*Volume, error) {
	var out *Volume
	err := f.view(func(tx *bolt.Tx) error {
		v, ok := getJSON[Volume](tx.Bucket(bucketVolumes), []byte(name))
		if !ok {
			return ErrNoVolume
		}
		out = v
		return nil
	})
	return out, err
}

// VolumeByID returns the volume with ID id.
func (f *FSM) VolumeByID(id uint32) (*Volume, error) {
	return f.cache.volume(id, func() (*Volume, error) {
		var out *Volume
		err := f.view(func(tx *bolt.Tx) error {
			v, err := (&state{tx: tx}).volumeByID(id)
			out = v
			return err
		})
		return out, err
	})
}

// Volumes lists every volume by name.
func (f *FSM) Volumes() ([]Volume, error) {
	var out []Volume
	err := f.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketVolumes).ForEach(func(_, v []byte) error {
			var vol Volume
			if err := json.Unmarshal(v, &vol); err != nil {
				return err
			}
			out = append(out, vol)
			return nil
		})
	})
	return out, err
}

// Inode returns the attributes of ino.
func (f *FSM) Inode(vol uint32, ino uint64) (*Inode, error) {
	var out *Inode
	err := f.view(func(tx *bolt.Tx) error {
		n, err := (&state{tx: tx}).inode(vol, ino)
		out = n
		return err
	})
	return out, err
}

// Lookup returns the inode that name in directory parent refers to.
func (f *FSM) Lookup(vol uint32, parent uint64, name string) (*Inode, error) {
	var out *Inode
	err := f.view(func(tx *bolt.Tx) error {
		s := &state{tx: tx}
		if _, err := s.dir(vol, parent); err != nil {
			return err
		}
		ino, ok := s.lookup(vol, parent, name)
		if !ok {
			return ErrNotExist
		}
		n, err := s.inode(vol, ino)
		out = n
		return err
	})
	return out, err
}

// ReadDir returns up to limit entries of directory dir whose cookies are
// greater than cookie (0: from the start), in cookie order, with their
// inodes. limit <= 0 means all.
func (f *FSM) ReadDir(vol uint32, dir uint64, cookie uint64, limit int) ([]DirEntry, []Inode, error) {
	var ents []DirEntry
	var inodes []Inode
	err := f.view(func(tx *bolt.Tx) error {
		s := &state{tx: tx}
		if _, err := s.dir(vol, dir); err != nil {
			return err
		}
		prefix := inodeKey(vol, dir)
		c := tx.Bucket(bucketDirents).Cursor()
		start := append(inodeKey(vol, dir), u64(cookie+1)...)
		if cookie == 1<<64-1 {
			return nil
		}
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if limit > 0 && len(ents) >= limit {
				break
			}
			ino := binary.BigEndian.Uint64(v)
			n, err := s.inode(vol, ino)
			if err != nil {
				return err
			}
			ents = append(ents, DirEntry{Name: string(k[direntPrefixLen:]), Ino: ino,
				Cookie: binary.BigEndian.Uint64(k[len(prefix):])})
			inodes = append(inodes, *n)
		}
		return nil
	})
	return ents, inodes, err
}

// Chunks returns the chunks of ino in index order.
func (f *FSM) Chunks(vol uint32, ino uint64) ([]Chunk, error) {
	var out []Chunk
	err := f.view(func(tx *bolt.Tx) error {
		prefix := inodeKey(vol, ino)
		c := tx.Bucket(bucketChunks).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var ch Chunk
			if err := json.Unmarshal(v, &ch); err != nil {
				return err
			}
			out = append(out, ch)
		}
		return nil
	})
	return out, err
}

// Chunk returns one chunk, or ok=false if the file has none at index (a hole).
func (f *FSM) Chunk(vol uint32, ino, index uint64) (ch *Chunk, ok bool, err error) {
	err = f.view(func(tx *bolt.Tx) error {
		ch, ok = getJSON[Chunk](tx.Bucket(bucketChunks), chunkKey(vol, ino, index))
		return nil
	})
	return ch, ok, err
}

// Nodes lists the registered nodes.
func (f *FSM) Nodes() ([]NodeInfo, error) { return f.cache.nodeList(f.readNodes) }

func (f *FSM) readNodes() ([]NodeInfo, error) {
	var out []NodeInfo
	err := f.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).ForEach(func(_, v []byte) error {
			var n NodeInfo
			if err := json.Unmarshal(v, &n); err != nil {
				return err
			}
			out = append(out, n)
			return nil
		})
	})
	return out, err
}

// Garbage lists up to limit chunk versions waiting for deletion.
func (f *FSM) Garbage(limit int) ([]Garbage, error) {
	var out []Garbage
	err := f.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketGarbage).Cursor()
		for k, v := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			var g Garbage
			if err := json.Unmarshal(v, &g); err != nil {
				return err
			}
			out = append(out, g)
		}
		return nil
	})
	return out, err
}

// RequestResult returns the recorded result of a recently applied request.
func (f *FSM) RequestResult(rid string) (*Result, bool, error) {
	var out *Result
	err := f.view(func(tx *bolt.Tx) error {
		rec, ok := getJSON[requestRecord](tx.Bucket(bucketRequests), []byte(rid))
		if ok {
			r := rec.Result
			out = &r
		}
		return nil
	})
	return out, out != nil, err
}

// ChunkRef is one chunk with the file it belongs to.
type ChunkRef struct {
	Vol uint32 `json:"vol"`
	Ino uint64 `json:"ino"`
	Chunk
}

// ForEachChunk calls fn for every chunk of every volume, in key order,
// starting after the chunk (vol, ino, index) from (use the zero ChunkRef to
// start at the beginning) and stopping when fn returns false. Values are
// copies; fn must not call back into the FSM (it runs inside a read
// transaction).
func (f *FSM) ForEachChunk(from *ChunkRef, fn func(ChunkRef) bool) error {
	return f.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketChunks).Cursor()
		var k, v []byte
		if from == nil {
			k, v = c.First()
		} else {
			start := chunkKey(from.Vol, from.Ino, from.Index)
			k, v = c.Seek(start)
			if k != nil && bytes.Equal(k, start) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			vol, ino, _, ok := parseChunkKey(k)
			if !ok {
				return fmt.Errorf("meta: malformed chunk key %x", k)
			}
			ref := ChunkRef{Vol: vol, Ino: ino}
			if err := json.Unmarshal(v, &ref.Chunk); err != nil {
				return err
			}
			if !fn(ref) {
				return nil
			}
		}
		return nil
	})
}

// Node returns one registered node.
func (f *FSM) Node(id string) (*NodeInfo, error) {
	var out *NodeInfo
	err := f.view(func(tx *bolt.Tx) error {
		n, ok := getJSON[NodeInfo](tx.Bucket(bucketNodes), []byte(id))
		if !ok {
			return fmt.Errorf("%w: no node %q", ErrNotExist, id)
		}
		out = n
		return nil
	})
	return out, err
}

// Backup is a consistent copy of meta.db as of one moment: a bbolt read
// transaction that is streamed out with WriteTo. It holds that transaction
// (as a Raft snapshot does) until Close, so the caller should stream it
// promptly and always close it.
type Backup struct {
	tx      *bolt.Tx
	applied uint64
}

// Backup starts a backup of meta.db.
func (f *FSM) Backup() (*Backup, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return nil, fmt.Errorf("meta: closed")
	}
	tx, err := f.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("meta: backup: %w", err)
	}
	var applied uint64
	if v := tx.Bucket(bucketMeta).Get(keyApplied); v != nil {
		applied = binary.BigEndian.Uint64(v)
	}
	return &Backup{tx: tx, applied: applied}, nil
}

// Size is the number of bytes WriteTo writes.
func (b *Backup) Size() int64 { return b.tx.Size() }

// AppliedIndex is the last Raft index the copy contains.
func (b *Backup) AppliedIndex() uint64 { return b.applied }

// WriteTo writes the copy: a complete bbolt file, as meta.db would be.
func (b *Backup) WriteTo(w io.Writer) (int64, error) { return b.tx.WriteTo(w) }

// Close ends the read transaction.
func (b *Backup) Close() error { return b.tx.Rollback() }

// BackupInfo describes a metadata backup file (GET /v1/snapshot).
type BackupInfo struct {
	StorageVersion uint64
	AppliedIndex   uint64
	Volumes        []Volume // sorted by name
	Nodes          int
}

// InspectBackup checks that the file at path is a whole, consistent meta.db
// this build can read (the checks a Raft snapshot passes before it is
// restored) and describes it. It opens the file read-only and changes
// nothing in it.
func InspectBackup(path string) (*BackupInfo, error) {
	if err := checkDB(path); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("meta: %s is not a bbolt file: %w", path, err)
	}
	defer db.Close()
	info := &BackupInfo{}
	err = db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		info.StorageVersion = binary.BigEndian.Uint64(m.Get(keyMetaVersion))
		if v := m.Get(keyApplied); v != nil {
			info.AppliedIndex = binary.BigEndian.Uint64(v)
		}
		if b := tx.Bucket(bucketVolumes); b != nil {
			if err := b.ForEach(func(_, v []byte) error {
				var vol Volume
				if err := json.Unmarshal(v, &vol); err != nil {
					return err
				}
				info.Volumes = append(info.Volumes, vol)
				return nil
			}); err != nil {
				return err
			}
		}
		if b := tx.Bucket(bucketNodes); b != nil {
			info.Nodes = b.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("meta: reading %s: %w", path, err)
	}
	return info, nil
}

// HandleKeyGen is the file handle MAC key's generation (0 before any
// rotation) and until when (unix nanoseconds) handles of the previous
// generation are accepted. Every NFS call asks it: it is one atomic load.
func (f *FSM) HandleKeyGen() (gen uint64, prevUntil int64, err error) {
	k := f.hkey.Load()
	if k == nil {
		return 0, 0, errors.New("meta: the metadata is not open")
	}
	return k.gen, k.prevUntil, nil
}

// handleKey is the file handle key's generation state.
type handleKey struct {
	gen       uint64
	prevUntil int64
}

// loadHandleKey reads the handle key's generation from meta.db into
// f.hkey.
func (f *FSM) loadHandleKey() error {
	var k handleKey
	err := f.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCounters)
		if v := c.Get(keyHandleKeyGen); v != nil {
			k.gen = binary.BigEndian.Uint64(v)
		}
		if v := c.Get(keyHandleKeyPrevUntil); v != nil {
			k.prevUntil = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	if err != nil {
		return err
	}
	f.hkey.Store(&k)
	return nil
}

// TokenGen is the admin token's generation (0 before any rotation) and
// until when (unix nanoseconds) the previous generation is still accepted.
func (f *FSM) TokenGen() (gen uint64, prevUntil int64, err error) {
	err = f.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCounters)
		if v := c.Get(keyTokenGen); v != nil {
			gen = binary.BigEndian.Uint64(v)
		}
		if v := c.Get(keyTokenPrevUntil); v != nil {
			prevUntil = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return gen, prevUntil, err
}
