#!/usr/bin/env bash
# Runs every Go fuzz target in the module for FUZZTIME each (default 10s).
# Targets are found by grepping *_test.go files for `func FuzzName(`; each runs
# as `go test -run=^$ -fuzz=^FuzzName$ -fuzztime=$FUZZTIME ./pkg` because
# `go test -fuzz` takes one package and one target at a time.
#
# Environment: FUZZTIME (default 10s), GO (default: go on PATH, else
# /usr/local/go/bin/go), FUZZ (optional regexp: only targets whose name matches).
# A crasher is written to the package's testdata/fuzz/FuzzName/ by go test and
# makes this script fail; commit it as a regression input.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
FUZZ=${FUZZ:-}

# path/to/x_test.go:func FuzzName( -> "path/to FuzzName", skipping vendor,
# build output and hidden folders.
mapfile -t targets < <(
	grep -rHoE --include='*_test.go' \
		--exclude-dir=vendor --exclude-dir=build --exclude-dir=bin --exclude-dir='.[!.]*' \
		'^func Fuzz[A-Za-z0-9_]*\(' . |
		sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#' |
		sort -u
)

ran=0 failed=()
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	if [ -n "$FUZZ" ] && ! [[ $name =~ $FUZZ ]]; then
		continue
	fi
	pkg="./${dir#./}"
	echo "=== fuzz $pkg $name for $FUZZTIME"
	log=$(mktemp)
	if "$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg" 2>&1 | tee "$log"; then
		ran=$((ran + 1))
	elif grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
		# The fuzzing engine's workers stalled (a loaded machine) and its
		# coordinator gave up: no input failed. Run the target once more.
		echo "=== fuzz $pkg $name: the engine timed out without a failing input; running it again"
		if "$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg"; then
			ran=$((ran + 1))
		else
			failed+=("$pkg $name")
		fi
	else
		failed+=("$pkg $name")
	fi
	rm -f "$log"
done

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found"
	exit 0
fi
echo "fuzz: $ran passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz: FAILED %s\n' "${failed[@]}"
	exit 1
fi
