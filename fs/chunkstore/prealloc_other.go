//go:build !linux

package chunkstore

import "os"

// preallocate does nothing where fallocate(2) is missing: an in-place write
// that meets ENOSPC there can leave the chunk reading as ErrCorrupt, like
// a crash in the middle of it.
func preallocate(*os.File, int64, int64) error { return nil }
