#!/usr/bin/env bash
# Runs the real Linux NFSv3 client (../shared/kclient: Debian's kernel under
# QEMU in a network namespace) against the embedded default cluster, once
# plain, once with actimeo=0 and once with nconnect=4. Needs root.
# Stops only the fsrepd it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
KCLIENT=${KCLIENT:-../shared/kclient}
GO=${GO:-go}
if [ ! -x "$KCLIENT/run.sh" ]; then
	echo "kclient: $KCLIENT/run.sh not found (the shared folder must sit beside the checkout)" >&2
	exit 3
fi
bash "$KCLIENT/setup.sh"

work=$(mktemp -d)
. scripts/embedded.sh
start_embedded "$work" || exit 3

failed=0
for opts in "" "actimeo=0" "nconnect=4"; do
	echo "=== kclient ${opts:-(default mount options)}"
	args=(--connect 127.0.0.1:20490 --export /default)
	[ -n "$opts" ] && args+=(--mount-opts "$opts")
	if ! "$KCLIENT/run.sh" "${args[@]}" >"$work/kclient.log" 2>&1; then
		failed=$((failed + 1))
		grep -E 'kclient:|KCLIENT-STEP' "$work/kclient.log" | tail -30
	fi
	grep -E '^[0-9]+ passed, [0-9]+ failed' "$work/kclient.log" | tail -1 || tail -5 "$work/kclient.log"
done
if [ "$failed" -ne 0 ]; then
	echo "kclient: $failed of 3 runs failed; fsrepd log tail:"
	tail -20 "$work/fsrepd.log"
	exit 1
fi
echo "kclient: all 3 runs passed"
