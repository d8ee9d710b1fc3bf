package main

import (
	"testing"
	"time"

	"github.com/fsrep/fsrep/internal/node"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "16MiB": 16 << 20, "16M": 16 << 20,
		"16mb": 16 << 20, "2GiB": 2 << 30, "512K": 512 << 10, "1T": 1 << 40} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1", "1.5M", "16XiB", "9999999999T", "MiB16"} {
		if got, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, got)
		}
	}
}

func TestIntegrityFlags(t *testing.T) {
	var cfg node.Config
	err := integrityFlags(config{ScrubRate: "0", ScrubInterval: "12h", OrphanAge: "5m"}, &cfg)
	if err != nil || cfg.ScrubRate >= 0 || cfg.ScrubInterval != 12*time.Hour || cfg.OrphanAge != 5*time.Minute || cfg.GCInterval != 0 {
		t.Fatalf("integrityFlags = %+v, %v; want scrubbing off, 12h, 5m, GC default", cfg, err)
	}
	if err := integrityFlags(config{SweepInterval: "-1s"}, &cfg); err == nil {
		t.Errorf("a negative sweep interval was accepted")
	}
}
