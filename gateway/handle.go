package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
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
type HandleCodec struct {
	key [sha256.Size]byte
}

// NewHandleCodec returns a codec keyed by the cluster secret. Every node of a cluster must use the same
// secret, or handles minted on one node are rejected as forged on the others. The secret is not used
// directly: the handle key is HMAC-SHA256(secret, "fsrep file handle v1"), so handles never share a key
// with other uses of the secret. The caller (configuration validation) is responsible for the secret
// being non-empty and unpredictable; with a known secret anyone can mint handles.
func NewHandleCodec(clusterSecret []byte) *HandleCodec {
	m := hmac.New(sha256.New, clusterSecret)
	m.Write([]byte(handleKeyLabel))
	c := &HandleCodec{}
	m.Sum(c.key[:0])
	return c
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
	var sum [sha256.Size]byte
	copy(h[handleMACOff:], c.mac(h[:handleMACOff], sum[:0]))
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
	var sum [sha256.Size]byte
	if !hmac.Equal(c.mac(h[:handleMACOff], sum[:0])[:handleMACSize], h[handleMACOff:]) {
		return FileID{}, fmt.Errorf("%w: MAC mismatch", ErrForgedHandle)
	}
	return FileID{
		Vol: binary.BigEndian.Uint32(h[4:8]),
		Ino: binary.BigEndian.Uint64(h[8:16]),
		Gen: binary.BigEndian.Uint32(h[16:20]),
	}, nil
}

// mac appends HMAC-SHA256(key, body) to dst.
func (c *HandleCodec) mac(body, dst []byte) []byte {
	m := hmac.New(sha256.New, c.key[:])
	m.Write(body)
	return m.Sum(dst)
}
