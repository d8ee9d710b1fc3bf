package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// FileID is what a handle names: an inode of a volume, at one generation. All three come from the
// replicated metadata, so every node resolves a handle to the same file.
type FileID struct {
	Vol uint32
	Ino uint64
	Gen uint32
}

var (
	// ErrBadHandle means a handle of the wrong length, magic, format version or reserved bits.
	ErrBadHandle = errors.New("gateway: malformed file handle")
	// ErrForgedHandle means a well-formed handle whose MAC does not match: forged, corrupted, or
	// minted by a cluster with another secret.
	ErrForgedHandle = errors.New("gateway: file handle fails authentication")
)

// Handle layout; docs/file-handle.md has the byte table. Changing it needs a new format version.
const (
	// HandleSize is the length of every handle: a multiple of 4, because go-nfs skips no XDR padding
	// after a handle, and at most NFSv3's 64 bytes.
	HandleSize = 36

	handleMagic   = 0xF5
	handleVersion = 1
	handleMACOff  = 20 // bytes [0, handleMACOff) are authenticated
	handleMACSize = HandleSize - handleMACOff

	handleKeyLabel = "fsrep file handle v1"
)

// HandleCodec mints and checks file handles. It is safe for concurrent use.
//
// The MAC key has generations (meta.RotateHandleKey): handles are minted
// with the current one and accepted with it, or with the previous one until
// the rotation's grace time ends. Generation 0 is the key of clusters that
// never rotated.
type HandleCodec struct {
	secret []byte
	keys   HandleKeys       // nil: generation 0 only
	now    func() time.Time // with keys
	set    atomic.Pointer[keySet]
}

// HandleKeys reports the MAC key's generation and until when (unix
// nanoseconds) the previous generation is accepted (meta.FSM.HandleKeyGen).
type HandleKeys interface {
	HandleKeyGen() (gen uint64, prevUntil int64, err error)
}

// keySet is the derived keys of one generation, its predecessor and its
// successor (a node that has not applied a rotation yet still accepts the
// handles other nodes mint after it: any node decodes any handle).
type keySet struct {
	gen             uint64
	cur, prev, next [sha256.Size]byte
}

// NewHandleCodec returns a codec keyed by the cluster secret, at key
// generation 0. Every node of a cluster must use the same secret, or handles
// minted on one node are rejected as forged on the others. The secret is not
// used directly: the handle key is HMAC-SHA256(secret, "fsrep file handle
// v1") (and "/gen N" appended for generation N), so handles never share a
// key with anything else derived from the secret.
func NewHandleCodec(clusterSecret []byte) *HandleCodec {
	c := &HandleCodec{secret: clusterSecret}
	c.set.Store(c.derive(0))
	return c
}

// NewRotatingHandleCodec is NewHandleCodec following the key generation
// keys reports, with now the clock that ends a rotation's grace time.
func NewRotatingHandleCodec(clusterSecret []byte, keys HandleKeys, now func() time.Time) *HandleCodec {
	c := NewHandleCodec(clusterSecret)
	c.keys, c.now = keys, now
	return c
}

func (c *HandleCodec) key(gen uint64) (k [sha256.Size]byte) {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(handleKeyLabel))
	if gen > 0 {
		fmt.Fprintf(m, "/gen %d", gen)
	}
	m.Sum(k[:0])
	return k
}

func (c *HandleCodec) derive(gen uint64) *keySet {
	ks := &keySet{gen: gen, cur: c.key(gen), next: c.key(gen + 1)}
	if gen > 0 {
		ks.prev = c.key(gen - 1)
	}
	return ks
}

// current returns the keys of the current generation and until when
// (unix nanoseconds) the previous one's handles are accepted.
func (c *HandleCodec) current() (*keySet, int64) {
	ks := c.set.Load()
	if c.keys == nil {
		return ks, 0
	}
	gen, until, err := c.keys.HandleKeyGen()
	if err != nil {
		return ks, 0 // the metadata cannot be read: the last generation seen
	}
	if gen != ks.gen {
		ks = c.derive(gen)
		c.set.Store(ks)
	}
	return ks, until
}

// Encode returns the handle of id. It is deterministic: the same id always yields the same bytes, on
// every node with the same secret.
func (c *HandleCodec) Encode(id FileID) []byte {
	h := make([]byte, HandleSize)
	h[0] = handleMagic
	h[1] = handleVersion
	// h[2:4] reserved, zero.
	binary.BigEndian.PutUint32(h[4:8], id.Vol)
	binary.BigEndian.PutUint64(h[8:16], id.Ino)
	binary.BigEndian.PutUint32(h[16:20], id.Gen)
	ks, _ := c.current()
	var sum [sha256.Size]byte
	copy(h[handleMACOff:], mac(&ks.cur, h[:handleMACOff], sum[:0]))
	return h
}

// Decode checks h and returns the file it names. It never panics. It returns an error wrapping
// ErrBadHandle when h is not a handle of this format, and one wrapping ErrForgedHandle when the MAC does
// not match. A nil error says only that this cluster minted the handle: whether the inode still exists
// at that generation is for the caller to check (and to answer STALE if not).
func (c *HandleCodec) Decode(h []byte) (FileID, error) {
	switch {
	case len(h) != HandleSize:
		return FileID{}, fmt.Errorf("%w: length %d, want %d", ErrBadHandle, len(h), HandleSize)
	case h[0] != handleMagic:
		return FileID{}, fmt.Errorf("%w: magic %#02x, want %#02x", ErrBadHandle, h[0], handleMagic)
	case h[1] != handleVersion:
		return FileID{}, fmt.Errorf("%w: format version %d, want %d", ErrBadHandle, h[1], handleVersion)
	case h[2] != 0 || h[3] != 0:
		return FileID{}, fmt.Errorf("%w: reserved bytes %#02x%02x are not zero", ErrBadHandle, h[2], h[3])
	}
	ks, prevUntil := c.current()
	var sum [sha256.Size]byte
	matches := func(key *[sha256.Size]byte) bool {
		return hmac.Equal(mac(key, h[:handleMACOff], sum[:0])[:handleMACSize], h[handleMACOff:])
	}
	// The current key first; the others (and the clock) only for a handle
	// it does not match.
	if !matches(&ks.cur) &&
		!(c.keys != nil && matches(&ks.next)) &&
		!(ks.gen > 0 && matches(&ks.prev) && c.now().UnixNano() < prevUntil) {
		return FileID{}, fmt.Errorf("%w: MAC mismatch (forged, or minted with a key rotated out)", ErrForgedHandle)
	}
	return FileID{
		Vol: binary.BigEndian.Uint32(h[4:8]),
		Ino: binary.BigEndian.Uint64(h[8:16]),
		Gen: binary.BigEndian.Uint32(h[16:20]),
	}, nil
}

// mac appends HMAC-SHA256(key, body) to dst.
func mac(key *[sha256.Size]byte, body, dst []byte) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write(body)
	return m.Sum(dst)
}
