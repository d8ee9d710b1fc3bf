package workload

import (
	"errors"
	"testing"
)

func TestBlockRoundTrip(t *testing.T) {
	b := encodeBlock("w-000001", 7, 42, 4096)
	seq, err := verifyBlock(b, "w-000001", 7)
	if err != nil || seq != 42 {
		t.Fatalf("verify = %d, %v; want 42, nil", seq, err)
	}
	if _, err := verifyBlock(b, "w-000002", 7); !errors.Is(err, errMisplace) {
		t.Errorf("other file: %v, want errMisplace", err)
	}
	if _, err := verifyBlock(b, "w-000001", 8); !errors.Is(err, errMisplace) {
		t.Errorf("other index: %v, want errMisplace", err)
	}
	for _, at := range []int{0, 5, 100, 4095} {
		c := append([]byte(nil), b...)
		c[at] ^= 0x10
		if _, err := verifyBlock(c, "w-000001", 7); !errors.Is(err, errCorrupt) {
			t.Errorf("bit flip at %d: %v, want errCorrupt", at, err)
		}
	}
	if _, err := verifyBlock(make([]byte, 4096), "w-000001", 7); !errors.Is(err, errCorrupt) {
		t.Errorf("zeros (a hole): %v, want errCorrupt", err)
	}
	if _, err := verifyBlock(b[:100], "w-000001", 7); !errors.Is(err, errCorrupt) {
		t.Errorf("short read: %v, want errCorrupt", err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Default([]string{"a:1"}, "/vol")
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"no gateways": func(c *Config) { c.Gateways = nil },
		"no export":   func(c *Config) { c.Export = "" },
		"zero rate":   func(c *Config) { c.Rate = 0 },
		"tiny block":  func(c *Config) { c.BlockSize = 10 },
		"no blocks":   func(c *Config) { c.BlocksPerFile = 0 },
		"no timeout":  func(c *Config) { c.OpTimeout = 0 },
	} {
		c := ok
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
