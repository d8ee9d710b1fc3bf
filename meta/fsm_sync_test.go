package meta

import (
	"os"
	"testing"
	"time"
)

// unsyncedHarness is a harness whose FSM skips fsyncs, on kernel boot boot.
func unsyncedHarness(t *testing.T, boot string) *harness {
	t.Helper()
	h := newHarness(t)
	h.reopenWith(FSMOptions{NoSync: true, BootID: boot})
	return h
}

// reopenWith closes the FSM cleanly and opens it again with o.
func (h *harness) reopenWith(o FSMOptions) {
	h.t.Helper()
	if err := h.fsm.Close(); err != nil {
		h.t.Fatalf("close: %v", err)
	}
	h.openWith(o)
}

func (h *harness) openWith(o FSMOptions) {
	h.t.Helper()
	f, err := OpenFSMWith(h.path, testLogger(h.t), o)
	if err != nil {
		h.t.Fatalf("OpenFSMWith(%s, %+v): %v", h.path, o, err)
	}
	h.fsm = f
}

// crash stops the FSM the way a killed process does: the file is closed
// without the sync and the marker removal of a clean Close.
func (h *harness) crash() {
	h.t.Helper()
	h.fsm.mu.Lock()
	if err := h.fsm.db.Close(); err != nil {
		h.t.Fatalf("close bbolt: %v", err)
	}
	h.fsm.db = nil
	h.fsm.lock.Close() // the kernel drops a dead process's locks
	h.fsm.lock = nil
	h.fsm.mu.Unlock()
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestUnsyncedFSMKeepsStateAcrossProcessCrash(t *testing.T) {
	h := unsyncedHarness(t, "boot-1")
	if !exists(t, markerPath(h.path)) {
		t.Fatal("no marker while meta.db is open unsynced")
	}
	vol := h.volume("v")
	h.create(vol, RootIno, "f", TypeFile)
	applied := h.fsm.AppliedIndex()

	h.crash()
	h.openWith(FSMOptions{NoSync: true, BootID: "boot-1"}) // same boot: the page cache survived
	if got := h.fsm.AppliedIndex(); got != applied {
		t.Fatalf("after a process crash AppliedIndex = %d, want %d", got, applied)
	}
	h.lookup(vol, RootIno, "f")
	if exists(t, discardedPath(h.path)) {
		t.Fatal("meta.db set aside after a process crash")
	}
}

func TestUnsyncedFSMRebuiltAfterMachineCrash(t *testing.T) {
	h := unsyncedHarness(t, "boot-1")
	vol := h.volume("v")
	h.create(vol, RootIno, "f", TypeFile)

	h.crash()
	h.openWith(FSMOptions{NoSync: true, BootID: "boot-2"}) // the machine restarted
	if got := h.fsm.AppliedIndex(); got != 0 {
		t.Fatalf("after a machine crash AppliedIndex = %d, want 0 (rebuilt from the log)", got)
	}
	if !exists(t, discardedPath(h.path)) {
		t.Fatal("the possibly torn meta.db was not set aside")
	}
	// Raft replays the log into the fresh file; the state comes back.
	for _, l := range h.logs {
		if r := h.fsm.Apply(l).(*Result); r.Err() != nil {
			t.Fatalf("replay %d: %v", l.Index, r.Err())
		}
	}
	h.lookup(vol, RootIno, "f")
}

func TestSyncedOpenMakesUnsyncedCommitsDurable(t *testing.T) {
	h := unsyncedHarness(t, "boot-1")
	vol := h.volume("v")
	h.crash()
	h.openWith(FSMOptions{BootID: "boot-1"}) // same boot, now synced
	if exists(t, markerPath(h.path)) {
		t.Fatal("marker kept although meta.db is synced now")
	}
	if h.vol("v").ID != vol {
		t.Fatal("volume lost")
	}
	// A synced meta.db with a marker from another boot is set aside too.
	h.reopenWith(FSMOptions{NoSync: true, BootID: "boot-1"})
	h.crash()
	h.openWith(FSMOptions{BootID: "boot-2"})
	if got := h.fsm.AppliedIndex(); got != 0 || exists(t, markerPath(h.path)) {
		t.Fatalf("synced open after a machine crash: AppliedIndex %d, marker %v; want 0, none", got, exists(t, markerPath(h.path)))
	}
}

func TestCleanCloseRemovesMarker(t *testing.T) {
	h := unsyncedHarness(t, "boot-1")
	h.volume("v")
	h.reopenWith(FSMOptions{NoSync: true, BootID: "boot-2"}) // clean close, then a new boot
	if exists(t, discardedPath(h.path)) {
		t.Fatal("a cleanly closed meta.db was set aside")
	}
	h.vol("v")
	if _, err := OpenFSMWith(h.path+"-2", nil, FSMOptions{NoSync: true}); err == nil {
		t.Fatal("an unsynced FSM opened without a boot ID")
	}
}

// TestSecondOpenWaitsForTheFirst: a second process cannot open meta.db
// (and so cannot touch its marker) while another has it open.
func TestSecondOpenWaitsForTheFirst(t *testing.T) {
	h := unsyncedHarness(t, "boot-1")
	if _, err := OpenFSMWith(h.path, nil, FSMOptions{NoSync: true, BootID: "boot-1", LockWait: 100 * time.Millisecond}); err == nil {
		t.Fatal("a second FSM opened meta.db while the first had it open")
	}
	if !exists(t, markerPath(h.path)) {
		t.Fatal("the refused open removed the first one's marker")
	}
}
