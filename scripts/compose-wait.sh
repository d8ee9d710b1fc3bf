#!/usr/bin/env bash
# Waits until every container of a compose project reports healthy (one
# without a healthcheck, such as the workload client, when it is running).
# Usage: compose-wait.sh PROJECT [TIMEOUT_SECONDS]
# Fails (and prints the unhealthy containers' last log lines) on timeout, or as
# soon as a container has exited.
set -euo pipefail

project=$1
timeout=${2:-120}
deadline=$((SECONDS + timeout))

while :; do
	mapfile -t ids < <(docker ps -aq --filter "label=com.docker.compose.project=$project")
	if [ ${#ids[@]} -eq 0 ]; then
		echo "compose-wait: no containers in project $project" >&2
		exit 1
	fi
	not_ready=()
	for id in "${ids[@]}"; do
		read -r name state health < <(docker inspect -f \
			'{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")
		name=${name#/}
		if [ "$state" = exited ] || [ "$state" = dead ]; then
			echo "compose-wait: $name has $state:" >&2
			docker logs --tail 20 "$id" >&2 || true
			exit 1
		fi
		[ "$health" = none ] && [ "$state" = running ] && continue
		[ "$health" = healthy ] || not_ready+=("$name($state/$health)")
	done
	if [ ${#not_ready[@]} -eq 0 ]; then
		echo "compose-wait: ${#ids[@]} containers healthy"
		exit 0
	fi
	if [ $SECONDS -ge $deadline ]; then
		echo "compose-wait: not healthy after ${timeout}s: ${not_ready[*]}" >&2
		for id in "${ids[@]}"; do
			[ "$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}healthy{{end}}' "$id")" = healthy ] && continue
			echo "--- $(docker inspect -f '{{.Name}}' "$id")" >&2
			docker logs --tail 20 "$id" >&2 || true
		done
		exit 1
	fi
	sleep 2
done
