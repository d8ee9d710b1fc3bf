#!/usr/bin/env bash
# make bench / make bench-anchors: nfsbench (../shared/bench/nfsbench, an
# NFSv3 client on libnfs that verifies every byte it reads back) against the
# embedded 3-AZ cluster (3 replicas in 3 AZs), RUNS times, with the anchors'
# main configuration (16 requests in flight on one TCP connection, 1 MiB
# READ/WRITE, a 1 GiB file, 5000 small files, 20000 random 4 KiB reads), and
# a table of medians. With --anchors it first runs ../shared/bench/run-anchors.sh
# (raw disk, NFS-Ganesha VFS = one local copy, GlusterFS replica 3 via
# Ganesha) in the same run and then prints fsrep/anchor ratios per workload:
# the only figures that count on a shared, noisy machine.
#
# Usage: scripts/bench.sh [--anchors] [--quick] [--runs N] [--wait SECS]
#   --quick    64 MiB file, 300 files, 2000 random reads, one run (a smoke test)
#   --wait S   before each nfsbench run wait up to S seconds for a quiet machine
# Results: results/bench/<UTC time>/ (raw RESULT lines, summary.md, ratios.md).
# Installs libnfs-dev, gcc, make, pkg-config and python3 when missing (root).
# Stops only the fsrepd it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-../shared/bench}
GO=${GO:-go}
RUNS=3
ANCHORS=0
QUICK=0
WAIT=0
while [ $# -gt 0 ]; do
	case $1 in
	--anchors) ANCHORS=1 ;;
	--quick) QUICK=1 RUNS=1 ;;
	--runs) RUNS=$2; shift ;;
	--wait) WAIT=$2; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
log() { echo "bench: $*" >&2; }
[ -d "$BENCH/nfsbench" ] || { log "$BENCH/nfsbench not found (the shared folder must sit beside the checkout)"; exit 3; }

need=()
{ [ -e /usr/include/nfsc/libnfs-raw.h ] || pkg-config --exists libnfs 2>/dev/null; } || need+=(libnfs-dev)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v make >/dev/null || need+=(make)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

# nfsbench is built in build/ (the shared folder may be read-only).
mkdir -p build/nfsbench
cp "$BENCH/nfsbench/nfsbench.c" "$BENCH/nfsbench/Makefile" build/nfsbench/
make -s -C build/nfsbench >&2
NB=$PWD/build/nfsbench/nfsbench

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=results/bench/$stamp
mkdir -p "$out"
if [ "$QUICK" = 1 ]; then
	ARGS=(-q 16 -c 1 -s 64M -n 300 -r 2000)
else
	ARGS=(-q 16 -c 1 -s 1G -n 5000 -r 20000)
fi

if [ "$ANCHORS" = 1 ]; then
	[ "$(id -u)" = 0 ] || { log "the anchors need root (namespaces, daemons, drop_caches)"; exit 3; }
	aargs=(-o "$PWD/$out/anchors" -r "$RUNS" -w "$WAIT")
	[ "$QUICK" = 1 ] && aargs=(-o "$PWD/$out/anchors" -Q)
	log "running the anchors: $BENCH/run-anchors.sh ${aargs[*]}"
	bash "$BENCH/run-anchors.sh" "${aargs[@]}" >&2
fi

# quiet waits like run-anchors.sh: at most 0.3 busy cores, up to WAIT seconds.
busy() { # busy cores over one second
	local a b
	read -r _ a1 a2 a3 a4 a5 a6 a7 _ </proc/stat
	sleep 1 # sampling interval
	read -r _ b1 b2 b3 b4 b5 b6 b7 _ </proc/stat
	a=$((b1 + b2 + b3 + b6 + b7 - a1 - a2 - a3 - a6 - a7))
	b=$((b1 + b2 + b3 + b4 + b5 + b6 + b7 - a1 - a2 - a3 - a4 - a5 - a6 - a7))
	awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN { printf "%.2f", (b ? a / b : 0) * n }'
}
wait_quiet() {
	local end=$((SECONDS + WAIT)) b
	while [ "$SECONDS" -lt "$end" ]; do
		b=$(busy)
		awk -v b="$b" 'BEGIN { exit !(b <= 0.3) }' && return 0
	done
	[ "$WAIT" -gt 0 ] && log "machine still busy after ${WAIT}s; measuring anyway"
	return 0
}

work=$(mktemp -d /var/tmp/fsrep-bench.XXXXXX)
EMBEDDED_CLEANUP=$work
. scripts/embedded.sh
start_embedded "$work" || exit 3
pid=$EMBEDDED_PID

url='nfs://127.0.0.1/default?version=3&nfsport=20490&mountport=20490'
raw=$out/fsrep.txt
echo "ENV label=fsrep/main $(go version | tr ' ' '_') commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >"$raw"
for r in $(seq 1 "$RUNS"); do
	wait_quiet
	log "nfsbench fsrep/main/r$r ${ARGS[*]}"
	t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
	w0=$(date +%s.%N)
	if ! "$NB" -l "fsrep/main/r$r" "${ARGS[@]}" "$url" | tee -a "$raw" >&2; then
		log "nfsbench failed against fsrep (run $r)"
		tail -20 "$work/fsrepd.log" >&2
		exit 1
	fi
	t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
	echo "CPU label=fsrep/main/r$r server_cpu_s=$(awk -v d=$((t1 - t0)) -v h="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", d / h }')" \
		"wall_s=$(awk -v a="$w0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')" >>"$raw"
done

python3 "$BENCH/lib/summarize.py" "$raw" >"$out/summary.md"
cat "$out/summary.md"
if [ "$ANCHORS" = 1 ]; then
	anchors=$(ls -t "$out"/anchors/anchors-*.txt 2>/dev/null | head -1)
	[ -n "$anchors" ] || { log "no anchor results under $out/anchors"; exit 1; }
	python3 scripts/bench-ratios.py "$anchors" "$raw" | tee "$out/ratios.md"
fi
log "results in $out"
