package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMetadataRebuiltAfterMachineCrash plays the machine crash that
// unsynced meta.db applies must survive (meta/fsm_sync.go): node 3 stops
// with its marker still naming the boot it ran under, its meta.db torn
// (both bbolt meta pages zeroed, as when the disk never got them), and
// while it is away more files are written. It restarts under another boot
// ID: it must set the torn file aside, rebuild its metadata from the Raft
// log, and serve every file, old and new, byte for byte.
func TestMetadataRebuiltAfterMachineCrash(t *testing.T) {
	c := NewCluster(t, ClusterOptions{})
	cl, err := Mount(c.NFSAddr(0), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := map[string][]byte{}
	for i := range 4 {
		name := fmt.Sprintf("before-%d", i)
		want[name] = randomBytes(int64(10+i), 100_000*(i+1))
		integWrite(t, cl, name, want[name])
	}

	c.Stop(2)
	metaDB := filepath.Join(c.Member(2).Cfg.DataDir, "meta", "meta.db")
	if err := os.WriteFile(metaDB+".unsynced", []byte("boot-that-crashed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(metaDB, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 2*4096), 0); err != nil { // both meta pages
		t.Fatal(err)
	}
	f.Close()
	for i := range 3 {
		name := fmt.Sprintf("after-%d", i)
		want[name] = randomBytes(int64(20+i), 3000*(i+1))
		integWrite(t, cl, name, want[name])
	}

	c.Member(2).Cfg.BootID = "boot-after-the-crash"
	c.Start(2)
	c.WaitReady(2)
	if _, err := os.Stat(metaDB + ".discarded"); err != nil {
		t.Fatalf("the torn meta.db was not set aside: %v", err)
	}
	leader := c.Node(c.WaitLeader())
	c.Eventually(20*time.Second, "node 3 applies what the leader has", func() error {
		if got, lead := c.Node(2).FSM().AppliedIndex(), leader.FSM().AppliedIndex(); got < lead {
			return fmt.Errorf("applied %d of %d", got, lead)
		}
		return nil
	})
	cl3, err := Mount(c.NFSAddr(2), "/vol")
	if err != nil {
		t.Fatal(err)
	}
	defer cl3.Close()
	for name, data := range want {
		got, err := integRead(cl3, name)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %s through the rebuilt node: %d of %d bytes, %v", name, len(got), len(data), err)
		}
	}
}
