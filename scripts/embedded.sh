# Sourced by scripts that need the embedded 3-AZ cluster (kclient.sh,
# bench.sh): start_embedded WORKDIR builds fsrepd into WORKDIR, starts it
# on the default ports with its data in WORKDIR/data (log in
# WORKDIR/fsrepd.log), waits until it is ready and arranges for it, and
# only it, to be stopped by PID when the calling script exits. GO names
# the go command. Returns 3 when it does not come up.
start_embedded() {
	local work=$1
	"${GO:-go}" build -o "$work/" ./cmd/fsrepd
	"$work/fsrepd" --data-dir "$work/data" >"$work/fsrepd.log" 2>&1 &
	EMBEDDED_PID=$!
	trap stop_embedded EXIT
	for _ in $(seq 1 300); do
		grep -q 'fsrep: ready' "$work/fsrepd.log" && return 0
		if ! kill -0 "$EMBEDDED_PID" 2>/dev/null; then
			cat "$work/fsrepd.log" >&2
			echo "fsrepd exited before it was ready (is another cluster using ports 20490-20492?)" >&2
			return 3
		fi
		sleep 0.2 # poll interval
	done
	cat "$work/fsrepd.log" >&2
	echo "fsrepd not ready after 60 s" >&2
	return 3
}

# stop_embedded stops the fsrepd start_embedded started: SIGINT, then
# SIGKILL after 10 s.
stop_embedded() {
	[ -n "${EMBEDDED_PID:-}" ] || return 0
	kill -INT "$EMBEDDED_PID" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$EMBEDDED_PID" 2>/dev/null || break
		sleep 0.1 # poll interval
	done
	kill -KILL "$EMBEDDED_PID" 2>/dev/null || true
	[ -z "${EMBEDDED_CLEANUP:-}" ] || rm -rf "$EMBEDDED_CLEANUP"
}
