package chunkstore

import (
	"os"
	"sync"
)

// Open chunk files kept for Read.
//
// A random 4 KiB read used to open the chunk file, stat it, read and check
// its header and checksum table, read the block and close: most of its
// system calls. handles keeps up to maxHandles chunk files open with their
// checked header and table. Every change to a chunk file (Write, Put, the
// deletes) holds the chunk's exclusive lock and drops its handle first, and
// readers use a handle only under the shared lock, so a handle always
// describes the file as it is. The data blocks themselves are read and
// checked against the table on every read, as before; a read that fails
// through a handle is retried once on a fresh open (a file damaged behind
// the store's back is then judged as it is on disk).

// maxHandles bounds the chunk files a store keeps open for reads.
const maxHandles = 256

type handle struct {
	f     *os.File
	h     header
	table []uint32
	refs  int  // readers using it (under handles.mu)
	gone  bool // dropped or evicted: close when refs reaches 0
}

type handles struct {
	mu sync.Mutex
	m  map[ID]*handle
}

// get returns the open handle of id, or nil; release it after use.
func (c *handles) get(id ID) *handle {
	c.mu.Lock()
	defer c.mu.Unlock()
	hd := c.m[id]
	if hd != nil {
		hd.refs++
	}
	return hd
}

// add keeps hd (held once by the caller) for later reads of id.
func (c *handles) add(id ID, hd *handle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hd.refs++
	if old := c.m[id]; old != nil {
		c.retire(old)
	}
	if c.m == nil {
		c.m = map[ID]*handle{}
	}
	for k, v := range c.m { // evict some other handle (map order: at random)
		if len(c.m) < maxHandles {
			break
		}
		delete(c.m, k)
		c.retire(v)
	}
	c.m[id] = hd
}

// release ends one use of hd.
func (c *handles) release(hd *handle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hd.refs--
	if hd.gone && hd.refs == 0 {
		hd.f.Close()
	}
}

// drop closes id's handle: the file is about to change.
func (c *handles) drop(id ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hd := c.m[id]; hd != nil {
		delete(c.m, id)
		c.retire(hd)
	}
}

// closeAll closes every handle not in use (the store is closing).
func (c *handles) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, hd := range c.m {
		delete(c.m, id)
		c.retire(hd)
	}
}

// retire marks hd gone and closes it if no reader holds it; c.mu held.
func (c *handles) retire(hd *handle) {
	hd.gone = true
	if hd.refs == 0 {
		hd.f.Close()
	}
}

// lockForChange takes id's exclusive lock for a change to its file and
// drops the file's open handle; call the result to unlock.
func (s *Store) lockForChange(id ID) func() {
	unlock := s.locks.lock(id, false)
	s.handles.drop(id)
	return unlock
}
