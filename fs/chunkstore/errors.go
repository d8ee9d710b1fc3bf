package chunkstore

import iofs "io/fs"

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
)

// storeError is a sentinel that can also match one io/fs sentinel.
type storeError struct {
	msg string
	is  error
}

func (e *storeError) Error() string { return e.msg }

// Is lets errors.Is(err, io/fs.ErrNotExist) match ErrNotFound.
func (e *storeError) Is(target error) bool { return e.is != nil && target == e.is }
