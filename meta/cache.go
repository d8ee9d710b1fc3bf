package meta

import (
	"slices"
	"sync"
	"sync/atomic"
)

// readCache keeps decoded volumes and the node list between the commits
// that may change them: every READ, WRITE and LOOKUP reads its volume and
// every chunk read orders replicas by the node list, and decoding them
// from meta.db each time was an eighth of a random-read workload's CPU.
//
// Entries are tagged with the generation they were read at. gen moves
// after every commit of applied entries and after a restore; a reader
// loads gen before it reads meta.db, so an entry may be newer than its
// tag but never older than a generation that already moved on.
type readCache struct {
	gen atomic.Uint64

	mu    sync.Mutex
	at    uint64 // generation of the entries below
	vols  map[uint32]*Volume
	nodes []NodeInfo // nil: not cached
}

// changed is called after meta.db changed.
func (c *readCache) changed() { c.gen.Add(1) }

// sync drops the entries if the generation moved; c.mu held.
func (c *readCache) sync(g uint64) {
	if c.at != g {
		c.at, c.vols, c.nodes = g, nil, nil
	}
}

func (c *readCache) volume(id uint32, read func() (*Volume, error)) (*Volume, error) {
	g := c.gen.Load()
	c.mu.Lock()
	c.sync(g)
	v := c.vols[id]
	c.mu.Unlock()
	if v != nil {
		return cloneVolume(v), nil
	}
	v, err := read()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.at == g {
		if c.vols == nil {
			c.vols = map[uint32]*Volume{}
		}
		c.vols[id] = cloneVolume(v)
	}
	c.mu.Unlock()
	return v, nil
}

func (c *readCache) nodeList(read func() ([]NodeInfo, error)) ([]NodeInfo, error) {
	g := c.gen.Load()
	c.mu.Lock()
	c.sync(g)
	nodes := c.nodes
	c.mu.Unlock()
	if nodes != nil {
		return slices.Clone(nodes), nil
	}
	nodes, err := read()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.at == g {
		c.nodes = slices.Clone(nodes)
		if c.nodes == nil {
			c.nodes = []NodeInfo{}
		}
	}
	c.mu.Unlock()
	return nodes, nil
}

// cloneVolume copies v so that no caller shares the cached one.
func cloneVolume(v *Volume) *Volume {
	out := *v
	out.Export.Clients = slices.Clone(v.Export.Clients)
	return &out
}
