#!/usr/bin/env python3
"""Ratios of fsrep to the anchors, per workload, from one run's RESULT lines.

Usage: bench-ratios.py ANCHORS.txt FSREP.txt > ratios.md

Both files hold nfsbench RESULT lines (labels ANCHOR/VARIANT/rN; fsrep's are
fsrep/main/rN). For each workload it takes the median of the headline metric
(MB/s or ops/s) over the main configuration's runs of each system and prints
fsrep's figure, the anchors' and the ratios against the targets of issue 7:
against NFS-Ganesha serving one local copy (ganesha-vfs) and against
GlusterFS replica 3 via Ganesha (gluster, target 3x). A run that failed its
verification (verify other than ok or n/a) makes the script exit 3.
"""
import shlex
import statistics
import sys
from collections import defaultdict

# workload -> (metric, unit, target ratio to ganesha-vfs)
TARGETS = {
    "seqwrite": ("MBps", "MB/s", 0.8),
    "seqread": ("MBps", "MB/s", 1.0),
    "create": ("opsps", "files/s", 1.0),
    "stat": ("opsps", "ops/s", 0.5),
    "readdir": ("opsps", "entries/s", 0.5),
    "delete": ("opsps", "files/s", 0.75),
    "randread": ("opsps", "ops/s", 0.75),
}
GLUSTER_TARGET = 3.0
# the raw-disk figure that bounds a workload (run-anchors.sh names)
RAW = {"seqwrite": "seqwrite", "seqread": "seqread-cold", "create": "write4k-fsync",
       "randread": "randread-direct"}


def results(paths):
    out = defaultdict(list)  # (system, workload) -> [values]
    bad = []
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.startswith("RESULT "):
                    continue
                kv = {}
                for tok in shlex.split(line[len("RESULT "):]):
                    if "=" in tok:
                        k, v = tok.split("=", 1)
                        kv[k] = v
                parts = kv.get("label", "").split("/")
                if len(parts) < 2 or parts[1] != "main":
                    continue
                if kv.get("verify", "ok") not in ("ok", "n/a"):
                    bad.append(line.strip())
                w = kv.get("workload")
                metric = "MBps" if w.startswith("seq") else "opsps"
                try:
                    out[(parts[0], w)].append(float(kv[metric]))
                except (KeyError, ValueError):
                    pass
    return out, bad


def fmt(v):
    if v is None:
        return "–"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    res, bad = results(sys.argv[1:])
    med = {k: statistics.median(v) for k, v in res.items() if v}
    print("| workload | fsrep | Ganesha VFS (1 copy) | Gluster r3 | raw disk | fsrep / Ganesha (target) | fsrep / Gluster (target 3×) |")
    print("|---|---|---|---|---|---|---|")
    for w, (metric, unit, target) in TARGETS.items():
        f, g, gl = med.get(("fsrep", w)), med.get(("ganesha-vfs", w)), med.get(("gluster", w))
        raw = med.get(("raw-disk", RAW[w])) if w in RAW else None
        rg = f"{f / g:.2f}× ({target}×) {'ok' if f / g >= target else 'short'}" if f and g else "–"
        rgl = f"{f / gl:.1f}× {'ok' if f / gl >= GLUSTER_TARGET else 'short'}" if f and gl else "–"
        print(f"| {w} ({unit}) | {fmt(f)} | {fmt(g)} | {fmt(gl)} | {fmt(raw)} | {rg} | {rgl} |")
    if bad:
        print("\nVERIFICATION FAILED:\n" + "\n".join(bad))
        sys.exit(3)


if __name__ == "__main__":
    main()
