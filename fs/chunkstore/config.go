package chunkstore

import (
	"errors"
	"fmt"
)

// Config describes a Store.
type Config struct {
	Dir          string // directory for chunk files (created if missing, 0700)
	BlockSize    int    // checksum block size; default 64 KiB
	MaxChunkSize int64  // largest chunk accepted; default 64 MiB
	NoSync       bool   // tests only: skip fsync
	// Reserve is the free space (bytes) a write must leave on Dir's file
	// system: below it, Write and Put fail with ErrNoSpace before touching
	// anything, so that the Raft log and meta.db, which usually share the
	// disk, keep room to record that the write failed. 0: no reserve
	// (writes run until the file system itself says ENOSPC).
	Reserve int64
	// FreeSpace, if set, stands for the file system's free space (tests
	// play a full disk with it); nil asks statfs(2) about Dir.
	FreeSpace func() (int64, error)
}

// DefaultReserve is the Reserve of DefaultConfig.
const DefaultReserve = 64 << 20

// DefaultConfig returns the production settings for a store in dir.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:          dir,
		BlockSize:    64 << 10,
		MaxChunkSize: 64 << 20,
		Reserve:      DefaultReserve,
	}
}

// Validate checks the fields and how they fit together: the checksum table of
// a chunk file has room for MaxChunkSize/BlockSize entries, and that count is
// bounded so the table stays small next to the data.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("Dir is empty"))
	}
	if c.BlockSize <= 0 || !validBlockSize(uint64(c.BlockSize)) {
		errs = append(errs, fmt.Errorf("BlockSize %d is not a power of two in [%d, %d]",
			c.BlockSize, minBlockSize, maxBlockSize))
	}
	if c.MaxChunkSize <= 0 {
		errs = append(errs, fmt.Errorf("MaxChunkSize %d is not positive", c.MaxChunkSize))
	}
	if c.Reserve < 0 {
		errs = append(errs, fmt.Errorf("Reserve %d is negative", c.Reserve))
	}
	if len(errs) == 0 {
		if n := ceilDiv(c.MaxChunkSize, int64(c.BlockSize)); n > maxBlocks {
			errs = append(errs, fmt.Errorf("MaxChunkSize %d / BlockSize %d needs %d checksum blocks, more than %d",
				c.MaxChunkSize, c.BlockSize, n, maxBlocks))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("chunkstore: invalid config: %w", err)
	}
	return nil
}

// dataOffset is where new chunk files written with this config keep their
// data: after the header and a checksum table big enough for MaxChunkSize.
func (c Config) dataOffset() uint32 {
	n := ceilDiv(c.MaxChunkSize, int64(c.BlockSize))
	return uint32(roundUp(headerSize+4*n, dataAlign))
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

func roundUp(a, b int64) int64 { return ceilDiv(a, b) * b }
