package replication

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/fsrep/fsrep/fs/chunkstore"
)

// MaxListPage bounds the files of one ChunkPage: each is opened to read
// its header, so a page costs that many small reads.
const MaxListPage = 10_000

// listingTTL is how long a FileLister reuses a directory listing for the
// pages after the first: a check walks a node's files in pages, and
// listing every directory of the store again for each page would make a
// walk quadratic in the number of files. Files created since are missed
// by that walk (they are younger than any safety delay anyway); files
// deleted since are skipped.
const listingTTL = time.Minute

// ListStore is a chunk store as a FileLister reads it.
type ListStore interface {
	List() ([]chunkstore.ID, error)
	Inspect(id chunkstore.ID) (chunkstore.Info, error)
}

// FileLister pages through a chunk store's files for the online check
// (the internode list call serves it). It is safe for concurrent use.
type FileLister struct {
	store ListStore
	clock Clock

	mu  sync.Mutex
	ids []chunkstore.ID // the last listing, sorted
	at  time.Time
}

// NewFileLister returns a lister of store.
func NewFileLister(store ListStore, clock Clock) *FileLister {
	return &FileLister{store: store, clock: clock}
}

// ListChunks returns up to limit files from from on (inclusive), in ID
// order, with their header facts; a damaged file is listed as Corrupt. A
// page starting at the zero ID lists the store afresh; later pages reuse
// that listing for a while (listingTTL).
func (l *FileLister) ListChunks(from chunkstore.ID, limit int) (ChunkPage, error) {
	limit = min(max(limit, 1), MaxListPage)
	ids, err := l.listing(from == chunkstore.ID{})
	if err != nil {
		return ChunkPage{}, err
	}
	i, _ := slices.BinarySearchFunc(ids, from, compareIDs)
	page := ChunkPage{Files: make([]ChunkFile, 0, min(limit, len(ids)-i))}
	for ; i < len(ids) && len(page.Files) < limit; i++ {
		info, err := l.store.Inspect(ids[i])
		switch {
		case errors.Is(err, chunkstore.ErrNotFound):
			continue // deleted since the listing
		case errors.Is(err, chunkstore.ErrCorrupt):
			page.Files = append(page.Files, ChunkFile{ID: ids[i], Corrupt: true, Detail: err.Error()})
		case err != nil:
			return ChunkPage{}, err
		default:
			page.Files = append(page.Files, ChunkFile{ID: ids[i], Version: info.Version, Length: info.Length, Age: info.Age})
		}
	}
	if i < len(ids) {
		page.Next = ids[i]
	} else {
		page.Done = true
	}
	return page, nil
}

// listing returns the store's sorted file list: a fresh one when asked or
// when the last is too old.
func (l *FileLister) listing(fresh bool) ([]chunkstore.ID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if fresh || l.ids == nil || now.Sub(l.at) > listingTTL || now.Before(l.at) {
		ids, err := l.store.List()
		if err != nil {
			return nil, err
		}
		l.ids, l.at = ids, now
	}
	return l.ids, nil
}
