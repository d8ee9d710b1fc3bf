package chunkstore

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"syscall"
)

// Errors returned by the store, always wrapped with the operation and chunk.
// Match them with errors.Is. ErrNotFound also matches io/fs.ErrNotExist so
// callers that only know the standard sentinels (the NFS gateway) map it.
var (
	ErrNotFound        error = &storeError{msg: "chunkstore: chunk not found", is: iofs.ErrNotExist}
	ErrVersionMismatch error = &storeError{msg: "chunkstore: chunk version mismatch"}
	ErrCorrupt         error = &storeError{msg: "chunkstore: chunk corrupt"}
	ErrTooLarge        error = &storeError{msg: "chunkstore: chunk too large"}
	// ErrTooRecent refuses a conditional delete of a file that changed
	// too recently: a copy or write may still be on its way to a commit.
	ErrTooRecent error = &storeError{msg: "chunkstore: chunk changed too recently to delete"}
	// ErrNoSpace refuses a write (or a Put) that the chunk disk has no room
	// for: the file system answered ENOSPC or EDQUOT, or its free space is
	// below Config.Reserve. It also matches syscall.ENOSPC, which the NFS
	// gateway answers NFS3ERR_NOSPC. A write refused with it left the chunk
	// as it was (see Store.Write).
	ErrNoSpace error = &storeError{msg: "chunkstore: no space left on the chunk disk", is: syscall.ENOSPC}
)

// noSpace returns err as ErrNoSpace (still wrapping err) when the file
// system ran out of room, and err otherwise.
func noSpace(err error) error {
	if err == nil || errors.Is(err, ErrNoSpace) {
		return err
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// storeError is a sentinel that can also match one io/fs sentinel.
type storeError struct {
	msg string
	is  error
}

func (e *storeError) Error() string { return e.msg }

// Is lets errors.Is(err, io/fs.ErrNotExist) match ErrNotFound.
func (e *storeError) Is(target error) bool { return e.is != nil && target == e.is }
