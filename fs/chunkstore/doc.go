// Package chunkstore is a node's local store of chunk replicas.
//
// Each chunk lives in one file: a fixed header, a table of per-block CRC32C
// checksums and the chunk data at a fixed offset (docs/chunk-format.md has
// the byte layout). Every read verifies the checksums of the blocks it
// touches, so a replica damaged on disk is reported as ErrCorrupt instead of
// being served or copied to another node.
//
// The store knows nothing about replication; it only enforces the version
// rule the replication layer relies on: a write names the version it builds
// on, and is refused unless the local replica is at exactly that version.
package chunkstore
