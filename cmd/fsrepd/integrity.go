package main

import (
	"fmt"
	"github.com/fsrep/fsrep/meta"
	"strconv"
	"strings"

	"github.com/fsrep/fsrep/internal/node"
)

// integrityFlags sets the integrity fields of cfg from the settings given
// (docs/integrity.md); an empty setting keeps node's default.
func integrityFlags(fc config, cfg *node.Config) error {
	if fc.ScrubRate != "" {
		rate, err := parseBytes(fc.ScrubRate)
		if err != nil {
			return fmt.Errorf("--scrub-rate: %w", err)
		}
		if rate == 0 {
			rate = -1 // off; zero in node.Config means the default
		}
		cfg.ScrubRate = rate
	}
	if fc.InlineMax != "" {
		n, err := parseBytes(fc.InlineMax)
		if err != nil {
			return fmt.Errorf("--inline-max: %w", err)
		}
		if n > meta.InlineMax {
			return fmt.Errorf("--inline-max: %s is past the largest, %s", fc.InlineMax, formatBytes(meta.InlineMax))
		}
		if n == 0 {
			n = -1 // off; zero in node.Config means the default
		}
		cfg.InlineMax = n
	}
	if fc.ChunkReserve != "" {
		n, err := parseBytes(fc.ChunkReserve)
		if err != nil {
			return fmt.Errorf("--chunk-reserve: %w", err)
		}
		if n == 0 {
			n = -1 // off; zero in node.Config means the default
		}
		cfg.ChunkReserve = n
	}
	return setDurations([]durationFlag{
		{"scrub-interval", fc.ScrubInterval, &cfg.ScrubInterval},
		{"sweep-interval", fc.SweepInterval, &cfg.SweepInterval},
		{"gc-interval", fc.GCInterval, &cfg.GCInterval},
		{"orphan-age", fc.OrphanAge, &cfg.OrphanAge},
	})
}

// parseBytes reads a byte count: a number with an optional binary suffix
// (K, M, G, T, with or without "iB"/"B").
func parseBytes(s string) (int64, error) {
	num := strings.TrimRight(s, "KMGTiBkmgtb")
	unit := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s[len(num):]), "B"), "I")
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}
	sh, ok := shift[unit]
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if !ok || err != nil || n < 0 || n > (1<<62)>>sh {
		return 0, fmt.Errorf("%q is not a byte count such as 16MiB", s)
	}
	return n << sh, nil
}
