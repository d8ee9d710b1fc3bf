package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// printJSON writes v as indented JSON (-o json).
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table returns a tabwriter for human output; the caller flushes it.
func (c *cli) table() *tabwriter.Writer {
	return tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
}

func (c *cli) jsonOutput() bool { return c.g.output == "json" }

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"ki", 1 << 10}, {"mi", 1 << 20}, {"gi", 1 << 30}, {"ti", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1}, {"", 1},
}

// parseSize reads a byte count such as 4MiB, 4M (binary), 4MB (decimal),
// 65536 or 64KiB.
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for _, u := range sizeUnits {
		num, ok := strings.CutSuffix(t, u.suffix)
		if !ok {
			continue
		}
		num = strings.TrimSpace(num)
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 0 {
			break
		}
		if n > 0 && u.mult > (1<<63-1)/n {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		return n * u.mult, nil
	}
	return 0, fmt.Errorf("size %q is not a byte count like 4MiB, 512KiB or 1048576", s)
}

// formatSize prints a byte count in binary units: exact when it is a whole
// number of a unit (4MiB), else to one decimal (1.5GiB).
func formatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	i, v := 0, float64(n)
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if n%(1<<(10*i)) == 0 {
		return fmt.Sprintf("%d%s", n>>(10*i), units[i])
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}

// formatTime prints unix nanoseconds as RFC 3339 in UTC ("-" for zero).
func formatTime(ns int64) string {
	if ns == 0 {
		return "-"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
