package node

import (
	"testing"
	"time"

	"github.com/fsrep/fsrep/replication"
)

func TestIntegrityConfig(t *testing.T) {
	cfg := Config{NodeID: "n1", AZ: "az1", DataDir: t.TempDir(), RaftAddr: "a:1", RPCAddr: "a:2", NFSAddr: "a:3", AdminAddr: "a:4"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := cfg.withIntegrityDefaults()
	if d.ScrubRate != replication.DefaultScrubRate || d.ScrubInterval != 24*time.Hour || d.SweepInterval != time.Hour ||
		d.GCInterval != 30*time.Second || d.OrphanAge != 10*time.Minute {
		t.Errorf("defaults: %+v", d)
	}
	cfg.ScrubRate, cfg.OrphanAge = -1, time.Second
	if d := cfg.withIntegrityDefaults(); d.ScrubRate != -1 || d.OrphanAge != time.Second {
		t.Errorf("set values were replaced: %+v", d)
	}
	cfg.GCInterval = -time.Second
	if err := cfg.Validate(); err == nil {
		t.Errorf("a negative GC interval was accepted")
	}
}
