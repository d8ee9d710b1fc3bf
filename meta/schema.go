package meta

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// StorageVersion is the layout version of meta.db. A node refuses to open a
// file written by a newer version; older versions are migrated in migrate.
//
//	1: the first layout.
//	2: directory entries keyed by a hash cookie before the name, so that
//	   READDIR resumes from a cookie on any node (stable NFS cookies).
//	3: small files' data inline in the metadata (bucket inline), and
//	   inodes in binary (inode_codec.go). The bucket is created at open
//	   and JSON inodes are still read, so the migration moves nothing.
const StorageVersion uint64 = 3

// Buckets of meta.db. Every key layout is described here and in
// docs/meta-format.md; integers in keys are big-endian so that bbolt's byte
// order is numeric order.
var (
	bucketMeta     = []byte("meta")     // keyMetaVersion, keyApplied -> uint64
	bucketVolumes  = []byte("volumes")  // name -> Volume
	bucketVolIDs   = []byte("volids")   // vol(4) -> name
	bucketInodes   = []byte("inodes")   // vol(4) ino(8) -> Inode
	bucketDirents  = []byte("dirents")  // vol(4) parent(8) cookie(8) name -> child ino(8)
	bucketChunks   = []byte("chunks")   // vol(4) ino(8) index(8) -> Chunk
	bucketNodes    = []byte("nodes")    // node ID -> NodeInfo
	bucketCounters = []byte("counters") // name -> uint64
	bucketRequests = []byte("requests") // request ID -> requestRecord
	bucketReqTimes = []byte("reqtimes") // time(8) request ID -> empty (ages bucketRequests)
	bucketGarbage  = []byte("garbage")  // vol(4) ino(8) index(8) version(8) -> Garbage
	bucketInline   = []byte("inline")   // vol(4) ino(8) -> the bytes of a small file (InlineMax)
)

var allBuckets = [][]byte{bucketMeta, bucketVolumes, bucketVolIDs, bucketInodes, bucketDirents,
	bucketChunks, bucketNodes, bucketCounters, bucketRequests, bucketReqTimes, bucketGarbage, bucketInline}

var (
	keyMetaVersion = []byte("storage_version")
	keyApplied     = []byte("applied_index")
	keyNextVolID   = []byte("next_volume_id")
	// The admin token's generation and until when (unix ns) the previous
	// one is still accepted; both absent before the first rotation.
	keyTokenGen       = []byte("admin_token_gen")
	keyTokenPrevUntil = []byte("admin_token_prev_until")
	// The file handle MAC key's generation, and until when the previous
	// one is accepted (RotateHandleKey).
	keyHandleKeyGen       = []byte("handle_key_gen")
	keyHandleKeyPrevUntil = []byte("handle_key_prev_until")
)

// initSchema creates missing buckets and checks the storage version.
func initSchema(tx *bolt.Tx) error {
	for _, b := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("meta: create bucket %s: %w", b, err)
		}
	}
	m := tx.Bucket(bucketMeta)
	v := m.Get(keyMetaVersion)
	if v == nil {
		return m.Put(keyMetaVersion, u64(StorageVersion))
	}
	got := binary.BigEndian.Uint64(v)
	if got > StorageVersion {
		return fmt.Errorf("meta: meta.db has storage version %d, this build knows up to %d; run a newer fsrepd", got, StorageVersion)
	}
	if err := migrate(tx, got); err != nil {
		return err
	}
	return m.Put(keyMetaVersion, u64(StorageVersion))
}

// migrate upgrades the layout from version from to StorageVersion, one
// step at a time, in the caller's transaction (all or nothing).
func migrate(tx *bolt.Tx, from uint64) error {
	for v := from; v < StorageVersion; v++ {
		switch v {
		case 1:
			if err := migrateDirentCookies(tx); err != nil {
				return fmt.Errorf("meta: migrate storage version 1 to 2: %w", err)
			}
		case 2:
			// The inline bucket is new and empty (initSchema made it).
		default:
			return fmt.Errorf("meta: no migration from storage version %d", v)
		}
	}
	return nil
}

