package meta

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// StorageVersion is the layout version of meta.db. A node refuses to open a
// file written by a newer version; older versions are migrated in
// migrate (none exist yet: version 1 is the first layout).
const StorageVersion uint64 = 1

// Buckets of meta.db. Every key layout is described here and in
// docs/meta-format.md; integers in keys are big-endian so that bbolt's byte
// order is numeric order.
var (
	bucketMeta     = []byte("meta")     // keyMetaVersion, keyApplied -> uint64
	bucketVolumes  = []byte("volumes")  // name -> Volume
	bucketVolIDs   = []byte("volids")   // vol(4) -> name
	bucketInodes   = []byte("inodes")   // vol(4) ino(8) -> Inode
	bucketDirents  = []byte("dirents")  // vol(4) parent(8) name -> child ino(8)
	bucketChunks   = []byte("chunks")   // vol(4) ino(8) index(8) -> Chunk
	bucketNodes    = []byte("nodes")    // node ID -> NodeInfo
	bucketCounters = []byte("counters") // name -> uint64
	bucketRequests = []byte("requests") // request ID -> requestRecord
	bucketReqTimes = []byte("reqtimes") // time(8) request ID -> empty (ages bucketRequests)
	bucketGarbage  = []byte("garbage")  // vol(4) ino(8) index(8) version(8) -> Garbage
)

var allBuckets = [][]byte{bucketMeta, bucketVolumes, bucketVolIDs, bucketInodes, bucketDirents,
	bucketChunks, bucketNodes, bucketCounters, bucketRequests, bucketReqTimes, bucketGarbage}

var (
	keyMetaVersion = []byte("storage_version")
	keyApplied     = []byte("applied_index")
	keyNextVolID   = []byte("next_volume_id")
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
	return migrate(tx, got)
}

// migrate upgrades the layout from version from to StorageVersion.
func migrate(tx *bolt.Tx, from uint64) error {
	if from == StorageVersion {
		return nil
	}
	return fmt.Errorf("meta: no migration from storage version %d to %d", from, StorageVersion)
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
	b := make([]byte, 12, 12+len(name))
	binary.BigEndian.PutUint32(b, vol)
	binary.BigEndian.PutUint64(b[4:], parent)
	return append(b, name...)
}

func chunkKey(vol uint32, ino, index uint64) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint32(b, vol)
	binary.BigEndian.PutUint64(b[4:], ino)
	binary.BigEndian.PutUint64(b[12:], index)
	return b
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
