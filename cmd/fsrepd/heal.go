package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/fsrep/fsrep/internal/node"
)

// healFlagSet declares the self-healing flags (docs/healing.md).
func healFlagSet(fl *flag.FlagSet, fc *fileConfig) {
	fl.StringVar(&fc.HeartbeatInterval, "heartbeat-interval", "", "how often a node sends the leader a heartbeat (default 1s)")
	fl.StringVar(&fc.SuspectAfter, "suspect-after", "", "a node without heartbeat for this long gets no new chunks (default 3s)")
	fl.StringVar(&fc.DownAfter, "down-after", "", "a node without heartbeat for this long is down (default 10s)")
	fl.StringVar(&fc.RepairGrace, "repair-grace", "", "how long a node must be down before its chunks are re-replicated (default 60s; the leader's value applies)")
	fl.StringVar(&fc.RepairRate, "repair-rate", "", "re-replication, drain and rebalance bandwidth per second, e.g. 64MiB (default 64MiB)")
}

// pickHeal fills the self-healing fields from the config file where no
// flag was given.
func pickHeal(pick func(name string, dst *string, v string), fc *fileConfig, file fileConfig) {
	pick("heartbeat-interval", &fc.HeartbeatInterval, file.HeartbeatInterval)
	pick("suspect-after", &fc.SuspectAfter, file.SuspectAfter)
	pick("down-after", &fc.DownAfter, file.DownAfter)
	pick("repair-grace", &fc.RepairGrace, file.RepairGrace)
	pick("repair-rate", &fc.RepairRate, file.RepairRate)
}

// healFlags sets the self-healing fields of cfg from the flags given.
func healFlags(fc fileConfig, cfg *node.Config) error {
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

// durationFlag is a duration flag's name, its value as given ("" = not
// given) and where a valid value goes.
type durationFlag struct {
	flag, v string
	dst     *time.Duration
}

// setDurations parses every given duration flag; each must be positive.
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