// migrateDirentCookies rewrites v1 entry keys (vol, parent, name) as v2
// keys (vol, parent, cookie, name).
func migrateDirentCookies(tx *bolt.Tx) error {
	b := tx.Bucket(bucketDirents)
	type kv struct{ k, v []byte }
	var old []kv
	if err := b.ForEach(func(k, v []byte) error {
		old = append(old, kv{append([]byte(nil), k...), append([]byte(nil), v...)})
		return nil
	}); err != nil {
		return err
	}
	for _, e := range old {
		if len(e.k) < 12 {
			return fmt.Errorf("dirent key of %d bytes", len(e.k))
		}
		vol := binary.BigEndian.Uint32(e.k)
		parent := binary.BigEndian.Uint64(e.k[4:])
		if err := b.Delete(e.k); err != nil {
			return err
		}
		if err := b.Put(direntKey(vol, parent, string(e.k[12:])), e.v); err != nil {
			return err
		}
	}
	return nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func volKey(vol uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, vol)
	return b
}

func inodeKey(vol uint32, ino uint64) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint32(b, vol)
	binary.BigEndian.PutUint64(b[4:], ino)
	return b
}

func direntKey(vol uint32, parent uint64, name string) []byte {
	b := make([]byte, 20, 20+len(name))
	binary.BigEndian.PutUint32(b, vol)
	binary.BigEndian.PutUint64(b[4:], parent)
	binary.BigEndian.PutUint64(b[12:], DirCookie(name))
	return append(b, name...)
}

// direntPrefixLen is the length of a dirent key before the name.
const direntPrefixLen = 20

// DirCookie is the READDIR cookie of a name: a 63-bit FNV-1a hash, never
// 0, 1 or 2 (0 starts a listing; the gateway uses 1 and 2 for "." and
// ".."). Entries are stored in cookie order, so a listing resumes after a
// cookie on any node, and entries added or removed meanwhile do not shift
// the others. Two names of one directory with the same hash (2^-63 per
// pair) would list only one of them after a resume between them.
func DirCookie(name string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	h &= 1<<63 - 1
	if h < 3 {
		h += 3
	}
	return h
}

func chunkKey(vol uint32, ino, index uint64) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint32(b, vol)
	binary.BigEndian.PutUint64(b[4:], ino)
	binary.BigEndian.PutUint64(b[12:], index)
	return b
}

func parseChunkKey(k []byte) (vol uint32, ino, index uint64, ok bool) {
	if len(k) != 20 {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint32(k), binary.BigEndian.Uint64(k[4:]), binary.BigEndian.Uint64(k[12:]), true
}

// GarbageKey names one chunk version whose files are to be deleted.
type GarbageKey struct {
	Vol     uint32 `json:"vol"`
	Ino     uint64 `json:"ino"`
	Index   uint64 `json:"index"`
	Version uint64 `json:"version"`
}

func (k GarbageKey) bytes() []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint32(b, k.Vol)
	binary.BigEndian.PutUint64(b[4:], k.Ino)
	binary.BigEndian.PutUint64(b[12:], k.Index)
	binary.BigEndian.PutUint64(b[20:], k.Version)
	return b
}

func parseGarbageKey(b []byte) (GarbageKey, bool) {
	if len(b) != 28 {
		return GarbageKey{}, false
	}
	return GarbageKey{
		Vol:     binary.BigEndian.Uint32(b),
		Ino:     binary.BigEndian.Uint64(b[4:]),
		Index:   binary.BigEndian.Uint64(b[12:]),
		Version: binary.BigEndian.Uint64(b[20:]),
	}, true
}

// Garbage is a chunk version no longer referenced, with the nodes that may
// still hold a file for it.
type Garbage struct {
	Key      GarbageKey `json:"key"`
	Replicas []string   `json:"replicas"`
}
