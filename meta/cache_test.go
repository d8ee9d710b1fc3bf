package meta

import "testing"

// TestReadCacheFollowsApplies: volumes and nodes read through the cache
// reflect every apply at once, and a caller changing what it got changes
// nothing for the next one.
func TestReadCacheFollowsApplies(t *testing.T) {
	h := newHarness(t)
	vol := h.volume("v")
	v, err := h.fsm.VolumeByID(vol)
	if err != nil || v.Files != 1 {
		t.Fatalf("VolumeByID: %+v, %v", v, err)
	}
	v.Export.Clients = append(v.Export.Clients, "10.0.0.0/8")
	v.Files = 99
	h.create(vol, RootIno, "f", TypeFile)
	if v, _ = h.fsm.VolumeByID(vol); v.Files != 2 || len(v.Export.Clients) != 0 {
		t.Fatalf("after a create: files %d clients %v; want 2 and none", v.Files, v.Export.Clients)
	}
	again, _ := h.fsm.VolumeByID(vol)
	if again.Files != 2 {
		t.Fatalf("cached volume changed by a caller: files %d", again.Files)
	}

	if nodes, err := h.fsm.Nodes(); err != nil || len(nodes) != 0 {
		t.Fatalf("Nodes: %v, %v", nodes, err)
	}
	h.ok(&RegisterNode{Node: NodeInfo{ID: "n1", AZ: "az1", RaftAddr: "a:1", RPCAddr: "a:2"}})
	nodes, err := h.fsm.Nodes()
	if err != nil || len(nodes) != 1 || nodes[0].ID != "n1" {
		t.Fatalf("Nodes after RegisterNode: %v, %v", nodes, err)
	}
}
