package chunkstore

import "sync"

// lockTable hands out one reader/writer lock per chunk ID, so operations on
// one chunk serialise (a Read never sees half of a Write) while different
// chunks proceed in parallel. Entries are reference counted and dropped when
// unused, so the table stays as small as the number of chunks in flight.
type lockTable struct {
	mu sync.Mutex
	m  map[ID]*chunkLock
}

type chunkLock struct {
	sync.RWMutex
	refs int // guarded by lockTable.mu
}

func newLockTable() *lockTable { return &lockTable{m: make(map[ID]*chunkLock)} }

// lock takes the chunk's lock, exclusively unless shared is set, and returns
// the function that releases it.
func (t *lockTable) lock(id ID, shared bool) (unlock func()) {
	t.mu.Lock()
	l := t.m[id]
	if l == nil {
		l = &chunkLock{}
		t.m[id] = l
	}
	l.refs++
	t.mu.Unlock()

	if shared {
		l.RLock()
	} else {
		l.Lock()
	}
	return func() {
		if shared {
			l.RUnlock()
		} else {
			l.Unlock()
		}
		t.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(t.m, id)
		}
		t.mu.Unlock()
	}
}
