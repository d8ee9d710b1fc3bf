package main

import (
	"fmt"
	"time"

	"github.com/fsrep/fsrep/internal/node"
)

// healFlags sets the self-healing fields of cfg from the settings given
// (docs/healing.md); an empty setting keeps node's default.
func healFlags(fc config, cfg *node.Config) error {
	if fc.RepairRate != "" {
		rate, err := parseBytes(fc.RepairRate)
		if err != nil || rate == 0 {
			return fmt.Errorf("--repair-rate: %q is not a positive byte count such as 64MiB", fc.RepairRate)
		}
		cfg.RepairRate = rate
	}
	return setDurations([]durationFlag{
		{"heartbeat-interval", fc.HeartbeatInterval, &cfg.HeartbeatInterval},
		{"suspect-after", fc.SuspectAfter, &cfg.SuspectAfter},
		{"down-after", fc.DownAfter, &cfg.DownAfter},
		{"repair-grace", fc.RepairGrace, &cfg.RepairGrace},
	})
}

// durationFlag is a duration setting's name, its value as given ("" = not
// given) and where a valid value goes.
type durationFlag struct {
	flag, v string
	dst     *time.Duration
}

// setDurations parses every given duration setting; each must be positive.
func setDurations(flags []durationFlag) error {
	for _, d := range flags {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			return fmt.Errorf("--%s: %q is not a positive duration", d.flag, d.v)
		}
		*d.dst = v
	}
	return nil
}
